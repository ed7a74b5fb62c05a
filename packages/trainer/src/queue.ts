// The ITC queue of coarse FIBER (fiber_module.py, ALBEF-style without a momentum encoder): a ring
// buffer of past normalised features *and of the raw inputs* they came from, so that ITM hard
// negatives can be drawn from the queue too (fiber-spec §2.2).
//
// Layout and semantics are the official ones: `image_queue` / `text_queue` [H, Q] (never-filled
// columns keep their random init and still enter the ITC softmax), `image_input_queue`
// [Q, 3, S, S], `text_input_queue` / `text_input_mask_queue` [Q, L], `queue_ptr` wraps modulo Q
// and `queue_total` counts every enqueued row without a cap.
//
// Memory: the feature queues are 2·H·Q floats (FIBER-B, Q 4096: 25 MB). The raw image queue is
// Q·3·S² floats (Q 4096 at 384 px: 7.25 GB), so it is kept as one tensor per filled slot and slots
// that were never filled take no memory; pick Q to fit the backend (the wasm heap is 4 GiB).
import { Generator, tf } from '@fiber-vl/tensor-core';

export interface ItcQueueOptions {
  /** Feature width H (config hidden_size). */
  hiddenSize: number;
  /** Q: rows kept (official 4096). */
  size?: number;
  /** Image side S (the raw image queue holds [3, S, S] per slot). */
  imageSize: number;
  /** Text length L (config max_text_len). */
  maxTextLen: number;
  /** Draws the random init of the feature queues (official: torch.randn). */
  rng?: Generator;
}

/** The queue's contents by the official buffer names (see ItcQueue.getState). */
export type ItcQueueTensors = Map<string, tf.Tensor>;

/** What `enqueue` replaced, to undo it when a step is skipped. */
export interface EnqueueUndo {
  (): void;
  /** Frees what the undo would have restored (the step was kept). */
  commit(): void;
}

export class ItcQueue {
  readonly size: number;
  readonly hiddenSize: number;
  readonly imageSize: number;
  readonly maxTextLen: number;
  /** [H, Q] normalised image / text features (official layout). */
  imageFeats: tf.Tensor;
  textFeats: tf.Tensor;
  /** Raw inputs per slot: pixels [3, S, S] (undefined until filled), ids and mask [L]. */
  private images: (tf.Tensor | undefined)[];
  private texts: Int32Array[];
  private masks: Int32Array[];
  ptr = 0;
  total = 0;

  constructor({ hiddenSize, size = 4096, imageSize, maxTextLen, rng = new Generator(0) }: ItcQueueOptions) {
    for (const [k, v] of Object.entries({ hiddenSize, size, imageSize, maxTextLen })) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`ItcQueue: ${k} must be a positive integer, got ${v}`);
    }
    this.size = size;
    this.hiddenSize = hiddenSize;
    this.imageSize = imageSize;
    this.maxTextLen = maxTextLen;
    this.imageFeats = rng.normal([hiddenSize, size]);
    this.textFeats = rng.normal([hiddenSize, size]);
    this.images = new Array(size).fill(undefined);
    this.texts = Array.from({ length: size }, () => new Int32Array(maxTextLen));
    this.masks = Array.from({ length: size }, () => new Int32Array(maxTextLen));
  }

  /** Rows that hold real entries: min(total, Q). Negatives are drawn from the first `total` rows only. */
  get filled(): number {
    return Math.min(this.total, this.size);
  }

  private checkRows(rows: number[]): void {
    for (const r of rows)
      if (!(Number.isInteger(r) && r >= 0 && r < this.size))
        throw new RangeError(`ItcQueue: row ${r} outside [0, ${this.size})`);
  }

  /** Raw pixels of queue rows [n, 3, S, S] (zeros for a row never filled). */
  gatherImages(rows: number[]): tf.Tensor {
    this.checkRows(rows);
    const S = this.imageSize;
    return tf.tidy(() =>
      rows.length ? tf.stack(rows.map((r) => this.images[r] ?? tf.zeros([3, S, S]))) : tf.zeros([0, 3, S, S]),
    );
  }

  /** Token ids and attention masks of queue rows, [n, L] int32 each. */
  gatherTexts(rows: number[]): { ids: tf.Tensor; mask: tf.Tensor } {
    this.checkRows(rows);
    const L = this.maxTextLen;
    const ids = new Int32Array(rows.length * L);
    const mask = new Int32Array(rows.length * L);
    rows.forEach((r, i) => {
      ids.set(this.texts[r], i * L);
      mask.set(this.masks[r], i * L);
    });
    return { ids: tf.tensor2d(ids, [rows.length, L], 'int32'), mask: tf.tensor2d(mask, [rows.length, L], 'int32') };
  }

  /**
   * _dequeue_and_enqueue: writes the batch at `ptr` (wrapping), advances `ptr` mod Q and `total`
   * by B. imageCls / textCls [B, H] (their values are copied, no gradient), pixels [B, 3, S, S],
   * ids / mask [B, L]. Returns an undo for a step that ends up skipped.
   */
  async enqueue(
    imageCls: tf.Tensor,
    textCls: tf.Tensor,
    pixels: tf.Tensor,
    ids: tf.Tensor,
    mask: tf.Tensor,
  ): Promise<EnqueueUndo> {
    const B = imageCls.shape[0];
    const [H, Q, S, L] = [this.hiddenSize, this.size, this.imageSize, this.maxTextLen];
    const expect = (what: string, t: tf.Tensor, shape: number[]) => {
      if (t.shape.join() !== shape.join())
        throw new RangeError(`ItcQueue.enqueue: ${what} has shape [${t.shape}], expected [${shape}]`);
    };
    expect('imageCls', imageCls, [B, H]);
    expect('textCls', textCls, [B, H]);
    expect('pixels', pixels, [B, 3, S, S]);
    expect('ids', ids, [B, L]);
    expect('mask', mask, [B, L]);
    if (B > Q)
      throw new RangeError(
        `ItcQueue.enqueue: a batch of ${B} does not fit a queue of ${Q} (the official ring buffer needs B <= Q)`,
      );
    const [idsData, maskData] = await Promise.all([ids.data(), mask.data()]);
    const rows = Array.from({ length: B }, (_, i) => (this.ptr + i) % Q);
    // [H, Q] with columns `rows` replaced by the batch: one-hot scatter, exact for the copied values
    const prev = { imageFeats: this.imageFeats, textFeats: this.textFeats, ptr: this.ptr, total: this.total };
    const prevImages = rows.map((r) => this.images[r]);
    const prevTexts = rows.map((r) => this.texts[r]);
    const prevMasks = rows.map((r) => this.masks[r]);
    const [img, txt] = tf.tidy(() => {
      const keep = tf.tensor1d(
        Array.from({ length: Q }, (_, q) => (rows.includes(q) ? 0 : 1)),
        'bool',
      );
      const place = (queue: tf.Tensor, cls: tf.Tensor) => {
        // column q takes batch row i where rows[i] === q
        const src = tf.gather(
          tf.transpose(cls),
          tf.tensor1d(
            Array.from({ length: Q }, (_, q) => Math.max(0, rows.indexOf(q))),
            'int32',
          ),
          1,
        );
        return tf.where(tf.broadcastTo(keep, [H, Q]), queue, src);
      };
      return [place(this.imageFeats, imageCls), place(this.textFeats, textCls)];
    });
    const slots = tf.tidy(() => tf.unstack(pixels).map((p) => tf.clone(p)));
    this.imageFeats = img;
    this.textFeats = txt;
    rows.forEach((r, i) => {
      this.images[r] = slots[i];
      this.texts[r] = Int32Array.from(idsData.subarray(i * L, (i + 1) * L));
      this.masks[r] = Int32Array.from(maskData.subarray(i * L, (i + 1) * L));
    });
    this.ptr = (this.ptr + B) % Q;
    this.total += B;
    let done = false;
    const undo = (() => {
      if (done) return;
      done = true;
      tf.dispose([this.imageFeats, this.textFeats, ...slots]);
      Object.assign(this, prev);
      rows.forEach((r, i) => {
        this.images[r] = prevImages[i];
        this.texts[r] = prevTexts[i];
        this.masks[r] = prevMasks[i];
      });
    }) as EnqueueUndo;
    undo.commit = () => {
      if (done) return;
      done = true;
      tf.dispose([prev.imageFeats, prev.textFeats, ...prevImages.filter((t): t is tf.Tensor => t !== undefined)]);
    };
    return undo;
  }

  /**
   * The queue by the official buffer names (fusion's FIBER_QUEUE_BUFFERS, which its checkpoint
   * reader drops), for checkpoints and comparisons: image_queue / text_queue [H, Q],
   * image_input_queue [Q, 3, S, S] (zeros in never-filled rows), text_input_queue /
   * text_input_mask_queue [Q, L], queue_ptr / queue_total [1] (int32). New tensors: the caller
   * disposes them.
   */
  getState(): ItcQueueTensors {
    const all = Array.from({ length: this.size }, (_, i) => i);
    const pixels = this.gatherImages(all);
    const { ids, mask } = this.gatherTexts(all);
    return new Map<string, tf.Tensor>([
      ['image_queue', tf.clone(this.imageFeats)],
      ['text_queue', tf.clone(this.textFeats)],
      ['image_input_queue', pixels],
      ['text_input_queue', ids],
      ['text_input_mask_queue', mask],
      ['queue_ptr', tf.tensor1d([this.ptr], 'int32')],
      ['queue_total', tf.tensor1d([this.total], 'int32')],
    ]);
  }

  /**
   * Loads a queue from tensors named as in getState (the official buffers; int64 read as int32).
   * Rows of image_input_queue at or beyond `queue_total` that are all zeros stay unallocated.
   */
  async setState(state: ItcQueueTensors): Promise<void> {
    const [H, Q, S, L] = [this.hiddenSize, this.size, this.imageSize, this.maxTextLen];
    const shapes: Record<string, number[]> = {
      image_queue: [H, Q],
      text_queue: [H, Q],
      image_input_queue: [Q, 3, S, S],
      text_input_queue: [Q, L],
      text_input_mask_queue: [Q, L],
      queue_ptr: [1],
      queue_total: [1],
    };
    for (const [k, shape] of Object.entries(shapes)) {
      const t = state.get(k);
      if (!t) throw new Error(`ItcQueue.setState: "${k}" missing`);
      if (t.shape.join() !== shape.join())
        throw new RangeError(`ItcQueue.setState: "${k}" has shape [${t.shape}], this queue needs [${shape}]`);
    }
    const ptr = (await state.get('queue_ptr')!.data())[0];
    const total = (await state.get('queue_total')!.data())[0];
    if (!(Number.isInteger(ptr) && ptr >= 0 && ptr < Q))
      throw new RangeError(`ItcQueue.setState: queue_ptr ${ptr} outside [0, ${Q})`);
    if (!(Number.isInteger(total) && total >= 0))
      throw new RangeError(`ItcQueue.setState: queue_total ${total} must be a non-negative integer`);
    const ids = await state.get('text_input_queue')!.data();
    const mask = await state.get('text_input_mask_queue')!.data();
    const imgs = state.get('image_input_queue')!;
    const rowsFilled = Math.min(total, Q);
    const anyT = tf.tidy(() => tf.any(tf.notEqual(imgs, 0), [1, 2, 3]));
    const nonzero = await anyT.data();
    anyT.dispose();
    this.disposeTensors();
    this.imageFeats = tf.cast(state.get('image_queue')!, 'float32');
    this.textFeats = tf.cast(state.get('text_queue')!, 'float32');
    const rows = tf.tidy(() => tf.unstack(tf.cast(imgs, 'float32')));
    this.images = rows.map((t, r) => {
      if (r < rowsFilled || nonzero[r]) return t;
      t.dispose();
      return undefined;
    });
    this.texts = Array.from({ length: Q }, (_, r) => Int32Array.from(ids.subarray(r * L, (r + 1) * L)));
    this.masks = Array.from({ length: Q }, (_, r) => Int32Array.from(mask.subarray(r * L, (r + 1) * L)));
    this.ptr = ptr;
    this.total = total;
  }

  private disposeTensors(): void {
    tf.dispose([this.imageFeats, this.textFeats, ...this.images.filter((t): t is tf.Tensor => t !== undefined)]);
  }

  dispose(): void {
    this.disposeTensors();
    this.images = new Array(this.size).fill(undefined);
  }
}

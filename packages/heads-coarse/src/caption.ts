// FIBER captioning (fiber-spec §2.3 "Captioning", second reading §2.3-2.4): the text backbone runs
// as a causal decoder whose fused layers cross-attend one way to the image tokens (the full Swin
// without its final norm; layers paired with the penultimate stage read them through
// cross_modal_att_layers[i]), then cross_modal_text_transform and mlm_score give next-token
// logits. Decoding is the official beam search: beam 5, <mask> forbidden, scores normalised by the
// generated length, ended beams frozen, early stop when every beam has ended.
import { tf, tidyOutput } from '@fiber-vl/tensor-core';
import type { ImageContext } from '@fiber-vl/fusion';
import type { LayerOptions } from '@fiber-vl/roberta';
import type { FiberCoarseModel } from './model.js';

/** Additive mask [B, 1, L, L]: a large negative value above the diagonal, plus the padding mask of the keys. */
export function causalMask(batch: number, length: number, attentionMask?: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const upper = tf.sub(tf.ones([length, length]), tf.linalg.bandPart(tf.ones([length, length]), -1, 0)); // 1 above the diagonal
    // -1e30 stands for -inf (the same softmax, and no inf arithmetic on GPUs)
    let m = tf.reshape(tf.mul(upper, -1e30), [1, 1, length, length]);
    if (attentionMask)
      m = tf.add(
        m,
        tf.mul(tf.sub(1, tf.cast(tf.reshape(attentionMask, [batch, 1, 1, length]), 'float32')), -3.4028234663852886e38),
      );
    return tf.tile(m, [attentionMask ? 1 : batch, 1, 1, 1]);
  });
}

export interface CaptionForward {
  /** [B, L, H] after cross_modal_text_transform. */
  textFeats: tf.Tensor;
  /** [B, L, V] next-token logits (position t predicts token t + 1). */
  logits: tf.Tensor;
}

/** Image tokens for captioning: the full Swin, no text, no final norm -> [B, N, C_last]. */
export function captionImageEmbeds(model: FiberCoarseModel, pixels: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const out = model.vitModel.forward(pixels);
    return out.stages[out.stages.length - 1];
  });
}

/**
 * The causal decoder over `inputIds` given precomputed image tokens; `attentionMask` adds the
 * padding mask. Drives the text backbone's own layers: the fused ones cross-attend one way to the
 * image (through cross_modal_att_layers[i] for the layers paired with the penultimate stage).
 */
export function captionForward(
  model: FiberCoarseModel,
  imageEmbeds: tf.Tensor,
  inputIds: tf.Tensor,
  attentionMask?: tf.Tensor,
): CaptionForward {
  const adapters = model.crossModalAttLayers;
  const head = model.mlmScore;
  if (!adapters || !head)
    throw new Error('FiberCoarseModel: captioning needs the caption heads (cross_modal_att_layers, mlm_score)');
  if (imageEmbeds.rank !== 3 || imageEmbeds.shape[0] !== inputIds.shape[0]) {
    throw new RangeError(
      `captionForward: imageEmbeds [${imageEmbeds.shape.join(', ')}] must be [B, N, C] for inputIds [${inputIds.shape.join(', ')}]`,
    );
  }
  const lastStage = model.config.swin.depths.length - 1;
  const stageOf = new Map(model.schedule.map((p) => [p.textLayer, p.stage]));
  const [B, L] = inputIds.shape;
  return tidyOutput(() => {
    const layerOptions = (i: number): LayerOptions<ImageContext> | undefined => {
      const stage = stageOf.get(i);
      if (stage === undefined) return undefined;
      return { context: { image: stage === lastStage ? imageEmbeds : adapters.at(i).forward(imageEmbeds) } };
    };
    const { lastHiddenState } = model.textTransformer.forward(inputIds, undefined, {
      additiveMask: causalMask(B, L, attentionMask),
      layerOptions,
      pool: false,
    });
    const textFeats = model.crossModalTextTransform.forward(lastHiddenState);
    return { textFeats, logits: head.forward(textFeats) };
  });
}

export interface BeamSearchOptions {
  beamSize?: number;
  /** Total length including <s> (the official max_text_len). */
  maxLength?: number;
  bos?: number;
  pad?: number;
  eos?: number;
  mask?: number;
  /**
   * Called after each decoding step with each image's best beam so far: its tokens after <s>, up to
   * this step. Beams are re-ranked every step, so a later call may change earlier tokens; the last
   * call holds the result (before </s> and <s> become <pad>). Awaited, so a page can let the
   * browser paint the partial caption.
   */
  onStep?: (best: number[][], step: number) => void | Promise<void>;
}

/** Sorts indices by value descending; ties keep the lower index first. */
function topIndices(values: Float32Array | number[], k: number): number[] {
  const idx = Array.from({ length: values.length }, (_, i) => i);
  idx.sort((a, b) => values[b] - values[a] || a - b);
  return idx.slice(0, k);
}

/**
 * Beam-search captions: returns, per image, the best beam's tokens after <s> (length maxLength - 1),
 * with </s> and <s> replaced by <pad> as the official test step does before decoding.
 */
export async function beamSearchCaptions(
  model: FiberCoarseModel,
  pixels: tf.Tensor,
  opts: BeamSearchOptions = {},
): Promise<number[][]> {
  const { beamSize: K = 5, maxLength = model.config.maxTextLen, bos = 0, pad = 1, eos = 2 } = opts;
  const maskId = opts.mask ?? model.config.roberta.vocabSize - 1;
  const B = pixels.shape[0];
  const V = model.config.roberta.vocabSize;
  // checked before any tensor exists (a bad option failed deep in tfjs and leaked the image)
  const whole = (name: string, v: unknown, lo: number, hi: number) => {
    if (!(Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi))
      throw new RangeError(`beamSearchCaptions: ${name} must be an integer in [${lo}, ${hi}], got ${String(v)}`);
  };
  whole('beamSize', K, 1, V);
  whole('maxLength', maxLength, 2, Number.MAX_SAFE_INTEGER);
  for (const [name, id] of [
    ['bos', bos],
    ['pad', pad],
    ['eos', eos],
    ['mask', maskId],
  ] as const)
    whole(name, id, 0, V - 1);
  const image = captionImageEmbeds(model, pixels);
  let imageBeams: tf.Tensor | undefined;
  // ids[b][k] = token row; at step 0 only beam 0 of each image exists
  let ids: number[][] = Array.from({ length: B * K }, () => [bos, ...new Array(maxLength - 1).fill(pad)]);
  let ended = new Array<boolean>(B * K).fill(false);
  let headLogp = new Array<number>(B * K).fill(0);
  let headLen = new Array<number>(B * K).fill(0);
  const logProbsAt = async (rows: number[][], embeds: tf.Tensor, i: number): Promise<Float32Array> => {
    const t = tf.tidy(() => {
      const input = tf.tensor2d(rows, [rows.length, maxLength], 'int32');
      const { logits } = captionForward(model, embeds, input);
      const step = tf.squeeze(tf.slice(logits, [0, i, 0], [-1, 1, -1]), [1]); // [R, V]
      const forbidden = tf.oneHot(tf.fill([rows.length], maskId, 'int32'), V);
      return tf.logSoftmax(tf.add(tf.mul(step, tf.sub(1, forbidden)), tf.mul(forbidden, -10000)));
    });
    const data = (await t.data()) as Float32Array;
    t.dispose();
    return data;
  };
  // slot 0 of each image holds its best beam (candidates are taken best first)
  const bestSoFar = (step: number) => Array.from({ length: B }, (_, b) => ids[b * K].slice(1, step + 2));
  try {
    imageBeams = tf.tidy(() =>
      tf.reshape(tf.tile(tf.expandDims(image, 1), [1, K, 1, 1]), [B * K, image.shape[1]!, image.shape[2]!]),
    );
    for (let i = 0; i < maxLength - 1; i++) {
      if (i === 0) {
        const rows = Array.from({ length: B }, () => ids[0]);
        const lp = await logProbsAt(rows, image, 0);
        for (let b = 0; b < B; b++) {
          const row = lp.subarray(b * V, (b + 1) * V);
          topIndices(row, K).forEach((tok, k) => {
            const r = b * K + k;
            ids[r] = [...ids[r]];
            ids[r][1] = tok;
            headLogp[r] = row[tok];
            headLen[r] = 1;
            ended[r] = tok === eos || tok === pad;
          });
        }
        await opts.onStep?.(bestSoFar(0), 0);
        continue;
      }
      const lp = await logProbsAt(ids, imageBeams, i);
      const nextIds: number[][] = [];
      const nextEnded: boolean[] = [];
      const nextLogp: number[] = [];
      const nextLen: number[] = [];
      for (let b = 0; b < B; b++) {
        // candidates over (beam, token): cumulative logp; ended beams add 0 for every token
        const normed = new Float32Array(K * V);
        const cum = new Float32Array(K * V);
        const lens = new Array<number>(K);
        for (let k = 0; k < K; k++) {
          const r = b * K + k;
          const live = ended[r] ? 0 : 1;
          lens[k] = live + headLen[r];
          for (let v = 0; v < V; v++) {
            const c = Math.fround(Math.fround(lp[r * V + v] * live) + headLogp[r]);
            cum[k * V + v] = c;
            normed[k * V + v] = Math.fround(c / Math.fround(lens[k] + 1e-9));
          }
        }
        topIndices(normed, K).forEach((idx, slot) => {
          const k = Math.floor(idx / V);
          const tok = idx % V;
          const prev = b * K + k;
          const token = ended[prev] ? pad : tok;
          const row = [...ids[prev]];
          row[i + 1] = token;
          nextIds.push(row);
          nextLogp.push(cum[idx]);
          // Kept from the official code: the new beam in slot s takes the length of the old beam in
          // slot s, not of its parent.
          nextLen.push(lens[slot]);
          nextEnded.push(token === eos || token === pad);
        });
      }
      ids = nextIds;
      ended = nextEnded;
      headLogp = nextLogp;
      headLen = nextLen;
      await opts.onStep?.(bestSoFar(i), i);
      if (ended.every(Boolean)) break;
    }
    return Array.from({ length: B }, (_, b) => ids[b * K].slice(1).map((t) => (t === eos || t === bos ? pad : t)));
  } finally {
    tf.dispose(imageBeams ? [image, imageBeams] : [image]);
  }
}

/** Greedy decoding: the official search with one beam (the most likely token at each step). */
export function greedyCaptions(
  model: FiberCoarseModel,
  pixels: tf.Tensor,
  opts: Omit<BeamSearchOptions, 'beamSize'> = {},
): Promise<number[][]> {
  return beamSearchCaptions(model, pixels, { ...opts, beamSize: 1 });
}

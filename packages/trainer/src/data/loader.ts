// The data loader: an epoch order over a source, samples prepared ahead by an executor (worker
// threads in Node, or in-thread), delivered strictly in order, skips counted. Its position
// (epoch, next position in the epoch's order) is all a checkpoint needs to resume exactly: a sample
// depends only on (seed, epoch, index), never on timing or on which thread prepared it.
import type { ImageLocation, ImageStore } from './images.js';
import { EpochOrder } from './order.js';
import {
  type Sample,
  type SampleIO,
  type SampleResult,
  type SampleTask,
  type TransformSpec,
  prepareSample,
} from './pipeline.js';
import { type DataRecord, recordImages } from './records.js';
import { type Skip, type SkipEvent, SkipStats, skipOf, warnSkips } from './skips.js';
import type { RecordSource } from './source.js';
import type { BoxPolicy } from './validate.js';

/**
 * Prepares samples: in this thread (InThreadExecutor) or in worker threads (`WorkerPool`, `@fiber-vl/trainer/node`).
 */
export interface SampleExecutor {
  run(task: SampleTask): Promise<SampleResult>;
  close(): Promise<void>;
}

/** Prepares samples in the calling thread (browsers, tests); the same results as a worker pool, bit for bit. */
export class InThreadExecutor implements SampleExecutor {
  constructor(private readonly io: SampleIO) {}
  run(task: SampleTask): Promise<SampleResult> {
    return prepareSample(task, this.io);
  }
  async close(): Promise<void> {}
}

/** Where a run is in its data: the epoch, and the next position of that epoch's order. */
export interface DataPosition {
  epoch: number;
  position: number;
}

export interface DataLoaderOptions {
  seed: number;
  transform: TransformSpec;
  executor: SampleExecutor;
  /** Resolves string image refs of sources that do not resolve their own. */
  images?: ImageStore;
  /** Default true. */
  shuffle?: boolean;
  rank?: number;
  worldSize?: number;
  /** Samples being prepared ahead of the one delivered (bounds memory and the executor's queue). Default 8. */
  prefetch?: number;
  boxPolicy?: BoxPolicy;
  /** Called for every skipped record and dropped box; default: warnSkips() (a few console lines per reason). */
  onSkip?: (event: SkipEvent) => void;
}

export interface Batch<R extends DataRecord = DataRecord> {
  samples: Sample<R>[];
  epoch: number;
  /** Where to resume after this batch (save it with the checkpoint). */
  next: DataPosition;
}

interface Prepared {
  position: number;
  index: number;
  id?: string;
  result: SampleResult;
  readerDropped: Skip[];
}

/**
 * Samples and batches of a source, one iteration at a time (its `position` follows the running one).
 * Example: `for await (const b of loader.batches(32, saved)) { ...; checkpoint.data = b.next; }`.
 */
export class DataLoader<R extends DataRecord = DataRecord> {
  readonly stats = new SkipStats();
  private readonly onSkip: (e: SkipEvent) => void;
  private current: DataPosition = { epoch: 0, position: 0 };

  constructor(
    readonly source: RecordSource<R>,
    readonly options: DataLoaderOptions,
  ) {
    if (!Number.isSafeInteger(options.seed))
      throw new RangeError(`DataLoader: seed must be a safe integer, got ${options.seed}`);
    if (options.prefetch !== undefined && !(Number.isInteger(options.prefetch) && options.prefetch >= 1)) {
      throw new RangeError(`DataLoader: prefetch must be a positive integer, got ${options.prefetch}`);
    }
    this.onSkip = options.onSkip ?? warnSkips();
  }

  /** The position after the last sample delivered (or skipped). */
  get position(): DataPosition {
    return { ...this.current };
  }

  order(epoch: number): EpochOrder {
    const { seed, shuffle = true, rank = 0, worldSize = 1 } = this.options;
    return new EpochOrder(this.source.length, { seed, epoch, shuffle, rank, worldSize });
  }

  /** Positions per epoch for this rank. */
  get epochLength(): number {
    const n = this.source.length;
    return n === 0 ? 0 : Math.ceil(n / (this.options.worldSize ?? 1));
  }

  /** The samples of one epoch from `from.position` on, in order; bad records are counted and reported, never thrown. */
  async *samples(from: DataPosition = { epoch: 0, position: 0 }): AsyncGenerator<Sample<R>> {
    const order = this.order(from.epoch);
    if (!Number.isInteger(from.position) || from.position < 0 || from.position > order.length) {
      throw new RangeError(`DataLoader: position ${from.position} outside epoch ${from.epoch} [0, ${order.length}]`);
    }
    this.current = { ...from };
    const prefetch = this.options.prefetch ?? 8;
    const window: Promise<Prepared>[] = [];
    let next = from.position;
    const launch = () => window.push(this.prepare(order, next++, from.epoch));
    try {
      while (window.length < prefetch && next < order.length) launch();
      while (window.length) {
        const item = await window.shift()!;
        if (next < order.length) launch();
        this.current = { epoch: from.epoch, position: item.position + 1 };
        const sample = this.deliver(item, from.epoch);
        if (sample) yield sample;
      }
    } finally {
      // Stopped early: the samples still in flight are discarded.
      for (const p of window) p.catch(() => undefined);
    }
  }

  /**
   * Batches of `batchSize` samples; each says where to resume after it. The last batch of an epoch
   * may be short unless `dropLast`. With `epochs` > 1 the batches go on into the following epochs.
   */
  async *batches(
    batchSize: number,
    from: DataPosition = { epoch: 0, position: 0 },
    { dropLast = false, epochs = 1 } = {},
  ): AsyncGenerator<Batch<R>> {
    if (!(Number.isInteger(batchSize) && batchSize >= 1))
      throw new RangeError(`DataLoader: batchSize must be a positive integer, got ${batchSize}`);
    let start = from;
    for (let e = 0; e < epochs; e++) {
      let samples: Sample<R>[] = [];
      for await (const s of this.samples(start)) {
        samples.push(s);
        if (samples.length === batchSize) {
          yield { samples, epoch: start.epoch, next: this.position };
          samples = [];
        }
      }
      if (samples.length && !dropLast) yield { samples, epoch: start.epoch, next: this.position };
      start = { epoch: start.epoch + 1, position: 0 };
    }
  }

  /** Ends the executor (a WorkerPool's threads) and closes the source (its file handles); both are the loader's once passed to it. */
  async close(): Promise<void> {
    const results = await Promise.allSettled([this.options.executor.close(), this.source.close?.()]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private deliver(item: Prepared, epoch: number): Sample<R> | undefined {
    const base = { source: this.source.name, index: item.index, position: item.position, epoch, id: item.id };
    const dropped = [...item.readerDropped, ...(item.result.ok ? item.result.sample.dropped : item.result.dropped)];
    for (const d of dropped) this.report({ ...base, ...d, scope: 'box' });
    if (!item.result.ok) {
      this.report({ ...base, ...item.result.skip, scope: 'record' });
      return undefined;
    }
    this.stats.delivered++;
    // The executor prepared a record of this source, so its type is the source's.
    return item.result.sample as Sample<R>;
  }

  private report(e: SkipEvent): void {
    this.stats.add(e);
    this.onSkip(e);
  }

  private async prepare(order: EpochOrder, position: number, epoch: number): Promise<Prepared> {
    const index = order.indexAt(position);
    const skipped = (skip: Skip, id?: string, readerDropped: Skip[] = []): Prepared => ({
      position,
      index,
      id,
      readerDropped,
      result: { ok: false, skip, dropped: [] },
    });
    let id: string | undefined;
    try {
      const entry = await this.source.get(index);
      if (!entry.ok) return skipped(entry.skip, entry.id);
      const { record } = entry;
      id = record.id;
      const store = entry.images ?? this.source.images ?? this.options.images;
      const locations: ImageLocation[] = [];
      for (const ref of recordImages(record)) {
        if (typeof ref !== 'string') {
          locations.push({ kind: 'raw', name: `${record.kind} ${record.id}`, image: ref });
          continue;
        }
        if (!store) throw new Error(`${this.source.name}: no ImageStore to find image "${ref}" (pass options.images)`);
        const loc = await store.locate(ref);
        if (!loc)
          return skipped(
            { reason: 'missing-image', detail: `image "${ref}" is not in ${store.name}` },
            id,
            entry.dropped,
          );
        locations.push(loc);
      }
      const { seed, transform, boxPolicy } = this.options;
      const result = await this.options.executor.run({
        record,
        locations,
        index,
        position,
        epoch,
        seed,
        transform,
        boxPolicy,
      });
      return { position, index, id, result, readerDropped: entry.dropped ?? [] };
    } catch (e) {
      return skipped(skipOf(e), id);
    }
  }
}

// What the training loop needs from a data source: batches, each with the position after it, so
// that a checkpoint can record where the data stood and a resumed run can continue from there.
import { disposeOutput } from '@fiber-vl/tensor-core';

/** JSON-serialisable value (what a checkpoint's trainer.json can hold). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * Where a data source stands: the epoch and an opaque cursor within it (the source gives it with
 * each batch and accepts it back; e.g. an index into a shuffled order, or a shard and an offset).
 */
export interface DataPosition {
  epoch: number;
  cursor: JsonValue;
}

export interface PositionedBatch<B> {
  batch: B;
  /** The position after this batch: resuming there yields the next batch. */
  position: DataPosition;
}

/**
 * A resumable source of batches. `batches(from)` yields the batches that follow `from` (or from
 * the start), each with its position. Determinism contract for bit-exact resume: the batches after
 * a position depend only on that position (and the source's own seed), not on how many batches
 * were read before in this process, nor on the state of any generator the trainer checkpoints.
 */
export interface DataSource<B> {
  batches(from?: DataPosition): AsyncIterable<PositionedBatch<B>>;
}

/** Any async (or sync) iterable of batches, or a DataSource. */
export type BatchSource<B> = DataSource<B> | AsyncIterable<B> | Iterable<B>;

export function isDataSource<B>(s: BatchSource<B>): s is DataSource<B> {
  return typeof (s as Partial<DataSource<B>>).batches === 'function';
}

/**
 * Positioned batches from any source. A plain iterable is positioned by the number of batches
 * read ({ epoch: 0, cursor: n }); resuming skips that many, so it must yield the same sequence
 * every time it is iterated (a deterministic generator function, not a one-shot stream).
 */
export async function* positioned<B>(source: BatchSource<B>, from?: DataPosition): AsyncGenerator<PositionedBatch<B>> {
  if (isDataSource(source)) {
    yield* source.batches(from);
    return;
  }
  const skip = from === undefined ? 0 : from.cursor;
  if (typeof skip !== 'number' || !Number.isInteger(skip) || skip < 0) {
    throw new TypeError(`a plain batch iterable resumes by a batch count; got cursor ${JSON.stringify(skip)}`);
  }
  let n = 0;
  for await (const batch of source as AsyncIterable<B>) {
    n++;
    if (n <= skip) {
      disposeBatch(batch);
      continue;
    }
    yield { batch, position: { epoch: 0, cursor: n } };
  }
}

/** Disposes every tf tensor reachable from a batch record (records, arrays, Maps). */
export function disposeBatch(batch: unknown): void {
  disposeOutput(batch);
}

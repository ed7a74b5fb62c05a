// The batched inference loop every task runs: items in order, the images of the next batch read
// and decoded while the model runs on the current one, finished items appended to the partial
// results, skipped samples counted, progress on stderr.
import type { ImageDecoder, RawImage } from '@fiber-vl/swin';
import { DataSkipError, type ImageStore, type Skip } from '@fiber-vl/trainer';
import { PromptError } from '@fiber-vl/heads-fine';
import { readImage, type SkipLog } from './data.js';
import { fail } from './errors.js';
import type { PartialLine, PartialStore } from './partial.js';
import { Progress, type ProgressSink } from './progress.js';

export interface Item<T> {
  /** Unique within the run (the partial results are keyed by it). */
  key: string;
  /** Image refs in the run's image store (none for text-only items). */
  images: string[];
  data: T;
}

export interface Ready<T> {
  item: Item<T>;
  images: RawImage[];
}

export interface RunContext {
  partial: PartialStore;
  skips: SkipLog;
  images: ImageStore;
  decoder: ImageDecoder;
  progress: ProgressSink;
}

export interface Stage<T, R> {
  label: string;
  items: readonly Item<T>[];
  batch: number;
  /** One result per ready item, in order. */
  infer(batch: Ready<T>[]): Promise<R[]>;
  /** The stored (JSON) form of a result (default: the result itself). */
  encode?(result: R): unknown;
  /** The result from its stored form; throws when it is not one. */
  decode(value: unknown, key: string): R;
}

/** Skips of an image file (missing, undecodable), retried on --resume. */
const IMAGE_REASONS: readonly string[] = ['missing-image', 'corrupt-image'];

/** Errors that concern one sample (a prompt the tokenizer cannot map, a record the data cannot satisfy). */
const sampleError = (e: unknown): Skip | undefined => {
  if (e instanceof DataSkipError) return { reason: e.reason, detail: e.message };
  if (e instanceof PromptError) return { reason: 'malformed-record', detail: e.message };
  return undefined;
};

/**
 * Test hook: FIBER_BENCH_EVAL_KILL_AFTER=N kills the process (SIGKILL, no clean-up) once N items
 * have been written to the partial results, as an interrupted run would end.
 */
const killAfter = Number(process.env.FIBER_BENCH_EVAL_KILL_AFTER ?? Infinity);
let written = 0;

type Loaded<T> = Ready<T> | { item: Item<T>; skip: Skip };

/** A sample that failed in the model call (kept apart from results, whatever their shape). */
class SkipValue {
  constructor(readonly skip: Skip) {}
}

/** Refuses items that share a key: results are kept by key, so both would get the second one's result. */
export function requireUniqueKeys(label: string, items: readonly { key: string }[]): void {
  const first = new Map<string, number>();
  items.forEach(({ key }, i) => {
    const at = first.get(key);
    if (at !== undefined)
      fail(`${label}: the id ${key} comes twice (items ${at + 1} and ${i + 1}); ids in the data file must be unique`);
    first.set(key, i);
  });
}

/** Runs a stage and returns the result of every item that was not skipped (this run's and resumed ones). */
export async function runStage<T, R>(ctx: RunContext, stage: Stage<T, R>): Promise<Map<string, R>> {
  requireUniqueKeys(stage.label, stage.items);
  const results = new Map<string, R>();
  const pending: Item<T>[] = [];
  let resumed = 0;
  for (const item of stage.items) {
    const stored = ctx.partial.get(item.key);
    // an image that could not be read is read again: a resume is how a run goes on after its
    // missing or broken files were put right (an unchanged file is skipped again, as before)
    if (!stored || ('skip' in stored && IMAGE_REASONS.includes(stored.skip.reason))) {
      pending.push(item);
      continue;
    }
    resumed++;
    if ('skip' in stored) ctx.skips.add(item.key, stored.skip);
    else {
      let value: R;
      try {
        value = stage.decode(stored.value, item.key);
      } catch (e) {
        // a stored result this stage cannot read back (a hand-edited or foreign file)
        return fail(`${ctx.partial.path}: ${(e as Error).message}; rerun without --resume`);
      }
      results.set(item.key, value);
    }
  }
  const progress = new Progress(stage.label, stage.items.length, resumed, ctx.progress);
  const batches: Item<T>[][] = [];
  for (let i = 0; i < pending.length; i += stage.batch) batches.push(pending.slice(i, i + stage.batch));
  const load = (batch: Item<T>[]): Promise<Loaded<T>[]> =>
    settleAll(
      batch.map(async (item) => {
        try {
          return { item, images: await settleAll(item.images.map((ref) => readImage(ctx.images, ref, ctx.decoder))) };
        } catch (e) {
          const skip = sampleError(e);
          if (!skip) throw e;
          return { item, skip };
        }
      }),
    );
  const infer = async (ready: Ready<T>[]): Promise<(R | SkipValue)[]> => {
    try {
      return await stage.infer(ready);
    } catch (e) {
      const skip = sampleError(e);
      if (!skip) throw e;
      if (ready.length === 1) return [new SkipValue(skip)];
      // one bad sample must not cost its batch: run them one by one
      const out: (R | SkipValue)[] = [];
      for (const r of ready) out.push(...(await infer([r])));
      return out;
    }
  };
  let next = batches.length ? load(batches[0]) : undefined;
  for (let b = 0; b < batches.length; b++) {
    const loaded = await next!;
    next = b + 1 < batches.length ? load(batches[b + 1]) : undefined;
    next?.catch(() => undefined); // awaited on the next turn; a failure there is reported then
    const ready = loaded.filter((l): l is Ready<T> => 'images' in l);
    const values = ready.length ? await infer(ready) : [];
    const byKey = new Map(ready.map((r, i) => [r.item.key, values[i]]));
    const lines: PartialLine[] = loaded.map((l) => {
      if ('skip' in l) return { key: l.item.key, skip: l.skip };
      const v = byKey.get(l.item.key);
      if (v instanceof SkipValue) return { key: l.item.key, skip: v.skip };
      return { key: l.item.key, value: stage.encode ? stage.encode(v!) : v };
    });
    ctx.partial.append(lines);
    let skipped = 0;
    for (const line of lines) {
      if (line.skip) {
        skipped++;
        ctx.skips.add(line.key, line.skip);
      } else {
        // the stored form, so that a resumed run sees the same values
        results.set(line.key, stage.decode(JSON.parse(JSON.stringify(line.value)), line.key));
      }
    }
    progress.advance(lines.length, skipped);
    written += lines.length;
    if (written >= killAfter) process.kill(process.pid, 'SIGKILL');
  }
  progress.finish();
  return results;
}

/**
 * Promise.all that waits for every read before it rejects with the first failure: a pair whose
 * second image is missing must not leave the first one's file open (and read) after the skip.
 */
async function settleAll<V>(promises: Promise<V>[]): Promise<V[]> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<V>).value);
}

// Typed model outputs (HF's ModelOutput idea): a forward pass returns a named record of tensors
// that is created and disposed as a unit. tf.tidy only types its result as a TensorContainer, so a
// record interface would need a cast; `tidyOutput` keeps every tensor reachable from the record
// and returns it with its own type.
import { tf } from './tf.js';

/** Every tf.Tensor reachable from `value` (records, arrays, Maps; Variables excluded), deduplicated. */
export function collectTensors(value: unknown, out: tf.Tensor[] = [], seen = new Set<unknown>()): tf.Tensor[] {
  if (value === null || typeof value !== 'object' || seen.has(value)) return out;
  seen.add(value);
  if (value instanceof tf.Tensor) {
    if (!(value instanceof tf.Variable)) out.push(value);
    return out;
  }
  if (ArrayBuffer.isView(value)) return out;
  const items = Array.isArray(value) ? value : value instanceof Map ? [...value.values()] : Object.values(value);
  for (const v of items) collectTensors(v, out, seen);
  return out;
}

/**
 * tf.tidy for functions that return a record of tensors: intermediate tensors are disposed, every
 * tensor reachable from the returned value is kept, and the value keeps its type.
 *
 * @example
 * const out: FusedOutput = tidyOutput(() => ({ textFeats: t, imageFeats: i }));
 */
export function tidyOutput<T>(fn: () => T): T {
  let result!: T; // assigned inside tf.tidy, which runs fn synchronously (or throws)
  tf.tidy(() => {
    result = fn();
    return collectTensors(result);
  });
  return result;
}

/** Disposes every tensor reachable from `value` (a model output record, an array, a Map). */
export function disposeOutput(value: unknown): void {
  tf.dispose(collectTensors(value));
}

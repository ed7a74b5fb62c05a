// Comparisons of our tensors with the reference tensors of a fixture file.
import type { tf, RawTensor } from '@fiber-vl/tensor-core';
import type { Check } from './protocol.js';

/** max |a - b| (NaN anywhere, or a length mismatch, gives Infinity) and max |b|. */
export function diff(a: ArrayLike<number>, b: ArrayLike<number>): { abs: number; scale: number } {
  if (a.length !== b.length) return { abs: Infinity, scale: 1 };
  let abs = 0;
  let scale = 1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= abs)) abs = Number.isNaN(d) ? Infinity : d;
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { abs, scale };
}

const numbers = (raw: RawTensor): number[] => Array.from(raw.data as ArrayLike<number | bigint>, Number);

/**
 * Our tensor against a reference of the same name. `relative`: judged on max|diff| / max(1, max|ref|)
 * (fiber-spec §9's form, used by the fine-grained head tests), else on max|diff|.
 */
export async function compareTensor(
  name: string,
  ours: tf.Tensor,
  ref: RawTensor,
  { tolerance = 1e-4, relative = false } = {},
): Promise<Check> {
  if (ours.shape.join() !== ref.shape.join()) {
    return {
      name,
      maxAbsError: Infinity,
      tolerance,
      ok: false,
      detail: `shape [${ours.shape}] vs reference [${ref.shape}]`,
    };
  }
  const { abs, scale } = diff((await ours.data()) as Float32Array, numbers(ref));
  if (!relative) return { name, maxAbsError: abs, tolerance, ok: abs <= tolerance };
  const rel = abs / scale;
  return { name, maxAbsError: abs, relError: rel, tolerance, ok: rel <= tolerance };
}

/** Integer outputs (beam-search tokens) compared exactly. */
export function compareExact(name: string, ours: number[][], ref: RawTensor): Check {
  const { abs } = diff(ours.flat(), numbers(ref));
  const shapeOk = ours.length === ref.shape[0] && ours.every((r) => r.length === ref.shape[1]);
  return { name, maxAbsError: shapeOk ? abs : Infinity, tolerance: 0, ok: shapeOk && abs === 0 };
}

/** A scalar against its expected value (metrics). */
export function compareNumbers(name: string, pairs: [number, number][], tolerance: number): Check {
  const { abs } = diff(
    pairs.map((p) => p[0]),
    pairs.map((p) => p[1]),
  );
  return { name, maxAbsError: abs, tolerance, ok: abs <= tolerance, detail: `${pairs.length} values` };
}

/** Whether `run` throws an error whose message matches `pattern`; the check carries the message. */
export async function expectError(
  name: string,
  run: () => Promise<unknown>,
  pattern: RegExp,
  errorName?: string,
): Promise<Check> {
  try {
    await run();
    return { name, maxAbsError: Infinity, tolerance: 0, ok: false, detail: 'no error was thrown' };
  } catch (e) {
    const err = e as Error;
    const ok = pattern.test(err.message) && (!errorName || err.name === errorName);
    return { name, maxAbsError: ok ? 0 : Infinity, tolerance: 0, ok, detail: `${err.name}: ${err.message}` };
  }
}

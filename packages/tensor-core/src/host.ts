// Where a backend keeps its tensors. On cpu and wasm they live in host memory, so reading a small
// one back (to check token ids or class targets) costs no device round trip; on WebGPU it would
// stall the queue, and the checks there are made on the device instead.
import { tf } from './tf.js';

/** Whether the current backend keeps tensors in host memory (cpu, wasm). */
export function readsOnHost(): boolean {
  const b = tf.getBackend();
  return b === 'cpu' || b === 'wasm';
}

/** The position of element `flat` of a tensor of `shape`, as "[i, j]". */
export function positionOf(flat: number, shape: readonly number[]): string {
  const at: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    at.unshift(flat % shape[d]);
    flat = Math.floor(flat / shape[d]);
  }
  return `[${at.join(', ')}]`;
}

/**
 * The index of the first value of `values` that is not an integer in [0, size), skipping `skip`;
 * -1 when all are.
 */
export function firstOutOfRange(values: ArrayLike<number>, size: number, skip?: number): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === skip) continue;
    if (!(Number.isInteger(v) && v >= 0 && v < size)) return i;
  }
  return -1;
}

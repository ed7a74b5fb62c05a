// Checks of index tensors (class targets, token ids) against the size they index. Where a backend
// keeps its tensors in host memory (cpu, wasm), reading a small one back costs no device round
// trip, and a bad index is named; on WebGPU that read would stall the queue, so the check runs on
// the device instead and marks the bad positions NaN.
import { tf } from './tf.js';

/** Whether the current backend keeps tensors in host memory (cpu, wasm). */
export function readsOnHost(): boolean {
  const b = tf.getBackend();
  return b === 'cpu' || b === 'wasm';
}

/**
 * The first value of `indices` that is neither an integer in [0, size) nor `skip`, with its
 * position as "[i, j]"; undefined when all are. Reads the tensor: call it on host backends only.
 */
export function findOutOfRange(
  indices: tf.Tensor,
  size: number,
  skip?: number,
): { value: number; at: string } | undefined {
  const values = indices.dataSync();
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === skip || (Number.isInteger(v) && v >= 0 && v < size)) continue;
    const at: number[] = [];
    for (let d = indices.rank - 1, flat = i; d >= 0; d--) {
      at.unshift(flat % indices.shape[d]);
      flat = Math.floor(flat / indices.shape[d]);
    }
    return { value: v, at: `[${at.join(', ')}]` };
  }
  return undefined;
}

/**
 * The device-side check: float32 of `indices`' (int32) shape, 0 where an index is in [0, size) or
 * equals `skip`, NaN elsewhere. Added to what the indices produced, it makes the bad positions NaN.
 */
export function nanWhereOutOfRange(indices: tf.Tensor, size: number, skip?: number): tf.Tensor {
  return tf.tidy(() => {
    let ok = tf.logicalAnd(tf.greaterEqual(indices, 0), tf.less(indices, size));
    if (skip !== undefined) ok = tf.logicalOr(ok, tf.equal(indices, skip));
    return tf.where(ok, tf.zeros(indices.shape), tf.fill(indices.shape, Number.NaN));
  });
}

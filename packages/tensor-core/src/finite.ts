// Which float tensors hold NaN or Infinity: weights like that evaluate to empty outputs, or train on
// NaN losses, without a word. One count per tensor, read back at once (one sync on WebGPU).
import { tf } from './tf.js';

export interface NonFiniteTensor {
  name: string;
  /** Elements that are NaN or +-Infinity. */
  count: number;
  size: number;
}

/** The float32 tensors of `tensors` (a state dict, a loaded file) that hold NaN or Infinity, in order. */
export async function findNonFinite(tensors: Iterable<[string, tf.Tensor]>): Promise<NonFiniteTensor[]> {
  const floats = [...tensors].filter(([, t]) => t.dtype === 'float32');
  if (!floats.length) return [];
  const countsT = tf.tidy(() =>
    tf.stack(floats.map(([, t]) => tf.sum(tf.cast(tf.logicalNot(tf.isFinite(t)), 'int32')))),
  );
  try {
    const counts = await countsT.data();
    return floats.flatMap(([name, t], k) => (counts[k] ? [{ name, count: counts[k], size: t.size }] : []));
  } finally {
    countsT.dispose();
  }
}

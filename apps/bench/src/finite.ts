// Weights that hold NaN or Infinity: a checkpoint like that evaluates to empty captions and zeros,
// or trains on NaN losses, without a word. One count per float tensor, read back at once (one
// sync on WebGPU).
import { tf } from '@fiber-vl/tensor-core';

/** `name: count of size` for each float32 tensor of `model` that holds NaN or Infinity. */
export async function nonFiniteTensors(model: { stateDict(): Map<string, tf.Tensor> }): Promise<string[]> {
  const floats = [...model.stateDict()].filter(([, t]) => t.dtype === 'float32');
  if (!floats.length) return [];
  const countsT = tf.tidy(() =>
    tf.stack(floats.map(([, t]) => tf.sum(tf.cast(tf.logicalNot(tf.isFinite(t)), 'int32')))),
  );
  const counts = await countsT.data();
  countsT.dispose();
  return floats.flatMap(([name, t], k) => (counts[k] ? [`${name}: ${counts[k]} of ${t.size}`] : []));
}

/** One line naming the first few, for an error message. */
export function nonFiniteMessage(bad: readonly string[]): string {
  return `${bad.length} tensor(s) hold NaN or Infinity (${bad.slice(0, 3).join('; ')}${bad.length > 3 ? '; ...' : ''})`;
}

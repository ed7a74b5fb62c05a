// Weights that hold NaN or Infinity: a checkpoint like that evaluates to empty captions and zeros,
// or trains on NaN losses, without a word.
import { findNonFinite, type tf } from '@fiber-vl/tensor-core';

/** `name: count of size` for each float32 tensor of `model` that holds NaN or Infinity. */
export async function nonFiniteTensors(model: { stateDict(): Map<string, tf.Tensor> }): Promise<string[]> {
  return (await findNonFinite(model.stateDict())).map((t) => `${t.name}: ${t.count} of ${t.size}`);
}

/** One line naming the first few, for an error message. */
export function nonFiniteMessage(bad: readonly string[]): string {
  return `${bad.length} tensor(s) hold NaN or Infinity (${bad.slice(0, 3).join('; ')}${bad.length > 3 ? '; ...' : ''})`;
}

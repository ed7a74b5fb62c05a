import { tf } from './tf.js';
import { collectTensors } from './outputs.js';

export class TensorLeakError extends Error {
  constructor(
    readonly label: string,
    readonly counts: number[],
  ) {
    super(`${label}: tf.memory().numTensors grew across repeated calls: ${counts.join(' -> ')}`);
    this.name = 'TensorLeakError';
  }
}

/**
 * Calls `fn` `warmup` times, then `iterations` more times, and throws a TensorLeakError if
 * tf.memory().numTensors after any later call differs from the count after the warm-up (caches
 * filled on first use are allowed by the warm-up). Results that `fn` returns are disposed.
 *
 * @example
 * await expectNoTensorGrowth(() => model.forward(x), { label: 'forward' });
 */
export async function expectNoTensorGrowth(
  fn: () => unknown,
  {
    iterations = 3,
    warmup = 1,
    label = 'expectNoTensorGrowth',
  }: { iterations?: number; warmup?: number; label?: string } = {},
): Promise<void> {
  const call = async () => tf.dispose(collectTensors(await fn()));
  for (let i = 0; i < warmup; i++) await call();
  const counts = [tf.memory().numTensors];
  for (let i = 0; i < iterations; i++) {
    await call();
    counts.push(tf.memory().numTensors);
  }
  if (counts.some((c) => c !== counts[0])) throw new TensorLeakError(label, counts);
}

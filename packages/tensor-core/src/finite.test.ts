import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backends/index.js';
import { findNonFinite } from './finite.js';
import { tf } from './tf.js';

describe('findNonFinite', () => {
  beforeAll(() => initBackend({ backend: 'cpu' }));

  it('names the float tensors holding NaN or Infinity, with counts, and leaves no tensor behind', async () => {
    const tensors = new Map<string, tf.Tensor>([
      ['ok', tf.tensor1d([1, 2, 3])],
      ['nan', tf.tensor1d([Number.NaN, 1, Number.NaN, 2])],
      ['ids', tf.tensor1d([1, 2], 'int32')],
      ['inf', tf.tensor2d([[Number.NEGATIVE_INFINITY, 0]])],
    ]);
    const before = tf.memory().numTensors;
    expect(await findNonFinite(tensors)).toEqual([
      { name: 'nan', count: 2, size: 4 },
      { name: 'inf', count: 1, size: 2 },
    ]);
    expect(await findNonFinite([])).toEqual([]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([...tensors.values()]);
  });
});

import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from './tf.js';
import { collectTensors, disposeOutput, tidyOutput } from './outputs.js';
import { useBackend } from './testing.js';

interface Out {
  a: tf.Tensor;
  nested: { list: tf.Tensor[] };
  grid: [number, number];
}

describe('typed outputs', () => {
  beforeAll(() => useBackend('cpu'));

  it('tidyOutput keeps every tensor of the returned record and disposes the rest', () => {
    const before = tf.memory().numTensors;
    const out: Out = tidyOutput(() => {
      const x = tf.ones([2]);
      const y = tf.add(x, 1); // intermediate, disposed
      return { a: tf.mul(y, 2), nested: { list: [tf.zeros([1]), tf.ones([3])] }, grid: [2, 3] };
    });
    expect(tf.memory().numTensors - before).toBe(3);
    expect(out.a.dataSync()).toEqual(new Float32Array([4, 4]));
    expect(out.grid).toEqual([2, 3]);
    disposeOutput(out);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('collects each tensor once, skipping variables and typed arrays', () => {
    const t = tf.ones([1]);
    const v = tf.variable(tf.zeros([1]));
    const found = collectTensors({ t, again: t, list: [t, v], map: new Map([['k', t]]), raw: new Float32Array(2) });
    expect(found).toEqual([t]);
    tf.dispose([t, v]);
  });

  it('a throwing function leaks nothing', () => {
    const before = tf.memory().numTensors;
    expect(() =>
      tidyOutput(() => {
        tf.ones([4]);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(tf.memory().numTensors).toBe(before);
  });
});

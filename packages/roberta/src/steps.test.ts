// The step API (embed / layer) and what it checks, training-mode dropout, and a model-level
// gradient check through a RoBERTa layer.
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator, disposeOutput, tf } from '@fiber-vl/tensor-core';
import { gradCheckParameters, maxAbsDiff, useBackend } from '@fiber-vl/tensor-core/testing';
import { RobertaModel } from './modeling.js';

const small = {
  vocabSize: 50,
  hiddenSize: 16,
  numHiddenLayers: 2,
  numAttentionHeads: 2,
  intermediateSize: 32,
  maxPositionEmbeddings: 20,
};

describe('RoBERTa steps', () => {
  beforeAll(() => useBackend('cpu'));

  it('driving the layers by hand gives the forward pass', async () => {
    const model = new RobertaModel(small, { rng: new Generator(1) }).eval();
    const ids = tf.tensor2d([[0, 5, 6, 2, 1]], undefined, 'int32');
    const mask = tf.tensor2d([[1, 1, 1, 1, 0]], undefined, 'int32');
    const out = model.forward(ids, mask);
    let state = model.embed(ids, mask);
    for (let i = 0; i < model.numLayers; i++) state = model.layer(i, state);
    expect(maxAbsDiff(await state.hidden.data(), await out.lastHiddenState.data())).toBe(0);
    disposeOutput([out, state, ids, mask]);
    model.dispose();
  });

  it('embed names the problem: ids rank and dtype, mask shape, additive mask shape, length', () => {
    const model = new RobertaModel(small);
    const ids = tf.tensor2d([[0, 5, 2]], undefined, 'int32');
    const cases: [() => unknown, RegExp][] = [
      [() => model.embed(tf.tensor1d([0, 5, 2], 'int32')), /inputIds must be \[B, L\] with B, L >= 1, got \[3\]/],
      [() => model.embed(tf.tensor2d([[0, 5, 2]])), /inputIds must be int32 token ids, got float32/],
      [() => model.embed(ids, tf.ones([1, 4], 'int32')), /attentionMask \[1, 4\] does not match inputIds \[1, 3\]/],
      [
        () => model.embed(ids, undefined, { additiveMask: tf.zeros([1, 1, 3, 4]) }),
        /additiveMask \[1, 1, 3, 4\] is not broadcastable/,
      ],
      [
        () => model.embed(tf.zeros([1, 19], 'int32')),
        /19 tokens need position ids up to 20, but maxPositionEmbeddings is 20/,
      ],
    ];
    for (const [f, msg] of cases) expect(f).toThrow(msg);
    ids.dispose();
    model.dispose();
  });

  it('dropout (hidden and attention probs) is active in training mode only, and seeded', async () => {
    const run = async (train: boolean, seed: number) => {
      const model = new RobertaModel(
        { ...small, hiddenDropoutProb: 0.3, attentionProbsDropoutProb: 0.3 },
        { rng: new Generator(seed) },
      ).train(train);
      const ids = tf.tensor2d([[0, 5, 6, 7, 2]], undefined, 'int32');
      const out = model.forward(ids);
      const v = (await out.lastHiddenState.data()) as Float32Array;
      disposeOutput([out, ids]);
      model.dispose();
      return v;
    };
    expect(await run(true, 2)).toEqual(await run(true, 2));
    expect(maxAbsDiff(await run(false, 2), await run(true, 2))).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(await run(false, 2), await run(false, 3))).toBeGreaterThan(0); // different weights
  });

  it("gradients of a layer's parameters match finite differences", async () => {
    const rng = new Generator(5);
    const model = new RobertaModel(small, { rng }).eval();
    const ids = tf.tensor2d([[0, 7, 8, 9, 2, 1]], undefined, 'int32');
    const mask = tf.tensor2d([[1, 1, 1, 1, 1, 0]], undefined, 'int32');
    const proj = rng.normal([1, 6, 16]);
    const loss = () => tf.sum(tf.mul(model.forward(ids, mask, { pool: false }).lastHiddenState, proj)) as tf.Scalar;
    const names = [
      'embeddings.word_embeddings.weight',
      'encoder.layer.0.attention.self.query.weight',
      'encoder.layer.0.attention.output.LayerNorm.weight',
      'encoder.layer.1.intermediate.dense.bias',
    ];
    const r = await gradCheckParameters(
      loss,
      model.namedParameters().filter(([n]) => names.includes(n)),
      { maxElements: 6 },
    );
    expect(r.ok).toBe(true);
    tf.dispose([ids, mask, proj]);
    model.dispose();
  });
});

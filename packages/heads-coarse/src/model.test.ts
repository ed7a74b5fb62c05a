// A new FiberCoarseModel starts its heads as FIBER does (objectives.init_weights): what the
// training recipes assume, and at small widths far from PyTorch's default Linear init.
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator, tf } from '@fiber-vl/tensor-core';
import { useBackend } from '@fiber-vl/tensor-core/testing';
import { fiberConfig } from '@fiber-vl/fusion';
import { FIBER_TASK_HEADS } from './config.js';
import { FiberCoarseModel } from './model.js';

describe('FiberCoarseModel initialisation', () => {
  beforeAll(() => useBackend('cpu'));

  it('gives every head N(0, 0.02) weights, zero biases and unit LayerNorms; rank_output is itm_score row 1', async () => {
    const config = fiberConfig('tiny', { imageSize: 32, roberta: { vocabSize: 300 }, maxTextLen: 8 });
    const model = new FiberCoarseModel(
      config,
      { itc: true, itm: true, mlm: true, vqaLabels: 40, nlvr2: true, caption: true },
      new Generator(4),
    );
    const heads = /^(mlm_score|itm_score|vqa_classifier|nlvr2_classifier|cross_modal_att_layers)\./;
    const weights: number[] = [];
    const seen = new Set<string>();
    for (const [name, p] of model.namedParameters()) {
      if (!heads.test(name)) continue;
      seen.add(name.split('.')[0]);
      const v = Array.from((await p.value.data()) as Float32Array);
      if (/LayerNorm\.weight$|_classifier\.1\.weight$/.test(name)) expect(new Set(v), name).toEqual(new Set([1]));
      else if (name.endsWith('bias')) expect(new Set(v), name).toEqual(new Set([0]));
      else weights.push(...v);
    }
    expect([...seen].sort()).toEqual([
      'cross_modal_att_layers',
      'itm_score',
      'mlm_score',
      'nlvr2_classifier',
      'vqa_classifier',
    ]);
    const mean = weights.reduce((a, b) => a + b, 0) / weights.length;
    const sd = Math.sqrt(weights.reduce((a, b) => a + (b - mean) ** 2, 0) / weights.length);
    expect(Math.abs(mean)).toBeLessThan(5e-4);
    expect(sd).toBeGreaterThan(0.0195);
    expect(sd).toBeLessThan(0.0205);
    const fc = (await model.itmScore!.fc.weight.value.data()) as Float32Array;
    const rank = (await model.rankOutput!.weight.value.data()) as Float32Array;
    const H2 = 2 * config.hiddenSize;
    expect(Array.from(rank)).toEqual(Array.from(fc.slice(H2, 2 * H2)));
    const fcBias = (await model.itmScore!.fc.bias!.value.data()) as Float32Array;
    expect(Array.from((await model.rankOutput!.bias!.value.data()) as Float32Array)).toEqual([fcBias[1]]);
    model.dispose();
  });

  it("the config's initializerRange sets the heads' std; null keeps PyTorch's default Linear init", async () => {
    const build = (initializerRange: number | null) =>
      new FiberCoarseModel(
        fiberConfig('tiny', { imageSize: 32, roberta: { vocabSize: 300 }, maxTextLen: 8, initializerRange }),
        { itc: false, itm: true, mlm: false, vqaLabels: 40, nlvr2: false, caption: false },
        new Generator(4),
      );
    const wide = build(0.05);
    const w = Array.from((await wide.vqaClassifier!.namedParameters()[0][1].value.data()) as Float32Array);
    const sd = Math.sqrt(w.reduce((a, b) => a + b * b, 0) / w.length);
    expect(sd).toBeGreaterThan(0.049);
    expect(sd).toBeLessThan(0.051);
    wide.dispose();
    const torch = build(null);
    // kaiming-uniform over fan_in 2H = 128: |w| <= 1/sqrt(128), biases drawn too
    const fc = Array.from((await torch.itmScore!.fc.weight.value.data()) as Float32Array, Math.abs);
    expect(Math.max(...fc)).toBeGreaterThan(0.9 / Math.sqrt(128));
    expect(Math.max(...fc)).toBeLessThanOrEqual(1 / Math.sqrt(128));
    const bias = Array.from((await torch.itmScore!.fc.bias!.value.data()) as Float32Array);
    expect(bias.some((b) => b !== 0)).toBe(true);
    const rankBias = Array.from((await torch.rankOutput!.bias!.value.data()) as Float32Array);
    expect(rankBias).toEqual([bias[1]]);
    torch.dispose();
  });

  it('checks the heads before the backbone allocates anything', () => {
    const before = tf.memory().numTensors;
    const config = fiberConfig('tiny', { imageSize: 32, roberta: { vocabSize: 300 }, maxTextLen: 8 });
    // @ts-expect-error an unknown task
    expect(() => new FiberCoarseModel(config, 'bogus')).toThrow(/unknown task "bogus"/);
    expect(() => new FiberCoarseModel(config, { ...FIBER_TASK_HEADS.vqa, vqaLabels: -1 })).toThrow(/vqaLabels/);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('FiberCoarseModel.itm over indexed pairs', () => {
  beforeAll(() => useBackend('cpu'));

  it('scores (pixels[image[k]], text[text[k]]) as the pass over the gathered inputs does', async () => {
    const config = fiberConfig('tiny', { imageSize: 32, roberta: { vocabSize: 300 }, maxTextLen: 8 });
    const rng = new Generator(5);
    const model = new FiberCoarseModel(config, 'pretrain', rng).eval();
    // open the gates, so that the score depends on the pairing
    for (const [name, p] of model.namedParameters())
      if (/alpha_(i2t|t2i)$/.test(name)) p.value.assign(tf.scalar(0.7).reshape([1]));
    const px = rng.normal([2, 3, 32, 32]);
    const ids = tf.tensor2d(
      [
        [0, 15, 16, 2, 1],
        [0, 17, 2, 1, 1],
        [0, 18, 19, 20, 2],
      ],
      undefined,
      'int32',
    );
    const mask = tf.tensor2d(
      [
        [1, 1, 1, 1, 0],
        [1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1],
      ],
      undefined,
      'int32',
    );
    const image = [0, 1, 1, 0];
    const text = [2, 2, 0, 0]; // text 1 is named by no pair
    const before = tf.memory().numTensors;
    const a = model.itm(px, ids, mask, { image, text });
    const g = tf.tidy(() => {
      const t = tf.tensor1d(text, 'int32');
      return [tf.gather(px, tf.tensor1d(image, 'int32')), tf.gather(ids, t), tf.gather(mask, t)];
    });
    const b = model.itm(g[0], g[1], g[2]);
    const [ra, rb] = [await a.rankScore.data(), await b.rankScore.data()];
    expect(ra).toHaveLength(4);
    ra.forEach((v, k) => expect(Math.abs(v - rb[k])).toBeLessThan(1e-5));
    // the pairs differ: a wrong index would not go unnoticed
    expect(new Set(Array.from(ra, (v) => v.toFixed(5))).size).toBe(4);
    tf.dispose([a.logits, a.rankScore, b.logits, b.rankScore, ...g]);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => model.itm(px, ids, mask, { image: [2], text: [0] })).toThrow(/pairs\.image\[0\] = 2 is outside/);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([px, ids, mask]);
    model.dispose();
  });
});

// The step API (embed / steps / step / stageOutput) and what it checks, training-mode drop-path,
// and a model-level gradient check through a Swin block.
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator, disposeOutput, tf } from '@fiber-vl/tensor-core';
import { gradCheck, gradCheckParameters, maxAbsDiff, useBackend } from '@fiber-vl/tensor-core/testing';
import { SwinTransformer, SwinTransformerBlock } from './model.js';
import { swinConfig } from './config.js';

const tiny = (over = {}) =>
  swinConfig('swin_tiny_patch4_window7_224', {
    imageSize: 32,
    windowSize: 2,
    embedDim: 8,
    depths: [1, 2, 1, 1],
    numHeads: [1, 2, 2, 4],
    ...over,
  });

describe('Swin steps', () => {
  beforeAll(() => useBackend('cpu'));

  it('driving the steps by hand gives the forward pass', async () => {
    const model = new SwinTransformer(tiny(), { rng: new Generator(1) }).eval();
    const x = new Generator(2).normal([2, 3, 32, 32]);
    const out = model.forward(x);
    let state = model.embed(x);
    expect(state.grid).toEqual([8, 8]);
    for (const s of model.steps) state = model.step(s, state);
    expect(state.grid).toEqual([1, 1]);
    expect(model.steps.map((s) => (s.kind === 'block' ? `${s.stage}.${s.block}` : `end${s.stage}`))).toEqual([
      '0.0',
      'end0',
      '1.0',
      '1.1',
      'end1',
      '2.0',
      'end2',
      '3.0',
      'end3',
    ]);
    const norm = model.finalNorm(state);
    expect(maxAbsDiff(await norm.data(), await out.lastHiddenState!.data())).toBe(0);
    disposeOutput([out, norm, x]);
    model.dispose();
  });

  it('detection: stage outputs are normed NCHW maps of odd-sized inputs', () => {
    const model = new SwinTransformer(tiny(), { variant: 'detection', outIndices: [1, 2, 3] });
    const x = tf.ones([1, 3, 30, 45]);
    const out = model.forward(x);
    expect(out.features!.map((f) => f.shape)).toEqual([
      [1, 16, 4, 6],
      [1, 32, 2, 3],
      [1, 64, 1, 2],
    ]);
    expect([...model.stateDict().keys()].filter((k) => /^norm\d/.test(k))).toEqual([
      'norm1.weight',
      'norm1.bias',
      'norm2.weight',
      'norm2.bias',
      'norm3.weight',
      'norm3.bias',
    ]);
    disposeOutput([out, x]);
    model.dispose();
  });

  it('embed names the problem: channels, image size, dtype', () => {
    const model = new SwinTransformer(tiny());
    const cases: [tf.Tensor, RegExp][] = [
      [tf.zeros([1, 1, 32, 32]), /pixels must be \[B, 3, H, W\] with B >= 1, got \[1, 1, 32, 32\]/],
      [tf.zeros([1, 3, 64, 64]), /pixels are 64x64, but the model is built for 32x32 images/],
      [tf.zeros([1, 3, 32, 32], 'int32'), /pixels must be float32/],
      [tf.zeros([3, 32, 32]), /got \[3, 32, 32\]/],
    ];
    for (const [x, msg] of cases) {
      expect(() => model.forward(x)).toThrow(msg);
      x.dispose();
    }
    model.dispose();
  });

  it('drop-path is active in training mode only, and seeded', async () => {
    const cfg = tiny({ dropPathRate: 0.5 });
    const run = async (train: boolean, seed: number) => {
      const model = new SwinTransformer(cfg, { rng: new Generator(seed) });
      model.train(train);
      const x = new Generator(3).normal([4, 3, 32, 32]);
      const y = model.forward(x).lastHiddenState!;
      const v = (await y.data()) as Float32Array;
      tf.dispose([x, y]);
      model.dispose();
      return v;
    };
    expect(await run(true, 1)).toEqual(await run(true, 1)); // same seed, same drops
    expect(maxAbsDiff(await run(false, 1), await run(true, 1))).toBeGreaterThan(1e-3);
  });

  it('gradients through a shifted window block match finite differences (input and parameters)', async () => {
    const rng = new Generator(4);
    const block = new SwinTransformerBlock(8, 2, 2, 1, undefined, { rng }).eval();
    const x = rng.normal([1, 16, 8]); // a 4x4 grid, 2x2 windows, shift 1 (mask computed per input)
    const r = await gradCheck((xi) => block.forward(xi, 4, 4), [x], { maxElements: 24 });
    expect(r.ok).toBe(true);
    const proj = rng.normal([1, 16, 8]);
    const loss = () => tf.sum(tf.mul(block.forward(x, 4, 4), proj)) as tf.Scalar;
    const names = [
      'norm1.weight',
      'attn.relative_position_bias_table',
      'attn.qkv.weight',
      'attn.proj.bias',
      'mlp.fc1.weight',
      'mlp.fc2.bias',
    ];
    const params = block.namedParameters().filter(([n]) => names.includes(n));
    const p = await gradCheckParameters(loss, params, { maxElements: 6 });
    expect(p.errors).toBeDefined();
    expect(p.ok).toBe(true);
    tf.dispose([x, proj]);
    block.dispose();
  });
});

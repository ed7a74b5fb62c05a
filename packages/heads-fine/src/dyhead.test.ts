// VLDyHead and FPN beyond fixture parity: official initial values, gradients through the whole head
// (finite differences on cpu, every parameter reached), no tensor growth over repeated forwards and
// backwards, and typed errors.
import { beforeAll, describe, expect, it } from 'vitest';
import { DropBlock2D, Generator, interpolateNearest, tf } from '@fiber-vl/tensor-core';
import { expectNoTensorGrowth, gradCheck, maxAbsDiff, testBackends, useBackend } from '@fiber-vl/tensor-core/testing';
import { FIBER_DYHEAD, type DyHeadConfig } from './config.js';
import { assignParameter } from './init.js';
import { FPN } from './fpn.js';
import { VLDyHead } from './dyhead.js';

const TINY: DyHeadConfig = {
  ...FIBER_DYHEAD,
  channels: 4,
  numConvs: 2,
  groupNormGroups: 2,
  dyReluHidden: 1,
  numClasses: 3,
  langDim: 5,
  maxQueryLen: 3,
};
// P3..P7 of a 40x48 image, padded as the conv chain pads odd sizes (5x6 -> 3x3 -> 2x2 -> 1x1 -> 1x1).
const SIZES: [number, number][] = [
  [5, 6],
  [3, 3],
  [2, 2],
  [1, 1],
  [1, 1],
];

function tinyHead(seed: number): VLDyHead {
  const rng = new Generator(seed);
  const head = new VLDyHead(TINY, rng);
  // Move every parameter off its official init (zeros, tiny normals) so that no unit sits on a
  // ReLU / h_sigmoid kink and every path carries signal.
  for (const [name, p] of head.namedParameters()) {
    const scale = name.endsWith('offset.weight') ? 0.3 : name.includes('AttnConv') ? 0.2 : 0.5;
    const shift = /AttnConv\.1\.bias|relu\.fc\.0\.bias|scale$/.test(name) ? 1 : 0;
    assignParameter(p, tf.add(rng.normal(p.shape, 0, scale), shift));
  }
  return head;
}

const { names } = await testBackends();

describe('VLDyHead construction', () => {
  beforeAll(() => useBackend('cpu'));
  it('has the official initial values', async () => {
    const head = new VLDyHead(TINY, new Generator(1));
    const sd = head.stateDict();
    const v = async (k: string) => Array.from(await sd.get(k)!.data());
    const prior = -Math.log(0.99 / 0.01);
    expect((await v('bias0'))[0]).toBeCloseTo(prior, 5);
    expect(await v('cls_logits.bias')).toEqual([prior, prior].map((x) => Math.fround(x)));
    expect(await v('log_scale')).toEqual([0]);
    expect(await v('bias_lang')).toEqual([0, 0, 0, 0, 0]);
    expect(await v('scales.4.scale')).toEqual([1]);
    expect(await v('dyhead_tower.0.DyConv.2.conv.bias')).toEqual([0, 0, 0, 0]);
    expect(await v('dyhead_tower.1.DyConv.0.bn.weight')).toEqual([1, 1, 1, 1]);
    const attn = await v('dyhead_tower.0.AttnConv.1.weight');
    expect(Math.max(...attn.map(Math.abs))).toBeLessThan(0.05); // N(0, 0.01)
    head.dispose();
  });

  it('rejects bad configs and inputs naming the field or the level', () => {
    expect(() => new VLDyHead({ ...TINY, groupNormGroups: 3 })).toThrow(
      /channels \(4\) must be divisible by groupNormGroups \(3\)/,
    );
    expect(() => new VLDyHead({ ...TINY, numClasses: 1 })).toThrow(/numClasses counts the background/);
    const head = new VLDyHead(TINY);
    const feats = SIZES.map(([h, w]) => tf.zeros([1, 4, h, w]));
    expect(() => head.forward(feats.slice(0, 4), tf.zeros([1, 3, 5]))).toThrow(/expected 5 FPN levels, got 4/);
    expect(() =>
      head.forward([...feats.slice(0, 2), tf.zeros([1, 3, 2, 2]), ...feats.slice(3)], tf.zeros([1, 3, 5])),
    ).toThrow(/level P5 must be \[1, 4, H, W\], got \[1, 3, 2, 2\]/);
    expect(() => head.forward(feats, tf.zeros([1, 4, 5]))).toThrow(
      /embedded must be \[1, T <= 3, 5\], got \[1, 4, 5\]/,
    );
    expect(() => new FPN({ inChannels: [2, 3, 4], outChannels: 4 }).forward([tf.zeros([1, 2, 4, 4])])).toThrow(
      /expected \[C3, C4, C5\]/,
    );
    head.dispose();
  });
});

describe('FPN DropBlock (cpu)', () => {
  beforeAll(() => useBackend('cpu'));
  it('drops the merged maps of P4 and P3 in training only, as the official FPN: P5-P7 and the top-down path untouched', async () => {
    const rng = new Generator(2);
    const fpn = new FPN({ inChannels: [3, 5, 6], outChannels: 4 }, rng);
    expect(fpn.dropBlock?.dropProb).toBe(0.3); // FPN.DROP_BLOCK on by default, 0.3 / 3
    expect(fpn.stateDict().size).toBe(16); // no keys of its own
    const x = new Generator(5);
    const c = [x.normal([2, 3, 12, 12]), x.normal([2, 5, 6, 6]), x.normal([2, 6, 3, 3])];
    const evalOut = fpn.eval().forward(c);
    const state = rng.getState();
    const trainOut = fpn.train().forward(c);
    // by hand: the same draws, P4's block mask first
    const drop = new DropBlock2D(0.3, 3, new Generator(0).setState(state));
    const last4 = fpn.fpnInner4.forward(c[2]);
    const merged4 = tf.add(fpn.fpnInner3.forward(c[1]), interpolateNearest(last4, [6, 6]));
    const p4 = fpn.fpnLayer3.forward(drop.forward(merged4));
    const merged3 = tf.add(fpn.fpnInner2.forward(c[0]), interpolateNearest(merged4, [12, 12]));
    const p3 = fpn.fpnLayer2.forward(drop.forward(merged3));
    const diff = async (a: tf.Tensor, b: tf.Tensor) => maxAbsDiff(await a.data(), await b.data());
    expect(await diff(trainOut[0], p3)).toBeLessThan(1e-5);
    expect(await diff(trainOut[1], p4)).toBeLessThan(1e-5);
    expect(await diff(trainOut[0], evalOut[0])).toBeGreaterThan(1e-3);
    for (const l of [2, 3, 4]) expect(await diff(trainOut[l], evalOut[l])).toBe(0);
    const off = new FPN({ inChannels: [3, 5, 6], outChannels: 4, dropBlock: null });
    expect(off.dropBlock).toBeUndefined();
    tf.dispose([...c, ...evalOut, ...trainOut, last4, merged4, p4, merged3, p3]);
    fpn.dispose();
    off.dispose();
  });
});

describe('VLDyHead gradients (cpu)', () => {
  beforeAll(() => useBackend('cpu'));

  it('matches finite differences through the whole head, w.r.t. P3 and the text features', async () => {
    const head = tinyHead(5);
    const rng = new Generator(6);
    const feats = SIZES.map(([h, w]) => rng.normal([2, 4, h, w]));
    const embedded = rng.normal([2, 3, 5]);
    const f = (p3: tf.Tensor, e: tf.Tensor) => {
      const out = head.forward([p3, ...feats.slice(1)], e);
      return tf.concat(
        out.levels.flatMap((o) =>
          [o.clsLogits, o.bboxReg, o.centerness, o.dotProductLogits].map((t) => tf.reshape(t, [-1])),
        ),
      );
    };
    // eps 1e-3: GroupNorm over 2 channels x a few positions is strongly curved, so central
    // differences at 1e-2 are off by O(eps^2) terms of ~3% (they shrink 30-70x at 1e-3, as they should).
    const res = await gradCheck(f, [feats[0], embedded], { eps: 1e-3, maxElements: 20, seed: 3 });
    expect(res.errors.map((e) => e.maxAbs <= 2e-3 + 2e-2 * e.scale)).toEqual([true, true]);
    tf.dispose([...feats, embedded]);
    head.dispose();
  });

  it('gives every parameter a finite, non-zero gradient', () => {
    const head = tinyHead(7);
    const rng = new Generator(8);
    const feats = SIZES.map(([h, w]) => rng.normal([1, 4, h, w]));
    const embedded = rng.normal([1, 3, 5]);
    const r = rng.normal([1, 30 + 9 + 4 + 1 + 1, 3]);
    const { grads } = tf.variableGrads(() => {
      const out = head.forward(feats, embedded);
      const terms = out.levels.map((o) => [o.clsLogits, o.bboxReg, o.centerness].map((t) => tf.sum(tf.square(t))));
      const logits = tf.concat(
        out.levels.map((o) => o.dotProductLogits),
        1,
      );
      return tf.addN([...terms.flat(), tf.sum(tf.mul(logits, r))]) as tf.Scalar;
    });
    const bad = head
      .namedParameters()
      .filter(([, p]) => {
        const g = grads[p.value.name];
        if (!g) return true;
        const v = g.dataSync();
        return !v.every(Number.isFinite) || v.every((x) => x === 0);
      })
      .map(([k]) => k);
    expect(bad).toEqual([]);
    tf.dispose([...Object.values(grads), ...feats, embedded, r]);
    head.dispose();
  });
});

describe.each(names)('VLDyHead and FPN memory on %s', (backend) => {
  beforeAll(() => useBackend(backend));
  it('repeated forwards and backwards do not grow the tensor count', { timeout: 600_000 }, async () => {
    const head = tinyHead(9);
    const fpn = new FPN({ inChannels: [3, 5, 6], outChannels: 4 }, new Generator(2));
    const rng = new Generator(10);
    // C3-C5 of an odd-sized image: 9x11 -> 5x6 -> 3x3 (nearest top-down between non-doubling sizes)
    const c = [rng.normal([1, 3, 9, 11]), rng.normal([1, 5, 5, 6]), rng.normal([1, 6, 3, 3])];
    const embedded = rng.normal([1, 2, 5]);
    const forward = () => tf.tidy(() => head.forward(fpn.forward(c), embedded, { allTowers: true }));
    const shapes = tf.tidy(() => forward().levels.map((l) => l.dotProductLogits.shape));
    expect(shapes).toEqual([
      [1, 99, 2],
      [1, 30, 2],
      [1, 9, 2],
      [1, 4, 2],
      [1, 1, 2],
    ]);
    await expectNoTensorGrowth(forward, { label: 'FPN + VLDyHead forward' });
    const loss = (c3: tf.Tensor) =>
      tf.sum(head.forward(fpn.forward([c3, c[1], c[2]]), embedded).levels[0].dotProductLogits);
    await expectNoTensorGrowth(() => tf.grads(loss)([c[0]]), { label: 'FPN + VLDyHead backward' });
    tf.dispose([...c, embedded]);
    head.dispose();
    fpn.dispose();
  });
});

// Bilinear / nearest interpolation, group norm, adaptive average pooling and hard sigmoid against
// PyTorch (values and input gradients, scripts/fixtures/make_vision_ops_fixture.py), plus
// finite-difference and leak checks, on every backend that starts here.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../tf.js';
import { Generator } from '../rng.js';
import { SafetensorsFile } from '../io/safetensors.js';
import { GroupNorm } from '../nn/norm.js';
import { AdaptiveAvgPool2d, Hardsigmoid, ReLU } from '../nn/vision.js';
import { expectNoTensorGrowth, gradCheck, maxAbsDiff, testBackends, useBackend } from '../testing.js';
import { interpolateBilinear, interpolateNearest, nearestIndices } from './interpolate.js';
import { groupNorm } from './norm.js';
import { adaptiveAvgPool2d, hardSigmoid } from './vision.js';

interface Case {
  name: string;
  op: 'bilinear' | 'nearest' | 'groupNorm' | 'adaptiveAvgPool2d' | 'hardSigmoid';
  size?: [number, number];
  alignCorners?: boolean;
  groups?: number;
  prescale?: number;
}

const fixture = await SafetensorsFile.open(join(__dirname, '../../../../fixtures/ops/vision_ops.safetensors'));
afterAll(() => fixture.close());
const cases: Case[] = JSON.parse(fixture.metadata.cases);
const { names, skipped } = await testBackends();
for (const s of skipped)
  describe.skip(`vision ops on ${s.backend} (skipped: ${s.reason})`, () => it('unavailable', () => {}));

const values = async (t: tf.Tensor) => (await t.data()) as Float32Array;

async function opFor(c: Case): Promise<(x: tf.Tensor) => tf.Tensor> {
  switch (c.op) {
    case 'bilinear':
      return (x) => interpolateBilinear(x, c.size!, { alignCorners: c.alignCorners });
    case 'nearest':
      return (x) => interpolateNearest(x, c.size!);
    case 'adaptiveAvgPool2d':
      return (x) => adaptiveAvgPool2d(x, c.size!);
    case 'hardSigmoid':
      return (x) => hardSigmoid(tf.mul(x, c.prescale!));
    case 'groupNorm': {
      const [w, b] = await Promise.all([fixture.readTensor(`${c.name}.weight`), fixture.readTensor(`${c.name}.bias`)]);
      return (x) => groupNorm(x, c.groups!, w, b);
    }
  }
}

describe.each(names)('vision ops on %s', (backend) => {
  beforeAll(() => useBackend(backend));
  const rng = new Generator(3);

  it.each(cases.map((c) => c.name))('%s matches PyTorch (value and input gradient)', async (name) => {
    const c = cases.find((k) => k.name === name)!;
    const f = await opFor(c);
    const [x, dout, out, gradX] = await Promise.all(
      ['x', 'dout', 'out', 'grad_x'].map((k) => fixture.readTensor(`${name}.${k}`)),
    );
    const y = f(x);
    expect(y.shape).toEqual(out.shape);
    expect(maxAbsDiff(await values(y), await values(out))).toBeLessThan(1e-5);
    const [g] = tf.grads((a: tf.Tensor) => f(a))([x], dout);
    expect(maxAbsDiff(await values(g), await values(gradX))).toBeLessThan(1e-4);
    tf.dispose([x, dout, out, gradX, y, g]);
  });

  it('GroupNorm (module) and groupNorm pass a finite-difference check in the input, weight and bias', async () => {
    const x = rng.normal([2, 4, 3, 2]);
    const w = rng.normal([4], 1, 0.2);
    const b = rng.normal([4], 0, 0.2);
    const res = await gradCheck((xi, wi, bi) => groupNorm(xi, 2, wi, bi), [x, w, b], { eps: 1e-2, maxElements: 24 });
    expect(res.ok).toBe(true);
    const m = new GroupNorm(2, 4);
    expect([...m.stateDict().keys()]).toEqual(['weight', 'bias']);
    m.loadStateDict({ weight: w, bias: b });
    expect(maxAbsDiff(await values(m.forward(x)), await values(groupNorm(x, 2, w, b)))).toBe(0);
    expect(() => m.forward(tf.zeros([1, 3, 2, 2]))).toThrow(/expected \[N, 4, \.\.\.\]/);
    expect(() => new GroupNorm(3, 4)).toThrow(/4 channels do not split into 3 groups/);
    m.dispose();
    tf.dispose([x, w, b]);
  });

  it('bilinear, nearest and adaptive pooling pass a finite-difference check', async () => {
    const x = rng.normal([1, 2, 3, 4]);
    for (const f of [
      (a: tf.Tensor) => interpolateBilinear(a, [5, 7], { alignCorners: true }),
      (a: tf.Tensor) => interpolateBilinear(a, [2, 3]),
      (a: tf.Tensor) => interpolateNearest(a, [5, 7]),
      (a: tf.Tensor) => adaptiveAvgPool2d(a, [2, 3]),
    ]) {
      expect((await gradCheck(f, [x], { eps: 1e-2 })).ok).toBe(true);
    }
    x.dispose();
  });

  it('parameter-free modules and the ops do not leak', async () => {
    const x = rng.normal([2, 4, 5, 6]);
    const modules = [new ReLU(), new Hardsigmoid(), new AdaptiveAvgPool2d(1), new AdaptiveAvgPool2d([2, 3])];
    expect(modules.flatMap((m) => [...m.stateDict().keys()])).toEqual([]);
    await expectNoTensorGrowth(() => [
      ...modules.map((m) => m.forward(x)),
      interpolateBilinear(x, [9, 11], { alignCorners: true }),
      interpolateNearest(x, [3, 13]),
      groupNorm(x, 2),
      tf.grads((a: tf.Tensor) => interpolateNearest(interpolateBilinear(a, [7, 7]), [2, 9]))([x]),
    ]);
    x.dispose();
  });
});

describe('resampling arguments and index rules', () => {
  beforeAll(() => useBackend('cpu'));
  it('uses aten nearest indices (shift for exact doubling, float32 scale otherwise)', () => {
    expect(Array.from(nearestIndices(2, 4))).toEqual([0, 0, 1, 1]);
    expect(Array.from(nearestIndices(5, 3))).toEqual([0, 1, 3]);
    expect(Array.from(nearestIndices(3, 3))).toEqual([0, 1, 2]);
  });
  it('rejects bad sizes with the shape in the message', () => {
    expect(() => interpolateBilinear(tf.zeros([3]), [2, 2])).toThrow(/need \[\.\.\., H, W\], got \[3\]/);
    expect(() => interpolateNearest(tf.zeros([1, 2, 2]), [0, 2])).toThrow(/two positive integers, got \[0, 2\]/);
    expect(() => adaptiveAvgPool2d(tf.zeros([2, 2]), [1.5, 1])).toThrow(/positive integers/);
    expect(() => groupNorm(tf.zeros([1, 6, 2]), 4)).toThrow(/6 channels do not split into 4 groups/);
    expect(() => groupNorm(tf.zeros([1, 6, 2]), 3, tf.zeros([5]))).toThrow(/weight must be \[6\], got \[5\]/);
  });
});

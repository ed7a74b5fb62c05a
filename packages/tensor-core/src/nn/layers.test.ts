import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../tf.js';
import { Generator } from '../rng.js';
import { erf } from '../math.js';
import {
  expectNoTensorGrowth,
  gradCheck,
  gradCheckParameters,
  maxAbsDiff,
  testBackends,
  useBackend,
} from '../testing.js';
import { Conv2d, DropBlock2D, DropPath, Dropout, Embedding, GELU, LayerNorm, Linear } from './layers.js';
import { GroupNorm } from './norm.js';
import { scaledDotProductAttention } from '../ops/attention.js';
import * as init from './init.js';
import { Module } from './module.js';

const { names } = await testBackends();
const values = async (t: tf.Tensor) => Array.from((await t.data()) as Float32Array);

/** Direct NCHW convolution in float64 (PyTorch's definition, cross-correlation). */
function conv2dRef(
  x: number[],
  [N, C, H, W]: number[],
  w: number[],
  [O, Cg, KH, KW]: number[],
  b: number[] | undefined,
  stride: number,
  pad: number,
  groups: number,
) {
  const OH = Math.floor((H + 2 * pad - KH) / stride) + 1;
  const OW = Math.floor((W + 2 * pad - KW) / stride) + 1;
  const out: number[] = [];
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++)
      for (let i = 0; i < OH; i++)
        for (let j = 0; j < OW; j++) {
          const g = Math.floor(o / (O / groups));
          let s = b ? b[o] : 0;
          for (let c = 0; c < Cg; c++)
            for (let ki = 0; ki < KH; ki++)
              for (let kj = 0; kj < KW; kj++) {
                const y = i * stride - pad + ki;
                const xx = j * stride - pad + kj;
                if (y < 0 || y >= H || xx < 0 || xx >= W) continue;
                s += x[((n * C + g * Cg + c) * H + y) * W + xx] * w[((o * Cg + c) * KH + ki) * KW + kj];
              }
          out.push(s);
        }
  return { out, shape: [N, O, OH, OW] };
}

describe.each(names)('layers on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('Linear stores weight [out, in] and computes x W^T + b', async () => {
    const l = new Linear(3, 2);
    expect(l.weight.shape).toEqual([2, 3]);
    const x = tf.tensor2d([1, 2, 3], [1, 3]);
    const [w, b] = [await values(l.weight.value), await values(l.bias!.value)];
    const ref = [0, 1].map((o) => w[o * 3] + 2 * w[o * 3 + 1] + 3 * w[o * 3 + 2] + b[o]);
    expect(maxAbsDiff(await values(l.forward(x)), ref)).toBeLessThan(1e-5);
    expect(new Linear(3, 2, { bias: false }).bias).toBeUndefined();
  });

  it('LayerNorm normalises the last axis with eps and affine parameters', async () => {
    const ln = new LayerNorm(4, 1e-12);
    const y = await values(ln.forward(tf.tensor2d([1, 2, 3, 4], [1, 4])));
    const s = Math.sqrt(1.25);
    expect(maxAbsDiff(y, [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s])).toBeLessThan(1e-5);
  });

  it('Embedding gathers rows and zeroes the padding row', async () => {
    const e = new Embedding(5, 3, { paddingIdx: 1 });
    const out = e.forward(
      tf.tensor2d(
        [
          [0, 1],
          [4, 1],
        ],
        [2, 2],
        'int32',
      ),
    );
    expect(out.shape).toEqual([2, 2, 3]);
    const v = await values(out);
    expect(v.slice(3, 6)).toEqual([0, 0, 0]);
    expect(v.slice(0, 3)).toEqual((await values(e.weight.value)).slice(0, 3));
  });

  it('Embedding refuses ids outside the table: named on cpu and wasm, NaN rows on WebGPU', async () => {
    const e = new Embedding(5, 3);
    const ids = tf.tensor2d([0, 4, 5, 1], [2, 2], 'int32');
    const negative = tf.tensor1d([2, -1], 'int32');
    const before = tf.memory().numTensors;
    if (backend === 'webgpu') {
      const [out, outNeg] = [e.forward(ids), e.forward(negative)];
      const [v, vNeg] = [await values(out), await values(outNeg)];
      expect(v.slice(6, 9).every(Number.isNaN)).toBe(true); // id 5, at [1, 0]
      expect([...v.slice(0, 6), ...v.slice(9)].some(Number.isNaN)).toBe(false);
      expect(vNeg.slice(3).every(Number.isNaN)).toBe(true);
      expect(vNeg.slice(0, 3).some(Number.isNaN)).toBe(false);
      tf.dispose([out, outNeg]);
    } else {
      expect(() => e.forward(ids)).toThrow('Embedding(5, 3): id 5 at [1, 0] is out of range [0, 5)');
      expect(() => e.forward(negative)).toThrow('Embedding(5, 3): id -1 at [1] is out of range [0, 5)');
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([ids, negative]);
    e.dispose();
  });

  it('layers name a size that is not a non-negative integer, before allocating', async () => {
    const before = tf.memory().numTensors;
    const cases: [() => unknown, string][] = [
      [() => new Linear(-1, 2), 'Linear: inFeatures must be a non-negative integer, got -1'],
      [() => new Linear(2, 1.5), 'Linear: outFeatures must be a non-negative integer, got 1.5'],
      [() => new LayerNorm(Number.NaN), 'LayerNorm: dim must be a non-negative integer, got NaN'],
      [() => new LayerNorm(4, 0), 'LayerNorm: eps must be a positive number, got 0'],
      [() => new GroupNorm(2, 4, Number.NaN), 'GroupNorm: eps must be a positive number, got NaN'],
      [() => new GroupNorm(2, -4), 'GroupNorm: numChannels must be a non-negative integer, got -4'],
      [() => new Embedding(5, 3, { paddingIdx: 5 }), 'Embedding: paddingIdx must be an integer in [-5, 5), got 5'],
      [() => new Embedding(-5, 3), 'Embedding: numEmbeddings must be a non-negative integer, got -5'],
      [() => new Conv2d(3, 4, 0), 'Conv2d: kernelSize must be a positive integer or a pair of them, got 0'],
      [
        () => new Conv2d(3, 4, 3, { stride: [1, 0] }),
        'Conv2d: stride must be a positive integer or a pair of them, got [1, 0]',
      ],
      [
        () => new Conv2d(3, 4, 3, { padding: -1 }),
        'Conv2d: padding must be a non-negative integer or a pair of them, got -1',
      ],
    ];
    for (const [build, message] of cases) expect(build).toThrow(message);
    expect(tf.memory().numTensors).toBe(before);
    // as torch: a negative paddingIdx counts from the end; zero-sized layers are allowed (zero bias bound)
    const e = new Embedding(4, 2, { paddingIdx: -1 });
    expect((await values(e.weight.value)).slice(6)).toEqual([0, 0]);
    const empty = new Linear(0, 2);
    expect(await values(empty.bias!.value)).toEqual([0, 0]);
    e.dispose();
    empty.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('Embedding and Conv2d train (gather and conv weight gradients exist here)', async () => {
    const e = new Embedding(6, 2);
    const conv = new Conv2d(2, 2, 3, { padding: 1 });
    const f = () =>
      tf.sum(
        conv.forward(
          tf.reshape(
            e.forward(
              tf.tensor2d(
                [
                  [0, 1, 2],
                  [3, 4, 5],
                  [0, 0, 1],
                ],
                [3, 3],
                'int32',
              ),
            ),
            [1, 2, 3, 3],
          ),
        ),
      );
    const { value, grads } = tf.variableGrads(f as () => tf.Scalar, [e.weight.value, conv.weight.value]);
    expect(Object.keys(grads).length).toBe(2);
    for (const g of Object.values(grads)) expect((await values(g)).some((v) => v !== 0)).toBe(true);
    tf.dispose([grads, value]);
  });

  it('GELU is the exact erf form', async () => {
    const xs = [-3, -1, -0.5, 0, 0.5, 1, 3];
    expect(
      maxAbsDiff(
        await values(new GELU().forward(tf.tensor1d(xs))),
        xs.map((x) => 0.5 * x * (1 + erf(x / Math.SQRT2))),
      ),
    ).toBeLessThan(1e-6);
  });

  it.each([
    { stride: 1, padding: 0, groups: 1, k: 3 },
    { stride: 2, padding: 1, groups: 1, k: 3 },
    { stride: 4, padding: 0, groups: 1, k: 4 }, // Swin's patch embedding
    { stride: 1, padding: 1, groups: 2, k: 3 },
    { stride: 1, padding: 1, groups: 4, k: 3 }, // depthwise
  ])('Conv2d matches the direct definition (%o)', async ({ stride, padding, groups, k }) => {
    const rng = new Generator(3);
    const conv = new Conv2d(4, 8, k, { stride, padding, groups, rng });
    const xShape = [2, 4, 8, 8];
    const x = rng.normal(xShape);
    const ref = conv2dRef(
      await values(x),
      xShape,
      await values(conv.weight.value),
      conv.weight.shape,
      await values(conv.bias!.value),
      stride,
      padding,
      groups,
    );
    const y = conv.forward(x);
    expect(y.shape).toEqual(ref.shape);
    expect(maxAbsDiff(await values(y), ref.out)).toBeLessThan(1e-4);
  });

  it('Conv2d gradient matches finite differences', async () => {
    const rng = new Generator(4);
    const x = rng.normal([1, 2, 4, 4]);
    const w = rng.normal([2, 1, 3, 3]);
    const conv = new Conv2d(2, 2, 3, { padding: 1, groups: 2, bias: false });
    const f = (xi: tf.Tensor, wi: tf.Tensor) => {
      conv.weight.value.assign(wi);
      return conv.forward(xi);
    };
    // gradient through the weight: use the functional form (variables cannot be gradCheck inputs)
    const r = await gradCheck((xi) => f(xi, w), [x]);
    expect(r.ok).toBe(true);
  });

  it('Dropout is seeded, scales by 1/(1-p) and is the identity in eval mode', async () => {
    const x = tf.ones([1000]);
    const a = await values(new Dropout(0.3, new Generator(5)).forward(x));
    const b = await values(new Dropout(0.3, new Generator(5)).forward(x));
    expect(a).toEqual(b);
    const kept = a.filter((v) => v !== 0);
    expect(kept.every((v) => Math.abs(v - 1 / 0.7) < 1e-6)).toBe(true);
    expect(kept.length / 1000).toBeGreaterThan(0.6);
    expect(kept.length / 1000).toBeLessThan(0.8);
    const d = new Dropout(0.3).eval();
    expect(d.forward(x)).toBe(x);
  });

  it('DropPath drops whole samples in training mode, seeded, and is the identity in eval mode', async () => {
    const x = tf.ones([400, 3, 2]);
    const a = await values(new DropPath(0.25, new Generator(6)).forward(x));
    const b = await values(new DropPath(0.25, new Generator(6)).forward(x));
    expect(a).toEqual(b);
    const perSample = Array.from({ length: 400 }, (_, i) => a.slice(i * 6, i * 6 + 6));
    // every sample is all zeros or all 1/(1-p)
    expect(perSample.every((s) => s.every((v) => v === 0) || s.every((v) => Math.abs(v - 1 / 0.75) < 1e-6))).toBe(true);
    const dropped = perSample.filter((s) => s[0] === 0).length / 400;
    expect(dropped).toBeGreaterThan(0.15);
    expect(dropped).toBeLessThan(0.35);
    const d = new DropPath(0.25).eval();
    expect(d.forward(x)).toBe(x);
    expect(await values(new DropPath(1).forward(x))).toEqual(new Array(2400).fill(0)); // timm: no 1/0 scale
    expect(() => new DropPath(1.5)).toThrow('DropPath probability must be in [0, 1], got 1.5');
  });

  it.each([3, 2])(
    'DropBlock2D (block %i) equals dropblock.py on the same centres, with its gradient; identity in eval mode',
    async (k) => {
      const [n, c, h, w] = [2, 3, 5, 6];
      const x = new Generator(3).normal([n, c, h, w]);
      const xv = await values(x);
      const p = 0.6; // centres drawn with p / k^2
      // dropblock.py in float64: centres from an independent copy of the generator ((n, h, w) order,
      // rand < gamma), max_pool2d(k, stride 1, pad k // 2), the last row / column cut for even k
      const ref = new Generator(11);
      const centre = Array.from({ length: n * h * w }, () => ref.nextDouble() < p / k ** 2);
      const pad = Math.floor(k / 2);
      const keep = new Float64Array(n * h * w);
      for (let b = 0; b < n; b++)
        for (let i = 0; i < h; i++)
          for (let j = 0; j < w; j++) {
            let hit = false;
            for (let di = 0; di < k; di++)
              for (let dj = 0; dj < k; dj++) {
                const [y, z] = [i - pad + di, j - pad + dj];
                if (y >= 0 && y < h && z >= 0 && z < w && centre[(b * h + y) * w + z]) hit = true;
              }
            keep[(b * h + i) * w + j] = hit ? 0 : 1;
          }
      const scale = (n * h * w) / keep.reduce((a, v) => a + v, 0);
      const expected = xv.map((v, e) => {
        const [b, r] = [Math.floor(e / (c * h * w)), e % (h * w)];
        return v * keep[b * h * w + r] * scale;
      });
      expect(keep.some((v) => v === 0) && keep.some((v) => v === 1)).toBe(true);
      const drop = new DropBlock2D(p, k, new Generator(11));
      const before = tf.memory().numTensors;
      const out = drop.forward(x);
      expect(maxAbsDiff(await values(out), expected)).toBeLessThan(1e-5);
      const grad = tf.grad((a: tf.Tensor) => tf.sum(new DropBlock2D(p, k, new Generator(11)).forward(a)))(x);
      expect(
        maxAbsDiff(
          await values(grad),
          expected.map((v, e) => (xv[e] === 0 ? 0 : v / xv[e])),
        ),
      ).toBeLessThan(1e-4);
      tf.dispose([out, grad]);
      expect(tf.memory().numTensors).toBe(before);
      expect(drop.eval().forward(x)).toBe(x);
      expect(new DropBlock2D(0, k).forward(x)).toBe(x);
      x.dispose();
    },
  );

  it('DropBlock2D names a bad probability, block size or input', () => {
    expect(() => new DropBlock2D(1.5, 3)).toThrow('DropBlock2D: dropProb must be in [0, 1], got 1.5');
    expect(() => new DropBlock2D(0.3, 0)).toThrow('DropBlock2D: blockSize must be a positive integer, got 0');
    expect(() => new DropBlock2D(0.3, 3).forward(tf.zeros([2, 3]))).toThrow(
      'DropBlock2D: expected [N, C, H, W], got [2, 3]',
    );
  });

  it('attention applies the probs dropout hook (and only then bypasses fused kernels)', async () => {
    const rng = new Generator(7);
    const [q, k, v] = [rng.normal([1, 2, 4, 3]), rng.normal([1, 2, 5, 3]), rng.normal([1, 2, 5, 3])];
    const plain = await values(scaledDotProductAttention(q, k, v));
    const zeroed = await values(scaledDotProductAttention(q, k, v, { probsDropout: (p) => tf.mul(p, 0) }));
    expect(zeroed.every((x) => x === 0)).toBe(true);
    const same = await values(scaledDotProductAttention(q, k, v, { probsDropout: (p) => p }));
    expect(maxAbsDiff(same, plain)).toBeLessThan(1e-6);
  });

  it("gradCheckParameters checks a module's parameter gradients (and catches a wrong one)", async () => {
    const rng = new Generator(8);
    const lin = new Linear(3, 2, { rng });
    const x = rng.normal([4, 3]);
    const loss = () => tf.sum(tf.square(lin.forward(x))) as tf.Scalar;
    const r = await gradCheckParameters(loss, lin.namedParameters(), { maxElements: 6 });
    expect(r.ok).toBe(true);
    expect(Object.keys(r.errors)).toEqual(['weight', 'bias']);
    // an op with a wrong gradient (d x^2 = x instead of 2x) fails the check
    const wrongSquare = tf.customGrad((t, save) => {
      (save as tf.GradSaveFunc)([t as tf.Tensor]);
      return { value: tf.square(t as tf.Tensor), gradFunc: (dy, saved) => tf.mul(dy as tf.Tensor, saved[0]) };
    });
    const wrong = () => tf.sum(wrongSquare(lin.forward(x))) as tf.Scalar;
    expect((await gradCheckParameters(wrong, lin.namedParameters(), { maxElements: 6 })).ok).toBe(false);
    lin.dispose();
  });

  it('a train step of a small MLP does not grow the tensor count', async () => {
    class Mlp extends Module {
      fc1 = new Linear(8, 16);
      norm = new LayerNorm(16);
      act = new GELU();
      fc2 = new Linear(16, 4);
      forward(x: tf.Tensor) {
        return tf.tidy(() => this.fc2.forward(this.act.forward(this.norm.forward(this.fc1.forward(x)))));
      }
    }
    const m = new Mlp();
    const x = new Generator(1).normal([5, 8]);
    const opt = tf.train.sgd(0.01);
    await expectNoTensorGrowth(() => opt.minimize(() => tf.mean(tf.square(m.forward(x))) as tf.Scalar, false), {
      label: 'mlp train step',
    });
    await expectNoTensorGrowth(() => m.forward(x), { label: 'mlp forward' });
    // and the helper does catch a forward pass that leaks its intermediates
    const leaky = () => m.fc2.forward(m.fc1.forward(x));
    await expect(expectNoTensorGrowth(leaky, { label: 'leaky' })).rejects.toThrow(
      /leaky: tf.memory\(\).numTensors grew/,
    );
    opt.dispose();
    m.dispose();
  });
});

describe('initialisers', () => {
  beforeAll(() => useBackend('cpu'));
  const stats = (v: Float32Array) => {
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
    return { mean, std, min: Math.min(...v), max: Math.max(...v) };
  };
  it('truncNormal stays in [a, b] with the truncated distribution', () => {
    const s = stats(
      init.truncNormal([20000], { std: 0.02, a: -0.04, b: 0.04 }, new Generator(1)).dataSync() as Float32Array,
    );
    expect(s.min).toBeGreaterThanOrEqual(-0.04);
    expect(s.max).toBeLessThanOrEqual(0.04);
    expect(Math.abs(s.mean)).toBeLessThan(1e-3);
    // std of N(0, 1) truncated to [-2, 2] is 0.8796
    expect(s.std / 0.02).toBeCloseTo(0.8796, 1);
  });
  it('xavier and kaiming use PyTorch fans and bounds', () => {
    expect(init.fans([8, 4, 3, 3])).toEqual({ fanIn: 36, fanOut: 72 });
    const x = stats(init.xavierUniform([64, 32], 1, new Generator(2)).dataSync() as Float32Array);
    expect(x.max).toBeLessThanOrEqual(Math.sqrt(6 / 96));
    expect(x.max).toBeGreaterThan(0.9 * Math.sqrt(6 / 96));
    const k = stats(init.kaimingUniform([64, 100], Math.sqrt(5), new Generator(2)).dataSync() as Float32Array);
    expect(k.max).toBeLessThanOrEqual(0.1);
    expect(k.max).toBeGreaterThan(0.09);
    expect(init.xavierNormal([400, 400], 1, new Generator(3)).dataSync().length).toBe(160000);
  });
});

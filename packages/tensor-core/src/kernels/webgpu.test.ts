// fiber-vl's WGSL kernels on the webgpu backend against the tfjs-op path on the same backend
// (setWebGpuKernelsEnabled(false)) and against the cpu backend, at odd shapes that reach every
// tile, chunk and bounds path; gradients against finite differences and the composite ops; the
// kernels must really run (tf.profile names them). kernels.test.ts adds the float64 references.
// Shapes stay small: CI runs WebGPU on SwiftShader, a CPU emulation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../tf.js';
import { Generator } from '../rng.js';
import { expectNoTensorGrowth } from '../memory.js';
import { gradCheck, maxAbsDiff, testBackends, useBackend } from '../testing.js';
import { gelu, layerNorm } from '../ops/activations.js';
import { linear, matmul } from '../ops/linalg.js';
import { compositeAttention, scaledDotProductAttention, windowAttention } from '../ops/attention.js';
import { KERNEL_NAMES } from './wasm.js';
import { setWebGpuKernelsEnabled, webgpuKernelsActive } from './webgpu.js';

const { names } = await testBackends();
const rng = new Generator(23);

/** Values of f's output with the kernels on, then off (tfjs ops on the same backend). */
async function onAndOff(f: () => tf.Tensor): Promise<[Float32Array, Float32Array]> {
  const run = async () => {
    const y = f();
    const v = (await y.data()) as Float32Array;
    y.dispose();
    return v;
  };
  const on = await run();
  setWebGpuKernelsEnabled(false);
  try {
    return [on, await run()];
  } finally {
    setWebGpuKernelsEnabled(true);
  }
}

/** Relative max difference, scaled by the reference's largest magnitude (at least 1). */
function relDiff(a: Float32Array, b: Float32Array): number {
  return maxAbsDiff(a, b) / Math.max(1, ...b.map(Math.abs));
}

/** The kernel names tf.profile saw while f ran. */
async function kernelsRun(f: () => tf.TensorContainer): Promise<Set<string>> {
  const info = await tf.profile(() => {
    const out = f();
    tf.dispose(out);
  });
  return new Set(info.kernelNames);
}

describe.runIf(names.includes('webgpu'))('fiber-vl WGSL kernels on webgpu', () => {
  beforeAll(async () => {
    await useBackend('webgpu');
    setWebGpuKernelsEnabled(true);
  });
  afterAll(() => setWebGpuKernelsEnabled(process.env.FIBER_WEBGPU_KERNELS !== '0'));

  it('the ops run the Fiber* kernels, forward and backward, and the switch turns them off', async () => {
    expect(webgpuKernelsActive()).toBe(true);
    const qkv = rng.normal([1, 4, 4, 12]);
    const bias = rng.normal([2, 4, 4]);
    const w = rng.normal([5, 4]);
    const g = rng.normal([4]);
    const f = (q: tf.Tensor, rb: tf.Tensor, ww: tf.Tensor, gg: tf.Tensor) => {
      const a = windowAttention(q, rb, { numHeads: 2, windowSize: 2, shift: 1 });
      const t = tf.reshape(a, [1, 2, 16, 2]);
      const c = tf.reshape(scaledDotProductAttention(t, t, t), [1, 4, 4, 4]);
      return tf.sum(linear(gelu(layerNorm(c, gg, gg)), ww)) as tf.Scalar;
    };
    const seen = await kernelsRun(() => tf.grads(f)([qkv, bias, w, g]));
    for (const name of Object.values(KERNEL_NAMES)) expect(seen, name).toContain(name);
    setWebGpuKernelsEnabled(false);
    expect(webgpuKernelsActive()).toBe(false);
    const off = await kernelsRun(() => tf.grads(f)([qkv, bias, w, g]));
    setWebGpuKernelsEnabled(true);
    for (const name of Object.values(KERNEL_NAMES)) expect(off).not.toContain(name);
    tf.dispose([qkv, bias, w, g]);
  });

  // [batch dims of a, of b, M, N, K]: 1 x 1, odd sizes, a broadcast batch on either side, and a
  // batch with enough tiles for the 64 x 64 tile (the others use 32 x 32), K across several steps.
  const gemmCases: [number[], number[], number, number, number][] = [
    [[], [], 1, 1, 1],
    [[], [], 3, 70, 33],
    [[2, 3], [2, 3], 17, 5, 19],
    [[4], [], 9, 40, 16],
    [[], [3], 33, 7, 50],
    [[64], [64], 33, 65, 20],
  ];
  it.each(gemmCases)(
    'matmul batch %j x %j, [%i x %i] (K %i), every transpose mode, equals the tfjs path',
    async (ba, bb, M, N, K) => {
      for (const [tA, tB] of [
        [false, false],
        [true, false],
        [false, true],
        [true, true],
      ] as const) {
        const a = rng.normal([...ba, ...(tA ? [K, M] : [M, K])]);
        const b = rng.normal([...bb, ...(tB ? [N, K] : [K, N])]);
        const [on, off] = await onAndOff(() => matmul(a, b, { transposeA: tA, transposeB: tB }));
        expect(maxAbsDiff(on, off), `tA ${tA} tB ${tB}`).toBeLessThan(1e-5 * Math.sqrt(K) * 10);
        tf.dispose([a, b]);
      }
    },
  );

  it('linear with bias (GEMM epilogue) and a K = 0 product', async () => {
    const x = rng.normal([2, 5, 37]);
    const w = rng.normal([66, 37]);
    const b = rng.normal([66]);
    const [on, off] = await onAndOff(() => linear(x, w, b));
    expect(maxAbsDiff(on, off)).toBeLessThan(1e-4);
    const empty = matmul(tf.zeros([3, 0]), tf.zeros([0, 4]));
    expect(Array.from(await empty.data())).toEqual(new Array(12).fill(0));
    const biasOnly = linear(tf.zeros([2, 0]), tf.zeros([3, 0]), tf.tensor1d([1, 2, 3]));
    expect(Array.from(await biasOnly.data())).toEqual([1, 2, 3, 1, 2, 3]);
    tf.dispose([x, w, b, empty, biasOnly]);
  });

  // [B, H, W, C, heads, window, shift]: head dims 3 and 32 (key chunks of 25 and 32 tokens), a
  // window of 144 tokens (five chunks, the last one partial), several windows per axis, the
  // largest window the kernel takes (256 tokens) and one past it (the tfjs path runs).
  const attentionCases: number[][] = [
    [2, 10, 15, 6, 2, 5, 2],
    [1, 12, 24, 64, 2, 12, 6],
    [2, 8, 8, 8, 2, 4, 0],
    [1, 16, 16, 4, 1, 16, 8],
    [1, 17, 17, 4, 1, 17, 5],
  ];
  it.each(attentionCases)(
    'windowAttention [%i, %i, %i, C %i], %i heads, window %i, shift %i equals the tfjs path',
    async (B, H, W, C, heads, w, s) => {
      const qkv = rng.normal([B, H, W, 3 * C], 0, 2);
      const bias = rng.normal([heads, w * w, w * w]);
      const opts = { numHeads: heads, windowSize: w, shift: s };
      const [on, off] = await onAndOff(() => windowAttention(qkv, bias, opts));
      expect(maxAbsDiff(on, off)).toBeLessThan(1e-5);
      const seen = await kernelsRun(() => windowAttention(qkv, bias, opts));
      expect(seen.has(KERNEL_NAMES.windowAttention)).toBe(w * w <= 256);
      tf.dispose([qkv, bias]);
    },
  );

  // [B, H, Lq, Lk, D, Dv, bias shape, mask shape]: the fusion blocks' cross-attention (a key
  // padding mask [B, 1, 1, Lk]), Swin's per-window form (bias [1, H, N, N], shift mask
  // [B, 1, N, N]), two query blocks and several key chunks with D != Dv, RoBERTa's head dim 64,
  // a rank-3 bias and neither bias nor mask.
  const sdpaCases: [number, number, number, number, number, number, number[] | null, number[] | null][] = [
    [2, 3, 5, 13, 8, 8, null, [2, 1, 1, 13]],
    [4, 2, 16, 16, 4, 4, [1, 2, 16, 16], [4, 1, 16, 16]],
    [1, 2, 70, 45, 16, 24, [2, 70, 45], [1, 1, 70, 1]],
    [2, 2, 9, 40, 64, 64, null, [2, 1, 1, 40]],
    [1, 1, 3, 1, 5, 3, null, null],
  ];
  it.each(sdpaCases)(
    'scaledDotProductAttention [%i, %i, Lq %i, Lk %i, D %i, Dv %i], bias %j, mask %j: fused equals the tfjs path, gradients too',
    async (B, H, Lq, Lk, D, Dv, biasShape, maskShape) => {
      const q = rng.normal([B, H, Lq, D]);
      const k = rng.normal([B, H, Lk, D]);
      const v = rng.normal([B, H, Lk, Dv]);
      const bias = biasShape ? rng.normal(biasShape) : undefined;
      // a padding-style mask: 0 or -10000 (Swin's shift mask uses -100)
      const mask = maskShape ? tf.mul(tf.cast(tf.less(rng.uniform(maskShape), 0.3), 'float32'), -10000) : undefined;
      const [on, off] = await onAndOff(() => scaledDotProductAttention(q, k, v, { bias, mask }));
      expect(maxAbsDiff(on, off)).toBeLessThan(1e-5);
      const seen = await kernelsRun(() => scaledDotProductAttention(q, k, v, { bias, mask }));
      expect(seen).toContain(KERNEL_NAMES.attention);
      const ins = [q, k, v, ...(bias ? [bias] : [])];
      const r = rng.normal([B, H, Lq, Dv]);
      const f = (...xs: tf.Tensor[]) =>
        tf.sum(tf.mul(scaledDotProductAttention(xs[0], xs[1], xs[2], { bias: xs[3], mask }), r)) as tf.Scalar;
      const fast = tf.grads(f)(ins);
      const slow = tf.grads((...xs: tf.Tensor[]) =>
        tf.sum(tf.mul(compositeAttention(xs[0], xs[1], xs[2], { bias: xs[3], mask }), r)),
      )(ins);
      for (let i = 0; i < ins.length; i++)
        expect(
          relDiff((await fast[i].data()) as Float32Array, (await slow[i].data()) as Float32Array),
          `grad ${i}`,
        ).toBeLessThan(1e-4);
      tf.dispose([q, k, v, r, ...(bias ? [bias] : []), ...(mask ? [mask] : []), ...fast, ...slow]);
    },
  );

  it('layerNorm and gelu forward and backward equal the tfjs path (odd widths, several row chunks)', async () => {
    for (const [rows, dim] of [
      [1, 1],
      [3, 5],
      [150, 77],
      [70, 300],
    ]) {
      const x = tf.add(rng.normal([rows, dim], 0, 3), 1);
      const g = rng.normal([dim]);
      const b = rng.normal([dim]);
      const r = rng.normal([rows, dim]);
      const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) =>
        tf.sum(tf.mul(gelu(layerNorm(xx, gg, bb, 1e-5)), r)) as tf.Scalar;
      const [on, off] = await onAndOff(() => gelu(layerNorm(x, g, b, 1e-5)));
      expect(maxAbsDiff(on, off), `[${rows}, ${dim}] forward`).toBeLessThan(2e-5);
      for (let i = 0; i < 3; i++) {
        const [gOn, gOff] = await onAndOff(() => {
          const grads = tf.grads(f)([x, g, b]);
          tf.dispose(grads.filter((_, j) => j !== i));
          return grads[i];
        });
        // rows = 1, dim = 1 has a zero-variance row: only the bias gradient is well defined
        if (dim > 1 || i === 2) expect(relDiff(gOn, gOff), `[${rows}, ${dim}] grad ${i}`).toBeLessThan(1e-4);
      }
      tf.dispose([x, g, b, r]);
    }
  });

  const gradCases: [string, () => tf.Tensor[], (...xs: tf.Tensor[]) => tf.Tensor][] = [
    ['layerNorm', () => [rng.normal([3, 7]), rng.normal([7]), rng.normal([7])], (x, g, b) => layerNorm(x, g, b)],
    ['gelu', () => [rng.normal([5, 3], 0, 2)], (x) => gelu(x)],
    [
      'linear with bias, batched',
      () => [rng.normal([2, 3, 4]), rng.normal([5, 4]), rng.normal([5])],
      (x, w, b) => linear(x, w, b),
    ],
    [
      'scaledDotProductAttention with a broadcast bias and mask',
      () => [
        rng.normal([1, 2, 3, 4]),
        rng.normal([1, 2, 5, 4]),
        rng.normal([1, 2, 5, 3]),
        rng.normal([2, 3, 5]),
        rng.normal([1, 1, 1, 5]),
      ],
      (q, k, v, b, m) => scaledDotProductAttention(q, k, v, { bias: b, mask: m }),
    ],
    [
      'windowAttention, window 3 shifted, head dim 3',
      () => [rng.normal([1, 6, 3, 18]), rng.normal([2, 9, 9])],
      (q, b) => windowAttention(q, b, { numHeads: 2, windowSize: 3, shift: 1 }),
    ],
  ];
  it.each(gradCases)(
    'gradient of %s matches finite differences',
    async (_name, inputs, f) => {
      const xs = inputs();
      const r = await gradCheck(f, xs, { eps: 1e-2, atol: 2e-3, rtol: 2e-2, maxElements: 16 });
      expect(r.errors.map((e) => e.maxAbs <= 2e-3 + 2e-2 * e.scale)).toEqual(xs.map(() => true));
      tf.dispose(xs);
    },
    300_000,
  );

  it('a Swin-style block, forward and backward on the kernels, equals the cpu backend', async () => {
    const data = {
      x: rng.normalArray(2 * 8 * 8 * 12),
      wqkv: rng.normalArray(36 * 12, 0, 0.3),
      bqkv: rng.normalArray(36),
      rb: rng.normalArray(3 * 16 * 16),
      g: rng.normalArray(12),
      b: rng.normalArray(12),
    };
    const run = async (): Promise<Float32Array[]> => {
      const x = tf.tensor(data.x, [2, 8, 8, 12]);
      const wqkv = tf.tensor(data.wqkv, [36, 12]);
      const bqkv = tf.tensor(data.bqkv, [36]);
      const rb = tf.tensor(data.rb, [3, 16, 16]);
      const g = tf.tensor(data.g, [12]);
      const b = tf.tensor(data.b, [12]);
      const f = (xx: tf.Tensor, w: tf.Tensor, bb: tf.Tensor, r: tf.Tensor, gg: tf.Tensor, be: tf.Tensor) => {
        const qkv = linear(layerNorm(xx, gg, be), w, bb);
        const a = windowAttention(qkv, r, { numHeads: 3, windowSize: 4, shift: 2 });
        return tf.sum(tf.mul(gelu(a), xx)) as tf.Scalar;
      };
      const { value, grads } = tf.valueAndGrads(f)([x, wqkv, bqkv, rb, g, b]);
      const out = await Promise.all([value, ...grads].map(async (t) => (await t.data()) as Float32Array));
      tf.dispose([x, wqkv, bqkv, rb, g, b, value, ...grads]);
      return out;
    };
    const gpu = await run();
    await useBackend('cpu');
    const cpu = await run();
    await useBackend('webgpu');
    gpu.forEach((v, i) => expect(relDiff(v, cpu[i]), `output ${i}`).toBeLessThan(1e-4));
  });

  it('a dispatch of more than 65535 workgroups (tfjs folds it into 2-D) covers every row exactly once', async () => {
    // one workgroup per row; 2-wide rows keep this affordable on SwiftShader
    const rows = 65_600;
    const x = rng.normal([rows, 2]);
    const g = tf.tensor1d([1.5, -2]);
    const b = tf.tensor1d([0.25, 1]);
    const y = layerNorm(x, g, b);
    const [xv, yv] = [(await x.data()) as Float32Array, (await y.data()) as Float32Array];
    const ref = new Float64Array(rows * 2);
    for (let r = 0; r < rows; r++) {
      const [u, v] = [xv[2 * r], xv[2 * r + 1]];
      const mean = (u + v) / 2;
      const rstd = 1 / Math.sqrt(((u - mean) ** 2 + (v - mean) ** 2) / 2 + 1e-5);
      ref[2 * r] = (u - mean) * rstd * 1.5 + 0.25;
      ref[2 * r + 1] = (v - mean) * rstd * -2 + 1;
    }
    expect(maxAbsDiff(yv, ref)).toBeLessThan(1e-4);
    tf.dispose([x, g, b, y]);
  }, 300_000);

  it('kernels name bad inputs', () => {
    const run =
      (name: string, inputs: tf.NamedTensorMap, attrs = {}) =>
      () =>
        tf.engine().runKernel(name, inputs, attrs);
    const a = tf.zeros([2, 3]);
    expect(run(KERNEL_NAMES.matMul, { a, b: tf.zeros([3, 4]), bias: tf.zeros([5]) })).toThrow(/bias must be \[4\]/);
    expect(run(KERNEL_NAMES.matMul, { a, b: tf.zeros([3, 4], 'int32') })).toThrow(/"b" is int32/);
    expect(run(KERNEL_NAMES.gelu, {})).toThrow(/missing input "x"/);
    expect(
      run(
        KERNEL_NAMES.windowAttention,
        { qkv: tf.zeros([1, 17, 17, 6]), bias: tf.zeros([1, 289, 289]) },
        {
          numHeads: 1,
          windowSize: 17,
          shift: 0,
          scale: 1,
        },
      ),
    ).toThrow(/window 17 is not covered/);
    a.dispose();
  });

  it('forward and backward do not leak tensors', async () => {
    const qkv = rng.normal([1, 8, 8, 24]);
    const bias = rng.normal([2, 16, 16]);
    const x = rng.normal([70, 16]);
    const w = rng.normal([10, 16]);
    const b = rng.normal([10]);
    const g = rng.normal([16]);
    const loss = (q: tf.Tensor, rb: tf.Tensor, xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor, gg: tf.Tensor) =>
      tf.add(
        tf.sum(windowAttention(q, rb, { numHeads: 2, windowSize: 4, shift: 2 })),
        tf.sum(gelu(linear(layerNorm(xx, gg, gg, 1e-5), ww, bb))),
      ) as tf.Scalar;
    await expectNoTensorGrowth(() => tf.tidy(() => loss(qkv, bias, x, w, b, g)), { label: 'webgpu forward' });
    await expectNoTensorGrowth(() => tf.grads(loss)([qkv, bias, x, w, b, g]), { label: 'webgpu backward' });
    tf.dispose([qkv, bias, x, w, b, g]);
  });
});

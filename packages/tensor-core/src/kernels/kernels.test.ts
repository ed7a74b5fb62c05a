// The ops behind fiber-vl's wasm kernels (GEMM, window attention, LayerNorm, GELU) against float64
// references, at shapes that reach every blocking and threading path of the kernels, with
// gradient and leak checks, on every backend (on wasm and webgpu the kernels run; on cpu the tfjs path).
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../tf.js';
import { Generator } from '../rng.js';
import { erf } from '../math.js';
import { expectNoTensorGrowth } from '../memory.js';
import { gradCheck, maxAbsDiff, startThreadedWasm, testBackends, useBackend } from '../testing.js';
import { gelu, layerNorm } from '../ops/activations.js';
import { linear, matmul } from '../ops/linalg.js';
import { compositeWindowAttention, shiftWindowMaskArray, windowAttention } from '../ops/attention.js';
import { middleReduction, setWasmKernelsEnabled, wasmKernelInfo, wasmKernelRuns, wasmKernelsActive } from './wasm.js';
import { reduceTranspose } from './transpose-plan.js';
import { setWebGpuKernelsEnabled } from './webgpu.js';

await startThreadedWasm(); // the threaded paths, whatever FIBER_WASM_THREADS says
const { names } = await testBackends();
const rng = new Generator(11);
const values = async (t: tf.Tensor) => Float64Array.from((await t.data()) as Float32Array);

/** float64 op(A) op(B) for row-major [M, K] / [K, M] and [K, N] / [N, K]. */
function refProduct(
  a: Float64Array,
  b: Float64Array,
  M: number,
  N: number,
  K: number,
  tA: boolean,
  tB: boolean,
): Float64Array {
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[tA ? k * M + i : i * K + k] * b[tB ? j * K + k : k * N + j];
      out[i * N + j] = s;
    }
  }
  return out;
}

/** float64 Swin window attention over qkv [B, H, W, 3C] (roll by -s, windows, bias, mask, softmax, merge). */
function refWindowAttention(
  qkv: Float64Array,
  bias: Float64Array,
  [B, H, W, C]: number[],
  heads: number,
  w: number,
  s: number,
): Float64Array {
  const hd = C / heads;
  const n = w * w;
  const scale = 1 / Math.sqrt(hd);
  const mask = s ? shiftWindowMaskArray(H, W, w, s) : undefined;
  const out = new Float64Array(B * H * W * C);
  for (let b = 0; b < B; b++) {
    for (let wy = 0; wy < H / w; wy++) {
      for (let wx = 0; wx < W / w; wx++) {
        const win = wy * (W / w) + wx;
        const tok = Array.from(
          { length: n },
          (_, t) => (b * H + ((wy * w + Math.floor(t / w) + s) % H)) * W + ((wx * w + (t % w) + s) % W),
        );
        for (let h = 0; h < heads; h++) {
          for (let i = 0; i < n; i++) {
            const scores = tok.map((tj, j) => {
              let d = 0;
              for (let c = 0; c < hd; c++)
                d += qkv[tok[i] * 3 * C + h * hd + c] * scale * qkv[tj * 3 * C + C + h * hd + c];
              return d + bias[(h * n + i) * n + j] + (mask ? mask[(win * n + i) * n + j] : 0);
            });
            const m = Math.max(...scores);
            const e = scores.map((v) => Math.exp(v - m));
            const z = e.reduce((x, y) => x + y, 0);
            for (let c = 0; c < hd; c++) {
              let o = 0;
              for (let j = 0; j < n; j++) o += (e[j] / z) * qkv[tok[j] * 3 * C + 2 * C + h * hd + c];
              out[tok[i] * C + h * hd + c] = o;
            }
          }
        }
      }
    }
  }
  return out;
}

/**
 * A tensor of `shape` and `dtype` whose values follow the flat index (bool: every third true),
 * with those values as numbers, for the copy kernels' index references.
 */
function indexTensor(shape: number[], dtype: 'float32' | 'int32' | 'bool'): { data: number[]; x: tf.Tensor } {
  const n = shape.reduce((p, d) => p * d, 1);
  const data = Array.from({ length: n }, (_, i) =>
    dtype === 'bool' ? Number(i % 3 === 0) : dtype === 'int32' ? i - 7 : i * 0.5 - 3,
  );
  const x =
    dtype === 'bool'
      ? tf.tensor(
          data.map((v) => v === 1),
          shape,
          'bool',
        )
      : tf.tensor(data, shape, dtype);
  return { data, x };
}

/** Row-major transpose by index arithmetic (the reference for every backend's Transpose). */
function refTranspose(x: ArrayLike<number>, shape: number[], perm: number[]): number[] {
  const outShape = perm.map((a) => shape[a]);
  const strides = shape.map((_, a) => shape.slice(a + 1).reduce((p, d) => p * d, 1));
  const n = shape.reduce((p, d) => p * d, 1);
  const out = new Array<number>(n);
  for (let o = 0; o < n; o++) {
    let rem = o;
    let src = 0;
    for (let i = outShape.length - 1; i >= 0; i--) {
      src += (rem % outShape[i]) * strides[perm[i]];
      rem = Math.floor(rem / outShape[i]);
    }
    out[o] = x[src];
  }
  return out;
}

describe('reduceTranspose', () => {
  it('drops unit axes and merges axes that stay neighbours', () => {
    expect(reduceTranspose([1024, 4, 3, 2, 16], [2, 0, 3, 1, 4])).toEqual({
      shape: [3, 1024, 2, 4, 16],
      inStrides: [32, 384, 16, 96, 1],
    });
    // heads = 1: [Bw, n, 3, 1, hd] -> [3, Bw, 1, n, hd] is a 3-axis transpose of [Bw * n, 3, hd]
    expect(reduceTranspose([8, 4, 3, 1, 16], [2, 0, 3, 1, 4])).toEqual({ shape: [3, 32, 16], inStrides: [16, 48, 1] });
    // window partition [B, h, w, h', w', C] -> [B, h, h', w, w', C]: merges to 4 axes
    expect(reduceTranspose([2, 8, 2, 8, 2, 48], [0, 1, 3, 2, 4, 5])).toEqual({
      shape: [16, 8, 2, 96],
      inStrides: [1536, 96, 768, 1],
    });
    expect(reduceTranspose([5, 1, 7], [1, 0, 2])).toEqual({ shape: [35], inStrides: [1] });
    expect(reduceTranspose([1, 1], [1, 0])).toEqual({ shape: [1], inStrides: [1] });
    expect(reduceTranspose([], [])).toEqual({ shape: [1], inStrides: [1] });
  });
});

describe('middleReduction', () => {
  it('finds the one block of reduced axes, unit axes dropped and neighbours merged', () => {
    expect(middleReduction([8192, 256], [0])).toEqual({ outer: 1, reduced: 8192, inner: 256 });
    expect(middleReduction([32, 64, 96], [0, 1])).toEqual({ outer: 1, reduced: 2048, inner: 96 });
    expect(middleReduction([3, 5, 4, 9], [1, 2])).toEqual({ outer: 3, reduced: 20, inner: 9 });
    expect(middleReduction([3, 1, 5, 1, 9], [2, 3])).toEqual({ outer: 3, reduced: 5, inner: 9 });
    expect(middleReduction([1, 50, 1, 17], [1])).toEqual({ outer: 1, reduced: 50, inner: 17 });
    expect(middleReduction([7, 5], [1])).toEqual({ outer: 7, reduced: 5, inner: 1 });
    expect(middleReduction([4, 3, 5], [0, 2])).toBeUndefined();
    expect(middleReduction([4, 1, 5], [1])).toBeUndefined();
  });
});

describe.each(names)('fiber-vl kernels on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
    setWasmKernelsEnabled(true);
  });

  it('run as fiber-vl kernels on wasm (unless FIBER_WASM_KERNELS=0)', () => {
    if (backend !== 'wasm' || process.env.FIBER_WASM_KERNELS === '0') return;
    expect(wasmKernelInfo()?.threads).toBe(2);
    expect(wasmKernelsActive()).toBe(true);
  });

  // Ranks 5-8 after reduction go to wasm/transpose.c on wasm (contiguous rows and strided ones,
  // threaded above 64k elements); lower ranks, other dtypes and the rest stay with tfjs.
  // Not on webgpu: tfjs-webgpu's own Transpose shader stops at 6 axes and does not compile for
  // int32 at 5 or more (WGSL type mismatch; the pipeline is invalid and the read never resolves).
  it.skipIf(backend === 'webgpu')(
    'transpose of every rank, dtype and permutation kind equals the index reference',
    async () => {
      const g = new Generator(5);
      const cases: [number[], number[]][] = [
        [
          [1024, 4, 3, 2, 16],
          [2, 0, 3, 1, 4],
        ],
        [
          [3, 1024, 2, 4, 16],
          [1, 3, 0, 2, 4],
        ],
        [
          [2, 3, 4, 5, 6],
          [4, 3, 2, 1, 0],
        ],
        [
          [2, 3, 1, 4, 5, 6, 2],
          [6, 0, 5, 2, 1, 4, 3],
        ],
        [
          [2, 2, 3, 2, 3, 2, 2, 3, 2],
          [8, 7, 6, 5, 4, 3, 2, 1, 0],
        ],
        [
          [64, 16, 4, 16, 4, 3],
          [0, 1, 3, 2, 4, 5],
        ],
        [
          [6, 5],
          [1, 0],
        ],
      ];
      for (let k = 0; k < 6; k++) {
        const rank = 5 + g.nextInt(3);
        const shape = Array.from({ length: rank }, () => 1 + g.nextInt(4));
        cases.push([shape, g.permutation(rank)]);
      }
      for (const [shape, perm] of cases) {
        for (const dtype of ['float32', 'int32', 'bool'] as const) {
          const { data, x } = indexTensor(shape, dtype);
          const y = tf.transpose(x, perm);
          expect(y.shape, `${shape} by ${perm}`).toEqual(perm.map((a) => shape[a]));
          expect(Array.from(await y.data()).map(Number), `${dtype} [${shape}] by [${perm}]`).toEqual(
            refTranspose(data, shape, perm),
          );
          tf.dispose([x, y]);
        }
      }
    },
  );

  // Row gathers of 4-byte dtypes go to wasm/gather.c on wasm (threaded above 64k elements): every
  // axis, negative axes, repeated and multi-dimensional indices, Swin's bias gather; the rest and
  // out-of-range indices stay with tfjs, which names the bad index.
  it('gather along every axis and dtype equals the index reference, and names an index out of range', async () => {
    const g = new Generator(9);
    const cases: [number[], number[], number[], number][] = [
      [[529, 16], [20736], Array.from({ length: 20736 }, () => g.nextInt(529)), 0], // Swin-B stage 3 bias
      [[5, 3], [2, 4], [4, 0, 0, 2, 1, 3, 4, 4], 0],
      [[2, 6, 3], [5], [5, 0, 2, 2, 1], 1],
      [[2, 3, 7], [3], [6, 0, 3], -1],
      [[4], [0], [], 0],
    ];
    for (const [shape, ishape, idx, axis] of cases) {
      const n = shape.reduce((p, d) => p * d, 1);
      const ax = axis < 0 ? axis + shape.length : axis;
      const outer = shape.slice(0, ax).reduce((p, d) => p * d, 1);
      const inner = shape.slice(ax + 1).reduce((p, d) => p * d, 1);
      const ref = (data: number[]) => {
        const out: number[] = [];
        for (let o = 0; o < outer; o++)
          for (const j of idx) for (let k = 0; k < inner; k++) out.push(data[(o * shape[ax] + j) * inner + k]);
        return out;
      };
      for (const dtype of ['float32', 'int32'] as const) {
        const data = Array.from({ length: n }, (_, i) => (dtype === 'int32' ? i - 7 : i * 0.25 - 3));
        const x = tf.tensor(data, shape, dtype);
        const i = tf.tensor(idx, ishape, 'int32');
        const y = tf.gather(x, i, axis);
        expect(y.shape).toEqual([...shape.slice(0, ax), ...ishape, ...shape.slice(ax + 1)]);
        expect(Array.from(await y.data()), `${dtype} [${shape}] axis ${axis}`).toEqual(ref(data));
        tf.dispose([x, i, y]);
      }
    }
    if (backend === 'webgpu') return; // tfjs-webgpu does not check indices
    const x = tf.zeros([3, 2]);
    const bad = tf.tensor1d([0, 3], 'int32');
    expect(() => tf.gather(x, bad)).toThrow(/index value 3/);
    tf.dispose([x, bad]);
  });

  // On wasm, sums over axes that are not the innermost go to wasm/reduce.c (no transpose first):
  // the same bits as tfjs' own Sum, which adds each output's terms in the same order.
  it('sum over leading and middle axes matches float64, and on wasm equals tfjs bit for bit', async () => {
    const cases: [number[], number | number[], boolean][] = [
      [[700, 96], 0, false], // a bias gradient, threaded size
      [[6, 37, 21], [0, 1], true], // inner off the 16- and 4-column blocks
      [[3, 50, 4, 9], [1, 2], false],
      [[2, 1, 33, 1, 5], -3, true],
      [[3, 200, 130], 1, false], // outer > 1, threaded size
      [[4, 3, 5], [0, 2], false], // two blocks: tfjs' own kernel
      [[5, 8], -1, false], // innermost: tfjs' own kernel
    ];
    for (const [k, [shape, axis, keepDims]] of cases.entries()) {
      const x = rng.normal(shape);
      const before = wasmKernelRuns('Sum');
      const y = tf.sum(x, axis, keepDims);
      const fiberPath = wasmKernelRuns('Sum') > before;
      const xs = await values(x);
      const axes = (Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + shape.length : a));
      const outShape = shape.flatMap((d, a) => (axes.includes(a) ? (keepDims ? [1] : []) : [d]));
      expect(y.shape, `[${shape}] over ${axis}`).toEqual(outShape);
      const ref = new Float64Array(y.size);
      const strides = shape.map((_, a) => shape.slice(a + 1).reduce((p, d) => p * d, 1));
      const kept = shape.map((_, a) => a).filter((a) => !axes.includes(a));
      const keptStrides = kept.map((a) => kept.filter((b) => b > a).reduce((p, b) => p * shape[b], 1));
      for (let i = 0; i < xs.length; i++) {
        let o = 0;
        kept.forEach((a, j) => (o += (Math.floor(i / strides[a]) % shape[a]) * keptStrides[j]));
        ref[o] += xs[i];
      }
      expect(maxAbsDiff(await values(y), ref), `[${shape}] over ${axis}`).toBeLessThan(1e-4 * Math.sqrt(xs.length));
      if (backend === 'wasm') {
        // the first five go to wasm/reduce.c (unless the kernels are off for the whole run)
        if (process.env.FIBER_WASM_KERNELS !== '0') expect(fiberPath, `[${shape}] over ${axis}`).toBe(k < 5);
        setWasmKernelsEnabled(false);
        const tfjs = tf.sum(x, axis, keepDims);
        setWasmKernelsEnabled(true);
        expect(Array.from(await y.data()), `[${shape}] over ${axis}`).toEqual(Array.from(await tfjs.data()));
        tfjs.dispose();
      }
      tf.dispose([x, y]);
    }
  });

  // On wasm, the input gradient of a convolution (NHWC) goes to wasm/conv.c: 16, 4 and 1 input
  // channels per pass, rows over the threads (the last case is threaded); tfjs' own kernel adds
  // each element's products in the same order, so the bits must be tfjs'.
  it('conv2dTranspose (Conv2DBackpropInput) matches float64, and on wasm equals tfjs bit for bit', async () => {
    const cases: {
      x: [number, number, number, number];
      f: [number, number];
      s: [number, number];
      pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
      rounding?: 'floor' | 'round' | 'ceil';
    }[] = [
      { x: [2, 10, 12, 4], f: [3, 3], s: [2, 2], pad: 'same' },
      { x: [1, 7, 9, 21], f: [3, 2], s: [1, 2], pad: 'valid' },
      { x: [3, 8, 8, 1], f: [1, 1], s: [1, 1], pad: 'valid' },
      { x: [2, 11, 6, 37], f: [5, 3], s: [3, 1], pad: 2 },
      { x: [1, 6, 6, 16], f: [4, 4], s: [4, 4], pad: 'valid' }, // a patch embedding's
      { x: [2, 9, 13, 5], f: [3, 3], s: [2, 1], pad: 'same' },
      { x: [2, 9, 9, 6], f: [1, 1], s: [2, 2], pad: 'valid' }, // rows and columns without a tap
      { x: [1, 5, 6, 4], f: [2, 2], s: [1, 2], pad: 3 }, // padding over the filter size
      { x: [1, 8, 7, 9], f: [3, 3], s: [2, 2], pad: 1, rounding: 'ceil' },
      {
        x: [2, 7, 8, 20],
        f: [3, 2],
        s: [2, 1],
        pad: [
          [0, 0],
          [2, 0],
          [1, 3],
          [0, 0],
        ],
      },
      { x: [4, 24, 24, 32], f: [3, 3], s: [1, 1], pad: 'same' }, // threaded
    ];
    const outChannels = [3, 1, 7, 16, 8, 33, 5, 4, 12, 6, 32];
    const dataIds = tf.engine().backend.numDataIds(); // the transposed filter is freed
    for (const [k, c] of cases.entries()) {
      const [N, H, W, Ci] = c.x;
      const [kh, kw] = c.f;
      const Co = outChannels[k];
      const info = tf.backend_util.computeConv2DInfo(c.x, [kh, kw, Ci, Co], c.s, 1, c.pad, c.rounding);
      const dy = rng.normal([N, info.outHeight, info.outWidth, Co]);
      const w = rng.normal([kh, kw, Ci, Co]);
      const before = wasmKernelRuns('Conv2DBackpropInput');
      const dx = tf.conv2dTranspose(dy as tf.Tensor4D, w as tf.Tensor4D, c.x, c.s, c.pad, c.rounding);
      const what = `x [${c.x}] filter ${kh}x${kw}x${Ci}x${Co} strides ${c.s} pad ${c.pad}`;
      expect(dx.shape, what).toEqual(c.x);
      const [g, f] = [await values(dy), await values(w)];
      const ref = new Float64Array(N * H * W * Ci);
      const { top, left } = info.padInfo;
      for (let b = 0; b < N; b++)
        for (let yr = 0; yr < info.outHeight; yr++)
          for (let yc = 0; yc < info.outWidth; yc++)
            for (let i = 0; i < kh; i++)
              for (let j = 0; j < kw; j++) {
                const [xr, xc] = [yr * c.s[0] + i - top, yc * c.s[1] + j - left];
                if (xr < 0 || xr >= H || xc < 0 || xc >= W) continue;
                for (let d1 = 0; d1 < Ci; d1++)
                  for (let d2 = 0; d2 < Co; d2++)
                    ref[((b * H + xr) * W + xc) * Ci + d1] +=
                      g[((b * info.outHeight + yr) * info.outWidth + yc) * Co + d2] *
                      f[((i * kw + j) * Ci + d1) * Co + d2];
              }
      expect(maxAbsDiff(await values(dx), ref), what).toBeLessThan(1e-4 * Math.sqrt(kh * kw * Co));
      if (backend === 'wasm') {
        // fiber-vl's kernel ran (not tfjs' as a fallback), unless switched off for the whole run
        if (process.env.FIBER_WASM_KERNELS !== '0')
          expect(wasmKernelRuns('Conv2DBackpropInput'), what).toBe(before + 1);
        setWasmKernelsEnabled(false);
        const tfjs = tf.conv2dTranspose(dy as tf.Tensor4D, w as tf.Tensor4D, c.x, c.s, c.pad, c.rounding);
        setWasmKernelsEnabled(true);
        const bits = async (t: tf.Tensor) => Array.from(new Uint32Array(Float32Array.from(await t.data()).buffer));
        expect(await bits(dx), what).toEqual(await bits(tfjs));
        tfjs.dispose();
      }
      tf.dispose([dy, w, dx]);
    }
    expect(tf.engine().backend.numDataIds()).toBe(dataIds);
  });

  // On wasm, slices, unstacks and splits of 4- and 1-byte dtypes are copied run by run inside wasm
  // memory.
  it('slice, unstack and split of every dtype equal the index reference', async () => {
    const g = new Generator(21);
    for (let t = 0; t < 40; t++) {
      const rank = 1 + g.nextInt(5);
      const shape = Array.from({ length: rank }, () => 1 + g.nextInt(5));
      const { data, x } = indexTensor(shape, (['float32', 'int32', 'bool'] as const)[t % 3]);
      const begin = shape.map((d) => g.nextInt(d));
      const extent = shape.map((d, a) => (g.nextInt(4) === 0 ? -1 : g.nextInt(d - begin[a] + 1)));
      const sized = extent.map((e, a) => (e === -1 ? shape[a] - begin[a] : e));
      const strides = shape.map((_, a) => shape.slice(a + 1).reduce((p, d) => p * d, 1));
      const box = (b: number[], e: number[]) => {
        const out: number[] = [];
        const total = e.reduce((p, d) => p * d, 1);
        for (let i = 0; i < total; i++) {
          let src = 0;
          for (let a = 0, rest = i; a < rank; a++) {
            const inner = e.slice(a + 1).reduce((p, d) => p * d, 1);
            src += (b[a] + Math.floor(rest / inner)) * strides[a];
            rest %= inner;
          }
          out.push(data[src]);
        }
        return out;
      };
      const s = tf.slice(x, begin, extent);
      expect(s.shape).toEqual(sized);
      expect(Array.from(await s.data()).map(Number), `[${shape}] at [${begin}] size [${extent}]`).toEqual(
        box(begin, sized),
      );
      const axis = g.nextInt(rank);
      // half the unstacks name the axis from the end
      const parts = tf.unstack(x, t % 2 ? axis - rank : axis);
      expect(parts.length).toBe(shape[axis]);
      for (const [i, p] of parts.entries()) {
        const b = shape.map((_, a) => (a === axis ? i : 0));
        const e = shape.map((d, a) => (a === axis ? 1 : d));
        expect(p.shape).toEqual(shape.filter((_, a) => a !== axis));
        expect(Array.from(await p.data()).map(Number), `[${shape}] part ${i} on axis ${axis}`).toEqual(box(b, e));
      }
      // split into pieces of random sizes (one given as -1) along the same axis
      const cut = g.nextInt(shape[axis] + 1);
      const sizes = g.nextInt(2) ? [cut, -1] : [cut, shape[axis] - cut];
      const pieces = tf.split(x, sizes, axis);
      for (const [i, p] of pieces.entries()) {
        const b = shape.map((_, a) => (a === axis ? (i ? cut : 0) : 0));
        const e = shape.map((d, a) => (a === axis ? (i ? d - cut : cut) : d));
        expect(p.shape).toEqual(e);
        expect(Array.from(await p.data()).map(Number), `[${shape}] split ${sizes} on axis ${axis}`).toEqual(box(b, e));
      }
      tf.dispose([x, s, ...parts, ...pieces]);
    }
    // zero-size inputs and boxes
    const empty = tf.zeros([3, 0, 2]);
    const x = tf.ones([3, 4]);
    const parts = [tf.slice(x, [1, 2], [2, 0]), ...tf.unstack(empty, 2), ...tf.split(x, [0, 4], 1)];
    expect(parts.map((p) => p.shape)).toEqual([
      [2, 0],
      [3, 0],
      [3, 0],
      [3, 0],
      [3, 4],
    ]);
    expect(tf.unstack(empty, 1)).toEqual([]);
    // a box past the end is named, not read from beyond the tensor (tfjs-webgpu does not check)
    if (backend !== 'webgpu')
      expect(() => tf.slice(x, [2, 0], [2, 4])).toThrow(/would overflow input.shape\[0\] \(3\)/);
    tf.dispose([empty, x, ...parts]);
  });

  // On wasm a clone shares the data (one more reference) instead of copying it.
  it('a clone outlives its source and frees its data with the last reference', async () => {
    const before = tf.engine().backend.numDataIds();
    const x = tf.tensor([1.5, -2, 3], [3]);
    const y = tf.clone(x);
    // on wasm the clone shares the data (no copy); elsewhere tfjs decides
    if (backend === 'wasm') expect(y.dataId).toBe(x.dataId);
    x.dispose();
    expect(Array.from(await y.data())).toEqual([1.5, -2, 3]);
    y.dispose();
    expect(tf.engine().backend.numDataIds()).toBe(before);
  });

  // K > 256 and N > 512 cross the kernel's blocks; M, N, K off the 4 x 8 tile; big enough to thread.
  const gemmCases: [number, number, number][] = [
    [1, 1, 1],
    [5, 9, 7],
    [37, 530, 300],
    [130, 64, 513],
  ];
  it.each(gemmCases)('matmul [%i x %i] (K %i) in every transpose mode matches float64', async (M, N, K) => {
    for (const [tA, tB] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      const a = rng.normal(tA ? [K, M] : [M, K]);
      const b = rng.normal(tB ? [N, K] : [K, N]);
      const ref = refProduct(await values(a), await values(b), M, N, K, tA, tB);
      const y = matmul(a, b, { transposeA: tA, transposeB: tB });
      expect(y.shape).toEqual([M, N]);
      expect(maxAbsDiff(await values(y), ref)).toBeLessThan(2e-4 * Math.sqrt(K));
      tf.dispose([a, b, y]);
    }
  });

  it('batched matmul (equal and broadcast batch dims) and linear with bias match float64', async () => {
    const a = rng.normal([2, 3, 10, 16]);
    const b = rng.normal([2, 3, 12, 16]);
    const w = rng.normal([16, 9]);
    const [av, bv, wv] = [await values(a), await values(b), await values(w)];
    const y = await values(matmul(a, b, { transposeB: true }));
    const z = await values(matmul(a, w));
    for (let i = 0; i < 6; i++) {
      const ai = av.subarray(i * 160, (i + 1) * 160);
      expect(
        maxAbsDiff(
          y.subarray(i * 120, (i + 1) * 120),
          refProduct(ai, bv.subarray(i * 192, (i + 1) * 192), 10, 12, 16, false, true),
        ),
      ).toBeLessThan(1e-4);
      expect(maxAbsDiff(z.subarray(i * 90, (i + 1) * 90), refProduct(ai, wv, 10, 9, 16, false, false))).toBeLessThan(
        1e-4,
      );
    }
    const x = rng.normal([3, 7, 40]);
    const weight = rng.normal([70, 40]);
    const bias = rng.normal([70]);
    const lin = linear(x, weight, bias);
    expect(lin.shape).toEqual([3, 7, 70]);
    const ref = refProduct(await values(x), await values(weight), 21, 70, 40, false, true);
    const bvals = await values(bias);
    expect(
      maxAbsDiff(
        await values(lin),
        ref.map((v, i) => v + bvals[i % 70]),
      ),
    ).toBeLessThan(1e-4);
    expect(() => matmul(rng.normal([2, 3]), rng.normal([4, 5]))).toThrow();
    tf.dispose([a, b, w, x, weight, bias, lin]);
  });

  it('layerNorm and gelu match float64 at threaded sizes', async () => {
    const x = tf.add(rng.normal([300, 257], 0, 3), 2);
    const g = rng.normal([257]);
    const b = rng.normal([257]);
    const [xv, gv, bv] = [await values(x), await values(g), await values(b)];
    const ln = await values(layerNorm(x, g, b, 1e-5));
    const ref = new Float64Array(xv.length);
    for (let r = 0; r < 300; r++) {
      const row = xv.subarray(r * 257, (r + 1) * 257);
      const mean = row.reduce((s, v) => s + v, 0) / 257;
      const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / 257;
      for (let j = 0; j < 257; j++) ref[r * 257 + j] = ((row[j] - mean) / Math.sqrt(variance + 1e-5)) * gv[j] + bv[j];
    }
    expect(maxAbsDiff(ln, ref)).toBeLessThan(5e-5);
    const y = await values(gelu(x));
    expect(
      maxAbsDiff(
        y,
        Array.from(xv, (v) => 0.5 * v * (1 + erf(v / Math.SQRT2))),
      ),
    ).toBeLessThan(1e-5);
    tf.dispose([x, g, b]);
  });

  // [B, H, W, C, heads, window, shift]: regular and shifted windows, several windows per axis (as
  // after the detection variant's padding), batch > 1, 1-4 heads, Swin-B/384 stage-1 windows.
  const attentionCases: number[][] = [
    [1, 4, 4, 8, 1, 4, 0],
    [2, 8, 12, 12, 3, 4, 2],
    [2, 14, 21, 16, 2, 7, 3],
    [1, 12, 24, 32, 4, 12, 6],
    [3, 10, 5, 6, 2, 5, 0],
  ];
  it.each(attentionCases)(
    'windowAttention [%i, %i, %i, C %i], %i heads, window %i, shift %i matches float64',
    async (B, H, W, C, heads, w, s) => {
      const qkv = rng.normal([B, H, W, 3 * C]);
      const bias = rng.normal([heads, w * w, w * w]);
      const ref = refWindowAttention(await values(qkv), await values(bias), [B, H, W, C], heads, w, s);
      const y = windowAttention(qkv, bias, { numHeads: heads, windowSize: w, shift: s });
      expect(y.shape).toEqual([B, H, W, C]);
      expect(maxAbsDiff(await values(y), ref)).toBeLessThan(2e-5);
      const composite = compositeWindowAttention(qkv, bias, { numHeads: heads, windowSize: w, shift: s });
      expect(maxAbsDiff(await values(y), await values(composite))).toBeLessThan(2e-5);
      tf.dispose([qkv, bias, y, composite]);
    },
  );

  it('windowAttention without a bias matches float64 (window 7: keys and queries padded)', async () => {
    const [B, H, W, C, heads, w, s] = [1, 14, 14, 12, 3, 7, 3];
    const qkv = rng.normal([B, H, W, 3 * C]);
    const ref = refWindowAttention(await values(qkv), new Float64Array(heads * w ** 4), [B, H, W, C], heads, w, s);
    const y = windowAttention(qkv, undefined, { numHeads: heads, windowSize: w, shift: s });
    expect(maxAbsDiff(await values(y), ref)).toBeLessThan(2e-5);
    tf.dispose([qkv, y]);
  });

  it('windowAttention names a bad shape', () => {
    const qkv = tf.zeros([1, 6, 8, 12]);
    expect(() => windowAttention(qkv, undefined, { numHeads: 2, windowSize: 4 })).toThrow(/multiples of the window 4/);
    expect(() => windowAttention(tf.zeros([1, 8, 8, 12]), tf.zeros([2, 4, 4]), { numHeads: 2, windowSize: 4 })).toThrow(
      /bias must be \[2, 16, 16\]/,
    );
    expect(() => windowAttention(tf.zeros([1, 8, 8, 12]), undefined, { numHeads: 2, windowSize: 4, shift: 4 })).toThrow(
      /shift 4/,
    );
    qkv.dispose();
  });

  const gradCases: [string, () => tf.Tensor[], (...xs: tf.Tensor[]) => tf.Tensor][] = [
    [
      'windowAttention, shifted',
      () => [rng.normal([2, 4, 4, 12]), rng.normal([2, 4, 4])],
      (q, b) => windowAttention(q, b, { numHeads: 2, windowSize: 2, shift: 1 }),
    ],
    [
      'windowAttention, regular',
      () => [rng.normal([1, 4, 6, 6]), rng.normal([1, 4, 4])],
      (q, b) => windowAttention(q, b, { numHeads: 1, windowSize: 2 }),
    ],
    ['matmul transposeA', () => [rng.normal([4, 3]), rng.normal([4, 5])], (a, b) => matmul(a, b, { transposeA: true })],
    [
      'matmul transposeA + transposeB',
      () => [rng.normal([4, 3]), rng.normal([5, 4])],
      (a, b) => matmul(a, b, { transposeA: true, transposeB: true }),
    ],
    [
      'batched matmul',
      () => [rng.normal([2, 3, 4]), rng.normal([2, 5, 4])],
      (a, b) => matmul(a, b, { transposeB: true }),
    ],
  ];
  it.each(gradCases)(
    'gradient of %s matches finite differences',
    async (_name, inputs, f) => {
      const xs = inputs();
      // 24 sampled elements per input keeps the finite differences affordable on SwiftShader.
      const r = await gradCheck(f, xs, { eps: 1e-2, atol: 2e-3, rtol: 2e-2, maxElements: 24 });
      expect(r.errors.map((e) => e.maxAbs <= 2e-3 + 2e-2 * e.scale)).toEqual(xs.map(() => true));
      tf.dispose(xs);
    },
    300_000,
  );

  it('layerNorm and gelu gradients from the kernels equal the composite ops (threaded sizes)', async () => {
    const x = rng.normal([700, 96]);
    const g = rng.normal([96]);
    const b = rng.normal([96]);
    const r = rng.normal([700, 96]);
    const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) =>
      tf.sum(tf.mul(gelu(layerNorm(xx, gg, bb, 1e-5)), r)) as tf.Scalar;
    const fast = tf.grads(f)([x, g, b]);
    setWasmKernelsEnabled(false);
    setWebGpuKernelsEnabled(false);
    const slow = tf.grads(f)([x, g, b]);
    setWasmKernelsEnabled(true);
    setWebGpuKernelsEnabled(true);
    for (let i = 0; i < 3; i++) {
      const [a, c] = [await values(fast[i]), await values(slow[i])];
      const scale = Math.max(1, ...c.map(Math.abs));
      expect(maxAbsDiff(a, c) / scale).toBeLessThan(1e-4);
    }
    tf.dispose([x, g, b, r, ...fast, ...slow]);
  });

  it('forward and backward do not leak tensors', async () => {
    const qkv = rng.normal([1, 8, 8, 24]);
    const bias = rng.normal([2, 16, 16]);
    const x = rng.normal([6, 16]);
    const w = rng.normal([10, 16]);
    const b = rng.normal([10]);
    const g = rng.normal([16]);
    const loss = (q: tf.Tensor, rb: tf.Tensor, xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor, gg: tf.Tensor) =>
      tf.add(
        tf.sum(windowAttention(q, rb, { numHeads: 2, windowSize: 4, shift: 2 })),
        tf.sum(gelu(linear(layerNorm(xx, gg, gg, 1e-5), ww, bb))),
      ) as tf.Scalar;
    await expectNoTensorGrowth(() => tf.tidy(() => loss(qkv, bias, x, w, b, g)), { label: 'kernel forward' });
    await expectNoTensorGrowth(() => tf.grads(loss)([qkv, bias, x, w, b, g]), { label: 'kernel backward' });
    tf.dispose([qkv, bias, x, w, b, g]);
  });
});

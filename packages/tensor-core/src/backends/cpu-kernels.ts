// tfjs-backend-cpu kernels that fiber-vl replaces because tfjs' own are pathologically slow at model
// size. Measured on one FIBER-B train step at 96 px (fused forward + backward): UnsortedSegmentSum
// (every gather's gradient; tfjs builds a mask per segment, and the word embeddings have 50,265)
// 334 s of 459 s; Transpose (tfjs computes every element's coordinates in fresh arrays) 35 s.
// On the official tiny coarse train step (fixtures/train-step, 2 steps, 86 s): BatchMatMul 30%
// (strided loads), Slice / SplitV / Unpack 22% (an index array per element), broadcast Add / Sub /
// Multiply / RealDiv 15% (the same). Every replacement gives tfjs' bits: the copies copy, the
// binary ops compute the same expression per element, and BatchMatMul adds in tfjs' order.
import { tf } from '../tf.js';
import { reduceTranspose } from '../kernels/transpose-plan.js';
import { type Box, type BoxKernel, boxKernelInput, forEachBoxRun, kernelBoxes } from '../kernels/box-runs.js';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { platform } from '#platform';
import { unsortedSegmentSum } from './fallback-kernels.js';

type KernelFuncArgs = Parameters<tf.KernelFunc>[0];
/** What the cpu backend stores for float32, int32 and bool tensors, whatever their dtype. */
type Stored = Float32Array | Int32Array | Uint8Array;
type CopyDtype = 'float32' | 'int32' | 'bool';

/** A new array for `n` values of `dtype`, of the type tfjs-cpu gives that dtype's outputs. */
function arrayOf(dtype: CopyDtype, n: number): Stored {
  if (dtype === 'float32') return new Float32Array(n);
  return dtype === 'int32' ? new Int32Array(n) : new Uint8Array(n);
}

/**
 * The values as the cpu backend stores them, as tfjs' kernels read them: a float32 tensor cast from
 * int32 keeps the Int32Array, which tfjs' binary ops and matmul use unrounded (`readSync` would also
 * copy bool data twice).
 */
function stored(backend: tf.KernelBackend, x: tf.TensorInfo): Stored {
  return (backend as MathBackendCPU).data.get(x.dataId).values as Stored;
}

let enabled = platform.env('FIBER_CPU_KERNELS') !== '0';
const wrappers = new WeakSet<tf.KernelFunc>();

/**
 * x transposed by `perm` into an array of `dtype`, element by element along the reduced axes (the
 * innermost as a run or a strided loop).
 */
export function transposeValues(
  values: Stored,
  shape: readonly number[],
  perm: readonly number[],
  dtype: CopyDtype,
): Stored {
  const n = values.length;
  const out = arrayOf(dtype, n);
  if (n === 0) return out;
  const { shape: dims, inStrides } = reduceTranspose(shape, perm);
  const rank = dims.length;
  const inner = dims[rank - 1];
  const step = inStrides[rank - 1];
  const index = new Array<number>(rank).fill(0);
  let base = 0;
  for (let o = 0; o < n; o += inner) {
    if (step === 1) out.set(values.subarray(base, base + inner), o);
    else for (let j = 0, src = base; j < inner; j++, src += step) out[o + j] = values[src];
    // the next position of the outer axes (an odometer, last axis fastest)
    for (let d = rank - 2; d >= 0; d--) {
      base += inStrides[d];
      if (++index[d] < dims[d]) break;
      base -= inStrides[d] * dims[d];
      index[d] = 0;
    }
  }
  return out;
}

function transposeKernel(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelFuncArgs) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (!enabled || (x.dtype !== 'float32' && x.dtype !== 'int32')) return original(args);
    const perm = (args.attrs as { perm: number[] }).perm;
    const backend = args.backend as tf.KernelBackend;
    const shape = perm.map((a) => x.shape[a]);
    return write(backend, transposeValues(stored(backend, x), x.shape, perm, x.dtype), shape, x.dtype);
  };
}

/**
 * The box [begin, begin + extent) of row-major `values` of `shape`, copied run by run into an array
 * of `dtype`: a run is the innermost axes the box covers whole and the first one it does not.
 */
export function sliceValues(
  values: Stored,
  shape: readonly number[],
  begin: readonly number[],
  extent: readonly number[],
  dtype: CopyDtype,
): Stored {
  const out = arrayOf(
    dtype,
    extent.reduce((p, d) => p * d, 1),
  );
  forEachBoxRun(shape, begin, extent, (from, to, run) => {
    if (run >= 16) out.set(values.subarray(from, from + run), to);
    else for (let j = 0; j < run; j++) out[to + j] = values[from + j];
  });
  return out;
}

const BINARY_OPS = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3 } as const;
type BinaryOp = (typeof BINARY_OPS)[keyof typeof BINARY_OPS];

/**
 * `a op b` into float32 with numpy broadcasting to `outShape`: the output walked row by row
 * (axes the two inputs step through alike merged), each input stepping by its stride or 0.
 */
export function broadcastBinaryValues(
  op: BinaryOp,
  a: Stored,
  aShape: readonly number[],
  b: Stored,
  bShape: readonly number[],
  outShape: readonly number[],
): Float32Array {
  const n = outShape.reduce((p, d) => p * d, 1);
  const out = new Float32Array(n);
  if (n === 0) return out;
  // per output axis: its size and each input's stride (0 where the input broadcasts)
  const inputStrides = (shape: readonly number[]) => {
    const st = new Array<number>(outShape.length).fill(0);
    for (let a = shape.length - 1, s = 1, o = outShape.length - 1; a >= 0; a--, o--) {
      if (shape[a] !== 1) st[o] = s;
      s *= shape[a];
    }
    return st;
  };
  const sa = inputStrides(aShape);
  const sb = inputStrides(bShape);
  const dims: number[] = [];
  const strA: number[] = [];
  const strB: number[] = [];
  for (let o = 0; o < outShape.length; o++) {
    if (outShape[o] === 1) continue;
    const last = dims.length - 1;
    // axis o continues the previous one when both inputs step through the pair as one axis
    if (last >= 0 && strA[last] === sa[o] * outShape[o] && strB[last] === sb[o] * outShape[o]) {
      dims[last] *= outShape[o];
      strA[last] = sa[o];
      strB[last] = sb[o];
    } else {
      dims.push(outShape[o]);
      strA.push(sa[o]);
      strB.push(sb[o]);
    }
  }
  if (!dims.length) dims.push(1), strA.push(0), strB.push(0);
  const rank = dims.length;
  const inner = dims[rank - 1];
  const ia = strA[rank - 1];
  const ib = strB[rank - 1];
  const index = new Array<number>(rank - 1).fill(0);
  let pa = 0;
  let pb = 0;
  for (let o = 0; o < n; o += inner) {
    let x = pa;
    let y = pb;
    const end = o + inner;
    switch (op) {
      case 0:
        for (let i = o; i < end; i++, x += ia, y += ib) out[i] = a[x] + b[y];
        break;
      case 1:
        for (let i = o; i < end; i++, x += ia, y += ib) out[i] = a[x] - b[y];
        break;
      case 2:
        for (let i = o; i < end; i++, x += ia, y += ib) out[i] = a[x] * b[y];
        break;
      default:
        for (let i = o; i < end; i++, x += ia, y += ib) out[i] = a[x] / b[y];
    }
    for (let d = rank - 2; d >= 0; d--) {
      pa += strA[d];
      pb += strB[d];
      if (++index[d] < dims[d]) break;
      pa -= strA[d] * dims[d];
      pb -= strB[d] * dims[d];
      index[d] = 0;
    }
  }
  return out;
}

/**
 * tfjs-cpu's batched matmul, in its arithmetic: each output element adds its products in blocks of
 * `blockSize` along K, in order, in float64, and after each block rounds to float32 (tfjs adds the
 * block's sum into the float32 result). The operands are first copied to rows contiguous in K (tfjs
 * reads them with strides), and two rows by four columns of outputs are summed at once.
 */
export function batchMatMulValues(
  a: Stored,
  b: Stored,
  { batchA, batchB, M, N, K }: { batchA: number; batchB: number; M: number; N: number; K: number },
  transposeA: boolean,
  transposeB: boolean,
  blockSize: number,
): Float32Array {
  const batch = Math.max(batchA, batchB);
  const out = new Float32Array(batch * M * N);
  if (out.length === 0 || K === 0) return out;
  // float32 rows for float32 data (the products are float64 either way); float64 for data stored
  // as integers (a float32 tensor cast from int32), which tfjs multiplies unrounded
  const rows = (v: Stored, n: number) => (v instanceof Float32Array ? new Float32Array(n) : new Float64Array(n));
  const rowsA = rows(a, M * K);
  const rowsB = rows(b, N * K);
  let packedA = -1;
  let packedB = -1;
  for (let bi = 0; bi < batch; bi++) {
    const ba = bi % batchA;
    const bb = bi % batchB;
    if (ba !== packedA) {
      const base = ba * M * K; // [M, K], or [K, M] transposed
      for (let i = 0; i < M; i++)
        for (let k = 0; k < K; k++) rowsA[i * K + k] = a[base + (transposeA ? k * M + i : i * K + k)];
      packedA = ba;
    }
    if (bb !== packedB) {
      const base = bb * K * N; // [K, N], or [N, K] transposed
      for (let j = 0; j < N; j++)
        for (let k = 0; k < K; k++) rowsB[j * K + k] = b[base + (transposeB ? j * K + k : k * N + j)];
      packedB = bb;
    }
    // two rows by four columns at a time; at an odd last row or the last columns, indices repeat
    // the last valid one and only the valid outputs are stored
    const o = bi * M * N;
    for (let i = 0; i < M; i += 2) {
      const ra = i * K;
      const rb = i + 1 < M ? ra + K : ra;
      for (let j = 0; j < N; j += 4) {
        const r0 = j * K;
        const r1 = j + 1 < N ? r0 + K : r0;
        const r2 = j + 2 < N ? r1 + K : r1;
        const r3 = j + 3 < N ? r2 + K : r2;
        let t0 = 0;
        let t1 = 0;
        let t2 = 0;
        let t3 = 0;
        let u0 = 0;
        let u1 = 0;
        let u2 = 0;
        let u3 = 0;
        for (let k0 = 0; k0 < K; k0 += blockSize) {
          const kEnd = Math.min(k0 + blockSize, K);
          let s0 = 0;
          let s1 = 0;
          let s2 = 0;
          let s3 = 0;
          let v0 = 0;
          let v1 = 0;
          let v2 = 0;
          let v3 = 0;
          for (let k = k0; k < kEnd; k++) {
            const x = rowsA[ra + k];
            const y = rowsA[rb + k];
            const b0 = rowsB[r0 + k];
            const b1 = rowsB[r1 + k];
            const b2 = rowsB[r2 + k];
            const b3 = rowsB[r3 + k];
            s0 += x * b0;
            s1 += x * b1;
            s2 += x * b2;
            s3 += x * b3;
            v0 += y * b0;
            v1 += y * b1;
            v2 += y * b2;
            v3 += y * b3;
          }
          t0 = Math.fround(t0 + s0);
          t1 = Math.fround(t1 + s1);
          t2 = Math.fround(t2 + s2);
          t3 = Math.fround(t3 + s3);
          u0 = Math.fround(u0 + v0);
          u1 = Math.fround(u1 + v1);
          u2 = Math.fround(u2 + v2);
          u3 = Math.fround(u3 + v3);
        }
        const n = Math.min(4, N - j);
        const row = o + i * N + j;
        out[row] = t0;
        if (n > 1) out[row + 1] = t1;
        if (n > 2) out[row + 2] = t2;
        if (n > 3) out[row + 3] = t3;
        if (i + 1 < M) {
          out[row + N] = u0;
          if (n > 1) out[row + N + 1] = u1;
          if (n > 2) out[row + N + 2] = u2;
          if (n > 3) out[row + N + 3] = u3;
        }
      }
    }
  }
  return out;
}

/**
 * Turns fiber-vl's cpu kernels off (tfjs' own run; the UnsortedSegmentSum replacement stays) or on
 * again, for tests and benchmarks that compare the two. FIBER_CPU_KERNELS=0 starts with them off.
 */
export function setCpuKernelsEnabled(on: boolean): void {
  enabled = on;
}

const write = (backend: tf.KernelBackend, values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType) =>
  ({ dataId: backend.write(values, shape, dtype), shape, dtype }) satisfies tf.TensorInfo;

const copyable = (x: tf.TensorInfo): x is tf.TensorInfo & { dtype: CopyDtype } =>
  x.dtype === 'float32' || x.dtype === 'int32' || x.dtype === 'bool';

/**
 * A box of x as a tensor: a view of the stored values when the box is one contiguous run (as tfjs'
 * Slice returns it), else a copy.
 */
function boxTensor(backend: tf.KernelBackend, x: tf.TensorInfo & { dtype: CopyDtype }, values: Stored, b: Box) {
  if (!tf.slice_util.isSliceContinous(x.shape, b.begin, b.extent))
    return write(backend, sliceValues(values, x.shape, b.begin, b.extent, x.dtype), b.shape, x.dtype);
  const offset = tf.slice_util.computeFlatOffset(b.begin, tf.util.computeStrides(x.shape));
  return write(backend, values.subarray(offset, offset + tf.util.sizeFromShape(b.extent)), b.shape, x.dtype);
}

/**
 * Slice, Unpack or SplitV: each box (kernelBoxes) as boxTensor gives it. tfjs' builds index arrays
 * per element for every box that is not one contiguous run (Swin's q, k, v: three of qkv).
 */
function copyKernel(kernel: BoxKernel): (original: tf.KernelFunc) => tf.KernelFunc {
  return (original) => (args: KernelFuncArgs) => {
    const x = (args.inputs as Record<string, tf.TensorInfo>)[boxKernelInput(kernel)];
    if (!enabled || !copyable(x)) return original(args);
    const backend = args.backend as tf.KernelBackend;
    const values = stored(backend, x);
    const outs = kernelBoxes(kernel, x, args.attrs ?? {}).map((b) => boxTensor(backend, x, values, b));
    return kernel === 'Slice' ? outs[0] : outs;
  };
}

/**
 * Add, Sub, Multiply, RealDiv of two float32 inputs, on the stored values as tfjs reads them (tfjs
 * takes a modulo per element even without broadcasting, and coordinates per element with it).
 */
function binaryKernel(op: BinaryOp): (original: tf.KernelFunc) => tf.KernelFunc {
  return (original) => (args: KernelFuncArgs) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    if (!enabled || a.dtype !== 'float32' || b.dtype !== 'float32') return original(args);
    const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const backend = args.backend as tf.KernelBackend;
    const values = broadcastBinaryValues(op, stored(backend, a), a.shape, stored(backend, b), b.shape, shape);
    return write(backend, values, shape, 'float32');
  };
}

/**
 * Sum of float32 over any axes, in tfjs' arithmetic: the reduced axes moved innermost (in their
 * order), then each output adds its run in float64 and rounds once. tfjs transposes with an index
 * array per element first (every bias gradient sums over the leading axes).
 */
function sumKernel(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelFuncArgs) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (!enabled || x.dtype !== 'float32') return original(args);
    const attrs = args.attrs as { axis: number | number[]; keepDims: boolean };
    const rank = x.shape.length;
    const axes = tf.util.parseAxisParam(attrs.axis, x.shape);
    const perm = tf.backend_util.getAxesPermutation(axes, rank);
    if (perm == null) return original(args); // already innermost: tfjs sums without a transpose
    const backend = args.backend as tf.KernelBackend;
    const values = transposeValues(stored(backend, x), x.shape, perm, 'float32');
    const [outShape, reduceShape] = tf.backend_util.computeOutAndReduceShapes(
      perm.map((a) => x.shape[a]),
      tf.backend_util.getInnerMostAxes(axes.length, rank),
    );
    const run = reduceShape.reduce((p, d) => p * d, 1);
    const out = new Float32Array(outShape.reduce((p, d) => p * d, 1));
    for (let i = 0, o = 0; i < out.length; i++) {
      let sum = 0;
      for (const end = o + run; o < end; o++) sum += values[o];
      out[i] = sum;
    }
    const shape = attrs.keepDims ? tf.backend_util.expandShapeToKeepDim(outShape, axes) : outShape;
    return write(backend, out, shape, 'float32');
  };
}

/** BatchMatMul of float32 operands (tfjs' own for other dtypes and for the errors it names). */
function matMulKernel(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelFuncArgs) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    const backend = args.backend as MathBackendCPU;
    const ra = a.shape.length;
    const rb = b.shape.length;
    if (!enabled || a.dtype !== 'float32' || b.dtype !== 'float32' || ra < 2 || rb < 2) return original(args);
    if (typeof backend.blockSize !== 'number' || !(backend.blockSize > 0)) return original(args);
    const K = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    if (K !== (transposeB ? b.shape[rb - 1] : b.shape[rb - 2])) return original(args); // tfjs names the shapes
    const M = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const N = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const values = batchMatMulValues(
      stored(backend, a),
      stored(backend, b),
      {
        batchA: tf.util.sizeFromShape(a.shape.slice(0, -2)),
        batchB: tf.util.sizeFromShape(b.shape.slice(0, -2)),
        M,
        N,
        K,
      },
      transposeA,
      transposeB,
      backend.blockSize,
    );
    return write(backend, values, [...outer, M, N], 'float32');
  };
}

/**
 * Registers fiber-vl's cpu kernels (once): UnsortedSegmentSum in place of tfjs', and wrappers around
 * Transpose, Slice, SplitV, Unpack, BatchMatMul, Sum, Add, Sub, Multiply and RealDiv that leave the dtypes
 * and cases they do not speed up to tfjs' own.
 */
export function replaceCpuKernels(): void {
  if (hasScatterAddSegmentSum('cpu')) return; // already replaced: Transpose is wrapped once
  if (tf.getKernel('UnsortedSegmentSum', 'cpu')) tf.unregisterKernel('UnsortedSegmentSum', 'cpu');
  tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'cpu', kernelFunc: unsortedSegmentSum });
  for (const [name, wrap] of [
    ['Transpose', transposeKernel],
    ['Slice', copyKernel('Slice')],
    ['SplitV', copyKernel('SplitV')],
    ['Unpack', copyKernel('Unpack')],
    ['BatchMatMul', matMulKernel],
    ['Sum', sumKernel],
    ...Object.entries(BINARY_OPS).map(([name, op]) => [name, binaryKernel(op)] as const),
  ] as const) {
    const kernel = tf.getKernel(name, 'cpu');
    if (!kernel) continue;
    const kernelFunc = wrap(kernel.kernelFunc);
    wrappers.add(kernelFunc);
    tf.unregisterKernel(name, 'cpu');
    tf.registerKernel({ ...kernel, kernelFunc });
  }
}

/** Whether the cpu backend's kernel `name` is one of fiber-vl's wrappers (for tests). */
export function isFiberCpuKernel(name: string): boolean {
  const f = tf.getKernel(name, 'cpu')?.kernelFunc;
  return !!f && wrappers.has(f);
}

/** Whether `backendName` runs fiber-vl's scatter-add for UnsortedSegmentSum (for tests). */
export function hasScatterAddSegmentSum(backendName: string): boolean {
  return tf.getKernel('UnsortedSegmentSum', backendName)?.kernelFunc === unsortedSegmentSum;
}

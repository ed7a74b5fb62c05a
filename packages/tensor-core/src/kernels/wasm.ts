// fiber-vl's own CPU kernels, registered into tfjs-backend-wasm: a packed, multi-threaded SIMD
// GEMM (matmul / linear without weight transposes, batched products), Swin's shifted-window
// attention in one pass, LayerNorm, GELU and the AdamW update; and in place of tfjs' own kernels
// where those are slow at model size (each falls back on tfjs' outside what it covers): Transpose,
// GatherV2, Sum, Slice, Unpack, SplitV, Identity and Conv2DBackpropInput. They work in place on
// tfjs' wasm memory: the kernel module (wasm/*.c, built by scripts/build-wasm.mjs) imports that
// memory, so inputs and outputs are ordinary wasm-backend tensors and no data is copied. Threads
// need tfjs' threaded build (a shared memory); otherwise the kernels run on the calling thread.
//
// The op entry points (ops/linalg.ts, ops/attention.ts, ops/activations.ts) call these kernels
// through tf.engine().runKernel when wasmKernelsActive(), and register their gradients.
import { tf } from '../tf.js';
import { reduceTranspose } from './transpose-plan.js';
import { type BoxKernel, boxKernelInput, forEachBoxRun, kernelBoxes } from './box-runs.js';
import { KERNEL_BINARIES } from './generated/binaries.js';
import { KernelPool, type HostHeap } from './pool.js';
import { platform } from '#platform';

export const KERNEL_NAMES = {
  matMul: 'FiberMatMul',
  windowAttention: 'FiberWindowAttention',
  layerNorm: 'FiberLayerNorm',
  gelu: 'FiberGelu',
  layerNormGrad: 'FiberLayerNormGrad',
  geluGrad: 'FiberGeluGrad',
  /** softmax((q scale) k^T + bias + mask) v in one pass; webgpu only (kernels/webgpu.ts). */
  attention: 'FiberAttention',
} as const;

const OP = {
  gemm: 1,
  windowAttention: 2,
  layerNorm: 3,
  gelu: 4,
  layerNormGradX: 5,
  layerNormGradW: 6,
  geluGrad: 7,
  transpose: 8,
  windowBiasT: 9,
  gather: 10,
  sumMiddle: 11,
  adamw: 12,
  conv2dBackpropInput: 13,
} as const;
const ABI = 6;
/** Below this many flops (or elements) an op runs on the calling thread: waking workers costs more. */
const PARALLEL_FLOPS = 4e6;
const PARALLEL_ELEMENTS = 64 * 1024;

interface WasmTensorData {
  memoryOffset: number;
}
/** The parts of tfjs-backend-wasm's BackendWasm these kernels use. */
interface WasmBackendLike {
  dataIdMap: { get(dataId: object): WasmTensorData | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: object): boolean;
  incRef(dataId: object): void;
  readSync(dataId: object): ArrayLike<number> | Uint8Array[];
  wasm: {
    _malloc(bytes: number): number;
    _free(ptr: number): void;
    wasmMemory?: WebAssembly.Memory;
    asm?: { memory?: WebAssembly.Memory };
  };
}

function isWasmBackend(b: unknown): b is WasmBackendLike {
  if (typeof b !== 'object' || b === null || !('wasm' in b) || !('dataIdMap' in b) || !('makeOutput' in b))
    return false;
  const w = (b as { wasm: unknown }).wasm;
  return typeof w === 'object' && w !== null && '_malloc' in w && '_free' in w;
}

export interface WasmKernelInfo {
  /** Threads that share each op (the caller's included). */
  threads: number;
  /** Whether the relaxed-SIMD (fused multiply-add) build runs. */
  relaxedSimd: boolean;
}

let pool: KernelPool | undefined;
let info: WasmKernelInfo | undefined;
let pending: Promise<WasmKernelInfo> | undefined;
let enabled = platform.env('FIBER_WASM_KERNELS') !== '0';

function decode(base64: string): Uint8Array<ArrayBuffer> {
  const s = atob(base64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Relaxed SIMD validates in current browsers and Node >= 22; Node 20 has it behind a V8 flag. */
async function relaxedSimdAvailable(bytes: Uint8Array<ArrayBuffer>): Promise<boolean> {
  if (platform.env('FIBER_WASM_RELAXED_SIMD') === '0') return false;
  if (WebAssembly.validate(bytes)) return true;
  return (await platform.enableRelaxedSimd()) && WebAssembly.validate(bytes);
}

function hostHeap(backend: WasmBackendLike): HostHeap {
  const memory = backend.wasm.wasmMemory ?? backend.wasm.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory))
    throw new Error('fiber-vl wasm kernels: cannot find the memory of tfjs-backend-wasm');
  return { memory, malloc: (n) => backend.wasm._malloc(n), free: (p) => backend.wasm._free(p) };
}

/**
 * Starts the kernels on the current tfjs-backend-wasm instance with `threads` threads (capped to
 * one where tfjs' memory is not shared). Called by initBackend('wasm'); idempotent.
 */
export function initWasmKernels(threads: number): Promise<WasmKernelInfo> {
  pending ??= (async () => {
    const backend = tf.findBackend('wasm');
    if (!isWasmBackend(backend)) throw new Error('fiber-vl wasm kernels: the wasm backend is not tfjs-backend-wasm');
    const heap = hostHeap(backend);
    const shared = typeof SharedArrayBuffer !== 'undefined' && heap.memory.buffer instanceof SharedArrayBuffer;
    const relaxedBytes = decode(shared ? KERNEL_BINARIES.threadsRelaxed : KERNEL_BINARIES.relaxed);
    const relaxedSimd = await relaxedSimdAvailable(relaxedBytes);
    const bytes = relaxedSimd ? relaxedBytes : decode(shared ? KERNEL_BINARIES.threadsSimd : KERNEL_BINARIES.simd);
    const module = await WebAssembly.compile(bytes);
    const p = await KernelPool.create(module, heap, shared ? threads : 1);
    if (p.exports.fk_abi() !== ABI) {
      p.dispose();
      throw new Error(`fiber-vl wasm kernels: module ABI ${p.exports.fk_abi()}, expected ${ABI}`);
    }
    registerKernels();
    pool = p;
    info = { threads: p.threads, relaxedSimd };
    return info;
  })();
  pending.catch(() => (pending = undefined));
  return pending;
}

/** The running kernels' configuration, or undefined before initWasmKernels. */
export function wasmKernelInfo(): WasmKernelInfo | undefined {
  return info;
}

/** Turns the wasm kernels off (true composite tfjs ops everywhere) or back on, e.g. to compare. */
export function setWasmKernelsEnabled(on: boolean): void {
  enabled = on;
}

/** Whether the ops route to the wasm kernels now (wasm backend current, kernels started and enabled). */
export function wasmKernelsActive(): boolean {
  return enabled && pool !== undefined && tf.getBackend() === 'wasm';
}

const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);
const floatBits = (x: number) => ((f32[0] = x), i32[0]);

function offsetOf(backend: WasmBackendLike, t: tf.TensorInfo | undefined): number {
  if (!t) return 0;
  const d = backend.dataIdMap.get(t.dataId);
  if (!d) throw new Error('fiber-vl wasm kernels: a tensor is not on the wasm backend');
  return d.memoryOffset;
}

function backendOf(b: unknown): WasmBackendLike {
  if (!isWasmBackend(b) || !pool)
    throw new Error('fiber-vl wasm kernels: not started (initBackend({ backend: "wasm" }))');
  return b;
}

function input(inputs: tf.NamedTensorInfoMap, name: string): tf.TensorInfo {
  const t = inputs[name];
  if (!t) throw new Error(`fiber-vl wasm kernels: missing input "${name}"`);
  return t;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Batch layout of a (possibly batched) product, or undefined where the kernel does not cover it. */
export interface GemmShape {
  batch: number;
  M: number;
  N: number;
  K: number;
  aBatchStride: number;
  bBatchStride: number;
  outShape: number[];
}

/**
 * Shapes of op(a) @ op(b) for a [..., M, K] (or [..., K, M] transposed) and b [..., K, N] (or
 * [..., N, K]); batch dims equal on both sides, or absent on one. Throws on mismatched K.
 */
export function gemmShape(a: number[], b: number[], transposeA: boolean, transposeB: boolean): GemmShape | undefined {
  if (a.length < 2 || b.length < 2) return undefined;
  const [a0, a1] = a.slice(-2);
  const [b0, b1] = b.slice(-2);
  const [M, K] = transposeA ? [a1, a0] : [a0, a1];
  const [Kb, N] = transposeB ? [b1, b0] : [b0, b1];
  if (K !== Kb) {
    throw new RangeError(
      `matmul: inner dimensions differ: [${a.join(', ')}]${transposeA ? '^T' : ''} @ [${b.join(', ')}]${transposeB ? '^T' : ''}`,
    );
  }
  const ba = a.slice(0, -2);
  const bb = b.slice(0, -2);
  let outBatch: number[] | undefined;
  if (ba.length === bb.length && ba.every((d, i) => d === bb[i])) outBatch = ba;
  else if (size(ba) === 1 && bb.length >= ba.length) outBatch = bb;
  else if (size(bb) === 1 && ba.length >= bb.length) outBatch = ba;
  if (!outBatch) return undefined;
  const batch = size(outBatch);
  return {
    batch,
    M,
    N,
    K,
    aBatchStride: size(ba) === batch && batch > 1 ? M * K : 0,
    bBatchStride: size(bb) === batch && batch > 1 ? K * N : 0,
    outShape: [...outBatch, M, N],
  };
}

/** What tfjs passes a kernel function (tf.KernelFunc's argument). */
type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

function matMulKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const be = backendOf(backend);
  const [a, b, bias] = [input(inputs, 'a'), input(inputs, 'b'), inputs.bias];
  const transposeA = attrs?.transposeA === true;
  const transposeB = attrs?.transposeB === true;
  const s = gemmShape(a.shape, b.shape, transposeA, transposeB);
  if (!s)
    throw new RangeError(`FiberMatMul: batch dims of [${a.shape.join(', ')}] and [${b.shape.join(', ')}] do not match`);
  const out = be.makeOutput(s.outShape, 'float32');
  if (size(s.outShape) === 0) return out;
  const { batch, M, N, K } = s;
  const args = [
    batch,
    M,
    N,
    K,
    offsetOf(be, a),
    transposeA ? 1 : K,
    transposeA ? M : 1,
    s.aBatchStride,
    offsetOf(be, b),
    transposeB ? 1 : N,
    transposeB ? K : 1,
    s.bBatchStride,
    offsetOf(be, out),
    N,
    M * N,
    offsetOf(be, bias),
    0,
  ];
  const flops = 2 * batch * M * N * K;
  pool!.run(OP.gemm, args, {
    threads: flops >= PARALLEL_FLOPS ? pool!.threads : 1,
    scratchFloats: pool!.exports.fk_gemm_scratch(),
  });
  return out;
}

function windowAttentionKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const be = backendOf(backend);
  const [qkv, bias] = [input(inputs, 'qkv'), inputs.bias];
  const [B, H, W, C3] = qkv.shape;
  const heads = Number(attrs?.numHeads);
  const w = Number(attrs?.windowSize);
  const C = C3 / 3;
  const out = be.makeOutput([B, H, W, C], 'float32');
  if (size(out.shape) === 0) return out;
  // the kernel starts S^T from the bias, key-major: [heads, keys padded to 4, queries padded to 8]
  const n = w * w;
  const biasT = be.makeOutput([heads, Math.ceil(n / 4) * 4, Math.ceil(n / 8) * 8], 'float32');
  try {
    const threads = heads * n * n >= PARALLEL_ELEMENTS ? pool!.threads : 1;
    pool!.run(OP.windowBiasT, [bias ? offsetOf(be, bias) : 0, offsetOf(be, biasT), heads, n], { threads });
    const args = [
      offsetOf(be, qkv),
      offsetOf(be, biasT),
      offsetOf(be, out),
      B,
      H,
      W,
      C,
      heads,
      w,
      Number(attrs?.shift),
      floatBits(Number(attrs?.scale)),
    ];
    pool!.run(OP.windowAttention, args, { scratchFloats: pool!.exports.fk_attention_scratch(n, C / heads) });
  } finally {
    be.disposeData(biasT.dataId);
  }
  return out;
}

function layerNormKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const be = backendOf(backend);
  const [x, weight, bias] = [input(inputs, 'x'), inputs.weight, inputs.bias];
  const dim = x.shape[x.shape.length - 1];
  const out = be.makeOutput(x.shape, 'float32');
  const n = size(x.shape);
  if (n === 0) return out;
  const args = [
    offsetOf(be, x),
    offsetOf(be, weight),
    offsetOf(be, bias),
    offsetOf(be, out),
    n / dim,
    dim,
    floatBits(Number(attrs?.eps)),
  ];
  pool!.run(OP.layerNorm, args, { threads: n >= PARALLEL_ELEMENTS ? pool!.threads : 1 });
  return out;
}

function geluKernel({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const be = backendOf(backend);
  const x = input(inputs, 'x');
  const out = be.makeOutput(x.shape, 'float32');
  const n = size(x.shape);
  if (n === 0) return out;
  pool!.run(OP.gelu, [offsetOf(be, x), offsetOf(be, out), n], { threads: n >= PARALLEL_ELEMENTS ? pool!.threads : 1 });
  return out;
}

/** LayerNorm backward: [dx, dweight, dbias] in two passes (rows, then columns), the row stats in between. */
function layerNormGradKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const be = backendOf(backend);
  const [x, weight, dy] = [input(inputs, 'x'), inputs.weight, input(inputs, 'dy')];
  const dim = x.shape[x.shape.length - 1];
  const n = size(x.shape);
  const rows = dim === 0 ? 0 : n / dim;
  const dx = be.makeOutput(x.shape, 'float32');
  const dw = be.makeOutput([dim], 'float32');
  const db = be.makeOutput([dim], 'float32');
  if (n === 0) return [dx, dw, db];
  const stats = be.makeOutput([rows, 2], 'float32');
  try {
    const threads = n >= PARALLEL_ELEMENTS ? pool!.threads : 1;
    pool!.run(
      OP.layerNormGradX,
      [
        offsetOf(be, x),
        offsetOf(be, weight),
        offsetOf(be, dy),
        offsetOf(be, dx),
        offsetOf(be, stats),
        rows,
        dim,
        floatBits(Number(attrs?.eps)),
      ],
      { threads },
    );
    pool!.run(
      OP.layerNormGradW,
      [offsetOf(be, x), offsetOf(be, dy), offsetOf(be, stats), offsetOf(be, dw), offsetOf(be, db), rows, dim],
      { threads },
    );
  } finally {
    be.disposeData(stats.dataId);
  }
  return [dx, dw, db];
}

function geluGradKernel({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const be = backendOf(backend);
  const [x, dy] = [input(inputs, 'x'), input(inputs, 'dy')];
  const out = be.makeOutput(x.shape, 'float32');
  const n = size(x.shape);
  if (n === 0) return out;
  pool!.run(OP.geluGrad, [offsetOf(be, x), offsetOf(be, dy), offsetOf(be, out), n], {
    threads: n >= PARALLEL_ELEMENTS ? pool!.threads : 1,
  });
  return out;
}

/** The AdamW update's kernel (wasm only; ops/optim.ts runs tfjs ops elsewhere). */
export const ADAMW_KERNEL = 'FiberAdamW';

/** One AdamW update (ops/optim.ts): [w', m', v'] from w, g, m, v in the tfjs ops' float32 steps. */
function adamwKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const be = backendOf(backend);
  const [w, g, m, v] = ['w', 'g', 'm', 'v'].map((k) => input(inputs, k));
  const variant = attrs?.variant;
  if (variant !== 'torch' && variant !== 'transformers')
    throw new RangeError(`FiberAdamW: variant must be "torch" or "transformers", got ${String(variant)}`);
  const f = (k: string) => {
    const value = attrs?.[k];
    if (typeof value !== 'number') throw new RangeError(`FiberAdamW: attr "${k}" missing`);
    return floatBits(value);
  };
  const decay = attrs?.decay === undefined ? 0 : f('decay');
  const scalars = ['beta1', 'oneMinusBeta1', 'beta2', 'oneMinusBeta2', 'sqrtBiasCorrection2', 'eps', 'stepSize'].map(f);
  const outs = Array.from({ length: 3 }, () => be.makeOutput(w.shape, 'float32'));
  const n = size(w.shape);
  if (n === 0) return outs;
  const flags = (variant === 'transformers' ? 1 : 0) | (attrs?.decay !== undefined ? 2 : 0);
  pool!.run(OP.adamw, [...[w, g, m, v, ...outs].map((t) => offsetOf(be, t)), n, flags, decay, ...scalars], {
    threads: n >= PARALLEL_ELEMENTS ? pool!.threads : 1,
  });
  return outs;
}

/** Axes the C transpose handles after reduction (wasm/transpose.c MAX_RANK). */
const TRANSPOSE_MAX_RANK = 8;
/** Reduced ranks up to this stay on tfjs' own Transpose kernel (as fast there); above it tfjs is ~30x slower. */
const TFJS_TRANSPOSE_RANK = 4;
/** A transpose plan's shape or strides padded with zeros to wasm/transpose.c's fixed rank. */
const padRank = (v: number[]) => [...v, ...new Array<number>(TRANSPOSE_MAX_RANK - v.length).fill(0)];

/**
 * tfjs-backend-wasm's Transpose, with the permutations it handles slowly (more than 4 axes once
 * reduced: Swin's [windows, tokens, 3, heads, dim] <-> [3, windows, heads, tokens, dim]) done by
 * wasm/transpose.c on 4-byte dtypes. The output is the same bits either way.
 */
function transposeKernel(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = input(args.inputs, 'x');
    const perm = (args.attrs?.perm ?? []) as number[];
    if (!enabled || !pool || (x.dtype !== 'float32' && x.dtype !== 'int32')) return original(args);
    const reduced = reduceTranspose(x.shape, perm);
    const rank = reduced.shape.length;
    if (rank <= TFJS_TRANSPOSE_RANK || rank > TRANSPOSE_MAX_RANK) return original(args);
    const be = backendOf(args.backend);
    const out = be.makeOutput(
      perm.map((a) => x.shape[a]),
      x.dtype,
    );
    const n = size(x.shape);
    if (n === 0) return out;
    pool.run(
      OP.transpose,
      [offsetOf(be, x), offsetOf(be, out), rank, ...padRank(reduced.shape), ...padRank(reduced.inStrides)],
      {
        threads: n >= PARALLEL_ELEMENTS ? pool.threads : 1,
      },
    );
    return out;
  };
}

/**
 * tfjs-backend-wasm's GatherV2, with the row gathers of 4-byte dtypes (batchDims 0) done by
 * wasm/gather.c: one copy per gathered row where tfjs computes every element's source index.
 * Swin gathers its relative-position bias this way in every block. Indices out of range go to
 * tfjs' kernel, which names them.
 */
function gatherKernel(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = input(args.inputs, 'x');
    const indices = input(args.inputs, 'indices');
    const batchDims = Number(args.attrs?.batchDims ?? 0);
    if (!enabled || !pool || batchDims !== 0 || indices.dtype !== 'int32') return original(args);
    if (x.dtype !== 'float32' && x.dtype !== 'int32') return original(args);
    const given = Number(args.attrs?.axis ?? 0);
    const axis = given < 0 ? given + x.shape.length : given;
    const be = backendOf(args.backend);
    const dim = x.shape[axis];
    const values = be.readSync(indices.dataId);
    if (!(values instanceof Int32Array)) return original(args);
    for (let i = 0; i < values.length; i++) if (!(values[i] >= 0 && values[i] < dim)) return original(args);
    const out = be.makeOutput([...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)], x.dtype);
    const outer = size(x.shape.slice(0, axis));
    const inner = size(x.shape.slice(axis + 1));
    const n = outer * values.length * inner;
    if (n === 0) return out;
    pool.run(OP.gather, [offsetOf(be, x), offsetOf(be, indices), offsetOf(be, out), outer, dim, values.length, inner], {
      threads: n >= PARALLEL_ELEMENTS ? pool.threads : 1,
    });
    return out;
  };
}

/**
 * A reduction's layout with unit axes dropped and neighbouring axes of one kind merged:
 * [outer, reduced, inner] where the reduced axes are one block, or undefined where they are not
 * (e.g. [R, K, R]). Exported for tests.
 */
export function middleReduction(
  shape: readonly number[],
  axes: readonly number[],
): { outer: number; reduced: number; inner: number } | undefined {
  const groups: { reduced: boolean; size: number }[] = [];
  for (let a = 0; a < shape.length; a++) {
    if (shape[a] === 1) continue;
    const reduced = axes.includes(a);
    const last = groups.at(-1);
    if (last && last.reduced === reduced) last.size *= shape[a];
    else groups.push({ reduced, size: shape[a] });
  }
  const r = groups.findIndex((g) => g.reduced);
  if (r < 0 || groups.filter((g) => g.reduced).length > 1) return undefined;
  return { outer: r > 0 ? groups[0].size : 1, reduced: groups[r].size, inner: groups[r + 1]?.size ?? 1 };
}

/** How many times each replaced tfjs kernel took fiber-vl's path (tests: the path ran, no fallback). */
const runs = new Map<string, number>();
const ran = (kernel: string) => runs.set(kernel, (runs.get(kernel) ?? 0) + 1);
export function wasmKernelRuns(kernel: string): number {
  return runs.get(kernel) ?? 0;
}

/**
 * tfjs-backend-wasm's Sum, with float32 sums over a block of axes that are not the innermost (a
 * bias gradient: [rows, C] over the rows) done by wasm/reduce.c without the transpose tfjs makes
 * first (a full copy of the input, most of a bias gradient's time). Same order of additions, same
 * bits.
 */
function sumKernel(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = input(args.inputs, 'x');
    if (!enabled || !pool || x.dtype !== 'float32') return original(args);
    const axes = tf.util.parseAxisParam(args.attrs?.axis as number | number[], x.shape);
    const layout = middleReduction(x.shape, axes);
    // reduced axes innermost: tfjs sums without a transpose
    const n = size(x.shape);
    if (!layout || layout.inner === 1 || n === 0) return original(args);
    const be = backendOf(args.backend);
    const keepDims = args.attrs?.keepDims === true;
    const outShape = x.shape.flatMap((d, a) => (axes.includes(a) ? (keepDims ? [1] : []) : [d]));
    const out = be.makeOutput(outShape, 'float32');
    pool.run(OP.sumMiddle, [offsetOf(be, x), offsetOf(be, out), layout.outer, layout.reduced, layout.inner], {
      threads: n >= PARALLEL_ELEMENTS ? pool.threads : 1,
    });
    ran('Sum');
    return out;
  };
}

/** Bytes per element in tfjs-backend-wasm's memory of the dtypes the copy kernels move. */
const ELEMENT_BYTES: Partial<Record<tf.DataType, number>> = { float32: 4, int32: 4, bool: 1 };

/**
 * Copies the box x[begin .. begin + extent) (every axis given) into `out`, one memmove per
 * contiguous run of the source.
 */
function copyBox(be: WasmBackendLike, x: tf.TensorInfo, begin: number[], extent: number[], out: tf.TensorInfo): void {
  const bytes = ELEMENT_BYTES[x.dtype] ?? 0;
  const heap = new Uint8Array(hostHeap(be).memory.buffer);
  const src = offsetOf(be, x);
  const dst = offsetOf(be, out);
  forEachBoxRun(x.shape, begin, extent, (from, to, run) =>
    heap.copyWithin(dst + to * bytes, src + from * bytes, src + (from + run) * bytes),
  );
}

/**
 * tfjs' Slice, Unpack or SplitV with each box (kernelBoxes) copied by copyBox where the input has a
 * dtype copyBox moves (4- and 1-byte) and the kernels are on: tfjs' kernels copy the whole input
 * out of wasm memory (readSync) for every slice, then the slice back in (Swin's q, k, v: three
 * copies of qkv).
 */
function copyingKernel(kernel: BoxKernel): (original: tf.KernelFunc) => tf.KernelFunc {
  return (original) => (args) => {
    const x = input(args.inputs, boxKernelInput(kernel));
    if (!enabled || !pool || ELEMENT_BYTES[x.dtype] === undefined) return original(args);
    const be = backendOf(args.backend);
    const outs = kernelBoxes(kernel, x, args.attrs ?? {}).map(({ begin, extent, shape }) => {
      const out = be.makeOutput(shape, x.dtype);
      copyBox(be, x, begin, extent, out);
      return out;
    });
    return kernel === 'Slice' ? outs[0] : outs;
  };
}

/**
 * tfjs-backend-wasm's Conv2DBackpropInput (the input gradient of a convolution, NHWC) done by
 * wasm/conv.c: tfjs' loop computes one element at a time with strided filter loads; conv.c adds
 * each filter tap to a row of input channels, 16, 4 or 1 per SIMD pass, from a transposed copy of
 * the filter, and splits the rows over the threads. Same order of float32 multiplies and adds per
 * element, same bits. The fine-grained head's convolutions spent about a tenth of a training step
 * in tfjs' loop.
 */
function conv2dBackpropInputKernel(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const dy = input(args.inputs, 'dy');
    const filter = input(args.inputs, 'filter');
    const attrs = args.attrs ?? {};
    const format = attrs.dataFormat ?? 'NHWC';
    if (!enabled || !pool || dy.dtype !== 'float32' || filter.dtype !== 'float32' || format !== 'NHWC')
      return original(args);
    if (size(dy.shape) === 0 || size(filter.shape) === 0) return original(args);
    const info = tf.backend_util.computeConv2DInfo(
      attrs.inputShape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      attrs.strides as number | [number, number],
      1,
      attrs.pad as 'same' | 'valid' | number,
      attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
      false,
      'channelsLast',
    );
    const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
    const { filterHeight: fh, filterWidth: fw, strideHeight, strideWidth } = info;
    // shapes that disagree (only a direct runKernel call can pass them) get tfjs' checks and errors
    if (dy.shape.join() !== [batchSize, outHeight, outWidth, outChannels].join()) return original(args);
    if (filter.shape.join() !== [fh, fw, inChannels, outChannels].join()) return original(args);
    const be = backendOf(args.backend);
    const out = be.makeOutput(info.inShape, 'float32');
    if (size(out.shape) === 0) return out;
    // [fh, fw, in, out] -> [fh, fw, out, in]; the same layout when either channel count is 1
    const t = reduceTranspose(filter.shape, [0, 1, 3, 2]);
    let wt: tf.TensorInfo | undefined;
    try {
      if (t.shape.length > 1) wt = be.makeOutput([fh, fw, outChannels, inChannels], 'float32');
      const flops = 2 * size(dy.shape) * inChannels * fh * fw;
      const threads = flops >= PARALLEL_FLOPS ? pool.threads : 1;
      if (wt) {
        pool.run(
          OP.transpose,
          [offsetOf(be, filter), offsetOf(be, wt), t.shape.length, ...padRank(t.shape), ...padRank(t.inStrides)],
          { threads: size(filter.shape) >= PARALLEL_ELEMENTS ? pool.threads : 1 },
        );
      }
      pool.run(
        OP.conv2dBackpropInput,
        [
          offsetOf(be, dy),
          offsetOf(be, wt ?? filter),
          offsetOf(be, out),
          batchSize,
          inHeight,
          inWidth,
          inChannels,
          outHeight,
          outWidth,
          outChannels,
          fh,
          fw,
          strideHeight,
          strideWidth,
          fh - 1 - info.padInfo.top,
          fw - 1 - info.padInfo.left,
        ],
        { threads },
      );
    } catch (e) {
      be.disposeData(out.dataId);
      throw e;
    } finally {
      if (wt) be.disposeData(wt.dataId);
    }
    ran('Conv2DBackpropInput');
    return out;
  };
}

/**
 * tfjs-backend-wasm's Identity shares the input's data (one more reference, as Reshape does and
 * tfjs-cpu's Identity) where tfjs copies it: the engine clones every tensor a gradient saves, so
 * the copy ran on most inputs of every op under a gradient tape. No kernel writes into its inputs.
 */
function identityKernel(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = input(args.inputs, 'x');
    if (!enabled || !pool || x.dtype === 'string') return original(args);
    backendOf(args.backend).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}

let registered = false;
function registerKernels(): void {
  if (registered) return;
  registered = true;
  const kernels: [string, tf.KernelFunc][] = [
    [KERNEL_NAMES.matMul, matMulKernel],
    [KERNEL_NAMES.windowAttention, windowAttentionKernel],
    [KERNEL_NAMES.layerNorm, layerNormKernel],
    [KERNEL_NAMES.gelu, geluKernel],
    [KERNEL_NAMES.layerNormGrad, layerNormGradKernel],
    [KERNEL_NAMES.geluGrad, geluGradKernel],
    [ADAMW_KERNEL, adamwKernel],
  ];
  for (const [kernelName, kernelFunc] of kernels) tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
  // tfjs' own kernels stay the fallbacks of these (their setup, wasm function bindings, has run)
  for (const [name, wrap] of [
    ['Transpose', transposeKernel],
    ['GatherV2', gatherKernel],
    ['Sum', sumKernel],
    ['Slice', copyingKernel('Slice')],
    ['Unpack', copyingKernel('Unpack')],
    ['SplitV', copyingKernel('SplitV')],
    ['Identity', identityKernel],
    ['Conv2DBackpropInput', conv2dBackpropInputKernel],
  ] as const) {
    const kernel = tf.getKernel(name, 'wasm');
    if (!kernel) continue;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ ...kernel, kernelFunc: wrap(kernel.kernelFunc) });
  }
}

// fiber-vl's own WGSL kernels, registered into tfjs-backend-webgpu under the same kernel names as
// the wasm kernels (kernels/wasm.ts), so that the op entry points and the gradients registered
// there apply unchanged: a tiled GEMM (matmul / linear with transposes read in place and the bias
// in the epilogue, batched products), Swin's shifted-window attention in one pass, LayerNorm and
// GELU with their backward kernels. Each is a tfjs WebGPUProgram run by backend.runWebGPUProgram.
//
// tfjs-backend-webgpu registers itself on import only where navigator.gpu exists, so this module
// imports its types only; initBackend('webgpu') calls registerWebGpuKernels() once it has started.
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { tf } from '../tf.js';
import { platform } from '#platform';
import { KERNEL_NAMES, gemmShape } from './wasm.js';

let enabled = platform.env('FIBER_WEBGPU_KERNELS') !== '0';
let registered = false;

/** Turns the WebGPU kernels off (true composite tfjs ops everywhere) or back on, e.g. to compare. */
export function setWebGpuKernelsEnabled(on: boolean): void {
  enabled = on;
}

/** Whether the ops route to the WGSL kernels now (webgpu backend current, kernels registered and enabled). */
export function webgpuKernelsActive(): boolean {
  return enabled && registered && tf.getBackend() === 'webgpu';
}

/** Largest window (w * w tokens) the attention kernel covers: one invocation per query token. */
export const MAX_WINDOW_TOKENS = 256;

type Uniforms = { type: 'int32' | 'float32'; data: number[] }[];
/** What tfjs passes a kernel function (tf.KernelFunc's argument). */
type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

function isWebGpuBackend(b: unknown): b is WebGPUBackend {
  return (
    typeof b === 'object' &&
    b !== null &&
    'runWebGPUProgram' in b &&
    typeof b.runWebGPUProgram === 'function' &&
    'disposeData' in b
  );
}

function backendOf(b: unknown): WebGPUBackend {
  if (!isWebGpuBackend(b)) throw new Error('fiber-vl webgpu kernels: the backend is not tfjs-backend-webgpu');
  return b;
}

function input(inputs: tf.NamedTensorInfoMap, name: string): tf.TensorInfo {
  const t = inputs[name];
  if (!t) throw new Error(`fiber-vl webgpu kernels: missing input "${name}"`);
  if (t.dtype !== 'float32') throw new TypeError(`fiber-vl webgpu kernels: input "${name}" is ${t.dtype}, not float32`);
  return t;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
/** The same data seen with another shape (tfjs' reshape does no more); tfjs uniforms take rank <= 6. */
const view = (t: tf.TensorInfo, shape: number[]): tf.TensorInfo => ({ dataId: t.dataId, shape, dtype: t.dtype });

// Every program's entry is main(index) (tfjs' flat dispatch layout; the element-wise programs use
// that index). Those that own a workgroup each (a GEMM tile, a window, a row) take this flat
// workgroup index instead, whatever shape tfjs gives the dispatch: it folds more than 65535
// workgroups into 2-D or 3-D.
const WORKGROUP_INDEX = `
  fn workgroupIndex() -> i32 {
    return i32(workgroupId.z * numWorkgroups.x * numWorkgroups.y + workgroupId.y * numWorkgroups.x + workgroupId.x);
  }`;

/** erf by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7), as the wasm kernels, for the exact GELU. */
const ERF = `
  fn erf(z : f32) -> f32 {
    let az = abs(z);
    let t = 1.0 / fma(az, 0.3275911, 1.0);
    let p = t * fma(fma(fma(fma(1.061405429, t, -1.453152027), t, 1.421413741), t, -0.284496736), t, 0.254829592);
    return sign(z) * (1.0 - p * exp(-az * az));
  }`;

abstract class FiberProgram implements WebGPUProgram {
  abstract variableNames: string[];
  abstract outputShape: number[];
  abstract shaderKey: string;
  abstract dispatch: [number, number, number];
  abstract workgroupSize: [number, number, number];
  dispatchLayout = { x: [0] };
  abstract getUserCode(): string;
}

const FLAT_WG = 256;
/** Element-wise programs: one invocation per output element; tfjs passes the flat index. */
abstract class ElementwiseProgram extends FiberProgram {
  outputShape: number[];
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [FLAT_WG, 1, 1];
  size = true;

  constructor(n: number) {
    super();
    this.outputShape = [n];
    this.dispatch = [Math.ceil(n / FLAT_WG), 1, 1];
  }
}

// ---- GEMM ------------------------------------------------------------------------------------
// A workgroup of 16 x 16 invocations computes a BM x BM = 16 T x 16 T output tile; K advances in
// steps of 16 through workgroup memory (each operand's tile stored k-major, rows padded by one
// float against bank conflicts). Invocation (tx, ty) owns rows ty + 16 i and columns tx + 16 j, so
// neighbouring invocations read neighbouring floats of the B tile and write neighbouring outputs.
// Transposed operands change only the load indexing (loads stay coalesced along the operand's
// contiguous axis). 64 x 64 tiles (T = 4: 16 outputs per invocation, 8 KB of workgroup memory)
// where the output has at least 128 of them (enough to occupy a large GPU), 32 x 32 otherwise.
// Batch dims: one workgroup per (batch, tile); a broadcast operand has batch stride 0.
const GEMM_BK = 16;

class GemmProgram extends FiberProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [16, 16, 1];
  uniforms =
    'M : i32, N : i32, K : i32, aBatchStride : i32, bBatchStride : i32, tilesN : i32, tiles : i32, batch : i32,';
  readonly tile: number;
  readonly tilesM: number;
  readonly tilesN: number;

  constructor(
    batch: number,
    M: number,
    N: number,
    private readonly transposeA: boolean,
    private readonly transposeB: boolean,
    private readonly hasBias: boolean,
  ) {
    super();
    this.outputShape = [batch, M, N];
    this.variableNames = hasBias ? ['A', 'B', 'bias'] : ['A', 'B'];
    const big = batch * Math.ceil(M / 64) * Math.ceil(N / 64) >= 128;
    this.tile = big ? 4 : 2;
    const span = 16 * this.tile;
    this.tilesM = Math.ceil(M / span);
    this.tilesN = Math.ceil(N / span);
    this.dispatch = [batch * this.tilesM * this.tilesN, 1, 1];
    this.shaderKey = `fiberGemm_${this.tile}_${transposeA ? 1 : 0}${transposeB ? 1 : 0}${hasBias ? 1 : 0}`;
  }

  getUserCode(): string {
    const T = this.tile;
    const BM = 16 * T;
    const loads = (BM * GEMM_BK) / 256;
    // (row, k) of load e, coalesced along the operand's contiguous axis; and the operand element
    const aRowK = this.transposeA ? 'let r = e % BM; let k = e / BM;' : 'let k = e % BK; let r = e / BK;';
    const aAt = this.transposeA ? 'kk * uniforms.M + rr' : 'rr * uniforms.K + kk';
    const bColK = this.transposeB ? 'let k = e % BK; let c = e / BK;' : 'let c = e % BM; let k = e / BM;';
    const bAt = this.transposeB ? 'cc * uniforms.K + kk' : 'kk * uniforms.N + cc';
    return `
  const T = ${T};
  const BM = ${BM};
  const BK = ${GEMM_BK};
  const LD = ${BM + 1};
  var<workgroup> As : array<f32, ${GEMM_BK * (BM + 1)}>;
  var<workgroup> Bs : array<f32, ${GEMM_BK * (BM + 1)}>;
  ${WORKGROUP_INDEX}

  fn loadA(base : i32, rr : i32, kk : i32) -> f32 {
    if (rr >= uniforms.M || kk >= uniforms.K) { return 0.0; }
    return A[base + ${aAt}];
  }
  fn loadB(base : i32, cc : i32, kk : i32) -> f32 {
    if (cc >= uniforms.N || kk >= uniforms.K) { return 0.0; }
    return B[base + ${bAt}];
  }

  fn main(index : i32) {
    let wg = workgroupIndex();
    let batch = min(wg / uniforms.tiles, uniforms.batch - 1);
    let tile = wg % uniforms.tiles;
    let m0 = (tile / uniforms.tilesN) * BM;
    let n0 = (tile % uniforms.tilesN) * BM;
    let tx = i32(localId.x);
    let ty = i32(localId.y);
    let lid = i32(localIndex);
    let aBase = batch * uniforms.aBatchStride;
    let bBase = batch * uniforms.bBatchStride;
    var acc : array<array<f32, T>, T>;
    for (var k0 = 0; k0 < uniforms.K; k0 += BK) {
      for (var l = 0; l < ${loads}; l++) {
        let e = lid + l * 256;
        { ${aRowK} As[k * LD + r] = loadA(aBase, m0 + r, k0 + k); }
        { ${bColK} Bs[k * LD + c] = loadB(bBase, n0 + c, k0 + k); }
      }
      workgroupBarrier();
      for (var k = 0; k < BK; k++) {
        var a : array<f32, T>;
        for (var i = 0; i < T; i++) { a[i] = As[k * LD + ty + 16 * i]; }
        for (var j = 0; j < T; j++) {
          let b = Bs[k * LD + tx + 16 * j];
          for (var i = 0; i < T; i++) { acc[i][j] = fma(a[i], b, acc[i][j]); }
        }
      }
      workgroupBarrier();
    }
    if (wg >= uniforms.tiles * uniforms.batch) { return; }
    let outBase = batch * uniforms.M * uniforms.N;
    for (var i = 0; i < T; i++) {
      let m = m0 + ty + 16 * i;
      for (var j = 0; j < T; j++) {
        let n = n0 + tx + 16 * j;
        if (m < uniforms.M && n < uniforms.N) {
          result[outBase + m * uniforms.N + n] = acc[i][j]${this.hasBias ? ' + bias[n]' : ''};
        }
      }
    }
  }`;
  }
}

/** [rows * N] filled with bias [N] row after row. */
class BiasRowsProgram extends ElementwiseProgram {
  variableNames = ['bias'];
  shaderKey = 'fiberBiasRows';

  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index >= uniforms.size) { return; }
    result[index] = bias[index % uniforms.biasShape];
  }`;
  }
}

function matMulKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const be = backendOf(backend);
  const [a, b] = [input(inputs, 'a'), input(inputs, 'b')];
  const bias = inputs.bias ? input(inputs, 'bias') : undefined;
  const transposeA = attrs?.transposeA === true;
  const transposeB = attrs?.transposeB === true;
  const s = gemmShape(a.shape, b.shape, transposeA, transposeB);
  if (!s)
    throw new RangeError(`FiberMatMul: batch dims of [${a.shape.join(', ')}] and [${b.shape.join(', ')}] do not match`);
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== s.N))
    throw new RangeError(`FiberMatMul: bias must be [${s.N}], got [${bias.shape.join(', ')}]`);
  const { batch, M, N, K } = s;
  if (K === 0) {
    // An empty sum (WebGPU cannot bind the empty operands): zeros, or the bias on every row.
    const n = size(s.outShape);
    if (!bias) return be.makeTensorInfo(s.outShape, 'float32', new Float32Array(n));
    return view(be.runWebGPUProgram(new BiasRowsProgram(n), [bias], 'float32'), s.outShape);
  }
  const program = new GemmProgram(batch, M, N, transposeA, transposeB, bias !== undefined);
  const aView = view(a, [s.aBatchStride ? batch : 1, ...a.shape.slice(-2)]);
  const bView = view(b, [s.bBatchStride ? batch : 1, ...b.shape.slice(-2)]);
  const uniforms: Uniforms = [
    { type: 'int32', data: [M] },
    { type: 'int32', data: [N] },
    { type: 'int32', data: [K] },
    { type: 'int32', data: [s.aBatchStride] },
    { type: 'int32', data: [s.bBatchStride] },
    { type: 'int32', data: [program.tilesN] },
    { type: 'int32', data: [program.tilesM * program.tilesN] },
    { type: 'int32', data: [batch] },
  ];
  const out = be.runWebGPUProgram(program, bias ? [aView, bView, bias] : [aView, bView], 'float32', uniforms);
  return view(out, s.outShape);
}

// ---- shifted-window attention ------------------------------------------------------------------
// One workgroup per (image, window, head), one invocation per query token of the window. The
// window's keys and values pass through workgroup memory in chunks of KC tokens with an online
// softmax (running max and sum, flash-attention style), so any window size fits in 8 KB. Token
// indices fold in the cyclic shift and the partition: window token t of window (wy, wx) sits at
// ((wy w + t / w + s) mod H, (wx w + t % w + s) mod W) of the input map, and its output goes back
// to the same place. Scores are (q scale) . k + bias[h, i, j] + (-100 where the shifted-map
// regions of i and j differ), as Swin adds them.
class WindowAttentionProgram extends FiberProgram {
  variableNames = ['qkv', 'bias'];
  outputShape: number[];
  shaderKey: string;
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  uniforms = 'H : i32, W : i32, C : i32, heads : i32, shift : i32, nwx : i32, nwy : i32, units : i32, scale : f32,';
  private readonly chunk: number;

  constructor(
    outputShape: number[],
    units: number,
    private readonly window: number,
    private readonly hd: number,
  ) {
    super();
    this.outputShape = outputShape;
    const n = window * window;
    this.workgroupSize = [Math.min(MAX_WINDOW_TOKENS, Math.ceil(n / 32) * 32), 1, 1];
    this.chunk = Math.max(1, Math.min(32, Math.floor(1024 / hd), n));
    this.dispatch = [units, 1, 1];
    this.shaderKey = `fiberWindowAttention_${window}_${hd}`;
  }

  getUserCode(): string {
    return `
  const WS = ${this.window};
  const NT = ${this.window * this.window};
  const HD = ${this.hd};
  const KC = ${this.chunk};
  const WG = ${this.workgroupSize[0]};
  var<workgroup> Ks : array<f32, ${this.chunk * this.hd}>;
  var<workgroup> Vs : array<f32, ${this.chunk * this.hd}>;
  var<workgroup> Kr : array<i32, ${this.chunk}>;
  ${WORKGROUP_INDEX}

  // Swin's regions of the shifted map along one axis: slices (0, -w), (-w, -s), (-s, None).
  fn region(p : i32, extent : i32) -> i32 {
    return select(select(2, 1, p < extent - uniforms.shift), 0, p < extent - WS);
  }
  // Row offset (token index into [B, H, W]) and region of window token t.
  fn token(b : i32, wy : i32, wx : i32, t : i32) -> vec2<i32> {
    let py = wy * WS + t / WS;
    let px = wx * WS + t % WS;
    let gy = (py + uniforms.shift) % uniforms.H;
    let gx = (px + uniforms.shift) % uniforms.W;
    return vec2<i32>((b * uniforms.H + gy) * uniforms.W + gx, region(py, uniforms.H) * 3 + region(px, uniforms.W));
  }

  fn main(index : i32) {
    let wg = workgroupIndex();
    let u = min(wg, uniforms.units - 1);
    let h = u % uniforms.heads;
    let win = u / uniforms.heads;
    let wx = win % uniforms.nwx;
    let wy = (win / uniforms.nwx) % uniforms.nwy;
    let b = win / (uniforms.nwx * uniforms.nwy);
    let C = uniforms.C;
    let lid = i32(localIndex);
    let i = min(lid, NT - 1);
    let ti = token(b, wy, wx, i);
    var q : array<f32, HD>;
    for (var d = 0; d < HD; d++) { q[d] = qkv[ti.x * 3 * C + h * HD + d] * uniforms.scale; }
    var acc : array<f32, HD>;
    var m = -3.402823e+38;
    var l = 0.0;
    for (var k0 = 0; k0 < NT; k0 += KC) {
      for (var e = lid; e < KC * HD; e += WG) {
        let j = k0 + e / HD;
        if (j < NT) {
          let tj = token(b, wy, wx, j);
          let at = tj.x * 3 * C + C + h * HD + e % HD;
          Ks[e] = qkv[at];
          Vs[e] = qkv[at + C];
          if (e % HD == 0) { Kr[e / HD] = tj.y; }
        }
      }
      workgroupBarrier();
      let kn = min(KC, NT - k0);
      var s : array<f32, KC>;
      var cmax = m;
      for (var jj = 0; jj < kn; jj++) {
        var dot = 0.0;
        for (var d = 0; d < HD; d++) { dot = fma(q[d], Ks[jj * HD + d], dot); }
        dot = dot + bias[(h * NT + i) * NT + k0 + jj];
        if (uniforms.shift > 0 && Kr[jj] != ti.y) { dot = dot + -100.0; }
        s[jj] = dot;
        cmax = max(cmax, dot);
      }
      let corr = exp(m - cmax);
      l = l * corr;
      for (var d = 0; d < HD; d++) { acc[d] = acc[d] * corr; }
      for (var jj = 0; jj < kn; jj++) {
        let p = exp(s[jj] - cmax);
        l = l + p;
        for (var d = 0; d < HD; d++) { acc[d] = fma(p, Vs[jj * HD + d], acc[d]); }
      }
      m = cmax;
      workgroupBarrier();
    }
    if (lid < NT && wg < uniforms.units) {
      let o = ti.x * C + h * HD;
      let inv = 1.0 / l;
      for (var d = 0; d < HD; d++) { result[o + d] = acc[d] * inv; }
    }
  }`;
  }
}

function windowAttentionKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const be = backendOf(backend);
  const [qkv, bias] = [input(inputs, 'qkv'), input(inputs, 'bias')];
  const [B, H, W, C3] = qkv.shape;
  const heads = Number(attrs?.numHeads);
  const w = Number(attrs?.windowSize);
  const shift = Number(attrs?.shift);
  const C = C3 / 3;
  const hd = C / heads;
  if (!Number.isInteger(hd) || H % w || W % w || w * w > MAX_WINDOW_TOKENS)
    throw new RangeError(
      `FiberWindowAttention: qkv [${qkv.shape.join(', ')}] with ${heads} heads and window ${w} is not covered`,
    );
  const [nwy, nwx] = [H / w, W / w];
  const units = B * nwy * nwx * heads;
  const program = new WindowAttentionProgram([B, H, W, C], units, w, hd);
  const uniforms: Uniforms = [
    { type: 'int32', data: [H] },
    { type: 'int32', data: [W] },
    { type: 'int32', data: [C] },
    { type: 'int32', data: [heads] },
    { type: 'int32', data: [shift] },
    { type: 'int32', data: [nwx] },
    { type: 'int32', data: [nwy] },
    { type: 'int32', data: [units] },
    { type: 'float32', data: [Number(attrs?.scale)] },
  ];
  return be.runWebGPUProgram(program, [qkv, bias], 'float32', uniforms);
}

// ---- attention (cross-attention of the fusion blocks, RoBERTa, Swin's per-window form) ------------
// softmax((q scale) k^T + bias + mask) v for q [B, H, Lq, D], k [B, H, Lk, D], v [B, H, Lk, Dv],
// bias and mask broadcast to [B, H, Lq, Lk] through strides (0 along their size-1 dims). One
// workgroup per (b, h, block of 64 queries), one invocation per query; keys and values pass
// through workgroup memory in chunks with an online softmax, as in the window kernel.
export const MAX_HEAD_DIM = 256;
const ATTENTION_WG = 64;

/** Element strides of `shape` (rank <= 4) read as [B, H, Lq, Lk], 0 along broadcast dims. */
export function broadcastStrides(shape: number[]): number[] {
  const full = [...new Array<number>(4 - shape.length).fill(1), ...shape];
  const strides = [0, 0, 0, 0];
  let stride = 1;
  for (let i = 3; i >= 0; i--) {
    strides[i] = full[i] === 1 ? 0 : stride;
    stride *= full[i];
  }
  return strides;
}

class AttentionProgram extends FiberProgram {
  variableNames = ['Q', 'K', 'V', 'bias', 'mask'];
  outputShape: number[];
  shaderKey: string;
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [ATTENTION_WG, 1, 1];
  uniforms =
    'heads : i32, Lq : i32, Lk : i32, qBlocks : i32, units : i32, biasStrides : vec4<i32>, maskStrides : vec4<i32>, scale : f32,';
  private readonly chunk: number;

  constructor(
    outputShape: number[],
    units: number,
    private readonly d: number,
    private readonly dv: number,
  ) {
    super();
    this.outputShape = outputShape;
    this.chunk = Math.max(1, Math.min(32, Math.floor(2048 / (d + dv))));
    this.dispatch = [units, 1, 1];
    this.shaderKey = `fiberAttention_${d}_${dv}`;
  }

  getUserCode(): string {
    return `
  const D = ${this.d};
  const DV = ${this.dv};
  const KC = ${this.chunk};
  const WG = ${ATTENTION_WG};
  var<workgroup> Ks : array<f32, ${this.chunk * this.d}>;
  var<workgroup> Vs : array<f32, ${this.chunk * this.dv}>;
  ${WORKGROUP_INDEX}

  fn main(index : i32) {
    let wg = workgroupIndex();
    let u = min(wg, uniforms.units - 1);
    let bh = u / uniforms.qBlocks;
    let h = bh % uniforms.heads;
    let b = bh / uniforms.heads;
    let Lq = uniforms.Lq;
    let Lk = uniforms.Lk;
    let lid = i32(localIndex);
    let row = (u % uniforms.qBlocks) * WG + lid;
    let i = min(row, Lq - 1);
    var q : array<f32, D>;
    let qBase = (bh * Lq + i) * D;
    for (var d = 0; d < D; d++) { q[d] = Q[qBase + d] * uniforms.scale; }
    let bRow = b * uniforms.biasStrides.x + h * uniforms.biasStrides.y + i * uniforms.biasStrides.z;
    let mRow = b * uniforms.maskStrides.x + h * uniforms.maskStrides.y + i * uniforms.maskStrides.z;
    var acc : array<f32, DV>;
    var m = -3.402823e+38;
    var l = 0.0;
    for (var k0 = 0; k0 < Lk; k0 += KC) {
      for (var e = lid; e < KC * D; e += WG) {
        let j = k0 + e / D;
        if (j < Lk) { Ks[e] = K[(bh * Lk + j) * D + e % D]; }
      }
      for (var e = lid; e < KC * DV; e += WG) {
        let j = k0 + e / DV;
        if (j < Lk) { Vs[e] = V[(bh * Lk + j) * DV + e % DV]; }
      }
      workgroupBarrier();
      let kn = min(KC, Lk - k0);
      var s : array<f32, KC>;
      var cmax = m;
      for (var jj = 0; jj < kn; jj++) {
        var dot = 0.0;
        for (var d = 0; d < D; d++) { dot = fma(q[d], Ks[jj * D + d], dot); }
        let j = k0 + jj;
        dot = dot + bias[bRow + j * uniforms.biasStrides.w];
        dot = dot + mask[mRow + j * uniforms.maskStrides.w];
        s[jj] = dot;
        cmax = max(cmax, dot);
      }
      let corr = exp(m - cmax);
      l = l * corr;
      for (var d = 0; d < DV; d++) { acc[d] = acc[d] * corr; }
      for (var jj = 0; jj < kn; jj++) {
        let p = exp(s[jj] - cmax);
        l = l + p;
        for (var d = 0; d < DV; d++) { acc[d] = fma(p, Vs[jj * DV + d], acc[d]); }
      }
      m = cmax;
      workgroupBarrier();
    }
    if (row < Lq && wg < uniforms.units) {
      let o = (bh * Lq + row) * DV;
      let inv = 1.0 / l;
      for (var d = 0; d < DV; d++) { result[o + d] = acc[d] * inv; }
    }
  }`;
  }
}

function attentionKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const be = backendOf(backend);
  const [q, k, v] = [input(inputs, 'q'), input(inputs, 'k'), input(inputs, 'v')];
  const [bias, mask] = [input(inputs, 'bias'), input(inputs, 'mask')];
  const [B, H, Lq, D] = q.shape;
  const [Lk, Dv] = [k.shape[2], v.shape[3]];
  const sameBatch = (t: tf.TensorInfo) => t.shape.length === 4 && t.shape[0] === B && t.shape[1] === H;
  const broadcasts = (t: tf.TensorInfo) =>
    t.shape.length <= 4 && t.shape.every((d, i, all) => d === 1 || d === [B, H, Lq, Lk][i + 4 - all.length]);
  if (!sameBatch(q) || !sameBatch(k) || !sameBatch(v) || k.shape[3] !== D || v.shape[2] !== Lk)
    throw new RangeError(
      `FiberAttention: q, k, v must be [B, H, L, D] with one B, H; got [${q.shape.join(', ')}], [${k.shape.join(', ')}], [${v.shape.join(', ')}]`,
    );
  for (const [name, t] of [
    ['bias', bias],
    ['mask', mask],
  ] as const) {
    if (!broadcasts(t))
      throw new RangeError(
        `FiberAttention: ${name} [${t.shape.join(', ')}] does not broadcast to [${B}, ${H}, ${Lq}, ${Lk}]`,
      );
  }
  if (D === 0 || Lk === 0 || D > MAX_HEAD_DIM || Dv > MAX_HEAD_DIM)
    throw new RangeError(
      `FiberAttention: head dims ${D}, ${Dv} and ${Lk} keys are not covered (1..${MAX_HEAD_DIM}, >= 1)`,
    );
  const qBlocks = Math.ceil(Lq / ATTENTION_WG);
  const units = B * H * qBlocks;
  const program = new AttentionProgram([B, H, Lq, Dv], units, D, Dv);
  const uniforms: Uniforms = [
    { type: 'int32', data: [H] },
    { type: 'int32', data: [Lq] },
    { type: 'int32', data: [Lk] },
    { type: 'int32', data: [qBlocks] },
    { type: 'int32', data: [units] },
    { type: 'int32', data: broadcastStrides(bias.shape) },
    { type: 'int32', data: broadcastStrides(mask.shape) },
    { type: 'float32', data: [Number(attrs?.scale)] },
  ];
  return be.runWebGPUProgram(program, [q, k, v, bias, mask], 'float32', uniforms);
}

// ---- LayerNorm ---------------------------------------------------------------------------------
// Row programs: one workgroup per row, tree reductions in workgroup memory; two passes (mean, then
// the biased variance of x - mean) as torch does.
const ROW_WG = 64;
const ROW_REDUCE = `
  var<workgroup> red : array<f32, ${ROW_WG}>;
  // Sum of v over the workgroup; every invocation gets it.
  fn rowSum(v : f32) -> f32 {
    let lid = i32(localIndex);
    red[lid] = v;
    workgroupBarrier();
    for (var s = ${ROW_WG / 2}; s > 0; s = s / 2) {
      if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
      workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
  }
  // Mean and 1 / sqrt(var + eps) of row r of x [rows, dim].
  fn rowStats(r : i32) -> vec2<f32> {
    let dim = uniforms.dim;
    let base = r * dim;
    var acc = 0.0;
    for (var j = i32(localIndex); j < dim; j += ${ROW_WG}) { acc = acc + x[base + j]; }
    let mean = rowSum(acc) / f32(dim);
    acc = 0.0;
    for (var j = i32(localIndex); j < dim; j += ${ROW_WG}) {
      let c = x[base + j] - mean;
      acc = fma(c, c, acc);
    }
    let variance = rowSum(acc) / f32(dim);
    return vec2<f32>(mean, 1.0 / sqrt(variance + uniforms.eps));
  }`;

class LayerNormProgram extends FiberProgram {
  variableNames = ['x', 'weight', 'bias'];
  outputShape: number[];
  shaderKey = 'fiberLayerNorm';
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [ROW_WG, 1, 1];
  uniforms = 'rows : i32, dim : i32, eps : f32,';

  constructor(rows: number, dim: number) {
    super();
    this.outputShape = [rows, dim];
    this.dispatch = [rows, 1, 1];
  }

  getUserCode(): string {
    return `
  ${WORKGROUP_INDEX}
  ${ROW_REDUCE}
  fn main(index : i32) {
    let wg = workgroupIndex();
    let r = min(wg, uniforms.rows - 1);
    let st = rowStats(r);
    if (wg >= uniforms.rows) { return; }
    let base = r * uniforms.dim;
    for (var j = i32(localIndex); j < uniforms.dim; j += ${ROW_WG}) {
      result[base + j] = (x[base + j] - st.x) * st.y * weight[j] + bias[j];
    }
  }`;
  }
}

/** [rows, 4]: mean, rstd, mean(g), mean(g xhat) of each row, g = dy w, xhat = (x - mean) rstd. */
class LayerNormGradStatsProgram extends FiberProgram {
  variableNames = ['x', 'weight', 'dy'];
  outputShape: number[];
  shaderKey = 'fiberLayerNormGradStats';
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [ROW_WG, 1, 1];
  uniforms = 'rows : i32, dim : i32, eps : f32,';

  constructor(rows: number) {
    super();
    this.outputShape = [rows, 4];
    this.dispatch = [rows, 1, 1];
  }

  getUserCode(): string {
    return `
  ${WORKGROUP_INDEX}
  ${ROW_REDUCE}
  fn main(index : i32) {
    let wg = workgroupIndex();
    let r = min(wg, uniforms.rows - 1);
    let st = rowStats(r);
    let base = r * uniforms.dim;
    var sg = 0.0;
    var sgx = 0.0;
    for (var j = i32(localIndex); j < uniforms.dim; j += ${ROW_WG}) {
      let g = dy[base + j] * weight[j];
      sg = sg + g;
      sgx = fma(g, (x[base + j] - st.x) * st.y, sgx);
    }
    let mg = rowSum(sg) / f32(uniforms.dim);
    let mgx = rowSum(sgx) / f32(uniforms.dim);
    if (wg < uniforms.rows && localIndex == 0u) {
      result[r * 4] = st.x;
      result[r * 4 + 1] = st.y;
      result[r * 4 + 2] = mg;
      result[r * 4 + 3] = mgx;
    }
  }`;
  }
}

/** dx = rstd (g - mean(g) - xhat mean(g xhat)). */
class LayerNormGradXProgram extends ElementwiseProgram {
  variableNames = ['x', 'weight', 'dy', 'stats'];
  shaderKey = 'fiberLayerNormGradX';
  uniforms = 'dim : i32,';

  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index >= uniforms.size) { return; }
    let r = index / uniforms.dim;
    let mean = stats[r * 4];
    let rstd = stats[r * 4 + 1];
    let xhat = (x[index] - mean) * rstd;
    let g = dy[index] * weight[index % uniforms.dim];
    result[index] = rstd * (g - stats[r * 4 + 2] - xhat * stats[r * 4 + 3]);
  }`;
  }
}

/**
 * Partial column sums [chunks, 2, dim] of dy xhat (weight gradient) and dy (bias gradient) over
 * chunks of LN_CHUNK rows: one invocation per (chunk, column), reads coalesced along the columns.
 */
const LN_CHUNK = 64;
class LayerNormGradWPartialProgram extends ElementwiseProgram {
  variableNames = ['x', 'dy', 'stats'];
  shaderKey = 'fiberLayerNormGradW';
  uniforms = 'rows : i32, dim : i32,';

  constructor(chunks: number, dim: number) {
    super(chunks * dim);
    this.outputShape = [chunks, 2, dim];
  }

  getUserCode(): string {
    return `
  fn main(index : i32) {
    // size counts the output's 2 chunks * dim floats; one invocation writes two of them
    if (index >= uniforms.size / 2) { return; }
    let dim = uniforms.dim;
    let c = index / dim;
    let j = index % dim;
    let r1 = min(uniforms.rows, (c + 1) * ${LN_CHUNK});
    var sw = 0.0;
    var sb = 0.0;
    for (var r = c * ${LN_CHUNK}; r < r1; r++) {
      let g = dy[r * dim + j];
      sw = fma(g, (x[r * dim + j] - stats[r * 4]) * stats[r * 4 + 1], sw);
      sb = sb + g;
    }
    result[(c * 2) * dim + j] = sw;
    result[(c * 2 + 1) * dim + j] = sb;
  }`;
  }
}

/** Row `part` of partial [chunks, 2, dim] summed over the chunks -> [dim]. */
class ColumnSumProgram extends ElementwiseProgram {
  variableNames = ['partial'];
  shaderKey = 'fiberColumnSum';
  uniforms = 'chunks : i32, dim : i32, part : i32,';

  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index >= uniforms.size) { return; }
    var s = 0.0;
    for (var c = 0; c < uniforms.chunks; c++) { s = s + partial[(c * 2 + uniforms.part) * uniforms.dim + index]; }
    result[index] = s;
  }`;
  }
}

function layerNormKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const be = backendOf(backend);
  const [x, weight, bias] = [input(inputs, 'x'), input(inputs, 'weight'), input(inputs, 'bias')];
  const dim = x.shape[x.shape.length - 1];
  const rows = dim === 0 ? 0 : size(x.shape) / dim;
  const uniforms: Uniforms = [
    { type: 'int32', data: [rows] },
    { type: 'int32', data: [dim] },
    { type: 'float32', data: [Number(attrs?.eps)] },
  ];
  const out = be.runWebGPUProgram(
    new LayerNormProgram(rows, dim),
    [view(x, [rows, dim]), weight, bias],
    'float32',
    uniforms,
  );
  return view(out, x.shape);
}

/** LayerNorm backward -> [dx, dweight, dbias]: row statistics, then dx element-wise and the column sums. */
function layerNormGradKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const be = backendOf(backend);
  const [x, weight, dy] = [input(inputs, 'x'), input(inputs, 'weight'), input(inputs, 'dy')];
  const dim = x.shape[x.shape.length - 1];
  const n = size(x.shape);
  const rows = dim === 0 ? 0 : n / dim;
  if (n === 0) {
    const zeros = (shape: number[]) => be.makeTensorInfo(shape, 'float32', new Float32Array(size(shape)));
    return [zeros(x.shape), zeros([dim]), zeros([dim])];
  }
  const [x2, dy2] = [view(x, [rows, dim]), view(dy, [rows, dim])];
  const stats = be.runWebGPUProgram(new LayerNormGradStatsProgram(rows), [x2, weight, dy2], 'float32', [
    { type: 'int32', data: [rows] },
    { type: 'int32', data: [dim] },
    { type: 'float32', data: [Number(attrs?.eps)] },
  ]);
  const chunks = Math.ceil(rows / LN_CHUNK);
  let partial: tf.TensorInfo | undefined;
  try {
    const dx = be.runWebGPUProgram(new LayerNormGradXProgram(n), [x2, weight, dy2, stats], 'float32', [
      { type: 'int32', data: [dim] },
    ]);
    partial = be.runWebGPUProgram(new LayerNormGradWPartialProgram(chunks, dim), [x2, dy2, stats], 'float32', [
      { type: 'int32', data: [rows] },
      { type: 'int32', data: [dim] },
    ]);
    const p = partial;
    const [dw, db] = [0, 1].map((part) =>
      be.runWebGPUProgram(new ColumnSumProgram(dim), [p], 'float32', [
        { type: 'int32', data: [chunks] },
        { type: 'int32', data: [dim] },
        { type: 'int32', data: [part] },
      ]),
    );
    return [view(dx, x.shape), dw, db];
  } finally {
    be.disposeData(stats.dataId);
    if (partial) be.disposeData(partial.dataId);
  }
}

// ---- GELU --------------------------------------------------------------------------------------
class GeluProgram extends ElementwiseProgram {
  variableNames = ['x'];
  shaderKey = 'fiberGelu';

  getUserCode(): string {
    return `
  ${ERF}
  fn main(index : i32) {
    if (index >= uniforms.size) { return; }
    let v = x[index];
    result[index] = 0.5 * v * (1.0 + erf(v * 0.70710678118654752));
  }`;
  }
}

/** dx = dy (cdf(x) + x pdf(x)). */
class GeluGradProgram extends ElementwiseProgram {
  variableNames = ['x', 'dy'];
  shaderKey = 'fiberGeluGrad';

  getUserCode(): string {
    return `
  ${ERF}
  fn main(index : i32) {
    if (index >= uniforms.size) { return; }
    let v = x[index];
    let cdf = 0.5 * (1.0 + erf(v * 0.70710678118654752));
    let pdf = exp(-0.5 * v * v) * 0.3989422804014327;
    result[index] = dy[index] * fma(v, pdf, cdf);
  }`;
  }
}

function geluKernel({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const be = backendOf(backend);
  const x = input(inputs, 'x');
  const n = size(x.shape);
  return view(be.runWebGPUProgram(new GeluProgram(n), [view(x, [n])], 'float32'), x.shape);
}

function geluGradKernel({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const be = backendOf(backend);
  const [x, dy] = [input(inputs, 'x'), input(inputs, 'dy')];
  const n = size(x.shape);
  return view(be.runWebGPUProgram(new GeluGradProgram(n), [view(x, [n]), view(dy, [n])], 'float32'), x.shape);
}

/** Registers the kernels on tfjs-backend-webgpu; called by initBackend('webgpu'). Idempotent. */
export function registerWebGpuKernels(): void {
  if (registered) return;
  const kernels: [string, tf.KernelFunc][] = [
    [KERNEL_NAMES.matMul, matMulKernel],
    [KERNEL_NAMES.windowAttention, windowAttentionKernel],
    [KERNEL_NAMES.layerNorm, layerNormKernel],
    [KERNEL_NAMES.gelu, geluKernel],
    [KERNEL_NAMES.layerNormGrad, layerNormGradKernel],
    [KERNEL_NAMES.geluGrad, geluGradKernel],
    [KERNEL_NAMES.attention, attentionKernel],
  ];
  for (const [kernelName, kernelFunc] of kernels) tf.registerKernel({ kernelName, backendName: 'webgpu', kernelFunc });
  registered = true;
}

import { tf } from '../tf.js';
import { softmax } from './activations.js';
import { matmul, sumToShape } from './linalg.js';
import { roll, windowPartition, windowReverse } from './spatial.js';
import { KERNEL_NAMES } from '../kernels/wasm.js';
import { windowAttentionKernelActive } from '../kernels/active.js';
import { MAX_HEAD_DIM, webgpuKernelsActive } from '../kernels/webgpu.js';

export interface AttentionOptions {
  /** Additive bias broadcastable to [B, H, Lq, Lk] (Swin's relative-position bias). */
  bias?: tf.Tensor;
  /** Additive mask broadcastable to [B, H, Lq, Lk] (0 / -100 shift mask, 0 / -10000 padding). */
  mask?: tf.Tensor;
  /** Multiplies q before q k^T; default 1/sqrt(D). */
  scale?: number;
  /**
   * Applied to the attention probabilities before `@ v` (training-mode dropout, as HF's
   * attention_probs_dropout). Fused kernels are bypassed while it is set.
   */
  probsDropout?: (probs: tf.Tensor) => tf.Tensor;
}

/** q [B, H, Lq, D], k [B, H, Lk, D], v [B, H, Lk, Dv] -> [B, H, Lq, Dv]. */
export type AttentionKernel = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, options: AttentionOptions) => tf.Tensor;

/** softmax((q * scale) k^T + bias + mask) v, in that order of additions (as Swin and HF do). */
export const compositeAttention: AttentionKernel = (q, k, v, { bias, mask, scale, probsDropout }) =>
  tf.tidy(() => {
    const s = scale ?? 1 / Math.sqrt(q.shape[q.rank - 1]);
    let scores = matmul(tf.mul(q, s), k, { transposeB: true });
    if (bias) scores = tf.add(scores, bias);
    if (mask) scores = tf.add(scores, mask);
    const probs = softmax(scores);
    return matmul(probsDropout ? probsDropout(probs) : probs, v);
  });

// Backward of the fused kernel, recomputing the probabilities: with P = softmax(S), S = (q scale)
// k^T + bias + mask: dV = P^T dO, dS = P (dP - rowsum(dP P)) with dP = dO v^T, dQ = dS k scale,
// dK = dS^T q scale; bias and mask get dS summed back to their broadcast shapes.
tf.registerGradient({
  kernelName: KERNEL_NAMES.attention,
  inputsToSave: ['q', 'k', 'v', 'bias', 'mask'],
  gradFunc: (dy, [q, k, v, bias, mask], attrs) => {
    const scale = Number(attrs.scale);
    const grads = tf.tidy(() => {
      const p = softmax(tf.add(tf.add(matmul(tf.mul(q, scale), k, { transposeB: true }), bias), mask));
      const dO = dy as tf.Tensor;
      const dP = matmul(dO, v, { transposeB: true });
      const dS = tf.mul(p, tf.sub(dP, tf.sum(tf.mul(dP, p), -1, true)));
      return {
        q: tf.mul(matmul(dS, k), scale),
        k: tf.mul(matmul(dS, q, { transposeA: true }), scale),
        v: matmul(p, dO, { transposeA: true }),
        bias: sumToShape(dS, bias.shape),
        mask: sumToShape(dS, mask.shape),
      };
    });
    return {
      q: () => grads.q,
      k: () => grads.k,
      v: () => grads.v,
      bias: () => grads.bias,
      mask: () => grads.mask,
    };
  },
});

/** Whether `t` (absent, or rank <= 4) broadcasts to `target` [B, H, Lq, Lk]. */
function broadcastsTo(t: tf.Tensor | undefined, target: number[]): boolean {
  return !t || (t.rank <= 4 && t.shape.every((d, i) => d === 1 || d === target[i + 4 - t.rank]));
}

/**
 * The fused attention kernel where it runs (webgpu; float32 q, k, v of one batch and head count,
 * head dims up to 256, bias and mask broadcasting to the scores), else the composite ops. An absent
 * bias or mask goes in as a [1, 1, 1, 1] zero (x + 0 = x: the scores are unchanged).
 */
const defaultAttention: AttentionKernel = (q, k, v, options) => {
  const { bias, mask } = options;
  const [B = 0, H = 0, Lq = 0, D = 0] = q.shape;
  const [Lk = 0, Dv = 0] = [k.shape[2], v.shape[3]];
  const covered =
    webgpuKernelsActive() &&
    [q, k, v, bias, mask].every((t) => !t || t.dtype === 'float32') &&
    [k, v].every((t) => t.shape[0] === B && t.shape[1] === H) &&
    Lk > 0 &&
    D > 0 &&
    D <= MAX_HEAD_DIM &&
    Dv <= MAX_HEAD_DIM &&
    broadcastsTo(bias, [B, H, Lq, Lk]) &&
    broadcastsTo(mask, [B, H, Lq, Lk]);
  if (!covered) return compositeAttention(q, k, v, options);
  return tf.tidy(() => {
    const zero = () => tf.zeros([1, 1, 1, 1]);
    const inputs = { q, k, v, bias: bias ?? zero(), mask: mask ?? zero() };
    const scale = options.scale ?? 1 / Math.sqrt(D);
    return tf.engine().runKernel(KERNEL_NAMES.attention, inputs, { scale }) as tf.Tensor;
  });
};

const kernels = new Map<string, AttentionKernel>();

/** Replaces the attention implementation on one backend (a fused kernel must keep the gradient). */
export function registerAttentionKernel(backendName: string, kernel: AttentionKernel): void {
  kernels.set(backendName, kernel);
}

/**
 * Scaled-dot-product attention: the single entry point every fiber-vl model uses, so that a fused
 * kernel registered for the current backend replaces it everywhere. On webgpu fiber-vl's fused
 * kernel runs by default (one pass, no [B, H, Lq, Lk] scores in memory); elsewhere the tfjs ops.
 */
export function scaledDotProductAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  options: AttentionOptions = {},
): tf.Tensor {
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) {
    throw new RangeError(
      `scaledDotProductAttention: q, k, v must be [B, H, L, D]; got [${q.shape.join(', ')}], [${k.shape.join(', ')}], [${v.shape.join(', ')}]`,
    );
  }
  if (q.shape[3] !== k.shape[3] || k.shape[2] !== v.shape[2]) {
    throw new RangeError(
      `scaledDotProductAttention: shapes do not agree: q [${q.shape.join(', ')}], k [${k.shape.join(', ')}], v [${v.shape.join(', ')}]`,
    );
  }
  if (options.probsDropout) return compositeAttention(q, k, v, options);
  return (kernels.get(tf.getBackend()) ?? defaultAttention)(q, k, v, options);
}

export interface WindowAttentionOptions {
  numHeads: number;
  windowSize: number;
  /** Swin's cyclic shift (shift_size); 0 (default) = regular windows. */
  shift?: number;
  /** Multiplies q before q k^T; default 1/sqrt(head dim). */
  scale?: number;
}

/**
 * Swin's shifted-window mask over an H x W map: tokens of one window from different regions of the
 * slices (0, -w), (-w, -s), (-s, None) get -100. [nW, w*w, w*w], windows row-major.
 */
export function shiftWindowMaskArray(H: number, W: number, w: number, s: number): Float32Array {
  const label = (p: number, size: number) => (p < size - w ? 0 : p < size - s ? 1 : 2);
  const [nWy, nWx, n] = [H / w, W / w, w * w];
  const out = new Float32Array(nWy * nWx * n * n);
  for (let wy = 0; wy < nWy; wy++) {
    for (let wx = 0; wx < nWx; wx++) {
      const base = (wy * nWx + wx) * n * n;
      const regions = Array.from(
        { length: n },
        (_, t) => label(wy * w + Math.floor(t / w), H) * 3 + label(wx * w + (t % w), W),
      );
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) out[base + i * n + j] = regions[i] === regions[j] ? 0 : -100;
    }
  }
  return out;
}

interface WindowLayout {
  B: number;
  H: number;
  W: number;
  C: number;
  heads: number;
  hd: number;
  w: number;
  s: number;
  n: number;
  nW: number;
  scale: number;
}

function windowLayout(
  qkv: tf.Tensor,
  { numHeads, windowSize: w, shift = 0, scale }: WindowAttentionOptions,
): WindowLayout {
  const [B, H, W, C3] = qkv.shape;
  const C = C3 / 3;
  if (qkv.rank !== 4 || !Number.isInteger(C) || H % w || W % w || C % numHeads) {
    throw new RangeError(
      `windowAttention: qkv must be [B, H, W, 3C] with H, W multiples of the window ${w} and C a multiple of ${numHeads} heads; got [${qkv.shape.join(', ')}]`,
    );
  }
  if (shift < 0 || shift >= w) throw new RangeError(`windowAttention: shift ${shift} must be in [0, ${w})`);
  const hd = C / numHeads;
  return {
    B,
    H,
    W,
    C,
    heads: numHeads,
    hd,
    w,
    s: shift,
    n: w * w,
    nW: (H / w) * (W / w),
    scale: scale ?? 1 / Math.sqrt(hd),
  };
}

/** [B, H, W, X] -> [B*nW, n, X]: roll by -s on both axes, then windows row-major per image. */
function toWindows(t: tf.Tensor, L: WindowLayout): tf.Tensor {
  const rolled = L.s ? roll(t, [-L.s, -L.s], [1, 2]) : t;
  return tf.reshape(windowPartition(rolled, L.w), [L.B * L.nW, L.n, t.shape[3] ?? 0]);
}

/** Inverse of toWindows. */
function fromWindows(t: tf.Tensor, L: WindowLayout): tf.Tensor {
  const merged = windowReverse(tf.reshape(t, [-1, L.w, L.w, t.shape[2] ?? 0]), L.w, L.H, L.W);
  return L.s ? roll(merged, [L.s, L.s], [1, 2]) : merged;
}

/** q, k, v [B*nW, heads, n, hd] and the additive bias + shift mask, broadcastable to the scores. */
function windowQkv(qkv: tf.Tensor, L: WindowLayout): tf.Tensor[] {
  const win = tf.transpose(tf.reshape(toWindows(qkv, L), [L.B * L.nW, L.n, 3, L.heads, L.hd]), [2, 0, 3, 1, 4]);
  return tf.unstack(win, 0);
}

/** scores [B*nW, heads, n, n] + bias [heads, n, n] + shift mask [nW, n, n] (per window of each image). */
function addBiasAndMask(scores: tf.Tensor, bias: tf.Tensor | undefined, L: WindowLayout): tf.Tensor {
  let s = bias ? tf.add(scores, bias) : scores;
  if (L.s) {
    const mask = tf.tensor(shiftWindowMaskArray(L.H, L.W, L.w, L.s), [1, L.nW, 1, L.n, L.n]);
    s = tf.reshape(tf.add(tf.reshape(s, [L.B, L.nW, L.heads, L.n, L.n]), mask), [L.B * L.nW, L.heads, L.n, L.n]);
  }
  return s;
}

/** The tfjs-op path: roll, partition, attention with bias and mask, merge, roll back. */
export function compositeWindowAttention(
  qkv: tf.Tensor,
  bias: tf.Tensor | undefined,
  options: WindowAttentionOptions,
): tf.Tensor {
  const L = windowLayout(qkv, options);
  return tf.tidy(() => {
    const [q, k, v] = windowQkv(qkv, L);
    const scores = addBiasAndMask(matmul(tf.mul(q, L.scale), k, { transposeB: true }), bias, L);
    const o = matmul(softmax(scores), v); // [B*nW, heads, n, hd]
    return fromWindows(tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [L.B * L.nW, L.n, L.C]), L);
  });
}

// Backward of the fused kernel, recomputing the probabilities: with P = softmax(S), S = q k^T scale
// + bias + mask: dV = P^T dO, dS = P (dP - rowsum(dP P)) with dP = dO v^T, dQ = dS k scale,
// dK = dS^T q scale, dBias = sum over windows of dS.
tf.registerGradient({
  kernelName: KERNEL_NAMES.windowAttention,
  inputsToSave: ['qkv', 'bias'],
  gradFunc: (dy, [qkv, bias], attrs) => {
    const L = windowLayout(qkv, {
      numHeads: Number(attrs.numHeads),
      windowSize: Number(attrs.windowSize),
      shift: Number(attrs.shift),
      scale: Number(attrs.scale),
    });
    const grads = tf.tidy(() => {
      const [q, k, v] = windowQkv(qkv, L);
      const p = softmax(addBiasAndMask(matmul(tf.mul(q, L.scale), k, { transposeB: true }), bias, L));
      const dO = tf.transpose(
        tf.reshape(toWindows(dy as tf.Tensor, L), [L.B * L.nW, L.n, L.heads, L.hd]),
        [0, 2, 1, 3],
      );
      const dV = matmul(p, dO, { transposeA: true });
      const dP = matmul(dO, v, { transposeB: true });
      const dS = tf.mul(p, tf.sub(dP, tf.sum(tf.mul(dP, p), -1, true)));
      const dQ = tf.mul(matmul(dS, k), L.scale);
      const dK = tf.mul(matmul(dS, q, { transposeA: true }), L.scale);
      const dWin = tf.reshape(tf.transpose(tf.stack([dQ, dK, dV]), [1, 3, 0, 2, 4]), [L.B * L.nW, L.n, 3 * L.C]);
      return { qkv: fromWindows(dWin, L), bias: tf.sum(dS, 0) };
    });
    return { qkv: () => grads.qkv, bias: () => grads.bias };
  },
});

/**
 * Swin's (shifted) window attention over a whole token map in one op: windows of qkv [B, H, W, 3C]
 * (the qkv projection of every token, H and W multiples of the window, padded by the caller),
 * cyclic shift by `shift` with Swin's -100 mask between regions, relative-position `bias`
 * [heads, w*w, w*w], softmax, attention-weighted v, windows merged and shifted back -> [B, H, W, C].
 * On wasm and webgpu one fused kernel (the shift and the partition are folded into its indexing;
 * on webgpu windows of up to 256 tokens); elsewhere the tfjs-op path with the same math. Differentiable in qkv and bias.
 */
export function windowAttention(
  qkv: tf.Tensor,
  bias: tf.Tensor | undefined,
  options: WindowAttentionOptions,
): tf.Tensor {
  const L = windowLayout(qkv, options);
  if (bias && (bias.rank !== 3 || bias.shape[0] !== L.heads || bias.shape[1] !== L.n || bias.shape[2] !== L.n)) {
    throw new RangeError(`windowAttention: bias must be [${L.heads}, ${L.n}, ${L.n}], got [${bias.shape.join(', ')}]`);
  }
  if (windowAttentionKernelActive(L.n) && bias && qkv.dtype === 'float32' && bias.dtype === 'float32') {
    const attrs = { numHeads: L.heads, windowSize: L.w, shift: L.s, scale: L.scale };
    return tf.engine().runKernel(KERNEL_NAMES.windowAttention, { qkv, bias }, attrs) as tf.Tensor;
  }
  return compositeWindowAttention(qkv, bias, options);
}

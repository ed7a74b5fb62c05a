import { tf } from '../tf.js';
import { softmax } from './activations.js';
import { matmul } from './linalg.js';

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

const kernels = new Map<string, AttentionKernel>();

/** Replaces the attention implementation on one backend (a fused kernel must keep the gradient). */
export function registerAttentionKernel(backendName: string, kernel: AttentionKernel): void {
  kernels.set(backendName, kernel);
}

/**
 * Scaled-dot-product attention: the single entry point every fiber-vl model uses, so that a fused
 * kernel registered for the current backend replaces it everywhere.
 */
export function scaledDotProductAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, options: AttentionOptions = {}): tf.Tensor {
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
  const kernel = options.probsDropout ? undefined : kernels.get(tf.getBackend());
  return (kernel ?? compositeAttention)(q, k, v, options);
}

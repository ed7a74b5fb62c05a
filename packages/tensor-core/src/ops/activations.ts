import { tf } from '../tf.js';

/** Softmax over `axis` (default last), numerically stable; differentiable. */
export function softmax(x: tf.Tensor, axis = -1): tf.Tensor {
  const ax = axis < 0 ? x.rank + axis : axis;
  if (ax === x.rank - 1) return tf.softmax(x);
  return tf.tidy(() => {
    const perm = Array.from({ length: x.rank }, (_, i) => i);
    [perm[ax], perm[x.rank - 1]] = [perm[x.rank - 1], perm[ax]];
    return tf.transpose(tf.softmax(tf.transpose(x, perm)), perm);
  });
}

/** GELU with the exact erf form (torch.nn.GELU()): 0.5 x (1 + erf(x / sqrt 2)). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
}

/**
 * torch.nn.functional.layer_norm over the last axis: (x - mean) / sqrt(var + eps) * weight + bias,
 * with the biased variance.
 */
export function layerNorm(x: tf.Tensor, weight?: tf.Tensor, bias?: tf.Tensor, eps = 1e-5): tf.Tensor {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    let y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
    if (weight) y = tf.mul(y, weight);
    if (bias) y = tf.add(y, bias);
    return y;
  });
}

/** torch.nn.functional.normalize: x / max(||x||_2, eps) along `axis`. */
export function l2Normalize(x: tf.Tensor, axis = -1, eps = 1e-12): tf.Tensor {
  return tf.tidy(() => {
    // max(sqrt(s), eps) == sqrt(max(s, eps^2)), and the latter has a finite gradient at x = 0.
    const norm = tf.sqrt(tf.maximum(tf.sum(tf.square(x), axis, true), eps * eps));
    return tf.div(x, norm);
  });
}

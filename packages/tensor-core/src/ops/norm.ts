import { tf } from '../tf.js';

/**
 * torch.nn.functional.group_norm for x [N, C, ...]: the channels split into `numGroups` groups,
 * each normalised over its channels and all spatial positions with the biased variance, then the
 * per-channel affine weight/bias [C]. Differentiable.
 */
export function groupNorm(
  x: tf.Tensor,
  numGroups: number,
  weight?: tf.Tensor,
  bias?: tf.Tensor,
  eps = 1e-5,
): tf.Tensor {
  if (x.rank < 2) throw new RangeError(`groupNorm: need [N, C, ...], got [${x.shape.join(', ')}]`);
  const [n, c] = x.shape;
  if (!Number.isInteger(numGroups) || numGroups < 1 || c % numGroups) {
    throw new RangeError(`groupNorm: ${c} channels do not split into ${numGroups} groups`);
  }
  for (const [name, t] of [
    ['weight', weight],
    ['bias', bias],
  ] as const) {
    if (t && (t.rank !== 1 || t.shape[0] !== c))
      throw new RangeError(`groupNorm: ${name} must be [${c}], got [${t.shape.join(', ')}]`);
  }
  return tf.tidy(() => {
    const grouped = tf.reshape(x, [n, numGroups, -1]);
    const { mean, variance } = tf.moments(grouped, 2, true);
    let y = tf.reshape(tf.mul(tf.sub(grouped, mean), tf.rsqrt(tf.add(variance, eps))), x.shape);
    const channel = [c, ...x.shape.slice(2).map(() => 1)]; // [C, 1, 1] broadcasts over [N, C, H, W]
    if (weight) y = tf.mul(y, tf.reshape(weight, channel));
    if (bias) y = tf.add(y, tf.reshape(bias, channel));
    return y;
  });
}

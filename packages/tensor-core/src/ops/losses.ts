import { tf } from '../tf.js';
import { findOutOfRange, nanWhereOutOfRange, readsOnHost } from '../host.js';

export type Reduction = 'mean' | 'sum' | 'none';

function reduce(loss: tf.Tensor, reduction: Reduction): tf.Tensor {
  return reduction === 'none' ? loss : reduction === 'sum' ? tf.sum(loss) : tf.mean(loss);
}

export interface CrossEntropyOptions {
  /** Targets equal to this are skipped (PyTorch default -100). */
  ignoreIndex?: number;
  reduction?: Reduction;
  /** PyTorch's label_smoothing: (1 - e) * nll + e * mean over classes of -log p. */
  labelSmoothing?: number;
}

/**
 * torch.nn.functional.cross_entropy for logits [..., C] and integer targets [...]. 'mean' divides
 * by the number of non-ignored targets; 'none' gives 0 at ignored positions.
 *
 * A target that is neither `ignoreIndex` nor an integer in [0, C) is an error, as in torch. On cpu
 * and wasm, where the targets are in host memory, it throws a RangeError naming the target and its
 * position. On WebGPU a check would read the targets back from the GPU, so there the loss of that
 * position is NaN instead (torch on CUDA stops with a device-side assert).
 */
export function crossEntropy(
  logits: tf.Tensor,
  targets: tf.Tensor,
  { ignoreIndex = -100, reduction = 'mean', labelSmoothing = 0 }: CrossEntropyOptions = {},
): tf.Tensor {
  if (logits.rank < 1) throw new RangeError('crossEntropy: logits must have a class axis, got a scalar');
  const C = logits.shape[logits.rank - 1];
  if (targets.shape.join() !== logits.shape.slice(0, -1).join()) {
    throw new RangeError(
      `crossEntropy: targets [${targets.shape.join(', ')}] must be logits [${logits.shape.join(', ')}] without the class axis`,
    );
  }
  if (!Number.isInteger(ignoreIndex))
    throw new RangeError(`crossEntropy: ignoreIndex must be an integer, got ${ignoreIndex}`);
  if (!(labelSmoothing >= 0 && labelSmoothing <= 1))
    throw new RangeError(`crossEntropy: labelSmoothing must be in [0, 1], got ${labelSmoothing}`);
  if (reduction !== 'mean' && reduction !== 'sum' && reduction !== 'none')
    throw new RangeError(`crossEntropy: reduction must be 'mean', 'sum' or 'none', got ${String(reduction)}`);
  const onHost = readsOnHost();
  const bad = onHost ? findOutOfRange(targets, C, ignoreIndex) : undefined;
  if (bad)
    throw new RangeError(
      `crossEntropy: target ${bad.value} at ${bad.at} is out of bounds for ${C} classes ` +
        `(targets are class indices in [0, ${C}) or ignoreIndex ${ignoreIndex})`,
    );
  return tf.tidy(() => {
    const t = tf.cast(targets, 'int32');
    const logp = tf.logSoftmax(logits);
    let nll = tf.neg(tf.sum(tf.mul(logp, tf.oneHot(t, C)), -1));
    if (labelSmoothing > 0) {
      nll = tf.add(tf.mul(nll, 1 - labelSmoothing), tf.mul(tf.neg(tf.mean(logp, -1)), labelSmoothing));
    }
    const valid = tf.cast(tf.notEqual(t, ignoreIndex), 'float32');
    let loss = tf.mul(nll, valid);
    if (!onHost) loss = tf.add(loss, nanWhereOutOfRange(t, C, ignoreIndex)); // see the doc comment
    if (reduction === 'none') return loss;
    if (reduction === 'sum') return tf.sum(loss);
    return tf.div(tf.sum(loss), tf.sum(valid));
  });
}

export interface BceOptions {
  reduction?: Reduction;
  /** Weight of the positive term per class (PyTorch pos_weight). */
  posWeight?: tf.Tensor | number;
  /** Element weight (PyTorch weight). */
  weight?: tf.Tensor;
}

/**
 * torch.nn.functional.binary_cross_entropy_with_logits, in the stable form
 * (1 - t) x + (1 + (pw - 1) t) (log(1 + exp(-|x|)) + max(-x, 0)).
 */
export function bceWithLogits(
  logits: tf.Tensor,
  targets: tf.Tensor,
  { reduction = 'mean', posWeight, weight }: BceOptions = {},
): tf.Tensor {
  return tf.tidy(() => {
    const x = logits;
    const t = tf.cast(targets, 'float32');
    const softplusNeg = tf.add(tf.log1p(tf.exp(tf.neg(tf.abs(x)))), tf.relu(tf.neg(x))); // log(1 + exp(-x))
    const coef = posWeight === undefined ? tf.onesLike(t) : tf.add(tf.mul(tf.sub(posWeight, 1), t), 1);
    let loss = tf.add(tf.mul(tf.sub(1, t), x), tf.mul(coef, softplusNeg));
    if (weight) loss = tf.mul(loss, weight);
    return reduce(loss, reduction);
  });
}

export interface FocalOptions {
  /** Weight of positives; negatives get 1 - alpha. A negative value disables it. Default 0.25. */
  alpha?: number;
  gamma?: number;
  reduction?: Reduction;
}

/** torchvision.ops.sigmoid_focal_loss (RetinaNet): bce * (1 - p_t)^gamma * alpha_t. */
export function sigmoidFocalLoss(
  logits: tf.Tensor,
  targets: tf.Tensor,
  { alpha = 0.25, gamma = 2, reduction = 'none' }: FocalOptions = {},
): tf.Tensor {
  return tf.tidy(() => {
    const t = tf.cast(targets, 'float32');
    const p = tf.sigmoid(logits);
    const ce = bceWithLogits(logits, t, { reduction: 'none' });
    const pT = tf.add(tf.mul(p, t), tf.mul(tf.sub(1, p), tf.sub(1, t)));
    let loss = tf.mul(ce, tf.pow(tf.sub(1, pT), gamma));
    if (alpha >= 0) loss = tf.mul(loss, tf.add(tf.mul(t, alpha), tf.mul(tf.sub(1, t), 1 - alpha)));
    return reduce(loss, reduction);
  });
}

// AdamW's update of one parameter as one op. On wasm one kernel pass (wasm/adamw.c) replaces the
// dozen tfjs ops of the update, each a pass over the parameter with a tensor allocated; it does
// the same float32 steps in the same order, so the result has the same bits. Elsewhere, those
// tfjs ops. An optimizer step: the kernel has no gradient.
import { tf } from '../tf.js';
import { ADAMW_KERNEL, wasmKernelsActive } from '../kernels/wasm.js';

export interface AdamWUpdateOptions {
  /**
   * 'torch': torch.optim.AdamW (w *= 1 - lr wd, then the step, eps added to the bias-corrected
   * sqrt(v)); 'transformers': transformers.AdamW 4.x (the step with eps added to the uncorrected
   * sqrt(v), then w -= lr wd w).
   */
  variant: 'torch' | 'transformers';
  lr: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** This parameter's step count, from 1 (the bias corrections 1 - beta^step use it). */
  step: number;
}

/**
 * One AdamW step of parameter `w` with gradient `g` and moments `m`, `v` (all float32, one shape):
 * returns new [w, m, v]; the inputs are not changed.
 */
export function adamwUpdate(
  w: tf.Tensor,
  g: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  o: AdamWUpdateOptions,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const shape = w.shape.join();
  for (const [name, t] of [
    ['g', g],
    ['m', m],
    ['v', v],
  ] as const) {
    if (t.shape.join() !== shape)
      throw new RangeError(
        `adamwUpdate: ${name} has shape [${t.shape.join(', ')}], the parameter [${w.shape.join(', ')}]`,
      );
  }
  if (o.variant !== 'torch' && o.variant !== 'transformers')
    throw new RangeError(`adamwUpdate: variant must be "torch" or "transformers", got ${String(o.variant)}`);
  if (!(Number.isInteger(o.step) && o.step >= 1)) throw new RangeError(`adamwUpdate: step must be >= 1, got ${o.step}`);
  const bc1 = 1 - o.beta1 ** o.step;
  const bc2 = 1 - o.beta2 ** o.step;
  const torch = o.variant === 'torch';
  const wd = o.weightDecay;
  const decay = wd ? (torch ? 1 - o.lr * wd : o.lr * wd) : undefined;
  const stepSize = torch ? o.lr / bc1 : (o.lr * Math.sqrt(bc2)) / bc1;
  if (wasmKernelsActive() && [w, g, m, v].every((t) => t.dtype === 'float32')) {
    const attrs = {
      variant: o.variant,
      ...(decay === undefined ? {} : { decay }),
      beta1: o.beta1,
      oneMinusBeta1: 1 - o.beta1,
      beta2: o.beta2,
      oneMinusBeta2: 1 - o.beta2,
      sqrtBiasCorrection2: Math.sqrt(bc2),
      eps: o.eps,
      stepSize,
    };
    const [w2, m2, v2] = tf.engine().runKernel(ADAMW_KERNEL, { w, g, m, v }, attrs) as tf.Tensor[];
    return [w2, m2, v2];
  }
  return tf.tidy(() => {
    let x = w;
    if (torch && decay !== undefined) x = tf.mul(x, decay);
    const m2 = tf.add(tf.mul(m, o.beta1), tf.mul(g, 1 - o.beta1));
    const v2 = tf.add(tf.mul(v, o.beta2), tf.mul(tf.square(g), 1 - o.beta2));
    const denom = torch ? tf.add(tf.div(tf.sqrt(v2), Math.sqrt(bc2)), o.eps) : tf.add(tf.sqrt(v2), o.eps);
    x = tf.sub(x, tf.mul(tf.div(m2, denom), stepSize));
    if (!torch && decay !== undefined) x = tf.sub(x, tf.mul(x, decay));
    return [x, m2, v2] as [tf.Tensor, tf.Tensor, tf.Tensor];
  });
}

import { tf } from '../tf.js';
import { KERNEL_NAMES } from '../kernels/wasm.js';
import { fiberKernelsActive } from '../kernels/active.js';

/** Softmax over `axis` (default last), numerically stable; differentiable. */
export function softmax(x: tf.Tensor, axis = -1): tf.Tensor {
  const ax = axis < 0 ? x.rank + axis : axis;
  if (!(Number.isInteger(ax) && ax >= 0 && ax < x.rank))
    throw new RangeError(`softmax: axis ${axis} is out of range for [${x.shape.join(', ')}]`);
  if (ax === x.rank - 1) return tf.softmax(x);
  return tf.tidy(() => {
    const perm = Array.from({ length: x.rank }, (_, i) => i);
    [perm[ax], perm[x.rank - 1]] = [perm[x.rank - 1], perm[ax]];
    return tf.transpose(tf.softmax(tf.transpose(x, perm)), perm);
  });
}

// d/dx [0.5 x (1 + erf(x / sqrt 2))] = 0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi)
tf.registerGradient({
  kernelName: KERNEL_NAMES.gelu,
  inputsToSave: ['x'],
  gradFunc: (dy, [x]) => ({
    x: () => {
      if (fiberKernelsActive())
        return tf.engine().runKernel(KERNEL_NAMES.geluGrad, { x, dy: dy as tf.Tensor }) as tf.Tensor;
      const cdf = tf.mul(tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1), 0.5);
      const pdf = tf.mul(tf.exp(tf.mul(tf.square(x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
      return tf.mul(dy as tf.Tensor, tf.add(cdf, tf.mul(x, pdf)));
    },
  }),
});

/** GELU with the exact erf form (torch.nn.GELU()): 0.5 x (1 + erf(x / sqrt 2)). One kernel on wasm and webgpu. */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (fiberKernelsActive() && x.dtype === 'float32')
    return tf.engine().runKernel(KERNEL_NAMES.gelu, { x }) as tf.Tensor;
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
}

// y = xhat w + b, xhat = (x - mean) rstd: dx = rstd (g - mean(g) - xhat mean(g xhat)) with g = dy w.
tf.registerGradient({
  kernelName: KERNEL_NAMES.layerNorm,
  inputsToSave: ['x', 'weight'],
  gradFunc: (dy, saved, attrs) => {
    const [x, weight] = saved;
    const d = dy as tf.Tensor;
    const eps = Number(attrs.eps);
    const lead = Array.from({ length: d.rank - 1 }, (_, i) => i);
    if (fiberKernelsActive()) {
      // one kernel for all three gradients (the composite below costs ~15 ops and recomputes the moments)
      const [dx, dw, db] = tf
        .engine()
        .runKernel(KERNEL_NAMES.layerNormGrad, { x, weight, dy: d }, { eps }) as tf.Tensor[];
      return { x: () => dx, weight: () => dw, bias: () => db };
    }
    const xhat = () => {
      const { mean, variance } = tf.moments(x, -1, true);
      return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
    };
    return {
      x: () => {
        const { variance } = tf.moments(x, -1, true);
        const rstd = tf.rsqrt(tf.add(variance, eps));
        const xh = xhat();
        const g = tf.mul(d, weight);
        const inner = tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(xh, tf.mean(tf.mul(g, xh), -1, true)));
        return tf.mul(rstd, inner);
      },
      weight: () => tf.sum(tf.mul(d, xhat()), lead),
      bias: () => tf.sum(d, lead),
    };
  },
});

/**
 * torch.nn.functional.layer_norm over the last axis: (x - mean) / sqrt(var + eps) * weight + bias,
 * with the biased variance. One kernel on wasm and webgpu.
 */
export function layerNorm(x: tf.Tensor, weight?: tf.Tensor, bias?: tf.Tensor, eps = 1e-5): tf.Tensor {
  const dim = x.shape[x.rank - 1];
  for (const [name, p] of [
    ['weight', weight],
    ['bias', bias],
  ] as const) {
    if (p && (p.rank !== 1 || p.shape[0] !== dim)) {
      throw new RangeError(
        `layerNorm: ${name} must be [${dim}] for input [${x.shape.join(', ')}], got [${p.shape.join(', ')}]`,
      );
    }
  }
  const floats = [x, weight, bias].every((t) => !t || t.dtype === 'float32');
  if (fiberKernelsActive() && floats && weight && bias) {
    return tf.engine().runKernel(KERNEL_NAMES.layerNorm, { x, weight, bias }, { eps }) as tf.Tensor;
  }
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

// Initialisers with torch.nn.init's definitions (values come from a fiber-vl Generator, so the
// numbers differ from PyTorch's, but the distributions are the same).
import { tf } from '../tf.js';
import { defaultGenerator, type Generator, initSkipped } from '../rng.js';
import { erf as erf64, erfinv } from '../math.js';

/** fan_in / fan_out as torch.nn.init._calculate_fan_in_and_fan_out ([out, in, ...kernel]). */
export function fans(shape: number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) throw new RangeError(`fan in/out needs at least 2 dimensions, got shape [${shape.join(', ')}]`);
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

export function constant(shape: number[], value: number): tf.Tensor {
  return tf.fill(shape, value, 'float32');
}

export function uniform(shape: number[], low: number, high: number, rng: Generator = defaultGenerator): tf.Tensor {
  return rng.uniform(shape, low, high);
}

export function normal(shape: number[], mean = 0, std = 1, rng: Generator = defaultGenerator): tf.Tensor {
  return rng.normal(shape, mean, std);
}

/**
 * torch.nn.init.trunc_normal_: N(mean, std^2) restricted to [a, b], by the same inverse-CDF
 * method (uniform in [cdf(a), cdf(b)], then erfinv), then clamped to [a, b].
 */
export function truncNormal(
  shape: number[],
  { mean = 0, std = 1, a = -2, b = 2 }: { mean?: number; std?: number; a?: number; b?: number } = {},
  rng: Generator = defaultGenerator,
): tf.Tensor {
  const cdf = (x: number) => (1 + erf64(x / Math.SQRT2)) / 2;
  const l = cdf((a - mean) / std);
  const u = cdf((b - mean) / std);
  const size = shape.reduce((p, d) => p * d, 1);
  const out = new Float32Array(size);
  if (initSkipped()) return tf.tensor(out, shape, 'float32'); // skipInit: zeros, nothing drawn
  for (let i = 0; i < size; i++) {
    const v = 2 * (l + (u - l) * rng.nextDouble()) - 1;
    const x = erfinv(v) * std * Math.SQRT2 + mean;
    out[i] = Math.min(b, Math.max(a, x));
  }
  return tf.tensor(out, shape, 'float32');
}

/** torch.nn.init.xavier_uniform_: U(-g*sqrt(6/(fan_in+fan_out)), +...). */
export function xavierUniform(shape: number[], gain = 1, rng: Generator = defaultGenerator): tf.Tensor {
  const { fanIn, fanOut } = fans(shape);
  if (shape.includes(0)) return tf.zeros(shape);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return rng.uniform(shape, -bound, bound);
}

/** torch.nn.init.xavier_normal_: N(0, g^2 * 2/(fan_in+fan_out)). */
export function xavierNormal(shape: number[], gain = 1, rng: Generator = defaultGenerator): tf.Tensor {
  const { fanIn, fanOut } = fans(shape);
  if (shape.includes(0)) return tf.zeros(shape);
  return rng.normal(shape, 0, gain * Math.sqrt(2 / (fanIn + fanOut)));
}

/**
 * torch.nn.init.kaiming_uniform_ with leaky_relu gain: bound = sqrt(6 / ((1 + a^2) * fan_in)).
 * With a = sqrt(5) this is PyTorch's default Linear/Conv weight init, bound = 1/sqrt(fan_in).
 */
export function kaimingUniform(shape: number[], a = Math.sqrt(5), rng: Generator = defaultGenerator): tf.Tensor {
  const { fanIn } = fans(shape);
  // torch: "Initializing zero-element tensors is a no-op" (fan_in 0 would give an infinite bound)
  if (shape.includes(0)) return tf.zeros(shape);
  const bound = Math.sqrt(6 / ((1 + a * a) * fanIn));
  return rng.uniform(shape, -bound, bound);
}

// The layers of torch.nn that the FIBER models use, with PyTorch's parameter names, shapes and
// default initialisation.
import { tf } from '../tf.js';
import { defaultGenerator, type Generator } from '../rng.js';
import { gelu, layerNorm } from '../ops/activations.js';
import { linear } from '../ops/linalg.js';
import { findOutOfRange, nanWhereOutOfRange, readsOnHost } from '../host.js';
import { conv2dNhwc } from '../ops/conv.js';
import { fans, kaimingUniform, uniform } from './init.js';
import { Module, Parameter } from './module.js';

/**
 * Throws a RangeError naming `layer`'s argument `name` unless every value is an integer >= `min`
 * (torch: "Trying to create tensor with negative dimension", "kernel size should be greater than zero").
 */
export function checkSizes(
  layer: string,
  name: string,
  value: number | readonly number[],
  { min = 0, pair = false }: { min?: number; pair?: boolean } = {},
): void {
  const values = Array.isArray(value) ? value : [value];
  const shapeOk = Array.isArray(value) ? pair && value.length === 2 : true;
  if (!shapeOk || !values.every((v) => Number.isSafeInteger(v) && v >= min))
    throw new RangeError(
      `${layer}: ${name} must be ${min > 0 ? 'a positive' : 'a non-negative'} integer${pair ? ' or a pair of them' : ''}, got ${Array.isArray(value) ? `[${value.join(', ')}]` : String(value)}`,
    );
}

/** A normalisation layer's eps: a finite positive number. */
export function checkEps(layer: string, eps: number): void {
  if (!(eps > 0 && Number.isFinite(eps))) throw new RangeError(`${layer}: eps must be a positive number, got ${eps}`);
}

/** The default bias bound of torch's Linear / Conv: 1/sqrt(fan_in), 0 for fan_in 0. */
export const biasBound = (fanIn: number) => (fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0);

/** torch.nn.Linear: weight [out, in], bias [out]; y = x W^T + b. */
export class Linear extends Module {
  weight: Parameter;
  bias?: Parameter;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    { bias = true, rng = defaultGenerator }: { bias?: boolean; rng?: Generator } = {},
  ) {
    super();
    checkSizes('Linear', 'inFeatures', inFeatures);
    checkSizes('Linear', 'outFeatures', outFeatures);
    this.weight = new Parameter(kaimingUniform([outFeatures, inFeatures], Math.sqrt(5), rng));
    if (bias) {
      const bound = biasBound(inFeatures);
      this.bias = new Parameter(uniform([outFeatures], -bound, bound, rng));
    }
  }
  forward(x: tf.Tensor): tf.Tensor {
    return linear(x, this.weight.value, this.bias?.value);
  }
}

/** torch.nn.LayerNorm over the last axis: weight (ones) and bias (zeros) [dim]. */
export class LayerNorm extends Module {
  weight: Parameter;
  bias: Parameter;
  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
  ) {
    super();
    checkSizes('LayerNorm', 'dim', dim);
    checkEps('LayerNorm', eps);
    this.weight = new Parameter(tf.ones([dim]));
    this.bias = new Parameter(tf.zeros([dim]));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return layerNorm(x, this.weight.value, this.bias.value, this.eps);
  }
}

/** torch.nn.Embedding: weight [num, dim] ~ N(0, 1) (padding row zeroed). */
export class Embedding extends Module {
  weight: Parameter;
  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    { paddingIdx, rng = defaultGenerator }: { paddingIdx?: number; rng?: Generator } = {},
  ) {
    super();
    checkSizes('Embedding', 'numEmbeddings', numEmbeddings);
    checkSizes('Embedding', 'embeddingDim', embeddingDim);
    // torch: "Padding_idx must be within num_embeddings"; a negative one counts from the end
    if (paddingIdx !== undefined) {
      if (!Number.isInteger(paddingIdx) || paddingIdx < -numEmbeddings || paddingIdx >= numEmbeddings)
        throw new RangeError(
          numEmbeddings === 0
            ? `Embedding: paddingIdx ${paddingIdx} given for a table of no rows`
            : `Embedding: paddingIdx must be an integer in [-${numEmbeddings}, ${numEmbeddings}), got ${paddingIdx}`,
        );
      if (paddingIdx < 0) paddingIdx += numEmbeddings;
    }
    const w = rng.normalArray(numEmbeddings * embeddingDim);
    if (paddingIdx !== undefined) w.fill(0, paddingIdx * embeddingDim, (paddingIdx + 1) * embeddingDim);
    this.weight = new Parameter(tf.tensor2d(w, [numEmbeddings, embeddingDim]));
  }
  /**
   * ids: int32 of any shape -> [...ids.shape, dim]. An id outside [0, numEmbeddings) is an error,
   * as in torch: on cpu and wasm a RangeError naming the id and its position; on WebGPU, where a
   * check would read the ids back from the GPU, its row is NaN (tfjs' WebGPU gather gives zeros).
   */
  forward(ids: tf.Tensor): tf.Tensor {
    const onHost = readsOnHost();
    const bad = onHost ? findOutOfRange(ids, this.numEmbeddings) : undefined;
    if (bad)
      throw new RangeError(
        `Embedding(${this.numEmbeddings}, ${this.embeddingDim}): id ${bad.value} at ${bad.at} ` +
          `is out of range [0, ${this.numEmbeddings})`,
      );
    return tf.tidy(() => {
      const flat = tf.reshape(tf.cast(ids, 'int32'), [-1]);
      let rows = tf.gather(this.weight.value, flat);
      if (!onHost) rows = tf.add(rows, tf.expandDims(nanWhereOutOfRange(flat, this.numEmbeddings), -1));
      return tf.reshape(rows, [...ids.shape, this.embeddingDim]);
    });
  }
}

/** torch.nn.Dropout: zeroes with probability p and scales by 1/(1-p), in training mode only. Seeded. */
export class Dropout extends Module {
  constructor(
    readonly p = 0.5,
    readonly rng: Generator = defaultGenerator,
  ) {
    super();
    if (!(p >= 0 && p <= 1)) throw new RangeError(`Dropout probability must be in [0, 1], got ${p}`);
  }
  forward(x: tf.Tensor): tf.Tensor {
    if (!this.training || this.p === 0) return x;
    if (this.p === 1) return tf.zerosLike(x);
    return tf.tidy(() => tf.mul(x, tf.mul(this.rng.bernoulli(x.shape, 1 - this.p), 1 / (1 - this.p))));
  }
}

/**
 * timm DropPath (stochastic depth): in training mode each sample of the batch (axis 0) is zeroed
 * with probability p and the others scaled by 1/(1-p) (p = 1 drops every sample, as timm); identity
 * in eval mode. Seeded.
 */
export class DropPath extends Module {
  constructor(
    readonly p = 0,
    readonly rng: Generator = defaultGenerator,
  ) {
    super();
    if (!(p >= 0 && p <= 1)) throw new RangeError(`DropPath probability must be in [0, 1], got ${p}`);
  }
  forward(x: tf.Tensor): tf.Tensor {
    if (!this.training || this.p === 0) return x;
    const keep = 1 - this.p;
    return tf.tidy(() => {
      const mask = this.rng.bernoulli([x.shape[0], ...x.shape.slice(1).map(() => 1)], keep); // [B, 1, ..., 1]
      // timm scales only when keep_prob > 0: at p = 1 every sample is dropped
      return tf.mul(x, keep > 0 ? tf.div(mask, keep) : mask);
    });
  }
}

/**
 * DropBlock2D of maskrcnn_benchmark (`layers/dropblock.py`; Ghiasi et al., 2018) on NCHW input: in
 * training mode block centres are drawn per sample and position with probability dropProb /
 * blockSize^2, the blockSize x blockSize block around each centre is zeroed in every channel, and
 * the output is scaled by (mask elements) / (elements kept). Identity in eval mode or at dropProb 0.
 * Seeded. As there, a mask that drops everything gives NaN.
 */
export class DropBlock2D extends Module {
  constructor(
    readonly dropProb: number,
    readonly blockSize: number,
    readonly rng: Generator = defaultGenerator,
  ) {
    super();
    if (!(dropProb >= 0 && dropProb <= 1))
      throw new RangeError(`DropBlock2D: dropProb must be in [0, 1], got ${dropProb}`);
    checkSizes('DropBlock2D', 'blockSize', blockSize, { min: 1 });
  }
  forward(x: tf.Tensor): tf.Tensor {
    if (x.rank !== 4) throw new RangeError(`DropBlock2D: expected [N, C, H, W], got [${x.shape.join(', ')}]`);
    if (!this.training || this.dropProb === 0) return x;
    const [n, , h, w] = x.shape;
    const k = this.blockSize;
    const pad = Math.floor(k / 2);
    return tf.tidy(() => {
      const centres = this.rng.bernoulli([n, h, w, 1], this.dropProb / k ** 2);
      // max_pool2d(kernel k, stride 1, padding k // 2); zero padding equals torch's -inf on a 0/1 mask
      const padded = tf.pad(centres as tf.Tensor4D, [
        [0, 0],
        [pad, pad],
        [pad, pad],
        [0, 0],
      ]);
      const pooled = tf.slice(tf.maxPool(padded, k, 1, 'valid'), [0, 0, 0, 0], [n, h, w, 1]); // even k: drop the last row and column
      const keep = tf.sub(1, tf.reshape(pooled, [n, 1, h, w]));
      return tf.mul(tf.mul(x, keep), tf.div(n * h * w, tf.sum(keep)));
    });
  }
}

/** torch.nn.GELU() (exact erf form). */
export class GELU extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return gelu(x);
  }
}

/** torch.nn.Identity. */
export class Identity extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return x;
  }
}

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  groups?: number;
  bias?: boolean;
  rng?: Generator;
}

const pair = (v: number | [number, number]): [number, number] => (Array.isArray(v) ? v : [v, v]);

/**
 * torch.nn.Conv2d on NCHW tensors: weight [out, in/groups, kh, kw], bias [out]. Symmetric zero
 * padding, stride, groups (groups == in == out is a depthwise conv).
 */
export class Conv2d extends Module {
  weight: Parameter;
  bias?: Parameter;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly groups: number;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number | [number, number],
    { stride = 1, padding = 0, groups = 1, bias = true, rng = defaultGenerator }: Conv2dOptions = {},
  ) {
    super();
    checkSizes('Conv2d', 'inChannels', inChannels);
    checkSizes('Conv2d', 'outChannels', outChannels);
    checkSizes('Conv2d', 'kernelSize', kernelSize, { min: 1, pair: true });
    checkSizes('Conv2d', 'stride', stride, { min: 1, pair: true });
    checkSizes('Conv2d', 'padding', padding, { pair: true });
    checkSizes('Conv2d', 'groups', groups, { min: 1 });
    if (inChannels % groups || outChannels % groups) {
      throw new RangeError(
        `Conv2d: in (${inChannels}) and out (${outChannels}) channels must be divisible by groups (${groups})`,
      );
    }
    this.kernelSize = pair(kernelSize);
    this.stride = pair(stride);
    this.padding = pair(padding);
    this.groups = groups;
    const shape = [outChannels, inChannels / groups, ...this.kernelSize];
    this.weight = new Parameter(kaimingUniform(shape, Math.sqrt(5), rng));
    if (bias) {
      const bound = biasBound(fans(shape).fanIn);
      this.bias = new Parameter(uniform([outChannels], -bound, bound, rng));
    }
  }

  /** x [N, C, H, W] -> [N, out, H', W']. */
  forward(x: tf.Tensor): tf.Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.inChannels) {
      throw new RangeError(`Conv2d: expected [N, ${this.inChannels}, H, W], got [${x.shape.join(', ')}]`);
    }
    return tf.tidy(() => {
      const [ph, pw] = this.padding;
      let h = tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D; // NHWC
      if (ph || pw)
        h = tf.pad(h, [
          [0, 0],
          [ph, ph],
          [pw, pw],
          [0, 0],
        ]);
      // [out, in/g, kh, kw] -> [kh, kw, in/g, out]
      const w = tf.transpose(this.weight.value, [2, 3, 1, 0]) as tf.Tensor4D;
      let y: tf.Tensor4D;
      if (this.groups === 1) {
        y = conv2dNhwc(h, w, this.stride);
      } else if (this.groups === this.inChannels) {
        // Depthwise: output channel c * mult + m reads input channel c.
        const [kh, kw] = this.kernelSize;
        const filter = tf.reshape(w, [kh, kw, this.inChannels, this.outChannels / this.inChannels]) as tf.Tensor4D;
        y = tf.depthwiseConv2d(h, filter, this.stride, 'valid');
      } else {
        const xs = tf.split(h, this.groups, 3);
        const ws = tf.split(w, this.groups, 3);
        y = tf.concat<tf.Tensor4D>(
          xs.map((xi, i) => conv2dNhwc(xi as tf.Tensor4D, ws[i] as tf.Tensor4D, this.stride)),
          3,
        );
      }
      if (this.bias) y = tf.add(y, this.bias.value);
      return tf.transpose(y, [0, 3, 1, 2]);
    });
  }
}

// FIBER's fusion blocks (fiber-spec §1.3-1.4, §3.2), built on the backbones' extension points so
// that the official checkpoint keys come out by construction:
// - image->text: FusedWindowAttention, a Swin WindowAttention that, after its output projection o,
//   adds alpha_i2t * proj_i2t(attend(qkv_i2t(norm_i2t_i(o)), text K/V from qkv_text_i2t)): per window
//   in the coarse Swin, over the whole padded map in the detection one (the same values: each image
//   token attends to the text alone).
//   The fine-grained v2 backbone has no norm_i2t_i (the query is qkv_i2t(o)).
// - text->image: FiberRobertaLayer, a RoBERTa layer with a gate alpha_t2i and, in fused layers,
//   `crossattention_t2i` whose query is the projected self-attention output a (before residual +
//   LayerNorm) and whose keys/values are the native Swin tokens:
//   a = a + alpha_t2i * crossattention_t2i.output.dense(attend(a, image tokens)).
//   The coarse model gives every layer a gate; the fine-grained one only the fused layers, and its
//   crossattention_t2i.output has no LayerNorm (an Identity in the official code).
import {
  Dropout,
  LayerNorm,
  Linear,
  Module,
  Parameter,
  defaultGenerator,
  initWeights,
  scaledDotProductAttention,
  tf,
  type Generator,
} from '@fiber-vl/tensor-core';
import { RobertaLayer, RobertaSelfAttention, RobertaSelfOutput, type RobertaConfig } from '@fiber-vl/roberta';
import { WindowAttention, type WindowContext } from '@fiber-vl/swin';

/** What the fused image blocks receive: the text states and their additive padding mask. */
export interface TextContext {
  text: tf.Tensor; // [B, L, Dt]
  mask: tf.Tensor; // [B, 1, 1, L], 0 / -10000
}

/** What a fused text layer receives: the image tokens of the paired Swin block's input. */
export interface ImageContext {
  image: tf.Tensor; // [B, N, C_stage]
}

/** [B, ...] -> [B * n, ...], each item repeated n times in a row (torch.repeat_interleave on dim 0). */
function repeatInterleave(x: tf.Tensor, n: number): tf.Tensor {
  if (n === 1) return x;
  const [B, ...rest] = x.shape;
  // [B, M] tiled along M keeps each item's copies together (2-D tiles run natively on every backend)
  return tf.reshape(tf.tile(tf.reshape(x, [B, -1]), [1, n]), [B * n, ...rest]);
}

export interface FusedWindowAttentionOptions {
  qkvBias?: boolean;
  eps?: number;
  /** LayerNorm on the image->text query (`norm_i2t_i`): coarse and fine v3 yes, fine v2 no. */
  queryNorm?: boolean;
  /**
   * Std of the normal init of qkv_text_i2t, qkv_i2t and proj_i2t (zero biases), as timm's
   * _init_vit_weights in FIBER's coarse Swin: 0.02 by default. null keeps PyTorch's default
   * Linear init, as the fine-grained Swin does (its `self.apply(_init_vit_weights)` is commented out).
   */
  initStd?: number | null;
  rng?: Generator;
}

export class FusedWindowAttention extends WindowAttention<TextContext> {
  alphaI2t: Parameter;
  qkvTextI2t: Linear;
  qkvI2t: Linear;
  projI2t: Linear;
  normI2tI?: LayerNorm;
  constructor(
    dim: number,
    windowSize: number,
    numHeads: number,
    textDim: number,
    {
      qkvBias = true,
      eps = 1e-5,
      queryNorm = true,
      initStd = 0.02,
      rng = defaultGenerator,
    }: FusedWindowAttentionOptions = {},
  ) {
    super(dim, windowSize, numHeads, { qkvBias, rng });
    this.alphaI2t = new Parameter(tf.zeros([1])); // gate starts closed: the pre-trained backbone is unchanged
    this.qkvTextI2t = new Linear(textDim, 2 * dim, { rng });
    this.qkvI2t = new Linear(dim, dim, { rng });
    this.projI2t = new Linear(dim, dim, { rng });
    if (queryNorm) this.normI2tI = new LayerNorm(dim, eps);
    // FIBER's coarse Swin applies timm's _init_vit_weights to every layer; no pre-trained Swin has
    // these, so they keep it
    if (initStd !== null)
      for (const m of [this.qkvTextI2t, this.qkvI2t, this.projI2t]) initWeights(m, { std: initStd, rng });
  }

  override crossAttend(o: tf.Tensor, window: WindowContext<TextContext> | undefined): tf.Tensor {
    if (!window) return o; // no text: dual-encoder pass
    const { context, numWindows } = window;
    return tf.tidy(() => {
      const [Bw, N, C] = o.shape;
      const heads = (x: tf.Tensor) => {
        const [b, n]: number[] = x.shape; // [b, n, heads*hd] -> [b, heads, n, hd]
        return tf.transpose(tf.reshape(x, [b, n, this.numHeads, this.headDim]), [0, 2, 1, 3]);
      };
      const q = heads(this.qkvI2t.forward(this.normI2tI ? this.normI2tI.forward(o) : o));
      const kv = repeatInterleave(this.qkvTextI2t.forward(context.text), numWindows); // [B*nW, L, 2C]
      const [k, v] = tf.split(kv, 2, 2);
      const mask = repeatInterleave(context.mask, numWindows);
      const att = scaledDotProductAttention(q, heads(k), heads(v), { mask, scale: this.scale });
      const y = this.projI2t.forward(tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [Bw, N, C]));
      return tf.add(o, tf.mul(this.alphaI2t.value, y));
    });
  }
}

/** The fine-grained crossattention_t2i.output: dense -> dropout, its LayerNorm an Identity (no keys). */
export class CrossAttentionOutput extends Module {
  dense: Linear;
  dropout: Dropout;
  constructor(config: RobertaConfig, rng: Generator = defaultGenerator) {
    super();
    this.dense = new Linear(config.hiddenSize, config.hiddenSize, { rng });
    this.dropout = new Dropout(config.hiddenDropoutProb, rng);
  }
  project(hidden: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.dropout.forward(this.dense.forward(hidden)));
  }
}

/** crossattention_t2i: a RobertaAttention whose keys/values come from image tokens of width kvDim. */
export class FiberCrossAttention extends Module {
  self: RobertaSelfAttention;
  output: RobertaSelfOutput | CrossAttentionOutput;
  constructor(
    config: RobertaConfig,
    kvDim: number,
    {
      outputNorm = true,
      initStd = 0.02,
      rng = defaultGenerator,
    }: {
      outputNorm?: boolean;
      /** Std of the normal init (zero biases); null keeps PyTorch's default Linear init. */
      initStd?: number | null;
      rng?: Generator;
    } = {},
  ) {
    super();
    this.self = new RobertaSelfAttention(config, rng, { kvDim });
    // the coarse model keeps an (unused) output LayerNorm in its state dict; the fine one has none
    this.output = outputNorm ? new RobertaSelfOutput(config, rng) : new CrossAttentionOutput(config, rng);
    // missing from a pre-trained RoBERTa: transformers' _init_weights, N(0, initializer_range)
    if (initStd !== null) initWeights(this, { std: initStd, rng });
  }
  /** query [B, L, H] attends to image [B, N, kvDim] (no mask); output.dense only. */
  forward(query: tf.Tensor, image: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.output.project(this.self.forward(query, undefined, image)));
  }
}

export interface FiberRobertaLayerOptions {
  /** Width of the image tokens this layer cross-attends to; undefined = an unfused layer. */
  kvDim?: number;
  /** Give the layer an alpha_t2i gate even when unfused (coarse model: every layer has one). */
  gate?: boolean;
  /** crossattention_t2i.output keeps a LayerNorm (coarse) or not (fine-grained). */
  crossOutputNorm?: boolean;
  /** Init std of crossattention_t2i (transformers' initializer_range, 0.02); null: PyTorch's default. */
  initStd?: number | null;
  rng?: Generator;
}

export class FiberRobertaLayer extends RobertaLayer<ImageContext> {
  alphaT2i?: Parameter;
  declare crossAttention?: FiberCrossAttention;
  protected override childNames = { crossAttention: 'crossattention_t2i' };
  constructor(
    config: RobertaConfig,
    {
      kvDim,
      gate = true,
      crossOutputNorm = true,
      initStd = 0.02,
      rng = defaultGenerator,
    }: FiberRobertaLayerOptions = {},
  ) {
    super(config, rng, {
      crossAttention: kvDim
        ? new FiberCrossAttention(config, kvDim, { outputNorm: crossOutputNorm, initStd, rng })
        : undefined,
    });
    if (gate || kvDim) this.alphaT2i = new Parameter(tf.zeros([1]));
  }

  override crossAttend(a: tf.Tensor, context: ImageContext | undefined): tf.Tensor {
    const cross = this.crossAttention;
    const alpha = this.alphaT2i;
    if (!context || !cross || !alpha) return a;
    return tf.tidy(() => tf.add(a, tf.mul(alpha.value, cross.forward(a, context.image))));
  }
}

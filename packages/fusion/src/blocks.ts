// FIBER's fusion blocks (fiber-spec §1.3-1.4), built on the backbones' extension points so that
// the official checkpoint keys come out by construction:
// - image->text: FusedWindowAttention, a Swin WindowAttention that, after its output projection o
//   (per window), adds alpha_i2t * proj_i2t(attend(qkv_i2t(norm_i2t_i(o)), text K/V from qkv_text_i2t)).
// - text->image: FiberRobertaLayer, a RoBERTa layer with a gate alpha_t2i (every layer has one) and,
//   in fused layers, `crossattention_t2i` whose query is the projected self-attention output a
//   (before residual + LayerNorm) and whose keys/values are the native Swin tokens:
//   a = a + alpha_t2i * crossattention_t2i.output.dense(attend(a, image tokens)).
import { LayerNorm, Linear, Module, Parameter, defaultGenerator, scaledDotProductAttention, tf, type Generator } from '@fiber-vl/tensor-core';
import { RobertaLayer, RobertaSelfAttention, RobertaSelfOutput, type RobertaConfig } from '@fiber-vl/roberta';
import { WindowAttention, type WindowContext } from '@fiber-vl/swin';

/** What the fused image blocks receive: the text states and their additive padding mask. */
export interface TextContext {
  text: tf.Tensor; // [B, L, Dt]
  mask: tf.Tensor; // [B, 1, 1, L], 0 / -10000
}

/** [B, ...] -> [B * n, ...], each item repeated n times in a row (torch.repeat_interleave on dim 0). */
function repeatInterleave(x: tf.Tensor, n: number): tf.Tensor {
  if (n === 1) return x;
  const [B, ...rest] = x.shape;
  // [B, M] tiled along M keeps each item's copies together (2-D tiles run natively on every backend)
  return tf.reshape(tf.tile(tf.reshape(x, [B, -1]), [1, n]), [B * n, ...rest]);
}

export class FusedWindowAttention extends WindowAttention {
  alphaI2t: Parameter;
  qkvTextI2t: Linear;
  qkvI2t: Linear;
  projI2t: Linear;
  normI2tI: LayerNorm;
  constructor(dim: number, windowSize: number, numHeads: number, textDim: number, { qkvBias = true, eps = 1e-5, rng = defaultGenerator }: { qkvBias?: boolean; eps?: number; rng?: Generator } = {}) {
    super(dim, windowSize, numHeads, { qkvBias, rng });
    this.alphaI2t = new Parameter(tf.zeros([1])); // gate starts closed: the pre-trained backbone is unchanged
    this.qkvTextI2t = new Linear(textDim, 2 * dim, { rng });
    this.qkvI2t = new Linear(dim, dim, { rng });
    this.projI2t = new Linear(dim, dim, { rng });
    this.normI2tI = new LayerNorm(dim, eps);
  }

  override crossAttend(o: tf.Tensor, window: WindowContext | undefined): tf.Tensor {
    const ctx = window?.context as TextContext | undefined;
    if (!ctx) return o; // no text: dual-encoder pass
    return tf.tidy(() => {
      const [Bw, N, C] = o.shape;
      const heads = (x: tf.Tensor) => tf.transpose(tf.reshape(x, [x.shape[0], x.shape[1] as number, this.numHeads, this.headDim]), [0, 2, 1, 3]);
      const q = heads(this.qkvI2t.forward(this.normI2tI.forward(o)));
      const kv = repeatInterleave(this.qkvTextI2t.forward(ctx.text), window!.numWindows); // [B*nW, L, 2C]
      const [k, v] = tf.split(kv, 2, 2);
      const mask = repeatInterleave(ctx.mask, window!.numWindows);
      const att = scaledDotProductAttention(q, heads(k), heads(v), { mask, scale: this.scale });
      const y = this.projI2t.forward(tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [Bw, N, C]));
      return tf.add(o, tf.mul(this.alphaI2t.value, y));
    });
  }
}

/** crossattention_t2i: a RobertaAttention whose keys/values come from image tokens of width kvDim. */
export class FiberCrossAttention extends Module {
  self: RobertaSelfAttention;
  output: RobertaSelfOutput;
  constructor(config: RobertaConfig, kvDim: number, rng: Generator = defaultGenerator) {
    super();
    this.self = new RobertaSelfAttention(config, rng, { kvDim });
    this.output = new RobertaSelfOutput(config, rng);
  }
  /** query [B, L, H] attends to image [B, N, kvDim] (no mask); output.dense only (its LayerNorm is unused). */
  forward(query: tf.Tensor, image: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.output.project(this.self.forward(query, undefined, image)));
  }
}

/** What a fused text layer receives: the image tokens of the paired Swin block's input. */
export interface ImageContext {
  image: tf.Tensor; // [B, N, C_stage]
}

export class FiberRobertaLayer extends RobertaLayer {
  alphaT2i: Parameter;
  protected override childNames = { crossAttention: 'crossattention_t2i' };
  constructor(config: RobertaConfig, { kvDim, rng = defaultGenerator }: { kvDim?: number; rng?: Generator } = {}) {
    super(config, rng, { crossAttention: kvDim ? new FiberCrossAttention(config, kvDim, rng) : undefined });
    this.alphaT2i = new Parameter(tf.zeros([1]));
  }

  override crossAttend(a: tf.Tensor, context: unknown): tf.Tensor {
    const ctx = context as ImageContext | undefined;
    if (!ctx || !this.crossAttention) return a;
    return tf.tidy(() => tf.add(a, tf.mul(this.alphaT2i.value, (this.crossAttention as FiberCrossAttention).forward(a, ctx.image))));
  }
}

// The composed FIBER backbone (coarse-grained, fiber-spec §1.5-1.6): Swin (`vit_model`) and RoBERTa
// (`text_transformer`) with fusion blocks in their top layers, the cross-modal transforms and the
// poolers, in the order of the official FIBERTransformerSS so that keys and their order match.
//   fused(): both streams run in parallel through the fused pairs, each reading the other's state
//            from before the step; the last text layer skips its output LayerNorm; no Swin norm.
//   dual():  the same weights as two independent encoders (ITC / retrieval): Swin with its final
//            norm, 12 plain text layers, the `_itc` transforms and poolers, L2-normalised.
import { Linear, Module, defaultGenerator, l2Normalize, tf, type Generator } from '@fiber-vl/tensor-core';
import { RobertaModel, RobertaPooler, extendedAttentionMaskTensor, type RobertaConfig } from '@fiber-vl/roberta';
import { SwinTransformer } from "@fiber-vl/swin";
import { FiberRobertaLayer, FusedWindowAttention, type ImageContext, type TextContext } from './blocks.js';
import { fusionSchedule, validateFiberConfig, type FiberCoarseConfig, type FusedPair } from './config.js';

export interface FusedOutput {
  /** [B, L, H] after cross_modal_text_transform. */
  textFeats: tf.Tensor;
  /** [B, N, H] after cross_modal_image_transform. */
  imageFeats: tf.Tensor;
  /** [B, 2H] = [text pooled | image pooled]. */
  clsFeats: tf.Tensor;
  /** Raw backbone outputs (text without its last LayerNorm, image without the Swin norm). */
  text: tf.Tensor;
  image: tf.Tensor;
}

export interface DualImageOutput {
  imageFeats: tf.Tensor; // [B, N, H]
  imageCls: tf.Tensor; // [B, H], L2-normalised
}
export interface DualTextOutput {
  textFeats: tf.Tensor; // [B, L, H]
  textCls: tf.Tensor; // [B, H], L2-normalised
}

/** A pooler on a [B, 1, H] or [B, L, H] tensor: tanh(dense(x[:, 0])). */
const pool = (p: RobertaPooler, x: tf.Tensor) => p.forward(x);

export class FiberCoarseBackbone extends Module {
  crossModalTextTransform: Linear;
  crossModalImageTransform: Linear;
  crossModalTextTransformItc: Linear;
  crossModalImageTransformItc: Linear;
  vitModel: SwinTransformer;
  textTransformer: RobertaModel;
  crossModalImagePooler: RobertaPooler;
  crossModalTextPooler: RobertaPooler;
  crossModalImagePoolerItc: RobertaPooler;
  crossModalTextPoolerItc: RobertaPooler;
  readonly schedule: FusedPair[];

  constructor(
    readonly config: FiberCoarseConfig,
    rng: Generator = defaultGenerator,
  ) {
    super();
    validateFiberConfig(config);
    const { swin, roberta, hiddenSize } = config;
    const imageWidth = swin.embedDim * 2 ** (swin.depths.length - 1);
    const textWidth = roberta.hiddenSize;
    this.schedule = fusionSchedule(config);
    const fusedBlock = new Map(this.schedule.map((p) => [`${p.stage}/${p.block}`, p]));
    const stageOfLayer = new Map(this.schedule.map((p) => [p.textLayer, p.stage]));
    this.crossModalTextTransform = new Linear(textWidth, hiddenSize, { rng });
    this.crossModalImageTransform = new Linear(imageWidth, hiddenSize, { rng });
    this.crossModalTextTransformItc = new Linear(textWidth, hiddenSize, { rng });
    this.crossModalImageTransformItc = new Linear(imageWidth, hiddenSize, { rng });
    this.vitModel = new SwinTransformer(swin, {
      rng,
      attentionFactory: (stage, block, dim, windowSize, heads) =>
        fusedBlock.has(`${stage}/${block}`) ? new FusedWindowAttention(dim, windowSize, heads, textWidth, { qkvBias: swin.qkvBias, eps: swin.layerNormEps, rng }) : undefined,
    });
    const layers = Array.from({ length: roberta.numHiddenLayers }, (_, i) => {
      const stage = stageOfLayer.get(i);
      return new FiberRobertaLayer(roberta, { kvDim: stage === undefined ? undefined : swin.embedDim * 2 ** stage, rng });
    });
    this.textTransformer = new RobertaModel(roberta, { rng, layers });
    this.crossModalImagePooler = new RobertaPooler({ ...roberta, hiddenSize } as RobertaConfig, rng);
    this.crossModalTextPooler = new RobertaPooler({ ...roberta, hiddenSize } as RobertaConfig, rng);
    this.crossModalImagePoolerItc = new RobertaPooler({ ...roberta, hiddenSize } as RobertaConfig, rng);
    this.crossModalTextPoolerItc = new RobertaPooler({ ...roberta, hiddenSize } as RobertaConfig, rng);
  }

  /** The fusion-on pass: pixels [B, 3, S, S], inputIds / attentionMask [B, L]. */
  fused(pixels: tf.Tensor, inputIds: tf.Tensor, attentionMask: tf.Tensor): FusedOutput {
    const swin = this.vitModel;
    const layers = [...this.textTransformer.encoder.layer] as FiberRobertaLayer[];
    const lastText = layers.length - 1;
    const pairAt = new Map(this.schedule.map((p) => [`${p.stage}/${p.block}`, p]));
    const firstFusedText = Math.min(...this.schedule.map((p) => p.textLayer));
    return tf.tidy(() => {
      const mask = extendedAttentionMaskTensor(attentionMask);
      let text = this.textTransformer.embeddings.forward(inputIds);
      for (let i = 0; i < firstFusedText; i++) text = layers[i].forward(text, mask);
      let x = swin.posDrop.forward(swin.patchEmbed.forward(pixels));
      let [H, W] = [this.config.swin.imageSize / this.config.swin.patchSize, this.config.swin.imageSize / this.config.swin.patchSize];
      [...swin.layers].forEach((stage, i) => {
        [...stage.blocks].forEach((block, j) => {
          const pair = pairAt.get(`${i}/${j}`);
          if (!pair) {
            x = block.forward(x, H, W);
            return;
          }
          // parallel update: both sides read the other's state from before this step
          const textContext: TextContext = { text, mask };
          const imageContext: ImageContext = { image: x };
          const nextImage = block.forward(x, H, W, textContext);
          text = layers[pair.textLayer].forward(text, mask, { context: imageContext, skipOutputNorm: pair.textLayer === lastText });
          x = nextImage;
        });
        if (stage.downsample) {
          x = stage.downsample.forward(x, H, W);
          [H, W] = [H / 2, W / 2];
        }
      });
      const textFeats = this.crossModalTextTransform.forward(text);
      const imageFeats = this.crossModalImageTransform.forward(x);
      const clsText = pool(this.crossModalTextPooler, textFeats);
      const clsImage = pool(this.crossModalImagePooler, tf.mean(imageFeats, 1, true));
      return { textFeats, imageFeats, clsFeats: tf.concat([clsText, clsImage], -1), text, image: x } as unknown as tf.TensorContainer;
    }) as unknown as FusedOutput;
  }

  /** Image encoder of the dual mode (ITC, retrieval). */
  encodeImage(pixels: tf.Tensor): DualImageOutput {
    return tf.tidy(() => {
      const out = this.vitModel.forward(pixels);
      const imageFeats = this.crossModalImageTransformItc.forward(out.lastHiddenState!);
      const imageCls = l2Normalize(pool(this.crossModalImagePoolerItc, tf.mean(imageFeats, 1, true)));
      return { imageFeats, imageCls } as unknown as tf.TensorContainer;
    }) as unknown as DualImageOutput;
  }

  /** Text encoder of the dual mode. */
  encodeText(inputIds: tf.Tensor, attentionMask: tf.Tensor): DualTextOutput {
    return tf.tidy(() => {
      const { lastHiddenState } = this.textTransformer.forward(inputIds, attentionMask);
      const textFeats = this.crossModalTextTransformItc.forward(lastHiddenState);
      const textCls = l2Normalize(pool(this.crossModalTextPoolerItc, textFeats));
      return { textFeats, textCls } as unknown as tf.TensorContainer;
    }) as unknown as DualTextOutput;
  }
}

// The ablation baseline of the main job (issue: "fusion in the backbone vs the same backbones without
// fusion blocks plus a late-fusion head of equal width"): Swin and RoBERTa as two independent
// encoders, then a late-fusion head that runs `depth` co-attention transformer layers of width H over
// the concatenated (projected) image and text tokens, and the same pooling and task heads as FIBER
// (cls_feats = [text CLS | mean image token], both tanh-pooled). Same backbone sizes as the FIBER
// model it is compared with; `depth` is chosen so that its fusion parameters match.
import {
  Embedding,
  LayerNorm,
  Linear,
  Module,
  ModuleList,
  type Sequential,
  defaultGenerator,
  initWeights,
  setWasmKernelsEnabled,
  tf,
  tidyOutput,
  type Generator,
} from '@fiber-vl/tensor-core';
import { RobertaLayer, RobertaModel, RobertaPooler, extendedAttentionMaskTensor } from '@fiber-vl/roberta';
import { SwinTransformer } from '@fiber-vl/swin';
import { classifier, ITMHead } from '@fiber-vl/heads-coarse';
import { type FiberCoarseConfig, type FusedOutput, initializerStd } from '@fiber-vl/fusion';

/** State-dict prefixes of the two backbones (FIBER's `vit_model` and `text_transformer`); the rest is the late-fusion head and the task heads. */
export const LATE_BACKBONE_PREFIXES = ['vit_model.', 'text_transformer.'] as const;

export class LateFusionModel extends Module {
  vitModel: SwinTransformer;
  textTransformer: RobertaModel;
  imageProjection: Linear;
  textProjection: Linear;
  modalityEmbeddings: Embedding;
  fusionLayers: ModuleList<RobertaLayer>;
  fusionNorm: LayerNorm;
  textPooler: RobertaPooler;
  imagePooler: RobertaPooler;
  itmScore?: ITMHead;
  vqaClassifier?: Sequential;
  readonly hidden: number;

  constructor(
    readonly config: FiberCoarseConfig,
    {
      depth,
      vqaLabels = 0,
      itm = false,
      rng = defaultGenerator,
    }: { depth: number; vqaLabels?: number; itm?: boolean; rng?: Generator },
  ) {
    super();
    const { swin, roberta, hiddenSize: H } = config;
    this.hidden = H;
    this.vitModel = new SwinTransformer(swin, { rng });
    this.textTransformer = new RobertaModel(roberta, { rng, addPoolingLayer: false });
    const imageWidth = swin.embedDim * 2 ** (swin.depths.length - 1);
    this.imageProjection = new Linear(imageWidth, H, { rng });
    this.textProjection = new Linear(roberta.hiddenSize, H, { rng });
    this.modalityEmbeddings = new Embedding(2, H, { rng });
    const heads = Math.max(1, Math.round(H / 32));
    const layerConfig = {
      ...roberta,
      hiddenSize: H,
      numAttentionHeads: H % heads === 0 ? heads : 1,
      intermediateSize: 4 * H,
    };
    this.fusionLayers = new ModuleList(Array.from({ length: depth }, () => new RobertaLayer(layerConfig, rng)));
    this.fusionNorm = new LayerNorm(H);
    this.textPooler = new RobertaPooler({ hiddenSize: H }, rng);
    this.imagePooler = new RobertaPooler({ hiddenSize: H }, rng);
    if (itm) this.itmScore = new ITMHead(2 * H, rng);
    if (vqaLabels > 0) this.vqaClassifier = classifier(2 * H, 2 * H, vqaLabels, { rng });
    // every layer added to the backbones starts as FIBER's added layers do (and METER's co-attention
    // layers): N(0, initializerRange) weights, zero biases, or PyTorch's default init for null
    const std = initializerStd(config);
    const added = [
      this.imageProjection,
      this.textProjection,
      this.modalityEmbeddings,
      this.fusionLayers,
      this.fusionNorm,
      this.textPooler,
      this.imagePooler,
      this.itmScore,
      this.vqaClassifier,
    ];
    if (std !== null) for (const m of added) if (m) initWeights(m, { std, rng });
  }

  /** Parameters of the late-fusion head (projections, modality embeddings, co-attention layers, norm). */
  fusionParameters(): number {
    return [
      this.imageProjection,
      this.textProjection,
      this.modalityEmbeddings,
      this.fusionLayers,
      this.fusionNorm,
    ].reduce((n, m) => n + m.numParameters(), 0);
  }

  /** The same record as FIBER's fused pass, so the same heads and losses apply. */
  fused(pixels: tf.Tensor, inputIds: tf.Tensor, attentionMask: tf.Tensor): FusedOutput {
    return tidyOutput(() => {
      const image = this.vitModel.forward(pixels).stages.at(-1)!; // [B, N, C] without the final norm, as FIBER's fused path
      const text = this.textTransformer.forward(inputIds, attentionMask, { pool: false }).lastHiddenState; // [B, L, D]
      const [B, N]: number[] = image.shape;
      const L: number = text.shape[1] ?? 0;
      const img = tf.add(
        this.imageProjection.forward(image),
        this.modalityEmbeddings.forward(tf.zeros([B, N], 'int32')),
      );
      const txt = tf.add(this.textProjection.forward(text), this.modalityEmbeddings.forward(tf.ones([B, L], 'int32')));
      let h = tf.concat([txt, img], 1); // [B, L + N, H]
      const mask = extendedAttentionMaskTensor(
        tf.concat([tf.cast(attentionMask, 'int32'), tf.ones([B, N], 'int32')], 1),
      );
      for (const layer of this.fusionLayers) h = layer.forward(h, mask);
      h = this.fusionNorm.forward(h);
      const textFeats = tf.slice(h, [0, 0, 0], [B, L, this.hidden]);
      const imageFeats = tf.slice(h, [0, L, 0], [B, N, this.hidden]);
      const clsFeats = tf.concat(
        [this.textPooler.forward(textFeats), this.imagePooler.forward(tf.mean(imageFeats, 1, true))],
        -1,
      );
      return { textFeats, imageFeats, clsFeats, text, image };
    });
  }
}

/** Fusion-block parameters of a FIBER model: every i2t / t2i tensor (gates, cross-attention, their norms). */
export function fiberFusionParameters(model: Module): number {
  return model.namedParameters().reduce((n, [name, p]) => n + (/i2t|t2i/.test(name) ? p.value.size : 0), 0);
}

/** The late-fusion depth whose head has about as many parameters as FIBER's fusion blocks. */
export function matchedLateFusionDepth(config: FiberCoarseConfig, fiberFusionParams: number): number {
  const H = config.hiddenSize;
  const perLayer = 4 * H * H + 4 * H + 2 * H + 2 * (4 * H * H) + 4 * H + H + 2 * H; // attention, output, FFN, norms
  return Math.max(1, Math.round(fiberFusionParams / perLayer));
}

/**
 * FLOPs of the matrix products a function runs (linear layers, attention products, convolutions),
 * counted from a tf.profile with the fused wasm kernels switched off, so that every product is a
 * plain MatMul / BatchMatMul / Conv2D kernel whose shapes give its cost (2 M N K).
 */
export async function countFlops(fn: () => tf.TensorContainer): Promise<number> {
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  setWasmKernelsEnabled(false);
  try {
    const info = await tf.profile(() => {
      tf.dispose(fn());
    });
    let flops = 0;
    for (const k of info.kernels) {
      const [a, b] = k.inputShapes as number[][];
      const out = k.outputShapes[0] as number[] | undefined;
      if (!out || !a || !b) continue;
      if (k.name === 'BatchMatMul' || k.name === '_FusedMatMul' || k.name === 'MatMul') {
        const M = out[out.length - 2];
        const K = a[a.length - 1] === M && a.length >= 2 && a[a.length - 2] !== M ? a[a.length - 2] : a[a.length - 1];
        flops += 2 * size(out) * K;
      } else if (k.name === 'Conv2D' || k.name === 'FusedConv2D') {
        flops += 2 * size(out) * b[0] * b[1] * b[2]; // filter [kh, kw, ci, co]
      }
    }
    return flops;
  } finally {
    setWasmKernelsEnabled(true);
  }
}

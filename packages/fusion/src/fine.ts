// The fine-grained FIBER backbone (fiber-spec §3.2, official FusionSwinTransformer with
// fusion_swin_transformer_v2/v3 and roberta_fused_model_v2): the detection-style Swin (`backbone.body`:
// fixed window at every stage, zero padding to whole windows after norm1, masks per forward, output
// LayerNorms norm1..norm3 on stages 1-3 as NCHW maps) and RoBERTa (`language_backbone.body.model`,
// no pooler), fused in their top layers exactly like the coarse model (the same `runFused` over the
// backbones' steps). Differences from the coarse model: v2 has no norm_i2t_i (v3 does); alpha_t2i
// only on fused text layers; crossattention_t2i.output has no LayerNorm; every text layer applies its
// output LayerNorm. The text output is aggregated as the official get_aggregated_output.
//
// The neck (`backbone.fpn`, in @fiber-vl/heads-fine) is passed in, so the module tree and its keys
// are the official `fusion_backbone.*` ones by construction.
import { Module, defaultGenerator, tf, tidyOutput, type Generator } from '@fiber-vl/tensor-core';
import {
  ROBERTA_BASE,
  RobertaModel,
  maxInputLength,
  validateRobertaConfig,
  type RobertaConfig,
} from '@fiber-vl/roberta';
import { SWIN_PRESETS, SwinTransformer, validateSwinConfig, type SwinConfig } from '@fiber-vl/swin';
import { checkPairedBatch, runFused } from './backbone.js';
import { FiberRobertaLayer, FusedWindowAttention, type ImageContext, type TextContext } from './blocks.js';
import {
  FIBER_PRESETS,
  checkInitializerRange,
  checkSections,
  fusionSchedule,
  initializerStd,
  type FusedPair,
} from './config.js';

export type FineFusionVersion = 'v2' | 'v3';

/** The fine-grained backbone (fiber-spec §3.2): FIBER-B with MAX_QUERY_LEN 256, window 12, drop-path 0.4. */
export interface FiberFineConfig {
  /** Detection variant: any input size (padded to the patch and to whole windows), fixed window. */
  swin: SwinConfig;
  roberta: RobertaConfig;
  /** Fused (image block, text layer) pairs: 6 at FIBER-B. */
  numFuseBlock: number;
  /** v2 (pre-training, COCO/LVIS) or v3 (RefCOCO family: adds norm_i2t_i). */
  version: FineFusionVersion;
  /** Text length the prompts are padded to (MAX_QUERY_LEN). */
  maxQueryLen: number;
  /**
   * Swin stages frozen while training (`MODEL.BACKBONE.FREEZE_CONV_BODY_AT`, SwinOptions.frozenStages):
   * the presets have FIBER's pre-training default 2 (patch embedding and stage 0); the official
   * fine-tunes (RefCOCO/+/g, COCO, LVIS) set -1. Absent (configs saved before it existed): -1.
   */
  frozenStages?: number;
  /**
   * Standard deviation of the normal init of the text layers' `crossattention_t2i` (transformers'
   * `initializer_range`), 0.02 when absent; `null` keeps PyTorch's default Linear init. The Swin
   * blocks' image->text layers keep PyTorch's default either way, as FIBER's fine-grained Swin
   * does (its `self.apply(_init_vit_weights)` is commented out). Loaded weights replace both.
   */
  initializerRange?: number | null;
}

export type FiberFinePresetName = 'base' | 'small' | 'tiny';

const B = SWIN_PRESETS.swin_base_patch4_window12_384;
const swinBase: SwinConfig = { ...B, windowSize: 12, dropPathRate: 0.4 };

/**
 * The sizes of a coarse preset (Swin widths and depths, RoBERTa, fused blocks, image size) with the
 * fine-grained Swin settings: window 4, drop-path 0.1.
 */
function fromCoarse(name: 'small' | 'tiny', maxQueryLen: number): FiberFineConfig {
  const { imageSize, swin, roberta, numFuseBlock } = FIBER_PRESETS[name];
  const { embedDim, depths, numHeads } = swin;
  return {
    swin: { ...swinBase, imageSize, windowSize: 4, embedDim, depths, numHeads, dropPathRate: 0.1 },
    roberta: { ...roberta },
    numFuseBlock,
    version: 'v2',
    maxQueryLen,
    frozenStages: 2,
  };
}

/** Named sizes; `small` / `tiny` keep the structure at CPU-trainable sizes (window 4). */
export const FIBER_FINE_PRESETS: Readonly<Record<FiberFinePresetName, FiberFineConfig>> = {
  base: {
    swin: swinBase,
    roberta: { ...ROBERTA_BASE },
    numFuseBlock: 6,
    version: 'v2',
    maxQueryLen: 256,
    frozenStages: 2,
  },
  small: fromCoarse('small', 64),
  tiny: fromCoarse('tiny', 32),
};

export interface FiberFineConfigOptions {
  swin?: Partial<SwinConfig>;
  roberta?: Partial<RobertaConfig>;
  numFuseBlock?: number;
  version?: FineFusionVersion;
  maxQueryLen?: number;
  frozenStages?: number;
  /** See FiberFineConfig.initializerRange (absent: 0.02). */
  initializerRange?: number | null;
}

/** A fine-grained config from a preset with overrides, validated. */
export function fiberFineConfig(
  preset: FiberFinePresetName = 'base',
  options: FiberFineConfigOptions = {},
): FiberFineConfig {
  const p = Object.hasOwn(FIBER_FINE_PRESETS, preset) ? FIBER_FINE_PRESETS[preset] : undefined;
  if (!p)
    throw new RangeError(
      `fiberFineConfig: unknown preset "${preset}" (expected ${Object.keys(FIBER_FINE_PRESETS).join(', ')})`,
    );
  return validateFiberFineConfig({
    swin: { ...p.swin, ...options.swin },
    roberta: { ...p.roberta, ...options.roberta },
    numFuseBlock: options.numFuseBlock ?? p.numFuseBlock,
    version: options.version ?? p.version,
    maxQueryLen: options.maxQueryLen ?? p.maxQueryLen,
    frozenStages: options.frozenStages ?? p.frozenStages,
    ...(options.initializerRange === undefined ? {} : { initializerRange: options.initializerRange }),
  });
}

export function validateFiberFineConfig(cfg: FiberFineConfig): FiberFineConfig {
  const bad = (field: string, why: string): never => {
    throw new RangeError(`FiberFineConfig.${field}: ${why}`);
  };
  checkSections(cfg, 'FiberFineConfig');
  validateSwinConfig(cfg.swin, 'detection');
  validateRobertaConfig(cfg.roberta);
  if (cfg.swin.depths.length !== 4)
    bad(
      'swin.depths',
      `the fine-grained backbone outputs stages 1-3 of a 4-stage Swin; ${cfg.swin.depths.length} stages given`,
    );
  const fusable = cfg.swin.depths[3] + cfg.swin.depths[2];
  if (
    !Number.isInteger(cfg.numFuseBlock) ||
    cfg.numFuseBlock < cfg.swin.depths[3] ||
    cfg.numFuseBlock > fusable ||
    cfg.numFuseBlock > cfg.roberta.numHiddenLayers
  ) {
    bad(
      'numFuseBlock',
      `${cfg.numFuseBlock} must cover the last stage (${cfg.swin.depths[3]} blocks), fit in the last two (${fusable}) and in the ${cfg.roberta.numHiddenLayers} text layers`,
    );
  }
  if (cfg.version !== 'v2' && cfg.version !== 'v3') bad('version', `"${String(cfg.version)}" is not v2 or v3`);
  const longest = maxInputLength(cfg.roberta);
  // 3: a prompt is <s>, at least one token, </s>
  if (!Number.isInteger(cfg.maxQueryLen) || cfg.maxQueryLen < 3 || cfg.maxQueryLen > longest)
    bad('maxQueryLen', `${cfg.maxQueryLen} must be an integer in [3, ${longest}] (<s>, a token and </s> at least)`);
  checkInitializerRange(cfg.initializerRange, bad);
  const frozen = cfg.frozenStages ?? -1;
  if (!Number.isInteger(frozen) || frozen < -1 || frozen > cfg.swin.depths.length + 1)
    bad('frozenStages', `${frozen} must be an integer in [-1, ${cfg.swin.depths.length + 1}]`);
  return cfg;
}

/** A feature pyramid over the backbone's stage outputs (the FPN of @fiber-vl/heads-fine). */
export interface Neck extends Module {
  /** C3..C5 as [B, C_i, H_i, W_i] -> pyramid levels as [B, C, H_l, W_l]. */
  forward(features: tf.Tensor[]): tf.Tensor[];
}

/** `fusion_backbone.backbone`: the Swin body and its neck. */
export class FineVisionBackbone extends Module {
  body: SwinTransformer<TextContext>;
  fpn?: Neck;
  constructor(body: SwinTransformer<TextContext>, fpn?: Neck) {
    super();
    this.body = body;
    if (fpn) this.fpn = fpn;
  }
}

/** `language_backbone.body` (the official RobertaFusedEncoder): RoBERTa without its pooler. */
export class RobertaFusedEncoder extends Module {
  model: RobertaModel<ImageContext>;
  constructor(model: RobertaModel<ImageContext>) {
    super();
    this.model = model;
  }
}

/** `language_backbone`: a Sequential holding `body`. */
export class LanguageBackbone extends Module {
  body: RobertaFusedEncoder;
  constructor(body: RobertaFusedEncoder) {
    super();
    this.body = body;
  }
}

/** The official language_dict_features. */
export interface FineLanguageFeatures {
  /** Fused text states of the last layer [B, L, Dt]. */
  hidden: tf.Tensor;
  /** hidden * mask [B, L, Dt] (what the grounding head consumes). */
  embedded: tf.Tensor;
  /** Masked mean of hidden [B, Dt]. */
  aggregate: tf.Tensor;
  /** The attention mask [B, L] (float32 0/1). */
  masks: tf.Tensor;
}

export interface FineBackboneOutput {
  /** Normed stage outputs C3..C5 (stages 1-3) as NCHW maps. */
  stages: tf.Tensor[];
  /** The neck's pyramid (P3..P7) when the backbone has a neck. */
  pyramid?: tf.Tensor[];
  language: FineLanguageFeatures;
}

/** `fusion_backbone`: the official FusionSwinTransformer. */
export class FiberFineBackbone extends Module {
  backbone: FineVisionBackbone;
  languageBackbone: LanguageBackbone;
  readonly schedule: FusedPair[];

  constructor(
    readonly config: FiberFineConfig,
    { neck, rng = defaultGenerator }: { neck?: Neck; rng?: Generator } = {},
  ) {
    super();
    validateFiberFineConfig(config);
    const { swin, roberta, version } = config;
    this.schedule = fusionSchedule(config);
    const fused = new Set(this.schedule.map((p) => `${p.stage}/${p.block}`));
    const stageOfLayer = new Map(this.schedule.map((p) => [p.textLayer, p.stage]));
    const body = new SwinTransformer<TextContext>(swin, {
      variant: 'detection',
      outIndices: [1, 2, 3],
      frozenStages: config.frozenStages ?? -1,
      rng,
      attentionFactory: (stage, block, dim, windowSize, heads) =>
        fused.has(`${stage}/${block}`)
          ? new FusedWindowAttention(dim, windowSize, heads, roberta.hiddenSize, {
              qkvBias: swin.qkvBias,
              eps: swin.layerNormEps,
              queryNorm: version === 'v3',
              initStd: null, // FIBER's fine-grained Swin leaves them at PyTorch's default
              rng,
            })
          : undefined,
    });
    const layers = Array.from({ length: roberta.numHiddenLayers }, (_, i) => {
      const stage = stageOfLayer.get(i);
      return new FiberRobertaLayer(roberta, {
        kvDim: stage === undefined ? undefined : swin.embedDim * 2 ** stage,
        gate: false,
        crossOutputNorm: false,
        initStd: initializerStd(config),
        rng,
      });
    });
    this.backbone = new FineVisionBackbone(body, neck);
    this.languageBackbone = new LanguageBackbone(
      new RobertaFusedEncoder(new RobertaModel<ImageContext>(roberta, { addPoolingLayer: false, rng, layers })),
    );
  }

  get swin(): SwinTransformer<TextContext> {
    return this.backbone.body;
  }

  get roberta(): RobertaModel<ImageContext> {
    return this.languageBackbone.body.model;
  }

  /**
   * pixels [B, 3, H, W] (fine-grained normalisation, any size; batches padded to a multiple of 32
   * by the pre-processing), inputIds / attentionMask [B, L] (L = maxQueryLen).
   */
  forward(pixels: tf.Tensor, inputIds: tf.Tensor, attentionMask: tf.Tensor): FineBackboneOutput {
    checkPairedBatch(pixels, inputIds, attentionMask);
    const swin = this.swin;
    return tidyOutput(() => {
      const stages: tf.Tensor[] = [];
      const { text } = runFused(swin, this.roberta, this.schedule, pixels, inputIds, attentionMask, {
        onStageEnd: (stage, image) => {
          if (swin.outIndices.includes(stage)) stages.push(swin.stageOutput(stage, image));
        },
      });
      const masks = tf.cast(attentionMask, 'float32');
      const embedded = tf.mul(text.hidden, tf.expandDims(masks, -1));
      const aggregate = tf.div(tf.sum(embedded, 1), tf.expandDims(tf.sum(masks, -1), -1));
      const out: FineBackboneOutput = { stages, language: { hidden: text.hidden, embedded, aggregate, masks } };
      if (this.backbone.fpn) out.pyramid = this.backbone.fpn.forward(stages);
      return out;
    });
  }
}

// The complete fine-grained FIBER model (the official GeneralizedVLRCNN with FUSION_VERSION v2/v3,
// fiber-spec §3): `fusion_backbone` (the fused Swin + RoBERTa of @fiber-vl/fusion with this
// package's FPN as its neck) and `rpn` (the VLDyHead and the anchor generator's cell anchors), in
// the official module order so that a fine-grained `.pth` loads by name.
import { BufferList, Module, defaultGenerator, tf, tidyOutput, type Generator } from '@fiber-vl/tensor-core';
import {
  FiberFineBackbone,
  fiberFineConfig,
  validateFiberFineConfig,
  type FiberFineConfig,
  type FiberFinePresetName,
  type FiberFineConfigOptions,
  type FineLanguageFeatures,
} from '@fiber-vl/fusion';
import { FIBER_ANCHORS, cellAnchors, levelSizes, validateAnchorConfig, type AnchorConfig } from './anchors.js';
import { FIBER_DROP_BLOCK, FIBER_DYHEAD, validateDyHeadConfig, type DyHeadConfig, type FpnConfig } from './config.js';
import { VLDyHead, type DyHeadOutput } from './dyhead.js';
import { FPN } from './fpn.js';
import { FIBER_POSTPROCESS, validatePostprocessConfig, type PostprocessConfig } from './postprocess.js';

/** Everything that shapes a fine-grained FIBER model. */
export interface FiberFineModelConfig {
  backbone: FiberFineConfig;
  fpn: FpnConfig;
  head: DyHeadConfig;
  anchors: AnchorConfig;
  postprocess: PostprocessConfig;
}

export interface FiberFineModelOptions extends FiberFineConfigOptions {
  fpn?: Partial<FpnConfig>;
  head?: Partial<DyHeadConfig>;
  anchors?: Partial<AnchorConfig>;
  postprocess?: Partial<PostprocessConfig>;
}

/** Head sizes of the presets: FIBER-B's (256 channels, 6 DyConvs); smaller for small / tiny. */
const HEAD_PRESETS: Record<FiberFinePresetName, { channels: number; numConvs: number; groupNormGroups: number }> = {
  base: { channels: 256, numConvs: 6, groupNormGroups: 16 },
  small: { channels: 64, numConvs: 2, groupNormGroups: 8 },
  tiny: { channels: 32, numConvs: 1, groupNormGroups: 4 },
};

/**
 * A fine-grained model config from a preset (`base` is FIBER-B as the official pre-training yaml),
 * with overrides that reach every part; the FPN input widths, the head's text width and query
 * length follow the backbone.
 */
export function fiberFineModelConfig(
  preset: FiberFinePresetName = 'base',
  options: FiberFineModelOptions = {},
): FiberFineModelConfig {
  const backbone = fiberFineConfig(preset, options);
  const widths = [1, 2, 3].map((i) => backbone.swin.embedDim * 2 ** i);
  const h = HEAD_PRESETS[preset];
  const fpn: FpnConfig = {
    inChannels: [widths[0], widths[1], widths[2]],
    outChannels: h.channels,
    dropBlock: FIBER_DROP_BLOCK,
    ...options.fpn,
  };
  const head: DyHeadConfig = {
    ...FIBER_DYHEAD,
    ...h,
    channels: fpn.outChannels,
    dyReluHidden: Math.max(1, Math.floor(fpn.outChannels / 4)),
    langDim: backbone.roberta.hiddenSize,
    maxQueryLen: backbone.maxQueryLen,
    ...options.head,
  };
  return validateFiberFineModelConfig({
    backbone,
    fpn,
    head,
    anchors: { ...FIBER_ANCHORS, ...options.anchors },
    postprocess: { ...FIBER_POSTPROCESS, ...options.postprocess },
  });
}

export function validateFiberFineModelConfig(cfg: FiberFineModelConfig): FiberFineModelConfig {
  const bad = (field: string, why: string): never => {
    throw new RangeError(`FiberFineModelConfig.${field}: ${why}`);
  };
  const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v);
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg))
    throw new RangeError(`FiberFineModelConfig: expected an object, got ${kind(cfg)}`);
  for (const section of ['backbone', 'fpn', 'head', 'anchors', 'postprocess'] as const) {
    const v: unknown = cfg[section];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(section, `expected an object, got ${kind(v)}`);
  }
  validateFiberFineConfig(cfg.backbone);
  validateDyHeadConfig(cfg.head);
  if (!Array.isArray(cfg.fpn.inChannels) || cfg.fpn.inChannels.length !== 3)
    bad('fpn.inChannels', `must list the 3 Swin stage widths, got ${JSON.stringify(cfg.fpn.inChannels) ?? 'nothing'}`);
  const drop: unknown = cfg.fpn.dropBlock;
  if (drop !== undefined && drop !== null) {
    if (typeof drop !== 'object' || Array.isArray(drop))
      bad('fpn.dropBlock', `expected { prob, size } or null, got ${kind(drop)}`);
    const { prob, size } = drop as Partial<Record<'prob' | 'size', unknown>>;
    if (typeof prob !== 'number' || !(prob >= 0 && prob <= 1))
      bad('fpn.dropBlock.prob', `must be in [0, 1], got ${String(prob)}`);
    if (typeof size !== 'number' || !Number.isInteger(size) || size < 1)
      bad('fpn.dropBlock.size', `must be a positive integer, got ${String(size)}`);
  }
  validateAnchorConfig(cfg.anchors, (field, why) => bad(`anchors.${field}`, why));
  validatePostprocessConfig(cfg.postprocess, (field, why) => bad(`postprocess.${field}`, why));
  const widths = [1, 2, 3].map((i) => cfg.backbone.swin.embedDim * 2 ** i);
  if (cfg.fpn.inChannels.some((c, i) => c !== widths[i]))
    bad(
      'fpn.inChannels',
      `[${cfg.fpn.inChannels.join(', ')}] must be the Swin stage 1-3 widths [${widths.join(', ')}]`,
    );
  if (cfg.fpn.outChannels !== cfg.head.channels)
    bad('head.channels', `${cfg.head.channels} must equal fpn.outChannels ${cfg.fpn.outChannels}`);
  if (cfg.head.langDim !== cfg.backbone.roberta.hiddenSize)
    bad('head.langDim', `${cfg.head.langDim} must equal the text width ${cfg.backbone.roberta.hiddenSize}`);
  if (cfg.head.maxQueryLen !== cfg.backbone.maxQueryLen)
    bad('head.maxQueryLen', `${cfg.head.maxQueryLen} must equal backbone.maxQueryLen ${cfg.backbone.maxQueryLen}`);
  if (cfg.anchors.strides.length !== cfg.head.numLevels || cfg.anchors.sizes.length !== cfg.head.numLevels) {
    bad(
      'anchors',
      `${cfg.anchors.sizes.length} sizes / ${cfg.anchors.strides.length} strides for ${cfg.head.numLevels} FPN levels`,
    );
  }
  if (cfg.anchors.aspectRatios.length * cfg.anchors.scalesPerOctave !== 1)
    bad('anchors', 'the VLDyHead predicts one anchor per location: one aspect ratio and one scale per octave');
  return cfg;
}

/** `rpn.anchor_generator`: the cell anchors of each level as buffers (they are in the official state dict). */
export class AnchorGenerator extends Module {
  cellAnchors: BufferList;
  constructor(readonly config: AnchorConfig) {
    super();
    const sizes = levelSizes(config);
    this.cellAnchors = new BufferList(
      config.strides.map((stride, l) =>
        tf.tensor2d(cellAnchors(stride, sizes[l], config.aspectRatios), undefined, 'float32'),
      ),
    );
  }
}

/** `rpn` (the official VLDyHeadModule): the head and the anchor generator. */
export class VLDyHeadModule extends Module {
  head: VLDyHead;
  anchorGenerator: AnchorGenerator;
  constructor(head: DyHeadConfig, anchors: AnchorConfig, rng: Generator = defaultGenerator) {
    super();
    this.head = new VLDyHead(head, rng);
    this.anchorGenerator = new AnchorGenerator(anchors);
  }
}

/** One forward pass: the pyramid, the head outputs per level and the language features. */
export interface FiberFineOutput {
  /** P3..P7 [B, C, H_l, W_l]. */
  pyramid: tf.Tensor[];
  head: DyHeadOutput;
  language: FineLanguageFeatures;
}

/** The fine-grained FIBER detector / grounder (GeneralizedVLRCNN). */
export class FiberFineModel extends Module {
  fusionBackbone: FiberFineBackbone;
  rpn: VLDyHeadModule;

  constructor(
    readonly config: FiberFineModelConfig,
    rng: Generator = defaultGenerator,
  ) {
    super();
    validateFiberFineModelConfig(config);
    this.fusionBackbone = new FiberFineBackbone(config.backbone, { neck: new FPN(config.fpn, rng), rng });
    this.rpn = new VLDyHeadModule(config.head, config.anchors, rng);
  }

  /**
   * pixels [B, 3, H, W] (fine-grained normalisation, padded to a multiple of 32), inputIds /
   * attentionMask [B, maxQueryLen]. `allTowers` keeps every DyConv block's output (parity checks).
   */
  forward(
    pixels: tf.Tensor,
    inputIds: tf.Tensor,
    attentionMask: tf.Tensor,
    { allTowers = false } = {},
  ): FiberFineOutput {
    const L = this.config.backbone.maxQueryLen;
    if (inputIds.rank !== 2 || inputIds.shape[1] !== L) {
      throw new RangeError(
        `FiberFineModel: inputIds must be [B, ${L}] (prompts padded to MAX_QUERY_LEN), got [${inputIds.shape.join(', ')}]`,
      );
    }
    return tidyOutput(() => {
      const backbone = this.fusionBackbone.forward(pixels, inputIds, attentionMask);
      const pyramid = backbone.pyramid;
      if (!pyramid) throw new Error('FiberFineModel: the backbone has no FPN neck');
      const head = this.rpn.head.forward(pyramid, backbone.language.embedded, { allTowers });
      return { pyramid, head, language: backbone.language };
    });
  }
}

/** A model from a preset name (randomly initialised, official initialisations). */
export function createFiberFineModel(
  preset: FiberFinePresetName = 'base',
  options: FiberFineModelOptions = {},
  rng: Generator = defaultGenerator,
): FiberFineModel {
  return new FiberFineModel(fiberFineModelConfig(preset, options), rng);
}

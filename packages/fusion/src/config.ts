import { SWIN_PRESETS, fiberCoarseWindowSize, validateSwinConfig, type SwinConfig } from '@fiber-vl/swin';
import { ROBERTA_BASE, maxInputLength, validateRobertaConfig, type RobertaConfig } from '@fiber-vl/roberta';

/**
 * The coarse-grained FIBER model (fiber-spec §1.1): a Swin image backbone and a RoBERTa text
 * backbone whose top `numFuseBlock` layers exchange cross-attention.
 */
export interface FiberCoarseConfig {
  swin: SwinConfig;
  roberta: RobertaConfig;
  /** Number of fused (image block, text layer) pairs: 6 at FIBER-B. */
  numFuseBlock: number;
  /** Cross-modal width H (the heads' width): 768. */
  hiddenSize: number;
  /** Text length the model is used with (40 pre-training, 50 fine-tunes). */
  maxTextLen: number;
  /**
   * Standard deviation of the normal init of the layers FIBER adds to its pre-trained backbones
   * (the `cross_modal_*` transforms and poolers, the fusion blocks, the heads): FIBER's and
   * transformers' `initializer_range`, 0.02 when absent. `null` keeps those layers at PyTorch's
   * default Linear init (kaiming-uniform, std 1/sqrt(3 fan_in)), 0.072 at width 64: at such widths
   * 0.02 starts the heads several times smaller than FIBER-B's do relative to their inputs. Only a
   * new model's starting values depend on it; loaded weights replace them.
   */
  initializerRange?: number | null;
}

export type FiberPresetName = 'base' | 'small' | 'tiny';

interface Preset {
  imageSize: number;
  swin: Omit<SwinConfig, 'imageSize' | 'windowSize'>;
  roberta: RobertaConfig;
  numFuseBlock: number;
  hiddenSize: number;
  maxTextLen: number;
}

const B = SWIN_PRESETS.swin_base_patch4_window12_384;
/** Swin-B without its size: the presets set imageSize and derive the window from it. */
const swinB: Omit<SwinConfig, 'imageSize' | 'windowSize'> = {
  patchSize: B.patchSize,
  inChannels: B.inChannels,
  embedDim: B.embedDim,
  depths: B.depths,
  numHeads: B.numHeads,
  mlpRatio: B.mlpRatio,
  qkvBias: B.qkvBias,
  dropPathRate: B.dropPathRate,
  layerNormEps: B.layerNormEps,
  numClasses: B.numClasses,
};

/**
 * Named model sizes. `base` is FIBER-B (Swin-B + roberta-base, fiber-spec §1.1). `small` and
 * `tiny` keep FIBER's structure (4 Swin stages, fusion in the top blocks of the last two stages and
 * the top text layers) at sizes that train on a CPU in minutes; their vocabulary is roberta-base's
 * unless overridden (e.g. by a tokenizer trained on your own text).
 */
export const FIBER_PRESETS: Readonly<Record<FiberPresetName, Preset>> = {
  base: { imageSize: 384, swin: swinB, roberta: { ...ROBERTA_BASE }, numFuseBlock: 6, hiddenSize: 768, maxTextLen: 40 },
  small: {
    imageSize: 128,
    swin: { ...swinB, embedDim: 32, depths: [2, 2, 6, 2], numHeads: [1, 2, 4, 8] },
    roberta: {
      ...ROBERTA_BASE,
      hiddenSize: 128,
      numHiddenLayers: 6,
      numAttentionHeads: 4,
      intermediateSize: 512,
      maxPositionEmbeddings: 66,
    },
    numFuseBlock: 4,
    hiddenSize: 128,
    maxTextLen: 32,
  },
  tiny: {
    imageSize: 64,
    swin: { ...swinB, embedDim: 16, depths: [1, 1, 2, 2], numHeads: [1, 2, 2, 4] },
    roberta: {
      ...ROBERTA_BASE,
      hiddenSize: 64,
      numHiddenLayers: 4,
      numAttentionHeads: 2,
      intermediateSize: 128,
      maxPositionEmbeddings: 34,
    },
    numFuseBlock: 3,
    hiddenSize: 64,
    maxTextLen: 24,
  },
};

export interface FiberConfigOptions {
  /** Square image side; the Swin window follows FIBER's coarse rule image / 32 unless `swin.windowSize` is given. */
  imageSize?: number;
  swin?: Partial<SwinConfig>;
  roberta?: Partial<RobertaConfig>;
  numFuseBlock?: number;
  hiddenSize?: number;
  maxTextLen?: number;
  /** See FiberCoarseConfig.initializerRange (absent: 0.02). */
  initializerRange?: number | null;
}

/**
 * A coarse FIBER config from a named preset with overrides that reach every part, validated.
 *
 * @example
 * fiberConfig('base', { imageSize: 576, maxTextLen: 50 });          // FIBER-B for VQA / captioning
 * fiberConfig('tiny', { roberta: { vocabSize: tokenizer.vocabSize } });
 */
export function fiberConfig(preset: FiberPresetName = 'base', options: FiberConfigOptions = {}): FiberCoarseConfig {
  const p = Object.hasOwn(FIBER_PRESETS, preset) ? FIBER_PRESETS[preset] : undefined;
  if (!p)
    throw new RangeError(`fiberConfig: unknown preset "${preset}" (expected ${Object.keys(FIBER_PRESETS).join(', ')})`);
  const imageSize = options.imageSize ?? options.swin?.imageSize ?? p.imageSize;
  return validateFiberConfig({
    swin: { ...p.swin, imageSize, windowSize: fiberCoarseWindowSize(imageSize), ...options.swin },
    roberta: { ...p.roberta, ...options.roberta },
    numFuseBlock: options.numFuseBlock ?? p.numFuseBlock,
    hiddenSize: options.hiddenSize ?? p.hiddenSize,
    maxTextLen: options.maxTextLen ?? p.maxTextLen,
    ...(options.initializerRange === undefined ? {} : { initializerRange: options.initializerRange }),
  });
}

/** FIBER-B at 384 px (pre-training, NLVR2, ITM retrieval) or 576 px (VQA, ITC retrieval, captioning). */
export function fiberBaseConfig(
  imageSize: number = 384,
  overrides: Omit<FiberConfigOptions, 'imageSize'> = {},
): FiberCoarseConfig {
  return fiberConfig('base', { ...overrides, imageSize });
}

/** Throws a RangeError naming the field for a config that would fail later; returns it otherwise. */
export function validateFiberConfig(cfg: FiberCoarseConfig): FiberCoarseConfig {
  const bad = (field: string, why: string): never => {
    throw new RangeError(`FiberCoarseConfig.${field}: ${why}`);
  };
  checkSections(cfg, 'FiberCoarseConfig');
  validateSwinConfig(cfg.swin, 'classification');
  validateRobertaConfig(cfg.roberta);
  if (cfg.swin.depths.length < 2)
    bad('swin.depths', `FIBER fuses the last two Swin stages; ${cfg.swin.depths.length} stage(s) given`);
  const last = cfg.swin.depths.length - 1;
  const fusable = cfg.swin.depths[last] + cfg.swin.depths[last - 1];
  if (!Number.isInteger(cfg.numFuseBlock) || cfg.numFuseBlock < cfg.swin.depths[last] || cfg.numFuseBlock > fusable) {
    bad(
      'numFuseBlock',
      `${cfg.numFuseBlock} must cover every last-stage block (${cfg.swin.depths[last]}) and fit in the last two stages (${fusable})`,
    );
  }
  if (cfg.numFuseBlock > cfg.roberta.numHiddenLayers)
    bad('numFuseBlock', `${cfg.numFuseBlock} exceeds the ${cfg.roberta.numHiddenLayers} text layers`);
  if (!Number.isInteger(cfg.hiddenSize) || cfg.hiddenSize < 1)
    bad('hiddenSize', `must be a positive integer, got ${cfg.hiddenSize}`);
  checkInitializerRange(cfg.initializerRange, bad);
  const longest = maxInputLength(cfg.roberta);
  if (!Number.isInteger(cfg.maxTextLen) || cfg.maxTextLen < 2 || cfg.maxTextLen > longest) {
    bad(
      'maxTextLen',
      `${cfg.maxTextLen} must be an integer in [2, ${longest}] (roberta.maxPositionEmbeddings ${cfg.roberta.maxPositionEmbeddings})`,
    );
  }
  return cfg;
}

/** A JSON config's shape, before its fields are read: the config and its swin and roberta sections are objects. */
export function checkSections(cfg: unknown, name: string): void {
  const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v);
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(cfg)) throw new RangeError(`${name}: expected an object, got ${kind(cfg)}`);
  for (const section of ['swin', 'roberta'])
    if (!isObject(cfg[section]))
      throw new RangeError(`${name}.${section}: expected an object, got ${kind(cfg[section])}`);
}

/**
 * The init std of the layers FIBER adds, from a config's `initializerRange`: 0.02 when absent,
 * null to keep PyTorch's default Linear init.
 */
export function initializerStd(cfg: { initializerRange?: number | null }): number | null {
  return cfg.initializerRange === undefined ? 0.02 : cfg.initializerRange;
}

export function checkInitializerRange(v: unknown, bad: (field: string, why: string) => never): void {
  if (v !== undefined && v !== null && !(typeof v === 'number' && v > 0 && Number.isFinite(v)))
    bad('initializerRange', `must be a positive number, or null for PyTorch's default init; got ${String(v)}`);
}

/** One fused step: an image block and the text layer that runs beside it. */
export interface FusedPair {
  stage: number;
  block: number;
  textLayer: number;
}

/**
 * Which Swin blocks pair with which RoBERTa layers (fiber-spec §1.5): the last F blocks of the
 * last two stages, in order, with the last F text layers. FIBER-B (depths 2,2,18,2, 12 layers,
 * F = 6): stage-3 blocks 14..17 with layers 6..9, stage-4 blocks 0, 1 with layers 10, 11.
 */
export function fusionSchedule(cfg: Pick<FiberCoarseConfig, 'swin' | 'roberta' | 'numFuseBlock'>): FusedPair[] {
  const last = cfg.swin.depths.length - 1;
  const inLast = cfg.swin.depths[last];
  const inPrev = cfg.numFuseBlock - inLast;
  const firstText = cfg.roberta.numHiddenLayers - cfg.numFuseBlock;
  const pairs: FusedPair[] = [];
  for (let i = 0; i < inPrev; i++)
    pairs.push({ stage: last - 1, block: cfg.swin.depths[last - 1] - inPrev + i, textLayer: firstText + i });
  for (let i = 0; i < inLast; i++) pairs.push({ stage: last, block: i, textLayer: firstText + inPrev + i });
  return pairs;
}

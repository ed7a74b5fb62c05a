import { fiberCoarseWindowSize, swinConfig, type SwinConfig } from '@fiber-vl/swin';
import { robertaConfig, type RobertaConfig } from '@fiber-vl/roberta';

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
  maxTextLen: number;
}

/** FIBER-B at 384 px (pre-training, NLVR2, ITM retrieval) or 576 px (VQA, ITC retrieval, captioning). */
export function fiberBaseConfig(imageSize: 384 | 576 = 384, overrides: Partial<Omit<FiberCoarseConfig, 'swin' | 'roberta'>> = {}): FiberCoarseConfig {
  return validateFiberConfig({
    swin: swinConfig('swin_base_patch4_window12_384', { imageSize, windowSize: fiberCoarseWindowSize(imageSize) }),
    roberta: robertaConfig(),
    numFuseBlock: 6,
    hiddenSize: 768,
    maxTextLen: 40,
    ...overrides,
  });
}

export function validateFiberConfig(cfg: FiberCoarseConfig): FiberCoarseConfig {
  const last = cfg.swin.depths.length - 1;
  const fusable = cfg.swin.depths[last] + cfg.swin.depths[last - 1];
  if (cfg.numFuseBlock < cfg.swin.depths[last] || cfg.numFuseBlock > fusable) {
    throw new RangeError(
      `FiberCoarseConfig.numFuseBlock: ${cfg.numFuseBlock} must cover every last-stage block (${cfg.swin.depths[last]}) and fit in the last two stages (${fusable})`,
    );
  }
  if (cfg.numFuseBlock > cfg.roberta.numHiddenLayers) {
    throw new RangeError(`FiberCoarseConfig.numFuseBlock: ${cfg.numFuseBlock} exceeds the ${cfg.roberta.numHiddenLayers} text layers`);
  }
  return cfg;
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
export function fusionSchedule(cfg: FiberCoarseConfig): FusedPair[] {
  const last = cfg.swin.depths.length - 1;
  const inLast = cfg.swin.depths[last];
  const inPrev = cfg.numFuseBlock - inLast;
  const firstText = cfg.roberta.numHiddenLayers - cfg.numFuseBlock;
  const pairs: FusedPair[] = [];
  for (let i = 0; i < inPrev; i++) pairs.push({ stage: last - 1, block: cfg.swin.depths[last - 1] - inPrev + i, textLayer: firstText + i });
  for (let i = 0; i < inLast; i++) pairs.push({ stage: last, block: i, textLayer: firstText + inPrev + i });
  return pairs;
}

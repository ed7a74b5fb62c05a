/**
 * GLIP-style VLDyHead of the fine-grained FIBER model (fiber-spec §3.3), with the values of
 * `configs/pretrain/mixed_nococo_flickr_objects365.yaml` over maskrcnn_benchmark's defaults.
 */
export interface DyHeadConfig {
  /** FPN / head channels (DYHEAD.CHANNELS = BACKBONE.OUT_CHANNELS). */
  channels: number;
  /** DyConv blocks in the tower (DYHEAD.NUM_CONVS). */
  numConvs: number;
  /** FPN levels the head runs on (P3-P7); one learnable `Scale` each. */
  numLevels: number;
  /** GroupNorm groups after each deformable conv (GROUP_NORM.NUM_GROUPS). */
  groupNormGroups: number;
  groupNormEps: number;
  /** DyReLU squeeze width (channels / 4). */
  dyReluHidden: number;
  /** DYHEAD.NUM_CLASSES, background included: `cls_logits` has numClasses - 1 outputs. */
  numClasses: number;
  /** Width of the text features the token head projects (LANGUAGE_BACKBONE.LANG_DIM). */
  langDim: number;
  /** Text length the prompts are padded to (LANGUAGE_BACKBONE.MAX_QUERY_LEN): the logits' last axis. */
  maxQueryLen: number;
  /** DYHEAD.PRIOR_PROB: `bias0` and the `cls_logits` bias start at -log((1 - p) / p). */
  priorProb: number;
  /** DYHEAD.LOG_SCALE: initial `log_scale` (the token logits are divided by exp(log_scale)). */
  logScale: number;
}

export const FIBER_DYHEAD: Readonly<DyHeadConfig> = Object.freeze({
  channels: 256,
  numConvs: 6,
  numLevels: 5,
  groupNormGroups: 16,
  groupNormEps: 1e-5,
  dyReluHidden: 64,
  numClasses: 81,
  langDim: 768,
  maxQueryLen: 256,
  priorProb: 0.01,
  logScale: 0,
});

/** FPN of `SWINT-FPN-RETINANET` (fiber-spec §3.2): P3-P5 from C3-C5, P6/P7 from P5. */
/** FPN.DROP_PROB / FPN.DROP_SIZE: the DropBlock on the merged maps of P3 and P4, in training only. */
export interface DropBlockConfig {
  prob: number;
  size: number;
}

export interface FpnConfig {
  /** Channels of C3, C4, C5 (SWINT.OUT_CHANNELS[1:], strides 8, 16, 32). */
  inChannels: readonly [number, number, number];
  /** BACKBONE.OUT_CHANNELS. */
  outChannels: number;
  /**
   * FPN.DROP_BLOCK: on in every FIBER config (prob 0.3, block 3, the official defaults); `null`
   * turns it off. Left out (configs saved before it existed), it is the official one.
   */
  dropBlock?: Readonly<DropBlockConfig> | null;
}

export const FIBER_DROP_BLOCK: Readonly<DropBlockConfig> = Object.freeze({ prob: 0.3, size: 3 });

export const FIBER_FPN: Readonly<FpnConfig> = Object.freeze({
  inChannels: Object.freeze([256, 512, 1024] as const),
  outChannels: 256,
  dropBlock: FIBER_DROP_BLOCK,
});

/**
 * h_sigmoid of the DyHead: ReLU6(x + 3) / 6.
 */
export function hSigmoid(x: number): number {
  return Math.min(6, Math.max(0, x + 3)) / 6;
}

/** DyReLU's coefficient transform: a1 = (a1 - 0.5) * 2 + 1, a2 = (a2 - 0.5) * 2, b = b - 0.5. */
export function dyReluCoefficients(a1: number, b1: number, a2: number, b2: number): [number, number, number, number] {
  return [(a1 - 0.5) * 2 + 1, b1 - 0.5, (a2 - 0.5) * 2, b2 - 0.5];
}

/** Throws a RangeError naming the field when a DyHead config cannot build the official head. */
export function validateDyHeadConfig(c: DyHeadConfig): void {
  const positive = [
    'channels',
    'numConvs',
    'numLevels',
    'groupNormGroups',
    'dyReluHidden',
    'langDim',
    'maxQueryLen',
  ] as const;
  for (const k of positive) {
    if (!Number.isInteger(c[k]) || c[k] < 1)
      throw new RangeError(`DyHeadConfig.${k} must be a positive integer, got ${c[k]}`);
  }
  if (c.channels % c.groupNormGroups) {
    throw new RangeError(
      `DyHeadConfig: channels (${c.channels}) must be divisible by groupNormGroups (${c.groupNormGroups})`,
    );
  }
  if (!Number.isInteger(c.numClasses) || c.numClasses < 2) {
    throw new RangeError(`DyHeadConfig.numClasses counts the background and must be >= 2, got ${c.numClasses}`);
  }
  if (typeof c.priorProb !== 'number' || !(c.priorProb > 0 && c.priorProb < 1))
    throw new RangeError(`DyHeadConfig.priorProb must be in (0, 1), got ${String(c.priorProb)}`);
  const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  if (!finite(c.groupNormEps) || !(c.groupNormEps > 0) || !finite(c.logScale)) {
    throw new RangeError(
      `DyHeadConfig: groupNormEps must be > 0 and logScale finite, got ${c.groupNormEps}, ${c.logScale}`,
    );
  }
}

/**
 * Swin Transformer v1 hyper-parameters (Liu et al. 2021), with the presets of the released
 * Microsoft/timm checkpoints. Field names follow timm's `SwinTransformer.__init__`.
 */
export interface SwinConfig {
  imageSize: number;
  patchSize: number;
  inChannels: number;
  embedDim: number;
  depths: number[];
  numHeads: number[];
  windowSize: number;
  mlpRatio: number;
  qkvBias: boolean;
  dropPathRate: number;
  /** LayerNorm eps (timm: 1e-5). */
  layerNormEps: number;
  /** Classification classes; 0 = no head (backbone only). */
  numClasses: number;
}

const base: Omit<SwinConfig, 'embedDim' | 'depths' | 'numHeads' | 'imageSize' | 'windowSize'> = {
  patchSize: 4,
  inChannels: 3,
  mlpRatio: 4,
  qkvBias: true,
  dropPathRate: 0.1,
  layerNormEps: 1e-5,
  numClasses: 0,
};

/** The released Swin v1 models, named as timm names them. */
export const SWIN_PRESETS = {
  swin_tiny_patch4_window7_224: {
    ...base,
    imageSize: 224,
    windowSize: 7,
    embedDim: 96,
    depths: [2, 2, 6, 2],
    numHeads: [3, 6, 12, 24],
  },
  swin_small_patch4_window7_224: {
    ...base,
    imageSize: 224,
    windowSize: 7,
    embedDim: 96,
    depths: [2, 2, 18, 2],
    numHeads: [3, 6, 12, 24],
  },
  swin_base_patch4_window7_224: {
    ...base,
    imageSize: 224,
    windowSize: 7,
    embedDim: 128,
    depths: [2, 2, 18, 2],
    numHeads: [4, 8, 16, 32],
  },
  swin_base_patch4_window12_384: {
    ...base,
    imageSize: 384,
    windowSize: 12,
    embedDim: 128,
    depths: [2, 2, 18, 2],
    numHeads: [4, 8, 16, 32],
  },
  swin_large_patch4_window7_224: {
    ...base,
    imageSize: 224,
    windowSize: 7,
    embedDim: 192,
    depths: [2, 2, 18, 2],
    numHeads: [6, 12, 24, 48],
  },
  swin_large_patch4_window12_384: {
    ...base,
    imageSize: 384,
    windowSize: 12,
    embedDim: 192,
    depths: [2, 2, 18, 2],
    numHeads: [6, 12, 24, 48],
  },
} satisfies Record<string, SwinConfig>;

export type SwinPresetName = keyof typeof SWIN_PRESETS;

/** A preset with overrides, validated. */
export function swinConfig(preset: SwinPresetName, overrides: Partial<SwinConfig> = {}): SwinConfig {
  if (!Object.hasOwn(SWIN_PRESETS, preset))
    throw new RangeError(
      `swinConfig: unknown preset ${typeof preset === 'string' ? JSON.stringify(preset) : `(${preset === null ? 'null' : typeof preset})`}; ` +
        `one of ${Object.keys(SWIN_PRESETS).join(', ')}, with the fields to change as the second argument`,
    );
  const cfg = { ...SWIN_PRESETS[preset], ...overrides };
  validateSwinConfig(cfg);
  return cfg;
}

/**
 * Throws a RangeError naming the field for a config that would fail later (or silently compute
 * something else). The classification variant also needs every stage resolution to be tiled by
 * whole windows (or to fit in one window); the detection variant pads instead.
 */
export function validateSwinConfig(
  cfg: SwinConfig,
  variant: 'classification' | 'detection' = 'classification',
): SwinConfig {
  const bad = (field: string, why: string): never => {
    throw new RangeError(`SwinConfig.${field}: ${why}`);
  };
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg))
    throw new RangeError(
      `SwinConfig: expected an object, got ${cfg === null ? 'null' : Array.isArray(cfg) ? 'a list' : typeof cfg}`,
    );
  const posInt = (field: keyof SwinConfig) => {
    const v = cfg[field];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
      bad(field, `must be a positive integer, got ${String(v)}`);
  };
  (['imageSize', 'patchSize', 'inChannels', 'embedDim', 'windowSize'] as const).forEach(posInt);
  if (!Number.isInteger(cfg.numClasses) || cfg.numClasses < 0)
    bad('numClasses', `must be a non-negative integer, got ${cfg.numClasses}`);
  if (!Array.isArray(cfg.depths) || !cfg.depths.length || !cfg.depths.every((d) => Number.isInteger(d) && d >= 1)) {
    bad('depths', `must list positive integers, got ${JSON.stringify(cfg.depths)}`);
  }
  if (!Array.isArray(cfg.numHeads) || cfg.numHeads.length !== cfg.depths.length) {
    bad('numHeads', `has ${cfg.numHeads?.length} entries for ${cfg.depths.length} stages`);
  }
  cfg.numHeads.forEach((h, i) => {
    if (!Number.isInteger(h) || h < 1) bad('numHeads', `stage ${i}: ${h} is not a positive integer`);
    if ((cfg.embedDim * 2 ** i) % h)
      bad('numHeads', `stage ${i} width ${cfg.embedDim * 2 ** i} is not divisible by ${h} heads`);
  });
  // typeof first: a JSON config's "4" or 1e999 (Infinity) passes a bare comparison
  const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  if (!finite(cfg.mlpRatio) || !(cfg.mlpRatio > 0))
    bad('mlpRatio', `must be a finite number > 0, got ${String(cfg.mlpRatio)}`);
  if (Math.floor(cfg.embedDim * cfg.mlpRatio) < 1)
    bad('mlpRatio', `${cfg.mlpRatio} leaves the ${cfg.embedDim}-wide stage-0 MLP without a hidden unit`);
  if (!finite(cfg.dropPathRate) || !(cfg.dropPathRate >= 0 && cfg.dropPathRate < 1))
    bad('dropPathRate', `must be in [0, 1), got ${String(cfg.dropPathRate)}`);
  if (!finite(cfg.layerNormEps) || !(cfg.layerNormEps > 0))
    bad('layerNormEps', `must be a finite number > 0, got ${String(cfg.layerNormEps)}`);
  if (typeof cfg.qkvBias !== 'boolean') bad('qkvBias', `must be true or false, got ${String(cfg.qkvBias)}`);
  if (variant === 'classification') {
    const stride = cfg.patchSize * 2 ** (cfg.depths.length - 1);
    if (cfg.imageSize % stride)
      bad('imageSize', `${cfg.imageSize} is not divisible by patchSize * 2^(stages-1) = ${stride}`);
    stageResolutions(cfg).forEach((r, i) => {
      if (r > cfg.windowSize && r % cfg.windowSize) {
        bad(
          'windowSize',
          `${cfg.windowSize} does not tile stage ${i}'s ${r}x${r} token grid (image ${cfg.imageSize} px); use a divisor of ${r} or, for FIBER's coarse model, image / 32 = ${cfg.imageSize / 32}`,
        );
      }
    });
  }
  return cfg;
}

/**
 * FIBER's coarse-grained Swin forces the window to image_size / 32 (384 -> 12, 576 -> 18),
 * overriding the checkpoint's registered window (fiber-spec §1.2).
 */
export function fiberCoarseWindowSize(imageSize: number): number {
  return Math.floor(imageSize / 32);
}

/** Token grid side of each stage: S/4, S/8, S/16, S/32 for the standard 4-stage model. */
export function stageResolutions(cfg: SwinConfig): number[] {
  return cfg.depths.map((_, i) => cfg.imageSize / cfg.patchSize / 2 ** i);
}

/**
 * Window and shift of one block (timm's SwinTransformerBlock rule): when the stage resolution is
 * not larger than the window, the window shrinks to the resolution and there is no shift;
 * otherwise odd blocks shift by window / 2.
 */
export function blockWindow(cfg: SwinConfig, stage: number, block: number): { windowSize: number; shiftSize: number } {
  const resolution = stageResolutions(cfg)[stage];
  if (resolution <= cfg.windowSize) return { windowSize: resolution, shiftSize: 0 };
  return { windowSize: cfg.windowSize, shiftSize: block % 2 === 1 ? Math.floor(cfg.windowSize / 2) : 0 };
}

/** Stochastic depth of each block: linear from 0 to dropPathRate over all blocks (timm). */
export function dropPathRates(cfg: SwinConfig): number[] {
  const n = cfg.depths.reduce((a, b) => a + b, 0);
  return Array.from({ length: n }, (_, i) => (n === 1 ? 0 : (cfg.dropPathRate * i) / (n - 1)));
}

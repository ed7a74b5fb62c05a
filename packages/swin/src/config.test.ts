import { describe, expect, it } from 'vitest';
import {
  SWIN_PRESETS,
  blockWindow,
  dropPathRates,
  fiberCoarseWindowSize,
  stageResolutions,
  swinConfig,
  validateSwinConfig,
} from './config.js';

describe('Swin configs', () => {
  it('Swin-B/384 as FIBER uses it', () => {
    const cfg = swinConfig('swin_base_patch4_window12_384', { windowSize: fiberCoarseWindowSize(384) });
    expect(cfg.windowSize).toBe(12);
    expect(stageResolutions(cfg)).toEqual([96, 48, 24, 12]);
    // stage 3 (index 2): 2x2 windows, odd blocks shifted by 6; stage 4: one window, never shifted
    expect(blockWindow(cfg, 2, 15)).toEqual({ windowSize: 12, shiftSize: 6 });
    expect(blockWindow(cfg, 2, 14)).toEqual({ windowSize: 12, shiftSize: 0 });
    expect(blockWindow(cfg, 3, 1)).toEqual({ windowSize: 12, shiftSize: 0 });
  });

  it('FIBER at 576 px uses window 18 and 18x18 final tokens', () => {
    const cfg = swinConfig('swin_base_patch4_window12_384', { imageSize: 576, windowSize: fiberCoarseWindowSize(576) });
    expect(cfg.windowSize).toBe(18);
    expect(stageResolutions(cfg).at(-1)).toBe(18);
  });

  it('clamps the window to small feature maps (tiny fixtures)', () => {
    const cfg = swinConfig('swin_tiny_patch4_window7_224', { imageSize: 128, windowSize: fiberCoarseWindowSize(128) });
    expect(stageResolutions(cfg)).toEqual([32, 16, 8, 4]);
    expect(blockWindow(cfg, 3, 1)).toEqual({ windowSize: 4, shiftSize: 0 });
    expect(blockWindow(cfg, 2, 1)).toEqual({ windowSize: 4, shiftSize: 2 });
  });

  it('drop-path grows linearly over all blocks', () => {
    const r = dropPathRates(swinConfig('swin_base_patch4_window12_384'));
    expect(r).toHaveLength(24);
    expect(r[0]).toBe(0);
    expect(r[23]).toBeCloseTo(0.1, 12);
  });

  it('names the bad field', () => {
    // a config object in the preset's place failed with "imageSize: ... got undefined"
    // @ts-expect-error: the overrides passed without a preset
    expect(() => swinConfig({ imageSize: 64 })).toThrow(
      'swinConfig: unknown preset (object); one of swin_tiny_patch4_window7_224,',
    );
    // @ts-expect-error: a name that is no preset
    expect(() => swinConfig('toString')).toThrow('swinConfig: unknown preset "toString"');
    expect(() => swinConfig('swin_base_patch4_window12_384', { imageSize: 100 })).toThrow(
      'SwinConfig.imageSize: 100 is not divisible by patchSize * 2^(stages-1) = 32',
    );
    expect(() => swinConfig('swin_base_patch4_window12_384', { numHeads: [4, 8, 16] })).toThrow(
      /SwinConfig.numHeads: has 3 entries for 4 stages/,
    );
    // window 7 at 64 px: the 16x16 stage-1 grid is not tiled by 7x7 windows (failed deep in tfjs before)
    expect(() => swinConfig('swin_tiny_patch4_window7_224', { imageSize: 64 })).toThrow(
      "SwinConfig.windowSize: 7 does not tile stage 0's 16x16 token grid",
    );
    expect(() => swinConfig('swin_tiny_patch4_window7_224', { embedDim: 0 })).toThrow(
      'SwinConfig.embedDim: must be a positive integer, got 0',
    );
    expect(() => swinConfig('swin_tiny_patch4_window7_224', { dropPathRate: 1 })).toThrow(
      /SwinConfig.dropPathRate: must be in \[0, 1\)/,
    );
    expect(() => swinConfig('swin_tiny_patch4_window7_224', { depths: [2, 0, 2, 2] })).toThrow(/SwinConfig.depths/);
    // a JSON config: 1e999 parses to Infinity, strings and missing fields pass a bare comparison
    const json = (over: Record<string, unknown>) =>
      JSON.parse(JSON.stringify({ ...SWIN_PRESETS.swin_tiny_patch4_window7_224, ...over }).replace('"INF"', '1e999'));
    expect(() => validateSwinConfig(json({ mlpRatio: 'INF' }))).toThrow(
      'SwinConfig.mlpRatio: must be a finite number > 0, got Infinity',
    );
    expect(() => validateSwinConfig(json({ mlpRatio: '4' }))).toThrow(
      'SwinConfig.mlpRatio: must be a finite number > 0, got 4',
    );
    expect(() => validateSwinConfig(json({ mlpRatio: 0.001 }))).toThrow(
      'SwinConfig.mlpRatio: 0.001 leaves the 96-wide stage-0 MLP without a hidden unit',
    );
    expect(() => validateSwinConfig(json({ layerNormEps: 'INF' }))).toThrow(/SwinConfig.layerNormEps: .* got Infinity/);
    expect(() => validateSwinConfig(json({ dropPathRate: '0.1' }))).toThrow(/SwinConfig.dropPathRate: .* got 0.1/);
    expect(() => validateSwinConfig(json({ qkvBias: undefined }))).toThrow(
      'SwinConfig.qkvBias: must be true or false, got undefined',
    );
    expect(() => validateSwinConfig(JSON.parse('[1]'))).toThrow('SwinConfig: expected an object, got a list');
  });

  it('the detection variant pads instead of requiring tiling windows', () => {
    const cfg = { ...swinConfig('swin_tiny_patch4_window7_224'), imageSize: 64 };
    expect(() => validateSwinConfig(cfg, 'detection')).not.toThrow();
    expect(() => validateSwinConfig(cfg)).toThrow(/windowSize/);
  });
});

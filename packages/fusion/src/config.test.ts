import { describe, expect, it } from 'vitest';
import {
  FIBER_PRESETS,
  fiberBaseConfig,
  fiberConfig,
  fusionSchedule,
  initializerStd,
  validateFiberConfig,
} from './config.js';
import { fiberFineConfig, validateFiberFineConfig } from './fine.js';

describe('FIBER fusion schedule', () => {
  it('pairs stage-3 blocks 14-17 with text layers 6-9 and stage-4 blocks 0-1 with layers 10-11 at FIBER-B', () => {
    expect(fusionSchedule(fiberBaseConfig())).toEqual([
      { stage: 2, block: 14, textLayer: 6 },
      { stage: 2, block: 15, textLayer: 7 },
      { stage: 2, block: 16, textLayer: 8 },
      { stage: 2, block: 17, textLayer: 9 },
      { stage: 3, block: 0, textLayer: 10 },
      { stage: 3, block: 1, textLayer: 11 },
    ]);
  });
  it('scales with the config and rejects impossible ones', () => {
    const cfg = fiberBaseConfig(576, { numFuseBlock: 3 });
    expect(cfg.swin.windowSize).toBe(18);
    expect(fusionSchedule(cfg).map((p) => p.textLayer)).toEqual([9, 10, 11]);
    expect(() => fiberBaseConfig(384, { numFuseBlock: 1 })).toThrow(
      /numFuseBlock: 1 must cover every last-stage block \(2\)/,
    );
  });

  it('presets reach every part and derive the coarse window rule', () => {
    const tiny = fiberConfig('tiny');
    expect([tiny.swin.imageSize, tiny.swin.windowSize, tiny.roberta.hiddenSize, tiny.numFuseBlock]).toEqual([
      64, 2, 64, 3,
    ]);
    const small = fiberConfig('small', { imageSize: 96, roberta: { vocabSize: 1000 }, swin: { dropPathRate: 0.2 } });
    expect([small.swin.windowSize, small.roberta.vocabSize, small.swin.dropPathRate, small.roberta.hiddenSize]).toEqual(
      [3, 1000, 0.2, 128],
    );
    expect(fiberConfig('base', { imageSize: 576, maxTextLen: 50 }).swin.windowSize).toBe(18);
    expect(fiberConfig('base', { swin: { windowSize: 6 } }).swin.windowSize).toBe(6);
    for (const name of Object.keys(FIBER_PRESETS) as (keyof typeof FIBER_PRESETS)[])
      expect(() => fiberConfig(name)).not.toThrow();
  });
  it('rejects what would fail later, naming the field', () => {
    expect(() => fiberConfig('tiny', { swin: { windowSize: 7 } })).toThrow(/SwinConfig.windowSize: 7 does not tile/);
    expect(() => fiberConfig('tiny', { maxTextLen: 40 })).toThrow(
      'FiberCoarseConfig.maxTextLen: 40 must be an integer in [2, 32] (roberta.maxPositionEmbeddings 34)',
    );
    expect(() => fiberConfig('tiny', { numFuseBlock: 5 })).toThrow(
      /numFuseBlock: 5 must cover every last-stage block \(2\) and fit in the last two stages \(4\)/,
    );
    expect(() => fiberConfig('tiny', { roberta: { numAttentionHeads: 3 } })).toThrow(/RobertaConfig.numAttentionHeads/);
    // @ts-expect-error an unknown preset
    expect(() => fiberConfig('huge')).toThrow(/unknown preset "huge"/);
    // an inherited name is no preset (toString's function was read as one)
    // @ts-expect-error an unknown preset
    expect(() => fiberConfig('toString')).toThrow(/unknown preset "toString"/);
    // a JSON config file of the wrong shape names what is missing (it read a field of undefined)
    const parsed = (text: string) => JSON.parse(text);
    expect(() => validateFiberConfig(parsed('{"__proto__": {"hiddenSize": 5}}'))).toThrow(
      'FiberCoarseConfig.swin: expected an object, got undefined',
    );
    expect(() => validateFiberConfig(parsed('[]'))).toThrow('FiberCoarseConfig: expected an object, got a list');
    const tiny = fiberConfig('tiny');
    expect(() => validateFiberConfig(parsed(JSON.stringify({ ...tiny, roberta: 7 })))).toThrow(
      'FiberCoarseConfig.roberta: expected an object, got number',
    );
    expect(() => validateFiberFineConfig(parsed('"tiny"'))).toThrow('FiberFineConfig: expected an object, got string');
  });

  it("initializerRange: FIBER's 0.02 when absent, a positive std, or null for PyTorch's default", () => {
    expect(fiberConfig('tiny')).not.toHaveProperty('initializerRange');
    expect(initializerStd(fiberConfig('tiny'))).toBe(0.02);
    expect(initializerStd(fiberConfig('tiny', { initializerRange: 0.05 }))).toBe(0.05);
    expect(initializerStd(fiberConfig('tiny', { initializerRange: null }))).toBeNull();
    expect(initializerStd(fiberFineConfig('tiny', { initializerRange: null }))).toBeNull();
    // a config written to JSON and read back keeps the choice
    expect(initializerStd(JSON.parse(JSON.stringify(fiberConfig('tiny', { initializerRange: null }))))).toBeNull();
    for (const v of [0, -0.02, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => fiberConfig('tiny', { initializerRange: v })).toThrow(
        `FiberCoarseConfig.initializerRange: must be a positive number, or null for PyTorch's default init; got ${v}`,
      );
      expect(() => fiberFineConfig('tiny', { initializerRange: v })).toThrow(/^FiberFineConfig.initializerRange: /);
    }
    // @ts-expect-error a string from a hand-written JSON config
    expect(() => fiberConfig('tiny', { initializerRange: '0.02' })).toThrow(/initializerRange: .* got 0.02/);
  });
});

import { describe, expect, it } from 'vitest';
import {
  FIBER_HEAD_SETTINGS,
  FIBER_TASK_HEADS,
  VQAV2_LABEL_SIZE,
  clampTemperature,
  coarseHeadsConfig,
} from './config.js';

describe('coarse heads config', () => {
  it('has the official settings and the temperature clamp', () => {
    expect(FIBER_TASK_HEADS.vqa.vqaLabels).toBe(VQAV2_LABEL_SIZE);
    expect(VQAV2_LABEL_SIZE).toBe(3129);
    expect(FIBER_HEAD_SETTINGS.mlmLayerNormEps).toBe(1e-12);
    expect(clampTemperature(0.0001)).toBe(0.001);
    expect(clampTemperature(3)).toBe(1);
    expect(clampTemperature(0.07)).toBe(0.07);
  });
  it('builds a config from a task or a selection, and rejects bad settings', () => {
    expect(coarseHeadsConfig('pretrain')).toMatchObject({
      itc: true,
      itm: true,
      mlm: true,
      vqaLabels: 0,
      itcTemperature: { init: 0.07 },
    });
    const custom = coarseHeadsConfig({
      ...FIBER_TASK_HEADS.vqa,
      vqaLabels: 12,
      itcTemperature: { init: 0.1, min: 0.01, max: 1 },
    });
    expect(custom.vqaLabels).toBe(12);
    expect(clampTemperature(0.001, custom)).toBe(0.01);
    expect(() => coarseHeadsConfig({ ...FIBER_TASK_HEADS.vqa, vqaLabels: -1 })).toThrow(/vqaLabels/);
    expect(() =>
      coarseHeadsConfig({ ...FIBER_TASK_HEADS.pretrain, itcTemperature: { init: 2, min: 0.001, max: 1 } }),
    ).toThrow(/itcTemperature/);
    // @ts-expect-error an unknown task name
    expect(() => coarseHeadsConfig('detection')).toThrow(/unknown task "detection"/);
    // @ts-expect-error an inherited property is not a task
    expect(() => coarseHeadsConfig('toString')).toThrow(/unknown task "toString"/);
    // @ts-expect-error not a selection
    expect(() => coarseHeadsConfig(null)).toThrow(/expected a task name .* or a heads selection, got null/);
    // @ts-expect-error a selection without itm
    expect(() => coarseHeadsConfig({ itc: true, mlm: false, vqaLabels: 0, nlvr2: false, caption: false })).toThrow(
      'CoarseHeadsConfig.itm: must be true or false, got undefined',
    );
    expect(() =>
      coarseHeadsConfig({ ...FIBER_TASK_HEADS.pretrain, itcTemperature: { init: Number.NaN, min: 0.001, max: 1 } }),
    ).toThrow(/itcTemperature: need finite 0 < min <= init <= max/);
    expect(() => coarseHeadsConfig({ ...FIBER_TASK_HEADS.pretrain, mlmLayerNormEps: 0 })).toThrow(
      'CoarseHeadsConfig.mlmLayerNormEps: must be a positive finite number, got 0',
    );
  });
});

import { describe, expect, it } from 'vitest';
import { FIBER_B_HEADS, clampTemperature } from './config.js';

describe('coarse heads config', () => {
  it('has FIBER-B sizes and the official temperature clamp', () => {
    expect(FIBER_B_HEADS.vqaLabelSize).toBe(3129);
    expect(FIBER_B_HEADS.mlmLayerNormEps).toBe(1e-12);
    expect(clampTemperature(0.0001)).toBe(0.001);
    expect(clampTemperature(3)).toBe(1);
    expect(clampTemperature(0.07)).toBe(0.07);
  });
});

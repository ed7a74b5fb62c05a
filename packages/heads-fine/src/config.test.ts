import { describe, expect, it } from 'vitest';
import { FIBER_DYHEAD, dyReluCoefficients, hSigmoid } from './config.js';

describe('DyHead config', () => {
  it('has the official sizes', () => {
    expect(FIBER_DYHEAD.numConvs).toBe(6);
    expect(FIBER_DYHEAD.channels / FIBER_DYHEAD.groupNormGroups).toBe(16);
  });
  it('h_sigmoid and DyReLU coefficients follow the official code', () => {
    expect([hSigmoid(-4), hSigmoid(0), hSigmoid(4)]).toEqual([0, 0.5, 1]);
    expect(dyReluCoefficients(0.5, 0.5, 0.5, 0.5)).toEqual([1, 0, 0, 0]);
  });
});

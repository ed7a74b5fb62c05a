import { describe, expect, it } from 'vitest';
import { fiberBaseConfig, fusionSchedule } from './config.js';

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
    expect(() => fiberBaseConfig(384, { numFuseBlock: 1 })).toThrow(/numFuseBlock: 1 must cover every last-stage block \(2\)/);
  });
});

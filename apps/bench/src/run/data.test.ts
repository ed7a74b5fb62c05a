import { Generator } from '@fiber-vl/tensor-core';
import { describe, expect, it } from 'vitest';
import { sampleIndices } from './data.js';

describe('sampleIndices', () => {
  it('repeats whole seeded orders of the split when asked for more than it has', () => {
    const idx = sampleIndices(5, 12, new Generator(7));
    expect(idx).toHaveLength(12);
    expect([...idx.slice(0, 5)].sort()).toEqual([0, 1, 2, 3, 4]);
    expect([...idx.slice(5, 10)].sort()).toEqual([0, 1, 2, 3, 4]);
    expect(idx.slice(10).every((i) => i >= 0 && i < 5)).toBe(true);
    expect(sampleIndices(5, 12, new Generator(7))).toEqual(idx);
  });

  it('names an empty split instead of looping for ever', () => {
    expect(() => sampleIndices(0, 3, new Generator(1))).toThrow(/3 indices asked of a split of 0 records/);
    expect(() => sampleIndices(Number.NaN, 1, new Generator(1))).toThrow(RangeError);
    expect(sampleIndices(0, 0, new Generator(1))).toEqual([]);
  });
});

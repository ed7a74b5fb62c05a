import { World, createWorld } from '@fiber-vl/trainer';
import { describe, expect, it, vi } from 'vitest';
import { MemoWorld, deepFreeze } from './memo-world.js';

const config = createWorld({ seed: 3, preset: 'small', splits: { train: 40, val: 8, test: 8 } }).config;

describe('MemoWorld', () => {
  it('gives the values a World gives', () => {
    const plain = new World(config);
    const memo = new MemoWorld(config);
    for (const split of ['train', 'val', 'test'] as const) {
      for (let i = 0; i < 8; i++) {
        // scene first, then the sample built on it (and the other order for odd scenes)
        const order = i % 2 ? (['sample', 'scene'] as const) : (['scene', 'sample'] as const);
        for (const what of order) expect(memo[what](split, i)).toEqual(plain[what](split, i));
        expect(memo.nlvr2(split, i)).toEqual(plain.nlvr2(split, i));
        expect(memo.scene(split, i)).toBe(memo.scene(split, i));
        expect(memo.sample(split, i)).toBe(memo.sample(split, i));
        expect(memo.nlvr2(split, i)).toBe(memo.nlvr2(split, i));
        expect(memo.image(split, i)).toEqual(plain.image(split, i));
      }
    }
    expect([...memo.samples('val', { end: 3 })]).toEqual([...plain.samples('val', { end: 3 })]);
    // a sample is built on the kept scene
    expect(memo.sample('train', 5).scene).toBe(memo.scene('train', 5));
  });

  it('generates each scene, sample and pair once however often it is asked', () => {
    const memo = new MemoWorld(config);
    const scene = vi.spyOn(World.prototype, 'scene');
    const sample = vi.spyOn(World.prototype, 'sample');
    const nlvr2 = vi.spyOn(World.prototype, 'nlvr2');
    try {
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 4; i++) {
          memo.sample('train', i);
          memo.scene('train', i);
          memo.image('train', i);
          memo.nlvr2('train', i);
        }
      }
      expect(scene).toHaveBeenCalledTimes(4);
      expect(sample).toHaveBeenCalledTimes(4);
      expect(nlvr2).toHaveBeenCalledTimes(4);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('returns frozen values: an edit throws instead of changing what the next caller gets', () => {
    const memo = new MemoWorld(config);
    const sample = memo.sample('train', 1);
    expect(() => {
      sample.captions[0].text = 'edited';
    }).toThrow(TypeError);
    expect(() => sample.scene.objects.push(sample.scene.objects[0])).toThrow(TypeError);
    expect(() => {
      memo.scene('train', 2).objects[0].x = -1;
    }).toThrow(TypeError);
    expect(memo.sample('train', 1)).toEqual(new World(config).sample('train', 1));
    // fineGrained builds a new sample from a kept one
    expect(memo.fineGrained(sample)).toEqual(new World(config).fineGrained(new World(config).sample('train', 1)));
  });

  it('throws for an invalid index on every call (nothing is kept for it)', () => {
    const memo = new MemoWorld(config);
    for (const index of [40, -1, 1.5]) {
      expect(() => memo.scene('train', index)).toThrow(RangeError);
      expect(() => memo.scene('train', index)).toThrow(RangeError);
    }
    expect(() => memo.nlvr2('test', 10_000)).toThrow(RangeError);
  });
});

describe('deepFreeze', () => {
  it('freezes nested objects and arrays and returns its argument', () => {
    const value = { a: [1, { b: 2 }], c: { d: [3] } };
    expect(deepFreeze(value)).toBe(value);
    expect(Object.isFrozen(value.a[1])).toBe(true);
    expect(Object.isFrozen(value.c.d)).toBe(true);
    expect(deepFreeze(null)).toBe(null);
    expect(deepFreeze(7)).toBe(7);
  });
});

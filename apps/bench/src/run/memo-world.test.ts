import { World, createWorld } from '@fiber-vl/trainer';
import { describe, expect, it, vi } from 'vitest';
import { fiberPixelValues } from '@fiber-vl/swin';
import { initBackend } from '@fiber-vl/tensor-core';
import { coarsePixels } from './data.js';
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

  it("gives fiberPixelValues' pixels and keeps each scene's within its byte budget", async () => {
    await initBackend({ backend: 'cpu' });
    const per = 3 * 16 * 16 * 4;
    // room for two scenes' pixels at 16 px
    const memo = new MemoWorld(config, 2 * per);
    const plain = new World(config);
    const expected = async (split: 'train' | 'test', indices: number[], size: number) => {
      const t = fiberPixelValues(
        indices.map((i) => plain.image(split, i)),
        size,
      );
      try {
        return Float32Array.from(await t.data());
      } finally {
        t.dispose();
      }
    };
    const image = vi.spyOn(memo, 'image');
    try {
      expect(memo.pixelBatch('train', [3, 0, 3], 16)).toEqual(await expected('train', [3, 0, 3], 16));
      // scenes 3 and 0 made once each: the budget is full
      expect(image).toHaveBeenCalledTimes(2);
      // a new array each time: editing one changes nothing kept
      const a = memo.pixelBatch('train', [0], 16);
      a.fill(0);
      expect(memo.pixelBatch('train', [0], 16)).toEqual(await expected('train', [0], 16));
      expect(image).toHaveBeenCalledTimes(2);
      // another size and another split are other pixels, made anew each time past the budget
      expect(memo.pixelBatch('train', [0], 8)).toEqual(await expected('train', [0], 8));
      expect(memo.pixelBatch('test', [0], 16)).toEqual(await expected('test', [0], 16));
      expect(memo.pixelBatch('test', [0], 16)).toEqual(await expected('test', [0], 16));
      expect(image).toHaveBeenCalledTimes(5);
      expect(memo.pixelBatch('train', [], 16)).toEqual(new Float32Array(0));
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('gives coarsePixels the values of fiberPixelValues, its checks included', async () => {
    await initBackend({ backend: 'cpu' });
    const memo = new MemoWorld(config);
    const plain = new World(config);
    const indices = [3, 0, 3, 7];
    const made = coarsePixels(plain, 'val', indices, 16);
    try {
      for (let round = 0; round < 2; round++) {
        // the second round reads the kept pixels
        const kept = coarsePixels(memo, 'val', indices, 16);
        try {
          expect(kept.shape).toEqual([4, 3, 16, 16]);
          expect(await kept.data()).toEqual(await made.data());
        } finally {
          kept.dispose();
        }
      }
    } finally {
      made.dispose();
    }
    for (const size of [0, 1.5]) {
      expect(() => coarsePixels(memo, 'val', [0], size)).toThrow(RangeError);
      expect(() => coarsePixels(memo, 'val', [], size)).toThrow(RangeError);
    }
  });

  it('throws for an invalid index on every call (nothing is kept for it)', () => {
    const memo = new MemoWorld(config);
    for (const index of [40, -1, 1.5]) {
      expect(() => memo.scene('train', index)).toThrow(RangeError);
      expect(() => memo.scene('train', index)).toThrow(RangeError);
    }
    expect(() => memo.nlvr2('test', 10_000)).toThrow(RangeError);
    expect(() => memo.pixelBatch('train', [0, 40], 16)).toThrow(RangeError);
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

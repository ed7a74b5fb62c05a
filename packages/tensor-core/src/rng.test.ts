import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from './tf.js';
import { Generator, manualSeed, defaultGenerator } from './rng.js';
import { erf, erfinv } from './math.js';
import { testBackends, useBackend } from './testing.js';

describe('Generator', () => {
  it('is reproducible from a seed and its state', () => {
    const a = new Generator(42);
    const b = new Generator(42);
    const xs = Array.from({ length: 5 }, () => a.nextUint32());
    expect(Array.from({ length: 5 }, () => b.nextUint32())).toEqual(xs);
    // Golden values: a change here changes every seeded run users have recorded.
    expect(xs).toEqual(GOLDEN_SEED_42);
    const state = a.getState();
    const next = a.nextDouble();
    expect(new Generator().setState(state).nextDouble()).toBe(next);
    expect(new Generator(43).nextUint32()).not.toBe(xs[0]);
  });

  it('uniform, normal and permutation have the right distributions', () => {
    const g = new Generator(1);
    const u = g.uniformArray(50000);
    expect(Math.min(...u)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...u)).toBeLessThan(1);
    expect(u.reduce((a, b) => a + b) / u.length).toBeCloseTo(0.5, 2);
    const n = g.normalArray(50000, 1, 2);
    const mean = n.reduce((a, b) => a + b) / n.length;
    const std = Math.sqrt(n.reduce((a, b) => a + (b - mean) ** 2, 0) / n.length);
    expect(mean).toBeCloseTo(1, 1);
    expect(std).toBeCloseTo(2, 1);
    const p = g.permutation(100);
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(p).not.toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('permutation is Fisher-Yates from the last place down, j = nextInt(i + 1): the same order and state', () => {
    for (const n of [0, 1, 2, 7, 1000]) {
      const g = new Generator(17 + n);
      const ref = new Generator(17 + n);
      const expected = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = ref.nextInt(i + 1);
        [expected[i], expected[j]] = [expected[j], expected[i]];
      }
      expect(g.permutation(n)).toEqual(expected);
      expect(g.nextUint32()).toBe(ref.nextUint32());
    }
    // a fixed order pins the sequence runs depend on (the bench's data order)
    expect(new Generator(3).permutation(10)).toEqual([5, 6, 0, 2, 9, 8, 1, 4, 3, 7]);
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => new Generator(1).permutation(bad)).toThrow(`permutation needs a non-negative integer, got ${bad}`);
    expect(() => new Generator(1).permutation(2 ** 32)).toThrow(
      'permutation(4294967296): a JS array holds at most 2^32 - 1',
    );
  });

  it('distinct integer seeds give distinct streams; seeds are truncated and bounded as in torch', () => {
    // -1, 2^32 + 1 and 2^70 all drew seed 0's stream (the two 32-bit halves were xor-ed)
    const first = (seed: number) => new Generator(seed).getState().join();
    const seeds = [0, 1, -1, -2, 2 ** 32, 2 ** 32 + 1, 2 ** 33, -(2 ** 32), 2 ** 53, -(2 ** 63), 2 ** 64 - 2 ** 12];
    expect(new Set(seeds.map(first)).size).toBe(seeds.length);
    // seeds in [0, 2^32) keep their streams (the golden values above); torch's int() truncates
    expect(first(1.5)).toBe(first(1));
    expect(first(-1.5)).toBe(first(-1));
    for (const bad of [2 ** 64, 2 ** 70, -(2 ** 64)])
      expect(() => new Generator(bad)).toThrow(/must be in \[-2\^63, 2\^64\)/);
    // @ts-expect-error: a string seed, as from an unparsed option
    expect(() => manualSeed('3')).toThrow('Generator seed must be a finite number, got 3');
  });

  it('setState refuses words that are not uint32 and the all-zero state', () => {
    // NaN, strings and 2^32 became 0; [0, 0, 0, 0] drew only zeros and normal() looped for ever
    for (const [state, message] of [
      [[0, 0, 0, 0], 'Generator state [0, 0, 0, 0] is not a xoshiro128** state'],
      [[1, Number.NaN, 0, 0], 'Generator state word 1 must be an integer in [0, 2^32), got NaN'],
      [[1, 2, 2 ** 32, 0], 'word 2 must be an integer in [0, 2^32), got 4294967296'],
      [[1, 2, 3, -1], 'word 3 must be an integer in [0, 2^32), got -1'],
    ] as const)
      expect(() => new Generator(1).setState(state)).toThrow(message);
    const g = new Generator(5);
    expect(new Generator().setState(g.getState()).nextUint32()).toBe(g.nextUint32());
  });

  it('names bad probabilities, bounds, std and shapes (torch raises on each), before drawing', () => {
    const g = new Generator(3);
    const state = g.getState();
    // bernoulli(NaN) and bernoulli(2) gave all zeros / all ones; normal(-1 std) mirrored; [-1] was "Invalid typed array length"
    expect(() => g.bernoulli([2], Number.NaN)).toThrow('bernoulli: p must be in [0, 1], got NaN');
    expect(() => g.bernoulli([2], 1.5)).toThrow('bernoulli: p must be in [0, 1], got 1.5');
    expect(() => g.normal([2], 0, -1)).toThrow('normal: need a finite mean and a finite std >= 0, got mean 0, std -1');
    expect(() => g.normalArray(2, Number.NaN)).toThrow(/finite mean/);
    expect(() => g.uniform([2], 1, 0)).toThrow('uniform: need finite low <= high, got low 1, high 0');
    expect(() => g.uniformArray(2, 0, Number.POSITIVE_INFINITY)).toThrow(/finite low <= high/);
    expect(() => g.normal([-1])).toThrow('normal: shape [-1]: dimension 0 is not a non-negative integer');
    expect(() => g.uniform([2, 1.5])).toThrow('uniform: shape [2, 1.5]: dimension 1 is not a non-negative integer');
    expect(() => g.normalArray(-3)).toThrow('normalArray: -3 is not an element count');
    expect(g.getState()).toEqual(state);
    const empty = g.bernoulli([0], 0.5);
    expect(empty.shape).toEqual([0]);
    empty.dispose();
    expect(Array.from(g.uniformArray(3, 2, 2))).toEqual([2, 2, 2]);
  });

  it('manualSeed seeds the default generator', () => {
    manualSeed(9);
    const a = defaultGenerator.nextUint32();
    manualSeed(9);
    expect(defaultGenerator.nextUint32()).toBe(a);
  });

  it('erf and erfinv are accurate and inverse to each other', () => {
    expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 14);
    expect(erf(3)).toBeCloseTo(0.9999779095030014, 14);
    expect(erf(-1.2)).toBeCloseTo(-0.9103139782296354, 14);
    for (const y of [-0.999, -0.5, 0, 0.3, 0.9, 0.99999]) expect(erf(erfinv(y))).toBeCloseTo(y, 12);
  });
});

const { names } = await testBackends();
describe('Generator tensors are the same on every backend', () => {
  let reference: number[] | undefined;
  for (const backend of names) {
    it(backend, async () => {
      await useBackend(backend);
      const t = new Generator(5).normal([64]);
      const v = Array.from((await t.data()) as Float32Array);
      t.dispose();
      reference ??= v;
      expect(v).toEqual(reference);
      expect(tf.getBackend()).toBe(backend);
    });
  }
});
beforeAll(() => useBackend('cpu'));

// xoshiro128** seeded by splitmix32(42), computed by an independent Python transcription of the algorithms.
const GOLDEN_SEED_42 = [2837322924, 544945897, 479756282, 3500138142, 339756180];

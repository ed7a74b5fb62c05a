import { describe, expect, it } from 'vitest';
import { show } from './errors.js';

describe('show', () => {
  it('is JSON for what JSON can hold', () => {
    for (const v of [null, true, 0, 1.5, -3e-7, 'a "b"\n', [], {}, [1, [2, 'x']], { a: 1, b: [null, { c: 'd' }] }])
      expect(show(v)).toBe(JSON.stringify(v));
  });

  it('prints numbers JSON cannot hold as JS does', () => {
    expect(show(Number.POSITIVE_INFINITY)).toBe('Infinity');
    expect(show(JSON.parse('[1e999, -1e999]'))).toBe('[Infinity,-Infinity]');
    expect(show({ area: Number.NaN })).toBe('{"area":NaN}');
    expect(show(-0)).toBe('-0');
    expect(show(10n)).toBe('10n');
  });

  it('names what JSON would drop or throw on', () => {
    expect(show(undefined)).toBe('undefined');
    expect(show([undefined])).toBe('[undefined]');
    expect(show(new Map([[1, 2]]))).toBe('a Map of 1');
    const loop: Record<string, unknown> = { a: 1 };
    loop.self = loop;
    expect(show(loop)).toBe('{"a":1,"self":[circular]}');
    const shared = [1];
    expect(show([shared, shared])).toBe('[[1],[1]]');
  });

  it('cuts a long value after max characters', () => {
    const big = Array.from({ length: 100_000 }, (_, i) => i);
    const s = show(big, 50);
    expect(s).toBe(`${JSON.stringify(big).slice(0, 50)}…`);
    expect(show({ k: 'x'.repeat(1000) }, 20)).toBe(`{"k":"${'x'.repeat(14)}…`);
    expect(show([1, 2, 3], 7)).toBe('[1,2,3]');
    expect(show([1, 2, 3, 4], 7)).toBe('[1,2,3,…');
  });
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MetricInputError } from './errors.js';
import { retrievalRecall } from './retrieval.js';

const fixture = JSON.parse(readFileSync(join(__dirname, '../test/fixtures/retrieval.json'), 'utf8'));

describe('retrieval recall (VSE++ protocol)', () => {
  it.each(fixture.cases.map((c: any) => [c.name, c]) as [string, any][])('fixture %s', (_name, c: any) => {
    const r = retrievalRecall(c.similarity, c.text_to_image);
    expect(Array.from(r.i2tRanks)).toEqual(c.expected.i2t_ranks_0based);
    expect(Array.from(r.t2iRanks)).toEqual(c.expected.t2i_ranks_0based);
    for (const dir of ['i2t', 't2i'] as const) {
      for (const [k, v] of Object.entries(c.expected[dir]))
        expect(Math.abs((r[dir] as any)[k] - (v as number))).toBeLessThanOrEqual(1e-9);
    }
    expect(Math.abs(r.rsum - c.expected.rsum)).toBeLessThanOrEqual(1e-9);
  });

  it('counts ties at their expected place: a constant scorer gets chance, not 100', () => {
    const N = 20;
    const flat = retrievalRecall(
      { rows: N, cols: 5 * N, data: new Float64Array(5 * N * N).fill(0.3) },
      Array.from({ length: 5 * N }, (_, j) => Math.floor(j / 5)),
    );
    for (const k of [1, 5, 10] as const) expect(flat.t2i[`R@${k}`]).toBeCloseTo((100 * k) / N, 9);
    // i2t: the first of an image's 5 texts among all 100 in a random order: 1 - C(95, k) / C(100, k)
    const firstWithin = (k: number) => {
      let none = 1;
      for (let i = 0; i < k; i++) none *= (95 - i) / (100 - i);
      return 100 * (1 - none);
    };
    for (const k of [1, 5, 10] as const) expect(flat.i2t[`R@${k}`]).toBeCloseTo(firstWithin(k), 9);
    expect(flat.t2i.meanr).toBeCloseTo(1 + (N - 1) / 2, 9);
    expect(flat.i2t.meanr).toBeCloseTo(1 + 95 / 6, 9);

    // two images whose captions are the same words, so any model scores them alike
    const twins = retrievalRecall(
      [
        [0.9, 0.9],
        [0.2, 0.2],
      ],
      [0, 1],
    );
    expect(Array.from(twins.i2tRanks)).toEqual([0.5, 0.5]);
    expect(twins.i2t['R@1']).toBe(50);
    expect(Array.from(twins.t2iRanks)).toEqual([0, 1]);
    expect(twins.t2i['R@1']).toBe(50);
  });

  it('equals the mean over random orders of the tied items (seeded Monte Carlo, many ties)', () => {
    let state = 12345;
    const rand = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state / 2 ** 32;
    };
    for (let trial = 0; trial < 4; trial++) {
      const rows = 6;
      const cols = 14;
      const map = Array.from({ length: cols }, (_, j) => (j < rows ? j : Math.floor(rand() * rows)));
      const sim = Array.from({ length: rows }, () => Array.from({ length: cols }, () => Math.floor(rand() * 3)));
      const r = retrievalRecall(sim, map);
      const draws = 20000;
      const hits = { i2t: [0, 0, 0], t2i: [0, 0, 0] };
      const ks = [1, 5, 10];
      for (let d = 0; d < draws; d++) {
        const key = sim.map((row) => row.map((v) => v + rand() * 0.5)); // ties broken at random, order kept
        for (let i = 0; i < rows; i++) {
          const order = Array.from({ length: cols }, (_, j) => j).sort((a, b) => key[i][b] - key[i][a]);
          const rank = order.findIndex((j) => map[j] === i);
          ks.forEach((k, n) => (hits.i2t[n] += rank < k ? 1 : 0));
        }
        for (let j = 0; j < cols; j++) {
          const order = Array.from({ length: rows }, (_, i) => i).sort((a, b) => key[b][j] - key[a][j]);
          const rank = order.indexOf(map[j]);
          ks.forEach((k, n) => (hits.t2i[n] += rank < k ? 1 : 0));
        }
      }
      ks.forEach((k, n) => {
        expect(Math.abs(r.i2t[`R@${k}` as 'R@1'] - (100 * hits.i2t[n]) / (draws * rows))).toBeLessThan(1.5);
        expect(Math.abs(r.t2i[`R@${k}` as 'R@1'] - (100 * hits.t2i[n]) / (draws * cols))).toBeLessThan(1.5);
      });
    }
  });

  it('accepts a flat row-major matrix and names bad input', () => {
    const r = retrievalRecall({ rows: 2, cols: 2, data: new Float32Array([0.9, 0.1, 0.2, 0.8]) }, [0, 1]);
    expect(r.rsum).toBe(600);
    expect(() => retrievalRecall([[1, 2]], [0])).toThrow('textToImage has 1 entries for 2 texts (similarity columns)');
    expect(() =>
      retrievalRecall(
        [
          [1, 2],
          [3, 4],
        ],
        [0, 0],
      ),
    ).toThrow('image 1 has no text in textToImage');
    expect(() => retrievalRecall([[1, 2]], [0, 3])).toThrow('textToImage[1] = 3 is not an image index in [0, 1)');
  });

  it('refuses non-finite, missing and empty similarities with a typed error naming the file and entry', () => {
    const cases: [unknown, string][] = [
      [
        [
          [1, NaN],
          [0, 1],
        ],
        'sims.json: similarity[0][1] is not a finite number: NaN',
      ],
      [
        [
          [1, 2],
          [null, 1],
        ],
        'sims.json: similarity[1][0] is not a finite number: null',
      ],
      [
        [
          [1, Infinity],
          [0, 1],
        ],
        'sims.json: similarity[0][1] is not a finite number: Infinity',
      ],
      [
        [
          [1, '0.5'],
          [0, 1],
        ],
        'sims.json: similarity[0][1] is not a finite number: "0.5"',
      ],
      [
        [
          [1, 2],
          // biome-ignore lint/suspicious/noSparseArray: a hole is the hostile input under test
          [0, ,],
        ],
        'sims.json: similarity[1][1] is not a finite number: undefined',
      ], // eslint-disable-line no-sparse-arrays
      [[], 'sims.json: "similarity" has no rows (no images)'],
      [[[]], 'sims.json: similarity[0] is empty (no texts)'],
      [[[1, 2], [3]], 'sims.json: similarity[1] has 1 values, similarity[0] has 2'],
      [[[1, 2], 7], 'sims.json: similarity[1] is not a list of numbers: 7'],
      [
        { rows: 2, cols: 2, data: new Float32Array([1, NaN, 0, 1]) },
        'sims.json: similarity[0][1] is not a finite number: NaN',
      ],
      [{ rows: 0, cols: 2, data: [] }, 'sims.json: similarity.rows must be a positive integer, got 0'],
      [null, 'sims.json: "similarity" must be a matrix (a list of rows) or {rows, cols, data}, got null'],
    ];
    for (const [sim, message] of cases) {
      const t2i = [0, 1];
      expect(() => retrievalRecall(sim as number[][], t2i, { file: 'sims.json' }), message).toThrow(message);
      expect(() => retrievalRecall(sim as number[][], t2i), message).toThrow(MetricInputError);
    }
    // what untyped JSON can hand the function
    const untyped = (v: unknown): number[] => JSON.parse(JSON.stringify(v));
    expect(() => retrievalRecall([[1, 2]], untyped('ab'), { file: 's.json' })).toThrow(
      's.json: text_to_image must be a list of image indices, got "ab"',
    );
    expect(() => retrievalRecall([[1, 2]], untyped([0, '0']))).toThrow('textToImage[1] = "0" is not an image index');
  });
});

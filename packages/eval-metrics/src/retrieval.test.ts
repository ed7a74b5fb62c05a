import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { retrievalRecall } from './retrieval.js';

const fixture = JSON.parse(readFileSync(join(__dirname, '../test/fixtures/retrieval.json'), 'utf8'));

describe('retrieval recall (VSE++ protocol)', () => {
  it.each((fixture.cases.map((c: any) => [c.name, c]) as [string, any][]))('fixture %s', (_name, c: any) => {
    const r = retrievalRecall(c.similarity, c.text_to_image);
    expect(Array.from(r.i2tRanks)).toEqual(c.expected.i2t_ranks_0based);
    expect(Array.from(r.t2iRanks)).toEqual(c.expected.t2i_ranks_0based);
    for (const dir of ['i2t', 't2i'] as const) {
      for (const [k, v] of Object.entries(c.expected[dir])) expect(Math.abs((r[dir] as any)[k] - (v as number))).toBeLessThanOrEqual(1e-9);
    }
    expect(Math.abs(r.rsum - c.expected.rsum)).toBeLessThanOrEqual(1e-9);
  });

  it('accepts a flat row-major matrix and names bad input', () => {
    const r = retrievalRecall({ rows: 2, cols: 2, data: new Float32Array([0.9, 0.1, 0.2, 0.8]) }, [0, 1]);
    expect(r.rsum).toBe(600);
    expect(() => retrievalRecall([[1, 2]], [0])).toThrow('textToImage has 1 entries for 2 texts (similarity columns)');
    expect(() => retrievalRecall([[1, 2], [3, 4]], [0, 0])).toThrow('image 1 has no text in textToImage');
    expect(() => retrievalRecall([[1, 2]], [0, 3])).toThrow('textToImage[1] = 3 is not an image index in [0, 1)');
  });
});

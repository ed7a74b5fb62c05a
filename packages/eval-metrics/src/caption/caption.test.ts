import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MetricInputError } from '../errors.js';
import { evaluateCaptions, type CaptionMetric } from './evaluate.js';
import { bleu, bleuStats } from './bleu.js';
import { ciderD } from './cider.js';
import { lcsLength, rougeL } from './rouge.js';

const fx = JSON.parse(readFileSync(join(__dirname, '../../test/fixtures/captioning.json'), 'utf8'));
const METRICS: CaptionMetric[] = ['BLEU_1', 'BLEU_2', 'BLEU_3', 'BLEU_4', 'ROUGE_L', 'CIDEr_D'];
type Img = {
  image_id: number;
  references_tokenized: string[];
  candidate_tokenized: string;
  references: string[];
  candidate: string;
  scores: Record<string, number>;
  bleu_stats: any;
};

function run(images: Img[], tokenized = true) {
  return evaluateCaptions({
    references: new Map(images.map((im) => [im.image_id, tokenized ? im.references_tokenized : im.references])),
    candidates: new Map(images.map((im) => [im.image_id, tokenized ? im.candidate_tokenized : im.candidate])),
    tokenized,
  });
}

describe('captioning metrics (pycocoevalcap) on pre-tokenised input', () => {
  const r = run(fx.images);
  it('per-image BLEU statistics', () => {
    for (const im of fx.images as Img[]) {
      const s = r.bleuStats.get(String(im.image_id))!;
      expect(
        { testlen: s.testlen, reflen_closest: s.reflen, guess: s.guess, correct: s.correct },
        `image ${im.image_id}`,
      ).toEqual(im.bleu_stats);
    }
  });
  it('per-image scores to 1e-9', () => {
    for (const im of fx.images as Img[]) {
      for (const m of METRICS)
        expect(
          Math.abs(r.perImage.get(String(im.image_id))![m] - im.scores[m]),
          `image ${im.image_id} ${m}`,
        ).toBeLessThanOrEqual(1e-9);
    }
  });
  it('corpus scores to 1e-9', () => {
    for (const m of METRICS) expect(Math.abs(r.corpus[m] - fx.corpus_scores[m]), m).toBeLessThanOrEqual(1e-9);
  });
  it.each(fx.mini_corpora.map((c: any): [string, any] => [c.name, c]) as [string, any][])(
    'mini corpus %s',
    (_n, c: any) => {
      const images = (fx.images as Img[]).filter((im) => c.image_ids.includes(im.image_id));
      const m = run(images);
      for (const k of METRICS) expect(Math.abs(m.corpus[k] - c.corpus_scores[k]), k).toBeLessThanOrEqual(1e-9);
      for (const [id, s] of Object.entries(c.per_image_scores as Record<string, Record<string, number>>)) {
        for (const k of METRICS)
          expect(Math.abs(m.perImage.get(id)![k] - s[k]), `${id} ${k}`).toBeLessThanOrEqual(1e-9);
      }
    },
  );
});

describe('caption evaluation from raw captions', () => {
  it('tokenises like the reference and then scores identically', () => {
    const r = run(fx.images, false);
    for (const im of fx.images as Img[]) {
      const t = r.tokenized.get(String(im.image_id))!;
      expect(t.candidate, `image ${im.image_id}`).toBe(im.candidate_tokenized);
      expect(t.references, `image ${im.image_id}`).toEqual(im.references_tokenized);
    }
    for (const m of METRICS) expect(Math.abs(r.corpus[m] - fx.corpus_scores[m]), m).toBeLessThanOrEqual(1e-9);
  });
  it('names mismatched image ids and non-string captions', () => {
    expect(() =>
      evaluateCaptions({
        references: { 1: ['a dog'], 2: ['a cat'] },
        candidates: { 1: 'a dog', 3: 'x' },
        files: { candidates: 'results.json' },
      }),
    ).toThrow(
      'results.json: image id sets of references and candidates differ: 1 image id(s) have references but no candidate (2); 1 image id(s) have a candidate but no references (3)',
    );
    expect(() => evaluateCaptions({ references: { 1: ['a dog'] }, candidates: { 1: 5 as any } })).toThrow(
      'image 1: the caption is not a string (5)',
    );
    expect(() =>
      evaluateCaptions({ references: null as any, candidates: {}, files: { references: 'caps.json' } }),
    ).toThrow('caps.json: references must be a Map or an object keyed by image id, got null');
    expect(() => evaluateCaptions({ references: {}, candidates: {} })).toThrow(MetricInputError);
  });
  it('the scorers name an image without references and a bad BLEU order (pycocoevalcap asserts them)', () => {
    // with no reference BLEU was its smoothing constants (5e-16 ...) and CIDEr-D NaN
    expect(() => bleu([{ candidate: 'a b', references: [] }])).toThrow(
      'bleu: item 0: needs at least one reference caption',
    );
    expect(() =>
      ciderD([
        { candidate: 'a b', references: ['a b'] },
        { candidate: 'c', references: [] },
      ]),
    ).toThrow('ciderD: item 1: needs at least one reference caption');
    expect(() => rougeL('a b', [])).toThrow('rougeL: needs at least one reference caption');
    // one string where the list goes: named as such (it read as "needs at least one reference")
    expect(() => bleu([{ candidate: 'a b', references: 'a b' as any }])).toThrow(
      'bleu: item 0: the references are not a list of captions ("a b")',
    );
    expect(() => rougeL('a b', [null as any])).toThrow('rougeL: reference 0 is not a string (null)');
    expect(() => bleuStats(5 as any, ['a'])).toThrow('bleuStats: the caption is not a string (5)');
    expect(() => bleu([{ candidate: 'a b', references: ['a b'] }], Number.NaN)).toThrow(
      'bleu: n must be a positive integer, got NaN',
    );
    expect(bleu([{ candidate: 'a b', references: ['a b'] }], 2).corpus).toHaveLength(2);
  });
  it('LCS', () => {
    expect(lcsLength('a b c d'.split(' '), 'a c d e'.split(' '))).toBe(3);
  });
});

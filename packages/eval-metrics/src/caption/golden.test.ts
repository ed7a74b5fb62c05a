// Exact digits: the n-gram-id implementation of BLEU and CIDEr-D against the scores of the
// string-keyed implementation it replaced (test/caption_golden.json, see its provenance).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bleu, bleuStats } from './bleu.js';
import { ciderD } from './cider.js';
import { evaluateCaptions } from './evaluate.js';
import { splitWords } from './ngrams.js';
import { rougeL } from './rouge.js';

interface Img {
  image_id: number;
  references: string[];
  candidate: string;
  scores: Record<string, number>;
  bleu_stats: unknown;
}
const fx = JSON.parse(readFileSync(join(__dirname, '../../test/caption_golden.json'), 'utf8'));
const images: Img[] = fx.images;
const items = images.map((im) => ({ candidate: im.candidate, references: im.references }));

describe('caption scores keep every digit', () => {
  it('evaluateCaptions: per-image and corpus scores and BLEU statistics', () => {
    const r = evaluateCaptions({
      references: new Map(images.map((im) => [im.image_id, im.references])),
      candidates: new Map(images.map((im) => [im.image_id, im.candidate])),
      tokenized: true,
    });
    for (const im of images) {
      expect(r.perImage.get(String(im.image_id)), `image ${im.image_id}`).toEqual(im.scores);
      expect(r.bleuStats.get(String(im.image_id)), `image ${im.image_id}`).toEqual(im.bleu_stats);
    }
    expect(r.corpus).toEqual(fx.corpus);
    expect(r.corpusBleuStats).toEqual(fx.corpus_bleu_stats);
  });

  it('bleu, bleuStats, ciderD and rougeL on their own', () => {
    const b = bleu(items);
    expect(b.corpus).toEqual([fx.corpus.BLEU_1, fx.corpus.BLEU_2, fx.corpus.BLEU_3, fx.corpus.BLEU_4]);
    const cider = ciderD(items);
    images.forEach((im, i) => {
      expect(b.perImage[i]).toEqual([im.scores.BLEU_1, im.scores.BLEU_2, im.scores.BLEU_3, im.scores.BLEU_4]);
      expect(bleuStats(im.candidate, im.references)).toEqual(im.bleu_stats);
      expect(cider[i]).toBe(im.scores.CIDEr_D);
      expect(rougeL(im.candidate, im.references)).toBe(im.scores.ROUGE_L);
    });
  });

  it('BLEU of other orders than 4', () => {
    const two = bleu(items, 2);
    expect(two.stats[5].guess).toHaveLength(2);
    expect(two.perImage[5]).toEqual(bleu(items).perImage[5].slice(0, 2));
  });
});

describe('splitWords is Python str.split()', () => {
  it('splits on every Unicode whitespace Python knows, and nothing else', () => {
    expect(splitWords(' a\tb\u00a0c\u3000d\u2028e\u001cf\u0085g  ')).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    expect(splitWords('a\ufeffb\u200bc')).toEqual(['a\ufeffb\u200bc']);
    expect(splitWords('')).toEqual([]);
    expect(splitWords('   ')).toEqual([]);
  });
});

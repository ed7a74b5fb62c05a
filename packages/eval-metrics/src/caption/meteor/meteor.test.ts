import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MetricInputError } from '../../errors.js';
import { Meteor } from './meteor.js';
import { meteorNormalize } from './normalize.js';
import { parseMeteorResources } from './resources.js';

const dataDir = join(__dirname, '../../../data/meteor-en');
const read = (f: string) => readFileSync(join(dataDir, f), 'utf8');
const resources = parseMeteorResources({
  words: read('english.words'),
  synsets: read('english.synsets'),
  exceptions: read('english.exceptions'),
});
const fx = JSON.parse(readFileSync(join(__dirname, '../../../test/fixtures/captioning.json'), 'utf8'));

describe('METEOR 1.5 without paraphrases', () => {
  const meteor = new Meteor(resources);
  const items = fx.images.map((im: any) => ({
    candidate: im.candidate_tokenized,
    references: im.references_tokenized,
  }));
  const r = meteor.evaluate(items);
  it('names an image without references', () => {
    expect(() => meteor.evaluate([{ candidate: 'a dog', references: [] }])).toThrow(
      'Meteor.evaluate: item 0: needs at least one reference caption',
    );
    expect(() => meteor.segmentStats('a dog', [3 as any])).toThrow(
      'Meteor.segmentStats: reference 0 is not a string (3)',
    );
  });
  it('per image to 1e-6', () => {
    const diffs = fx.images.map((im: any, i: number) => [
      im.image_id,
      r.perImage[i],
      im.scores.METEOR_no_paraphrase,
      Math.abs(r.perImage[i] - im.scores.METEOR_no_paraphrase),
    ]);
    const bad = diffs.filter((d: number[]) => d[3] > 1e-6);
    expect(bad).toEqual([]);
  });
  it('corpus from aggregated statistics to 1e-6', () => {
    expect(Math.abs(r.corpus - fx.corpus_scores.METEOR_no_paraphrase)).toBeLessThanOrEqual(1e-6);
  });
  it('normalises like Meteor -norm', () => {
    expect(meteorNormalize("a t-shirt and 3-year-old do n't")).toBe("a t shirt and 3 year old do n 't");
    expect(meteorNormalize('u.s.a. mr. smith')).toBe('usa mr. smith');
  });
});

describe('METEOR paraphrase module (user-supplied table)', () => {
  it('aligns a multi-word phrase to its paraphrase (hand-computed)', async () => {
    const { parseParaphraseTable } = await import('./paraphrase.js');
    const table = parseParaphraseTable('0.5\na pair of\ntwo\n0.1\ngo away\nleave\n');
    expect(table.size).toBe(2);
    const meteor = new Meteor(resources, undefined, table);
    expect(meteor.label).toBe('METEOR');
    const s = meteor.segmentStats('two dogs on a couch', ['a pair of dogs on a sofa']);
    expect(s.testStageMatchesFunction).toEqual([2, 0, 0, 1]);
    expect(s.referenceStageMatchesContent).toEqual([1, 0, 1, 1]);
    expect(s.referenceStageMatchesFunction).toEqual([2, 0, 0, 2]);
    expect(s.chunks).toBe(1);
    // P = 2 / 2.25, R = 2.6 / 3.25, one chunk covering everything: no penalty
    expect(meteor.score(s)).toBeCloseTo(1 / (0.15 / (2 / 2.25) + 0.85 / (2.6 / 3.25)), 12);
    const without = new Meteor(resources);
    expect(without.label).toBe('METEOR_no_paraphrase');
    expect(without.score(without.segmentStats('two dogs on a couch', ['a pair of dogs on a sofa']))).toBeLessThan(
      meteor.score(s),
    );
  });
  it('names a malformed table', async () => {
    const { parseParaphraseTable } = await import('./paraphrase.js');
    expect(() => parseParaphraseTable('0.5\na b\n', 'p.txt')).toThrow('p.txt: 2 lines is not a multiple of 3');
    expect(() => parseParaphraseTable('x\na\nb\n', 'p.txt')).toThrow('p.txt: line 1 should be a probability');
    expect(() => parseParaphraseTable('', 'p.txt')).toThrow(MetricInputError);
  });
});

describe('Meteor resources', () => {
  const ok = { words: 'a\nthe\n', synsets: 'dog\n1 2\ncat\n3\n', exceptions: 'mouse\nmice\n' };
  it('parse as Meteor reads them', () => {
    const r = parseMeteorResources(ok);
    expect([...r.functionWords]).toEqual(['a', 'the']);
    expect(r.synsets.get('dog')).toEqual(new Set([1, 2]));
    expect(r.bases.get('mice')).toEqual(['mouse']);
  });

  it('are refused, naming the file and line, when they cannot be Meteor data', () => {
    const bad: [Partial<typeof ok>, string][] = [
      [{ words: '' }, 'english.words: the file is empty'],
      [{ synsets: 'dog\n1 2\ncat\n' }, 'english.synsets: 3 lines, not pairs of lines'],
      [{ synsets: 'dog\n1 x\n' }, 'english.synsets: line 2: synset ids must be integers, got "1 x"'],
      [{ synsets: '\u0000\u00ff\n\u0007zz\n' }, 'english.synsets: line 2: synset ids must be integers'],
      [{ exceptions: 'mouse\n' }, 'english.exceptions: 1 lines, not pairs of lines'],
    ];
    for (const [change, message] of bad)
      expect(() => parseMeteorResources({ ...ok, ...change }), message).toThrow(message);
    expect(() => parseMeteorResources({ ...ok, words: '' }, { words: '/x/english.words' })).toThrow(
      '/x/english.words: the file is empty',
    );
  });
});

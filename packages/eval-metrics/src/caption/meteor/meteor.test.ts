import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Meteor } from './meteor.js';
import { meteorNormalize } from './normalize.js';
import { parseMeteorResources } from './resources.js';

const dataDir = join(__dirname, '../../../data/meteor-en');
const read = (f: string) => readFileSync(join(dataDir, f), 'utf8');
const resources = parseMeteorResources({ words: read('english.words'), synsets: read('english.synsets'), exceptions: read('english.exceptions') });
const fx = JSON.parse(readFileSync(join(__dirname, '../../../test/fixtures/captioning.json'), 'utf8'));

describe('METEOR 1.5 without paraphrases', () => {
  const meteor = new Meteor(resources);
  const items = fx.images.map((im: any) => ({ candidate: im.candidate_tokenized, references: im.references_tokenized }));
  const r = meteor.evaluate(items);
  it('per image to 1e-6', () => {
    const diffs = fx.images.map((im: any, i: number) => [im.image_id, r.perImage[i], im.scores.METEOR_no_paraphrase, Math.abs(r.perImage[i] - im.scores.METEOR_no_paraphrase)]);
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

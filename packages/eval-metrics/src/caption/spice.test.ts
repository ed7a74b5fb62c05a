import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseMeteorResources } from './meteor/resources.js';
import { ApproxSceneGraphParser, graphTuples, spiceApprox, spiceScore } from './spice.js';

const dataDir = join(__dirname, '../../data/meteor-en');
const read = (f: string) => readFileSync(join(dataDir, f), 'utf8');
const resources = parseMeteorResources({
  words: read('english.words'),
  synsets: read('english.synsets'),
  exceptions: read('english.exceptions'),
});
const parser = new ApproxSceneGraphParser(resources);
const tuples = (c: string) =>
  graphTuples(parser.parse(c))
    .map((t) => t.join(' / '))
    .sort();

// Hand-checked scene graphs (what SPICE's parser produces for these captions, up to attachment).
describe('approximate scene-graph parser', () => {
  it('objects, attributes and a verb relation', () => {
    expect(tuples('a man riding a wave on a surfboard')).toEqual(
      ['man', 'man / ride / wave', 'surfboard', 'wave', 'wave / on / surfboard'].sort(),
    );
  });
  it('colour and size attributes', () => {
    expect(tuples('a large brown dog sitting on a wooden bench')).toEqual(
      ['bench', 'bench / wooden', 'dog', 'dog / brown', 'dog / large', 'dog / sit on / bench'].sort(),
    );
  });
  it('plurals are lemmatised and numbers become count attributes', () => {
    expect(tuples('two dogs playing with a red frisbee')).toEqual(
      ['dog', 'dog / play with / frisbee', 'dog / two', 'frisbee', 'frisbee / red'].sort(),
    );
    expect(tuples('three giraffes standing next to a tree')).toEqual(
      ['giraffe', 'giraffe / stand next to / tree', 'giraffe / three', 'tree'].sort(),
    );
  });
  it('prepositional relations and copula attributes', () => {
    expect(tuples('a woman in a black dress')).toEqual(
      ['dress', 'dress / black', 'woman', 'woman / in / dress'].sort(),
    );
    expect(tuples('the clock tower is tall and white')).toEqual(
      ['tower', 'tower / clock', 'tower / tall', 'tower / white'].sort(),
    );
  });
  it('coordinated objects share the relation', () => {
    expect(tuples('a plate with broccoli and rice')).toEqual(
      ['broccoli', 'plate', 'plate / with / broccoli', 'plate / with / rice', 'rice'].sort(),
    );
  });
});

describe('SPICE F-score over tuples', () => {
  it('matches synonyms through WordNet and scores P, R, F', () => {
    const cand = graphTuples(parser.parse('a puppy on a couch'));
    const refs = parser.parseAll(['a dog on a sofa', 'a small dog lying on a sofa']);
    const s = spiceScore(resources, cand, refs);
    // couch ~ sofa (same synset), puppy does not match dog: matched = couch, (?, on, couch) fails on puppy
    expect(s.candidateTuples.length).toBe(3);
    expect(s.precision).toBeCloseTo(1 / 3, 12);
    expect(s.recall).toBeCloseTo(1 / refs.length, 12);
    expect(s.byCategory.object).toBeGreaterThan(0);
  });
  it('a perfect caption scores 1 and the corpus is the mean', () => {
    const r = spiceApprox(resources, [
      { candidate: 'a red car', references: ['a red car'] },
      { candidate: 'a cat', references: ['a dog'] },
    ]);
    expect(r.perImage[0].f).toBe(1);
    expect(r.perImage[1].f).toBe(0);
    expect(r.corpus).toBe(0.5);
  });
  it('names an image without references', () => {
    expect(() => spiceApprox(resources, [{ candidate: 'a red car', references: [] }])).toThrow(
      'spiceApprox: item 0: needs at least one reference caption',
    );
  });
});

// Property tests over many seeds: every statement the world makes is checked against the scene by
// an independent parser and evaluator (grammar.test-util.ts).
import { describe, expect, it } from 'vitest';
import {
  matching,
  NUMBERS,
  parseDetermined,
  parseNounPhrase,
  relation,
  RELATION_PATTERN,
  RELATION_WORDS,
  resolveExpression,
  type ParsedQuery,
} from './grammar.test-util.js';
import type { Question } from './language.js';
import type { Scene } from './raster.js';
import { createWorld, type Split, type WorldSample } from './world.js';

const SEEDS = [1, 2, 3, 4];
const PER_SPLIT = 25;
const config = {
  splits: { train: PER_SPLIT, val: PER_SPLIT, test: PER_SPLIT },
  nlvr2Pairs: { train: 60, val: 60, test: 60 },
};
const samples: WorldSample[] = SEEDS.flatMap((seed) => {
  const w = createWorld({ seed, ...config });
  return (['train', 'val', 'test'] as Split[]).flatMap((split) => Array.from(w.samples(split)));
});

function unique(scene: Scene, np: string): number {
  const q = parseNounPhrase(np);
  if (!q || q.plural) throw new Error(`not a singular noun phrase: ${np}`);
  const m = matching(scene, q.query);
  if (m.length !== 1) throw new Error(`"${np}" matches ${m.length} objects in ${scene.id}`);
  return m[0];
}

/** The answer to a question, worked out from its words and the scene alone. */
function answer(q: Question, scene: Scene): string {
  const t = q.question;
  let m: RegExpExecArray | null;
  if ((m = /^(?:what colour is the|what is the colour of the|which colour does the) (.+?)(?: have)?\?$/.exec(t))) {
    return scene.objects[unique(scene, m[1])].colour;
  }
  if ((m = /^(?:what shape is the|what is the shape of the) (.+)\?$/.exec(t)))
    return scene.objects[unique(scene, m[1])].shape;
  if ((m = /^(?:how many|what is the number of) (.+?)(?: are there| are in the picture)?\?$/.exec(t))) {
    const np = parseNounPhrase(m[1]);
    if (!np?.plural) throw new Error(`unparsed: ${t}`);
    return String(matching(scene, np.query).length);
  }
  if (
    (m = /^(?:where is the (.+) relative to the (.+)|is the (.+) left of, right of, above or below the (.+))\?$/.exec(
      t,
    ))
  ) {
    const [a, b] = [unique(scene, m[1] ?? m[3]), unique(scene, m[2] ?? m[4])];
    return relation(scene.objects[a], scene.objects[b], scene) ?? 'undefined';
  }
  if ((m = new RegExp(`^is the (.+?) (${RELATION_PATTERN}) the (.+)\\?$`).exec(t))) {
    const [a, b] = [unique(scene, m[1]), unique(scene, m[3])];
    return relation(scene.objects[a], scene.objects[b], scene) === RELATION_WORDS.get(m[2]) ? 'yes' : 'no';
  }
  if ((m = /^(?:is there|does the image contain) (an? .+)\?$/.exec(t))) {
    const q2 = parseDetermined(m[1]);
    if (!q2) throw new Error(`unparsed: ${t}`);
    return matching(scene, q2).length > 0 ? 'yes' : 'no';
  }
  if ((m = /^are there any (.+)\?$/.exec(t))) {
    const np = parseNounPhrase(m[1]);
    if (!np?.plural) throw new Error(`unparsed: ${t}`);
    return matching(scene, np.query).length > 0 ? 'yes' : 'no';
  }
  if ((m = /^is the (.+?) (an? \w+|\w+)\?$/.exec(t))) {
    // an attribute: "is the red object a circle?", "is the circle red?", "is the star big?"
    const o = scene.objects[unique(scene, m[1])];
    const asShape = parseDetermined(m[2].startsWith('a') && m[2].includes(' ') ? m[2] : 'the x');
    if (asShape?.shape) return o.shape === asShape.shape ? 'yes' : 'no';
    const asAdjective = parseNounPhrase(`${m[2]} object`)?.query ?? {};
    const keys = Object.keys(asAdjective) as (keyof ParsedQuery)[];
    if (keys.length !== 1) throw new Error(`unparsed attribute: ${t}`);
    return o[keys[0]] === asAdjective[keys[0]] ? 'yes' : 'no';
  }
  throw new Error(`no template reads: ${t}`);
}

describe('world text, checked against the scene', () => {
  it('answers every VQA question as the scene says, within the type vocabulary, for every type', () => {
    const w = createWorld(config);
    const types = new Map<string, number>();
    for (const s of samples) {
      expect(s.questions.length).toBeGreaterThanOrEqual(3);
      for (const q of s.questions) {
        expect(answer(q, s.scene), `${s.scene.id}: ${q.question}`).toBe(q.answer);
        expect(w.answers[q.type]).toContain(q.answer);
        types.set(q.type, (types.get(q.type) ?? 0) + 1);
      }
    }
    expect([...types.keys()].sort()).toEqual(['colour', 'count', 'exists', 'relation', 'shape', 'yesno']);
    const yn = samples.flatMap((s) => s.questions.filter((q) => q.type === 'yesno' || q.type === 'exists'));
    const yes = yn.filter((q) => q.answer === 'yes').length / yn.length;
    expect(yes).toBeGreaterThan(0.4);
    expect(yes).toBeLessThan(0.6);
  });

  it('makes every referring expression single out exactly its object', () => {
    const kinds = new Set<string>();
    for (const s of samples) {
      expect(s.expressions).toHaveLength(s.scene.objects.length);
      for (const e of s.expressions) {
        expect(resolveExpression(e.text, s.scene), `${s.scene.id}: ${e.text}`).toEqual([e.object]);
        expect(e.box).toEqual(s.scene.objects[e.object].box);
        kinds.add(e.kind);
      }
    }
    expect([...kinds].sort()).toEqual(['attributes', 'relation', 'superlative']);
  });

  it('ties every caption phrase to the objects it names, and states relations and occlusion truly', () => {
    let phrases = 0;
    for (const s of samples) {
      const { scene } = s;
      expect(s.captions.length).toBe(5);
      for (const c of s.captions) {
        for (const p of c.phrases) {
          phrases++;
          expect(p.start >= 0 && p.start < p.end && p.end <= c.text.length).toBe(true);
          expect(p.objects.length).toBeGreaterThan(0);
          for (const k of p.objects) expect(scene.objects[k]).toBeDefined();
          const words = c.text.slice(p.start, p.end);
          const counted = /^(\w+) (.+)$/.exec(words);
          const n = counted ? NUMBERS.indexOf(counted[1]) : -1;
          if (/^a single (shape|object)$/.test(words) || (n >= 2 && /^(shapes|objects)$/.test(counted![2]))) {
            expect(p.objects, words).toEqual(scene.objects.map((_, i) => i));
            expect(n < 0 ? 1 : n).toBe(scene.objects.length);
          } else if (n >= 2) {
            const np = parseNounPhrase(counted![2]);
            expect(np?.plural, words).toBe(true);
            expect(matching(scene, np!.query), `${scene.id}: ${words}`).toEqual(p.objects);
            expect(p.objects).toHaveLength(n);
          } else {
            const q = parseDetermined(words);
            expect(q, words).not.toBeNull();
            expect(matching(scene, q!), `${scene.id}: ${words}`).toEqual(p.objects);
          }
        }
        // the words between two phrases: a relation or an occlusion claim
        for (let i = 0; i + 1 < c.phrases.length; i++) {
          const between = c.text.slice(c.phrases[i].end, c.phrases[i + 1].start).trim();
          const [a, b] = [c.phrases[i].objects[0], c.phrases[i + 1].objects[0]];
          if (RELATION_WORDS.has(between))
            expect(relation(scene.objects[a], scene.objects[b], scene), c.text).toBe(RELATION_WORDS.get(between));
          if (between === 'partly hidden behind') expect(scene.objects[a].hiddenBy).toContain(b);
          if (between === 'in front of') expect(scene.objects[b].hiddenBy).toContain(a);
        }
      }
    }
    expect(phrases).toBeGreaterThan(samples.length * 5);
  });

  it('labels NLVR2 statements truly, with balanced labels', () => {
    for (const seed of SEEDS) {
      const w = createWorld({ seed, ...config });
      for (const split of ['train', 'test'] as Split[]) {
        const pairs = Array.from({ length: w.nlvr2Size(split) }, (_, i) => w.nlvr2(split, i));
        expect(pairs.filter((p) => p.label).length).toBe(pairs.length / 2);
        for (const p of pairs) expect(holds(p.statement, p.left, p.right), `${p.id}: ${p.statement}`).toBe(p.label);
        expect(new Set(pairs.map((p) => p.kind)).size).toBe(5);
      }
    }
  });
});

/** Whether an NLVR2 statement is true of (left, right), read from its words. */
function holds(text: string, left: Scene, right: Scene): boolean {
  const side = (s: string) => (s === 'left' ? left : right);
  const count = (scene: Scene, np: string) => {
    const q = parseNounPhrase(np);
    if (!q) throw new Error(`unparsed: ${np}`);
    return matching(scene, q.query).length;
  };
  let m: RegExpExecArray | null;
  if ((m = /^the (left|right) image contains (exactly |at least )?(\w+) (.+)$/.exec(text))) {
    const n = NUMBERS.indexOf(m[3]);
    const c = count(side(m[1]), m[4]);
    return m[2] === 'at least ' ? c >= n : c === n;
  }
  if ((m = /^both images contain an? (.+)$/.exec(text))) return count(left, m[1]) > 0 && count(right, m[1]) > 0;
  if ((m = /^exactly one image contains an? (.+)$/.exec(text))) return count(left, m[1]) > 0 !== count(right, m[1]) > 0;
  if ((m = /^the (left|right) image has more (.+) than the (left|right) image$/.exec(text)))
    return count(side(m[1]), m[2]) > count(side(m[3]), m[2]);
  if ((m = /^(?:there (?:is|are)|the two images contain) (\w+) (.+) in total$/.exec(text))) {
    return count(left, m[2]) + count(right, m[2]) === NUMBERS.indexOf(m[1]);
  }
  throw new Error(`no template reads: ${text}`);
}

// Text about a scene: captions with phrase spans tied to objects (grounding), VQA questions by answer
// type, and referring expressions checked to single out exactly one object. Every statement is
// computed from the scene, never assumed.
import type { Generator } from '@fiber-vl/tensor-core';
import {
  ATTRIBUTES,
  NUMBER_WORDS,
  RELATIONS,
  SUPERLATIVES,
  WORDS,
  article,
  plural,
  type Attribute,
  type Colour,
  type Relation,
  type Shape,
  type Size,
  type Texture,
} from './attributes.js';
import type { Box, Scene, SceneObject } from './raster.js';
import { pairKey, pick } from './scene.js';

export interface ObjectQuery {
  size?: Size;
  texture?: Texture;
  colour?: Colour;
  shape?: Shape;
}

/** A span [start, end) of a caption's characters and the objects (indices into scene.objects) it names. */
export interface Phrase {
  start: number;
  end: number;
  objects: number[];
}

export interface Caption {
  text: string;
  phrases: Phrase[];
}

export const QUESTION_TYPES = ['colour', 'shape', 'count', 'relation', 'yesno', 'exists'] as const;
export type QuestionType = (typeof QUESTION_TYPES)[number];

export interface Question {
  question: string;
  answer: string;
  type: QuestionType;
  /** Objects the question is about. */
  objects: number[];
  /** It involves a held-out colour–shape pair. */
  novel: boolean;
}

export interface ReferringExpression {
  text: string;
  /** Index of the one object it names, and that object's box. */
  object: number;
  box: Box;
  kind: 'attributes' | 'relation' | 'superlative';
  novel: boolean;
}

export interface Annotations {
  captions: Caption[];
  questions: Question[];
  expressions: ReferringExpression[];
}

/** The language side of the world's configuration. */
export interface LanguageConfig {
  shapes: readonly Shape[];
  colours: readonly Colour[];
  sizes: readonly Size[];
  textures: readonly Texture[];
  captionsPerScene: number;
  questionsPerScene: number;
  /** Largest object count a count question can have as its answer. */
  maxCount: number;
}

export interface TextRules {
  train: boolean;
  heldOut: ReadonlySet<string>;
}

export function matchesQuery(o: SceneObject, q: ObjectQuery): boolean {
  return ATTRIBUTES.every((a) => q[a] === undefined || q[a] === o[a]);
}

export function countMatches(scene: Scene, q: ObjectQuery): number {
  return scene.objects.filter((o) => matchesQuery(o, q)).length;
}

function queryOf(o: SceneObject, attrs: readonly Attribute[]): ObjectQuery {
  const q: ObjectQuery = {};
  for (const a of attrs) Object.assign(q, { [a]: o[a] });
  return q;
}

/** True unless the query names a colour–shape pair that the train split must never mention. */
export function allowedQuery(q: ObjectQuery, rules: TextRules): boolean {
  return !(rules.train && q.colour && q.shape && rules.heldOut.has(pairKey(q.colour, q.shape)));
}

function isNovel(q: ObjectQuery, rules: TextRules): boolean {
  return q.colour !== undefined && q.shape !== undefined && rules.heldOut.has(pairKey(q.colour, q.shape));
}

/**
 * Where `a` is relative to `b`, when one axis clearly dominates: the offset along it is at least
 * 12% of the image's shorter side and 1.5 times the offset along the other. Otherwise null.
 */
export function relationOf(a: SceneObject, b: SceneObject, scene: Scene): Relation | null {
  const dx = a.x - b.x;
  const dy = a.y - b.y;
  const min = 0.12 * Math.min(scene.width, scene.height);
  if (Math.abs(dx) >= 1.5 * Math.abs(dy) && Math.abs(dx) >= min) return dx < 0 ? 'left' : 'right';
  if (Math.abs(dy) >= 1.5 * Math.abs(dx) && Math.abs(dy) >= min) return dy < 0 ? 'above' : 'below';
  return null;
}

const OPPOSITE: Record<Relation, Relation> = { left: 'right', right: 'left', above: 'below', below: 'above' };
/** Words for size and texture values (their names do not collide). */
const ADJECTIVES: Record<string, readonly string[]> = { ...WORDS.size, ...WORDS.texture };

/** Noun-phrase words of a query, no determiner: "small striped red triangle", "red objects". */
export function nounWords(g: Generator, q: ObjectQuery, isPlural = false): string {
  const words: string[] = [];
  if (q.size) words.push(pick(g, WORDS.size[q.size]));
  if (q.texture) words.push(pick(g, WORDS.texture[q.texture]));
  if (q.colour) words.push(q.colour);
  const head = q.shape ?? pick(g, WORDS.thing);
  words.push(isPlural ? plural(head) : head);
  return words.join(' ');
}

function withArticle(words: string): string {
  return `${article(words)} ${words}`;
}

function shuffled<T>(g: Generator, items: readonly T[]): T[] {
  return g.permutation(items.length).map((i) => items[i]);
}

/** Non-empty subsets of `attrs`, smallest first, in random order within a size. */
function subsets(g: Generator, attrs: readonly Attribute[]): Attribute[][] {
  const all: Attribute[][] = [];
  for (let mask = 1; mask < 1 << attrs.length; mask++) all.push(attrs.filter((_, i) => mask & (1 << i)));
  const order = shuffled(g, all);
  return order.sort((a, b) => a.length - b.length);
}

/**
 * The smallest query (attributes of object k, `require`d ones always in, `exclude`d never) that
 * matches k and no other object, or null. Extra attributes are added at `extraRate`.
 */
function uniqueQuery(
  g: Generator,
  scene: Scene,
  k: number,
  {
    exclude = [],
    require = [],
    extraRate = 0,
  }: { exclude?: Attribute[]; require?: Attribute[]; extraRate?: number } = {},
): ObjectQuery | null {
  const free = ATTRIBUTES.filter((a) => !exclude.includes(a) && !require.includes(a));
  const o = scene.objects[k];
  for (const extra of [[], ...subsets(g, free)]) {
    const attrs = [...require, ...extra];
    if (attrs.length === 0) continue;
    const q = queryOf(o, attrs);
    if (countMatches(scene, q) !== 1) continue;
    for (const a of free) if (q[a] === undefined && g.nextDouble() < extraRate) Object.assign(q, { [a]: o[a] });
    return q;
  }
  return null;
}

/** Builds text and records the character span of each phrase. */
class TextBuilder {
  text = '';
  readonly phrases: Phrase[] = [];
  add(s: string): this {
    this.text += s;
    return this;
  }
  phrase(s: string, objects: number[]): this {
    this.phrases.push({
      start: this.text.length,
      end: this.text.length + s.length,
      objects: [...objects].sort((a, b) => a - b),
    });
    this.text += s;
    return this;
  }
  done(): Caption {
    return { text: this.text, phrases: this.phrases };
  }
}

function indices(scene: Scene): number[] {
  return scene.objects.map((_, i) => i);
}

/** Pairs (i, j), i != j, whose relation is defined, in random order. */
function relatedPairs(g: Generator, scene: Scene): [number, number, Relation][] {
  const out: [number, number, Relation][] = [];
  scene.objects.forEach((a, i) =>
    scene.objects.forEach((b, j) => {
      const rel = i === j ? null : relationOf(a, b, scene);
      if (rel) out.push([i, j, rel]);
    }),
  );
  return shuffled(g, out);
}

// ---------------------------------------------------------------------------------------------
// Captions

type CaptionTemplate = (g: Generator, scene: Scene, b: TextBuilder) => boolean;

/** An object named with a unique phrase that always includes its shape. */
function objectWords(g: Generator, scene: Scene, k: number): string {
  return nounWords(g, uniqueQuery(g, scene, k, { require: ['shape'], extraRate: 0.35 })!);
}

function backgroundWords(g: Generator, scene: Scene): string {
  return `${pick(g, WORDS.background[scene.background.kind])} background`;
}

const CAPTIONS: Record<string, CaptionTemplate> = {
  object(g, scene, b) {
    const k = g.nextInt(scene.objects.length);
    b.add(pick(g, ['', 'there is ', 'a picture of ', 'an image with '])).phrase(withArticle(objectWords(g, scene, k)), [
      k,
    ]);
    if (g.nextDouble() < 0.4) b.add(` on a ${backgroundWords(g, scene)}`);
    return true;
  },
  relation(g, scene, b) {
    const pairs = relatedPairs(g, scene);
    if (pairs.length === 0) return false;
    const [i, j, rel] = pairs[0];
    b.phrase(withArticle(objectWords(g, scene, i)), [i]).add(` ${pick(g, WORDS.relation[rel])} `);
    const second = objectWords(g, scene, j);
    b.phrase(g.nextDouble() < 0.5 ? `the ${second}` : withArticle(second), [j]);
    return true;
  },
  list(g, scene, b) {
    const n = scene.objects.length;
    if (n < 2 || n > 5) return false;
    const leftToRight = indices(scene).sort((i, j) => scene.objects[i].x - scene.objects[j].x);
    const order = g.nextDouble() < 0.5 ? shuffled(g, indices(scene)) : leftToRight;
    if (g.nextDouble() < 0.5) b.phrase(`${NUMBER_WORDS[n]} ${pick(g, ['shapes', 'objects'])}`, order).add(': ');
    order.forEach((k, m) => {
      if (m > 0) b.add(m === n - 1 ? ' and ' : ', ');
      b.phrase(withArticle(objectWords(g, scene, k)), [k]);
    });
    return true;
  },
  count(g, scene, b) {
    const groupings: Attribute[][] = shuffled(g, [
      ['shape'],
      ['colour'],
      ['colour', 'shape'],
      ['size', 'shape'],
      ['texture', 'shape'],
    ]);
    for (const attrs of groupings) {
      for (const k of shuffled(g, indices(scene))) {
        const q = queryOf(scene.objects[k], attrs);
        const group = scene.objects.flatMap((o, i) => (matchesQuery(o, q) ? [i] : []));
        if (group.length < 2) continue;
        b.phrase(`${NUMBER_WORDS[group.length]} ${nounWords(g, q, true)}`, group);
        const others = indices(scene).filter((i) => !group.includes(i));
        if (others.length > 0 && g.nextDouble() < 0.6) {
          const o = pick(g, others);
          b.add(' and ').phrase(withArticle(objectWords(g, scene, o)), [o]);
        } else b.add(` on a ${backgroundWords(g, scene)}`);
        return true;
      }
    }
    return false;
  },
  occlusion(g, scene, b) {
    const hidden = indices(scene).filter((k) => scene.objects[k].hiddenBy.length > 0);
    if (hidden.length === 0) return false;
    const k = pick(g, hidden);
    const j = pick(g, scene.objects[k].hiddenBy);
    if (g.nextDouble() < 0.5) {
      b.phrase(withArticle(objectWords(g, scene, k)), [k]).add(' partly hidden behind ');
      b.phrase(withArticle(objectWords(g, scene, j)), [j]);
    } else {
      b.phrase(withArticle(objectWords(g, scene, j)), [j]).add(' in front of ');
      b.phrase(withArticle(objectWords(g, scene, k)), [k]);
    }
    return true;
  },
  scene(g, scene, b) {
    const n = scene.objects.length;
    const head = pick(g, ['shapes', 'objects']);
    b.phrase(n === 1 ? `a single ${head.slice(0, -1)}` : `${NUMBER_WORDS[n]} ${head}`, indices(scene));
    b.add(` on a ${backgroundWords(g, scene)}`);
    return true;
  },
};

export function captionScene(g: Generator, scene: Scene, count: number): Caption[] {
  const names = shuffled(g, Object.keys(CAPTIONS));
  const out: Caption[] = [];
  const seen = new Set<string>();
  for (let attempt = 0; out.length < count && attempt < count * 8; attempt++) {
    const b = new TextBuilder();
    if (!CAPTIONS[names[attempt % names.length]](g, scene, b)) continue;
    const c = b.done();
    // repeats are allowed only once the templates run dry
    if (seen.has(c.text) && attempt < count * 4) continue;
    seen.add(c.text);
    out.push(c);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// VQA

type QuestionMaker = (
  g: Generator,
  scene: Scene,
  cfg: LanguageConfig,
  rules: TextRules,
) => Omit<Question, 'type'> | null;

function objectsNovel(scene: Scene, objects: number[]): boolean {
  return objects.some((k) => scene.objects[k].novel);
}

/** A query of 1-2 attributes drawn at random from the configured values (may match nothing). */
function randomQuery(g: Generator, cfg: LanguageConfig): ObjectQuery {
  const values: Record<Attribute, readonly string[]> = {
    size: cfg.sizes,
    texture: cfg.textures,
    colour: cfg.colours,
    shape: cfg.shapes,
  };
  const attrs = shuffled(g, ATTRIBUTES).slice(0, 1 + g.nextInt(2));
  const q: ObjectQuery = {};
  for (const a of attrs) Object.assign(q, { [a]: pick(g, values[a]) });
  return q;
}

/** A query made of one (with probability `one`) or two of an existing object's attributes. */
export function queryFromObject(g: Generator, o: SceneObject, one = 0.5): ObjectQuery {
  return queryOf(o, shuffled(g, ATTRIBUTES).slice(0, g.nextDouble() < one ? 1 : 2));
}

const QUESTIONS: Record<QuestionType, QuestionMaker> = {
  colour(g, scene) {
    const k = g.nextInt(scene.objects.length);
    const q = uniqueQuery(g, scene, k, { exclude: ['colour'] });
    if (!q) return null;
    const np = nounWords(g, q);
    const question = pick(g, [
      `what colour is the ${np}?`,
      `what is the colour of the ${np}?`,
      `which colour does the ${np} have?`,
    ]);
    return { question, answer: scene.objects[k].colour, objects: [k], novel: scene.objects[k].novel };
  },
  shape(g, scene) {
    const k = g.nextInt(scene.objects.length);
    const q = uniqueQuery(g, scene, k, { exclude: ['shape'] });
    if (!q) return null;
    const np = nounWords(g, q);
    const question = pick(g, [`what shape is the ${np}?`, `what is the shape of the ${np}?`]);
    return { question, answer: scene.objects[k].shape, objects: [k], novel: scene.objects[k].novel };
  },
  count(g, scene, cfg, rules) {
    // mostly single attributes, which more often count several objects
    const q = g.nextDouble() < 0.75 ? queryFromObject(g, pick(g, scene.objects), 0.75) : randomQuery(g, cfg);
    if (!allowedQuery(q, rules)) return null;
    const objects = scene.objects.flatMap((o, i) => (matchesQuery(o, q) ? [i] : []));
    if (objects.length > cfg.maxCount) return null;
    const pl = nounWords(g, q, true);
    const question = pick(g, [
      `how many ${pl} are there?`,
      `how many ${pl} are in the picture?`,
      `what is the number of ${pl}?`,
    ]);
    return {
      question,
      answer: String(objects.length),
      objects,
      novel: isNovel(q, rules) || objectsNovel(scene, objects),
    };
  },
  relation(g, scene) {
    for (const [i, j, rel] of relatedPairs(g, scene)) {
      const qi = uniqueQuery(g, scene, i);
      const qj = uniqueQuery(g, scene, j);
      if (!qi || !qj) continue;
      const [a, b] = [nounWords(g, qi), nounWords(g, qj)];
      const question = pick(g, [
        `where is the ${a} relative to the ${b}?`,
        `is the ${a} left of, right of, above or below the ${b}?`,
      ]);
      return { question, answer: rel, objects: [i, j], novel: objectsNovel(scene, [i, j]) };
    }
    return null;
  },
  yesno(g, scene, cfg, rules) {
    const yes = g.nextDouble() < 0.5;
    if (g.nextDouble() < 0.3) {
      const pairs = relatedPairs(g, scene);
      if (pairs.length === 0) return null;
      const [i, j, rel] = pairs[0];
      const qi = uniqueQuery(g, scene, i);
      const qj = uniqueQuery(g, scene, j);
      if (!qi || !qj) return null;
      const asked = yes ? rel : OPPOSITE[rel];
      const question = `is the ${nounWords(g, qi)} ${pick(g, WORDS.relation[asked])} the ${nounWords(g, qj)}?`;
      return { question, answer: yes ? 'yes' : 'no', objects: [i, j], novel: objectsNovel(scene, [i, j]) };
    }
    const k = g.nextInt(scene.objects.length);
    const o = scene.objects[k];
    const attr = pick(g, ATTRIBUTES);
    const q = uniqueQuery(g, scene, k, { exclude: [attr] });
    if (!q) return null;
    const values: Record<Attribute, readonly string[]> = {
      size: cfg.sizes,
      texture: cfg.textures,
      colour: cfg.colours,
      shape: cfg.shapes,
    };
    const others = values[attr].filter((v) => v !== o[attr]);
    if (!yes && others.length === 0) return null;
    const value = yes ? o[attr] : pick(g, others);
    const asked = { ...q, [attr]: value };
    if (!allowedQuery(asked, rules)) return null;
    const np = nounWords(g, q);
    const word = attr === 'shape' ? withArticle(value) : attr === 'colour' ? value : pick(g, ADJECTIVES[value]);
    return {
      question: `is the ${np} ${word}?`,
      answer: yes ? 'yes' : 'no',
      objects: [k],
      novel: o.novel || isNovel(asked, rules),
    };
  },
  exists(g, scene, cfg, rules) {
    const yes = g.nextDouble() < 0.5;
    let q: ObjectQuery | null = null;
    for (let tries = 0; tries < 20 && !q; tries++) {
      const c = yes ? queryFromObject(g, pick(g, scene.objects)) : randomQuery(g, cfg);
      if (allowedQuery(c, rules) && countMatches(scene, c) > 0 === yes) q = c;
    }
    if (!q) return null;
    const objects = scene.objects.flatMap((o, i) => (matchesQuery(o, q) ? [i] : []));
    const question = pick(g, [
      `is there ${withArticle(nounWords(g, q))}?`,
      `are there any ${nounWords(g, q, true)}?`,
      `does the image contain ${withArticle(nounWords(g, q))}?`,
    ]);
    return { question, answer: yes ? 'yes' : 'no', objects, novel: isNovel(q, rules) || objectsNovel(scene, objects) };
  },
};

export function askQuestions(g: Generator, scene: Scene, cfg: LanguageConfig, rules: TextRules): Question[] {
  const out: Question[] = [];
  const seen = new Set<string>();
  let types = shuffled(g, QUESTION_TYPES);
  for (let attempt = 0; out.length < cfg.questionsPerScene && attempt < cfg.questionsPerScene * 6; attempt++) {
    if (attempt % types.length === 0 && attempt > 0) types = shuffled(g, QUESTION_TYPES);
    const type = types[attempt % types.length];
    const q = QUESTIONS[type](g, scene, cfg, rules);
    if (!q || seen.has(q.question)) continue;
    seen.add(q.question);
    out.push({ ...q, type });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Referring expressions

/** Objects matching q, other than `except`. */
function matching(scene: Scene, q: ObjectQuery, except = -1): number[] {
  return scene.objects.flatMap((o, i) => (i !== except && matchesQuery(o, q) ? [i] : []));
}

function byRelation(g: Generator, scene: Scene, k: number): { text: string; anchor: number } | null {
  const o = scene.objects[k];
  for (const [i, j, rel] of relatedPairs(g, scene)) {
    if (i !== k) continue;
    const anchor = uniqueQuery(g, scene, j);
    if (!anchor) continue;
    const q = queryFromObject(g, o);
    // exactly one object other than the anchor fits the target words and the relation
    const fits = matching(scene, q, j).filter((c) => relationOf(scene.objects[c], scene.objects[j], scene) === rel);
    if (fits.length !== 1 || fits[0] !== k) continue;
    return { text: `the ${nounWords(g, q)} ${pick(g, WORDS.relation[rel])} the ${nounWords(g, anchor)}`, anchor: j };
  }
  return null;
}

function bySuperlative(g: Generator, scene: Scene, k: number): string | null {
  const o = scene.objects[k];
  const q = g.nextDouble() < 0.2 ? {} : queryFromObject(g, o);
  const group = matching(scene, q);
  if (group.length < 2) return null;
  const margin = 0.08 * Math.min(scene.width, scene.height);
  for (const rel of shuffled(g, RELATIONS)) {
    // position along the axis, larger = more `rel`-most
    const along = (c: number) => {
      const { x, y } = scene.objects[c];
      return rel === 'left' ? -x : rel === 'right' ? x : rel === 'above' ? -y : y;
    };
    const rest = group.filter((c) => c !== k).map(along);
    if (along(k) - Math.max(...rest) >= margin) return `the ${SUPERLATIVES[rel]} ${nounWords(g, q)}`;
  }
  return null;
}

export function referToObjects(g: Generator, scene: Scene): ReferringExpression[] {
  return scene.objects.map((o, k): ReferringExpression => {
    const u = g.nextDouble();
    const related = u < 0.25 ? byRelation(g, scene, k) : null;
    if (related) {
      const novel = o.novel || scene.objects[related.anchor].novel;
      return { text: related.text, object: k, box: o.box, kind: 'relation', novel };
    }
    const superlative = u >= 0.25 && u < 0.45 ? bySuperlative(g, scene, k) : null;
    if (superlative) return { text: superlative, object: k, box: o.box, kind: 'superlative', novel: o.novel };
    const text = `the ${nounWords(g, uniqueQuery(g, scene, k, { extraRate: 0.2 })!)}`;
    return { text, object: k, box: o.box, kind: 'attributes', novel: o.novel };
  });
}

export function annotateScene(g: Generator, scene: Scene, cfg: LanguageConfig, rules: TextRules): Annotations {
  if (scene.objects.length === 0) throw new Error(`world: scene ${scene.id} has no objects to describe`);
  return {
    captions: captionScene(g, scene, cfg.captionsPerScene),
    questions: askQuestions(g, scene, cfg, rules),
    expressions: referToObjects(g, scene),
  };
}

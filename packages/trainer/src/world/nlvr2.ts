// NLVR2-style pairs: a statement about two images that is true or false, as evaluated on the scenes.
import type { Generator } from '@fiber-vl/tensor-core';
import { NUMBER_WORDS, article } from './attributes.js';
import {
  allowedQuery,
  countMatches,
  matchesQuery,
  nounWords,
  queryFromObject,
  type LanguageConfig,
  type ObjectQuery,
  type TextRules,
} from './language.js';
import type { Scene } from './raster.js';
import { pairKey, pick } from './scene.js';

export const NLVR2_KINDS = ['count', 'both', 'exactly-one', 'more', 'total'] as const;
export type Nlvr2Kind = (typeof NLVR2_KINDS)[number];

export interface Nlvr2Pair {
  id: string;
  left: Scene;
  right: Scene;
  statement: string;
  label: boolean;
  kind: Nlvr2Kind;
  /** The statement or an object it counts involves a held-out colour–shape pair. */
  novel: boolean;
}

/** A statement with what it claims, so the label is computed rather than asserted. */
export interface Nlvr2Statement {
  text: string;
  kind: Nlvr2Kind;
  query: ObjectQuery;
  holds: (left: Scene, right: Scene) => boolean;
}

function count(q: ObjectQuery, n: number, g: Generator): string {
  // "no red circles", "one red circle", "two red circles"
  return `${NUMBER_WORDS[n]} ${nounWords(g, q, n !== 1)}`;
}

/** A query drawn from an object of either image (mostly) or at random; null if the split forbids it. */
function statementQuery(
  g: Generator,
  left: Scene,
  right: Scene,
  cfg: LanguageConfig,
  rules: TextRules,
): ObjectQuery | null {
  const objects = [...left.objects, ...right.objects];
  const q: ObjectQuery = {};
  const u = g.nextDouble();
  if (u < 0.1) return q; // "objects"
  if (u < 0.8) return queryFromObject(g, pick(g, objects));
  q.colour = pick(g, cfg.colours);
  if (g.nextDouble() < 0.6) q.shape = pick(g, cfg.shapes);
  return allowedQuery(q, rules) ? q : null;
}

export function makeStatement(
  g: Generator,
  left: Scene,
  right: Scene,
  cfg: LanguageConfig,
  rules: TextRules,
): Nlvr2Statement | null {
  const q = statementQuery(g, left, right, cfg, rules);
  if (!q) return null;
  const kind = pick(g, NLVR2_KINDS);
  const side = g.nextDouble() < 0.5 ? 'left' : 'right';
  const other = side === 'left' ? 'right' : 'left';
  const bySide = (l: Scene, r: Scene) => (side === 'left' ? [l, r] : [r, l]);
  const np = () => nounWords(g, q);
  switch (kind) {
    case 'count': {
      const actual = countMatches(side === 'left' ? left : right, q);
      const exactly = g.nextDouble() < 0.6;
      // near the true count, so that true and false statements are both common
      const n = Math.max(exactly ? 0 : 1, Math.min(cfg.maxCount, actual + g.nextInt(3) - 1));
      const text = `the ${side} image contains ${n === 0 ? '' : exactly ? 'exactly ' : 'at least '}${count(q, n, g)}`;
      const holds = (l: Scene, r: Scene) => {
        const c = countMatches(bySide(l, r)[0], q);
        return exactly ? c === n : c >= n;
      };
      return { text, kind, query: q, holds };
    }
    case 'both': {
      const words = np();
      const text = `both images contain ${article(words)} ${words}`;
      return { text, kind, query: q, holds: (l, r) => countMatches(l, q) > 0 && countMatches(r, q) > 0 };
    }
    case 'exactly-one': {
      const words = np();
      const text = `exactly one image contains ${article(words)} ${words}`;
      return { text, kind, query: q, holds: (l, r) => countMatches(l, q) > 0 !== countMatches(r, q) > 0 };
    }
    case 'more': {
      const text = `the ${side} image has more ${nounWords(g, q, true)} than the ${other} image`;
      return {
        text,
        kind,
        query: q,
        holds: (l, r) => countMatches(bySide(l, r)[0], q) > countMatches(bySide(l, r)[1], q),
      };
    }
    case 'total': {
      const actual = countMatches(left, q) + countMatches(right, q);
      const n = Math.max(1, Math.min(NUMBER_WORDS.length - 1, actual + g.nextInt(3) - 1));
      const text = pick(g, [
        `there ${n === 1 ? 'is' : 'are'} ${count(q, n, g)} in total`,
        `the two images contain ${count(q, n, g)} in total`,
      ]);
      return { text, kind, query: q, holds: (l, r) => countMatches(l, q) + countMatches(r, q) === n };
    }
  }
}

/** A statement about (left, right) whose truth is `label`, or null after `tries` attempts. */
export function statementFor(
  g: Generator,
  left: Scene,
  right: Scene,
  label: boolean,
  cfg: LanguageConfig,
  rules: TextRules,
  tries = 40,
): Nlvr2Statement | null {
  for (let t = 0; t < tries; t++) {
    const s = makeStatement(g, left, right, cfg, rules);
    if (s && s.holds(left, right) === label) return s;
  }
  return null;
}

/** Whether the statement's query names a held-out pair or counts a novel object. */
export function statementNovel(s: Nlvr2Statement, left: Scene, right: Scene, rules: TextRules): boolean {
  const { colour, shape } = s.query;
  if (colour && shape && rules.heldOut.has(pairKey(colour, shape))) return true;
  return [...left.objects, ...right.objects].some((o) => o.novel && matchesQuery(o, s.query));
}

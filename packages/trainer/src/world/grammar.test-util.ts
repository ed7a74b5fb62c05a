// For tests: an independent reading of the world's text. It parses the words back into attributes
// and evaluates them on the scene with its own code, so a generator bug cannot also hide the check.
import { COLOURS, SHAPES, WORDS, type Colour, type Shape, type Size, type Texture } from './attributes.js';
import type { Scene, SceneObject } from './raster.js';

export interface ParsedQuery {
  size?: Size;
  texture?: Texture;
  colour?: Colour;
  shape?: Shape;
}

const invert = <K extends string>(table: Record<K, readonly string[]>) =>
  new Map(Object.entries<readonly string[]>(table).flatMap(([k, words]) => words.map((w) => [w, k as K] as const)));
const SIZE_WORDS = invert<Size>(WORDS.size);
const TEXTURE_WORDS = invert<Texture>(WORDS.texture);
const pluralOf = (w: string) => (/(s|x)$/.test(w) ? `${w}es` : `${w}s`);
const HEADS = new Map<string, { shape?: Shape; plural: boolean }>([
  ...SHAPES.flatMap(
    (s) =>
      [
        [s, { shape: s, plural: false }],
        [pluralOf(s), { shape: s, plural: true }],
      ] as const,
  ),
  ...WORDS.thing.flatMap(
    (t) =>
      [
        [t, { plural: false }],
        [pluralOf(t), { plural: true }],
      ] as const,
  ),
]);
export const NUMBERS = ['no', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'];

/** "small striped red triangles" -> { size, texture, colour, shape } and plural; null if it is not one. */
export function parseNounPhrase(text: string): { query: ParsedQuery; plural: boolean } | null {
  const words = text.split(' ');
  const query: ParsedQuery = {};
  let i = 0;
  if (SIZE_WORDS.has(words[i])) query.size = SIZE_WORDS.get(words[i++]);
  if (TEXTURE_WORDS.has(words[i])) query.texture = TEXTURE_WORDS.get(words[i++]);
  if ((COLOURS as string[]).includes(words[i])) query.colour = words[i++] as Colour;
  const head = HEADS.get(words[i++]);
  if (!head || i !== words.length) return null;
  if (head.shape) query.shape = head.shape;
  return { query, plural: head.plural };
}

/** A noun phrase after "a", "an" or "the". */
export function parseDetermined(text: string): ParsedQuery | null {
  const m = /^(a|an|the) (.+)$/.exec(text);
  const np = m && parseNounPhrase(m[2]);
  if (!np || np.plural) return null;
  const first = m[2][0];
  if (m[1] !== 'the' && (m[1] === 'an') !== 'aeiou'.includes(first)) return null;
  return np.query;
}

export function matches(o: SceneObject, q: ParsedQuery): boolean {
  return (
    (q.size === undefined || o.size === q.size) &&
    (q.texture === undefined || o.texture === q.texture) &&
    (q.colour === undefined || o.colour === q.colour) &&
    (q.shape === undefined || o.shape === q.shape)
  );
}

export function matching(scene: Scene, q: ParsedQuery): number[] {
  return scene.objects.flatMap((o, i) => (matches(o, q) ? [i] : []));
}

/** The world's relation rule, written again: the dominant axis, at least 12% of the shorter side and 1.5x the other. */
export function relation(a: SceneObject, b: SceneObject, scene: Scene): string | null {
  const dx = a.x - b.x;
  const dy = a.y - b.y;
  const min = 0.12 * Math.min(scene.width, scene.height);
  const horizontal = Math.abs(dx) >= 1.5 * Math.abs(dy) && Math.abs(dx) >= min;
  const vertical = Math.abs(dy) >= 1.5 * Math.abs(dx) && Math.abs(dy) >= min;
  return horizontal ? (dx < 0 ? 'left' : 'right') : vertical ? (dy < 0 ? 'above' : 'below') : null;
}

export const RELATION_WORDS = invert(WORDS.relation);
/** Relation phrases, longest first so "to the left of" wins over "left of". */
export const RELATION_PATTERN = [...RELATION_WORDS.keys()].sort((a, b) => b.length - a.length).join('|');

/** The objects a referring expression picks out (the caller checks there is exactly one). */
export function resolveExpression(text: string, scene: Scene): number[] {
  const sup = /^the (leftmost|rightmost|topmost|bottommost) (.+)$/.exec(text);
  if (sup) {
    const np = parseNounPhrase(sup[2]);
    if (!np) throw new Error(`unparsed: ${text}`);
    const group = matching(scene, np.query);
    const key = (k: number) => {
      const { x, y } = scene.objects[k];
      return { leftmost: -x, rightmost: x, topmost: -y, bottommost: y }[sup[1]]!;
    };
    const best = Math.max(...group.map(key));
    return group.filter((k) => key(k) === best);
  }
  const rel = new RegExp(`^the (.+?) (${RELATION_PATTERN}) the (.+)$`).exec(text);
  if (rel) {
    const target = parseNounPhrase(rel[1]);
    const anchor = parseNounPhrase(rel[3]);
    if (!target || !anchor) throw new Error(`unparsed: ${text}`);
    const anchors = matching(scene, anchor.query);
    if (anchors.length !== 1) return [];
    const a = scene.objects[anchors[0]];
    return matching(scene, target.query).filter(
      (k) => k !== anchors[0] && relation(scene.objects[k], a, scene) === RELATION_WORDS.get(rel[2]),
    );
  }
  const q = parseDetermined(text);
  if (!q) throw new Error(`unparsed: ${text}`);
  return matching(scene, q);
}

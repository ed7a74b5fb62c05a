// The closed vocabulary of the procedural world: what an object can be, and the words for it.

export const SHAPES = ['circle', 'square', 'triangle', 'diamond', 'star', 'cross'] as const;
export type Shape = (typeof SHAPES)[number];

/** Saturated, clearly distinct sRGB colours; backgrounds are low-saturation so objects stand out. */
export const COLOUR_RGB = {
  red: [215, 35, 35],
  orange: [245, 135, 20],
  yellow: [240, 215, 30],
  green: [40, 165, 60],
  cyan: [30, 195, 210],
  blue: [35, 75, 215],
  purple: [135, 55, 190],
  pink: [245, 120, 185],
} as const satisfies Record<string, readonly [number, number, number]>;
export type Colour = keyof typeof COLOUR_RGB;
export const COLOURS = Object.keys(COLOUR_RGB) as Colour[];

export const SIZES = ['small', 'large'] as const;
export type Size = (typeof SIZES)[number];

/** Patterns are drawn in a darker shade of the object's colour, so the colour stays readable. */
export const TEXTURES = ['solid', 'striped', 'dotted', 'checkered'] as const;
export type Texture = (typeof TEXTURES)[number];

export const BACKGROUNDS = ['flat', 'gradient', 'noise'] as const;
export type BackgroundKind = (typeof BACKGROUNDS)[number];

/** Where the first object is relative to the second (image axes: y grows downwards). */
export const RELATIONS = ['left', 'right', 'above', 'below'] as const;
export type Relation = (typeof RELATIONS)[number];

export type Attribute = 'size' | 'texture' | 'colour' | 'shape';
/** Adjective order in noun phrases: "a small striped red triangle". */
export const ATTRIBUTES: readonly Attribute[] = ['size', 'texture', 'colour', 'shape'];

/** Words a caption or expression may use for a value; the first is canonical (VQA answers, detection classes). */
export const WORDS = {
  size: { small: ['small', 'little'], large: ['large', 'big'] },
  texture: { solid: ['plain', 'solid'], striped: ['striped'], dotted: ['dotted', 'spotted'], checkered: ['checkered'] },
  relation: {
    left: ['left of', 'to the left of'],
    right: ['right of', 'to the right of'],
    above: ['above'],
    below: ['below', 'under'],
  },
  /** Head nouns for a phrase that does not name the shape. */
  thing: ['object', 'shape', 'thing'],
  background: { flat: ['plain', 'flat'], gradient: ['gradient', 'shaded'], noise: ['noisy', 'textured'] },
} as const satisfies {
  size: Record<Size, readonly string[]>;
  texture: Record<Texture, readonly string[]>;
  relation: Record<Relation, readonly string[]>;
  thing: readonly string[];
  background: Record<BackgroundKind, readonly string[]>;
};

/** Superlatives referring expressions use, by relation. */
export const SUPERLATIVES = { left: 'leftmost', right: 'rightmost', above: 'topmost', below: 'bottommost' } as const;
export const SUPERLATIVE_WORDS: readonly string[] = Object.values(SUPERLATIVES);

export const NUMBER_WORDS = ['no', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'];

/** The plural the world's captions use: "crosses", "circles". */
export function plural(noun: string): string {
  return /(s|x|ch|sh)$/.test(noun) ? `${noun}es` : `${noun}s`;
}

/** "a" or "an" before `word`. */
export function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

// The procedural vision-language world: a configuration and a seed give, for every split and index,
// the same scene, image and text on every platform, computed on demand (random access, no files).
import { Generator } from '@fiber-vl/tensor-core';
import type { RawImage } from '@fiber-vl/swin';
import {
  BACKGROUNDS,
  COLOURS,
  RELATIONS,
  SHAPES,
  SIZES,
  TEXTURES,
  type BackgroundKind,
  type Colour,
  type Shape,
  type Size,
  type Texture,
} from './attributes.js';
import {
  annotateScene,
  QUESTION_TYPES,
  type Annotations,
  type LanguageConfig,
  type QuestionType,
  type TextRules,
} from './language.js';
import { statementFor, statementNovel, type Nlvr2Pair } from './nlvr2.js';
import { renderScene, type Box, type Scene } from './raster.js';
import { pairKey, sampleScene, type CompositionRules, type LayoutConfig } from './scene.js';

export const SPLITS = ['train', 'val', 'test'] as const;
export type Split = (typeof SPLITS)[number];

export interface WorldConfig extends LayoutConfig {
  seed: number;
  /** Scenes per split. */
  splits: Record<Split, number>;
  /** NLVR2 pairs per split. */
  nlvr2Pairs: Record<Split, number>;
  captionsPerScene: number;
  questionsPerScene: number;
  /**
   * Colour–shape pairs never seen together in train (no object, no text): a count chosen by the seed
   * (at most min(#colours, #shapes), each colour and shape in at most one pair; default that maximum)
   * or the pairs themselves.
   */
  heldOutCompositions?: number | readonly (readonly [Colour, Shape])[];
  /**
   * Detection classes (shapes) whose boxes the fine-grained stage never sees: open-vocabulary
   * detection. Default: diamond and star, those of them that are in `shapes`.
   */
  heldOutClasses: readonly Shape[];
}

export const WORLD_DEFAULTS: WorldConfig = {
  seed: 0,
  shapes: SHAPES,
  colours: COLOURS,
  sizes: SIZES,
  textures: TEXTURES,
  backgrounds: BACKGROUNDS,
  objects: [2, 5],
  imageSize: [96, 160],
  aspectRatios: [1, 1.25, 1.5],
  radius: { small: [0.085, 0.11], large: [0.16, 0.2] },
  maxOcclusion: 0.4,
  clutter: 3,
  distractorRate: 0.4,
  overlapRate: 0.25,
  novelRate: 0.3,
  splits: { train: 4000, val: 500, test: 500 },
  nlvr2Pairs: { train: 2000, val: 250, test: 250 },
  captionsPerScene: 5,
  questionsPerScene: 6,
  heldOutClasses: ['diamond', 'star'],
};

/**
 * `small`: for a tiny model trained in minutes on a CPU: small images with bigger objects (relative
 * to the image), at most 4 of them, less occlusion and clutter.
 */
export const WORLD_PRESETS: Record<'small' | 'base', Partial<WorldConfig>> = {
  small: {
    objects: [1, 4],
    imageSize: [64, 80],
    aspectRatios: [1, 1.25],
    radius: { small: [0.11, 0.14], large: [0.19, 0.24] },
    maxOcclusion: 0.3,
    clutter: 1,
    splits: { train: 3000, val: 300, test: 300 },
    nlvr2Pairs: { train: 1500, val: 200, test: 200 },
  },
  base: {},
};

/** A detection box: class = the object's shape. */
export interface Detection {
  object: number;
  box: Box;
  /** 1-based category id (COCO style) into `world.classes`. */
  category: number;
  name: Shape;
  /** Held out of the fine-grained stage. */
  heldOut: boolean;
}

export interface WorldSample extends Annotations {
  scene: Scene;
  detections: Detection[];
}

export interface DetectionClass {
  id: number;
  name: Shape;
  heldOut: boolean;
}

/** What a report or a data card needs to know about the world; JSON. */
export interface WorldMetadata {
  config: WorldConfig;
  heldOutCompositions: [Colour, Shape][];
  classes: DetectionClass[];
  answers: Record<QuestionType, string[]>;
}

const SPLIT_CODE: Record<Split, number> = { train: 1, val: 2, test: 3 };
const STREAM = { scene: 1, text: 2, nlvr2: 3, heldOut: 4 } as const;

/** A 32-bit seed from parts (a seed may be any safe integer; the others are small). */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    for (const word of [p >>> 0, Math.floor(p / 2 ** 32) >>> 0]) {
      h = Math.imul(h ^ word, 0x01000193);
      h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
      h ^= h >>> 12;
    }
  }
  return h >>> 0;
}

function fail(field: string, why: string): never {
  throw new RangeError(`world config: "${field}" ${why}`);
}

function checkSubset<T extends string>(field: string, values: readonly T[], known: readonly T[], empty = false) {
  if (!Array.isArray(values) || (values.length === 0 && !empty)) fail(field, 'must be a non-empty list');
  for (const v of values)
    if (!known.includes(v)) fail(field, `has ${JSON.stringify(v)}, expected some of ${known.join(', ')}`);
  if (new Set(values).size !== values.length) fail(field, 'has duplicates');
}

function checkConfig(c: WorldConfig) {
  if (!Number.isSafeInteger(c.seed)) fail('seed', `must be a safe integer, got ${c.seed}`);
  checkSubset<Shape>('shapes', c.shapes, SHAPES);
  checkSubset<Colour>('colours', c.colours, COLOURS);
  checkSubset<Size>('sizes', c.sizes, SIZES);
  checkSubset<Texture>('textures', c.textures, TEXTURES);
  checkSubset<BackgroundKind>('backgrounds', c.backgrounds, BACKGROUNDS);
  const [lo, hi] = c.objects;
  if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 1 && lo <= hi && hi <= 8))
    fail('objects', `must be [min, max] with 1 <= min <= max <= 8, got ${JSON.stringify(c.objects)}`);
  const [smin, smax] = c.imageSize;
  if (!(Number.isInteger(smin) && Number.isInteger(smax) && smin >= 32 && smin <= smax && smax <= 4096)) {
    fail(
      'imageSize',
      `must be [min, max] shorter-side pixels with 32 <= min <= max <= 4096, got ${JSON.stringify(c.imageSize)}`,
    );
  }
  if (!c.aspectRatios.length || c.aspectRatios.some((a) => !(a >= 1 && a <= 4)))
    fail('aspectRatios', `must be ratios in [1, 4], got ${JSON.stringify(c.aspectRatios)}`);
  const { small, large } = c.radius ?? {};
  if (!(small?.[0] > 0 && small[0] <= small[1] && large?.[0] > small[1] && large[0] <= large[1] && large[1] <= 0.4)) {
    fail(
      'radius',
      `must be { small: [lo, hi], large: [lo, hi] } with 0 < small lo <= hi < large lo <= hi <= 0.4, ` +
        `got ${JSON.stringify(c.radius)}`,
    );
  }
  if (!(c.maxOcclusion >= 0 && c.maxOcclusion <= 0.9))
    fail('maxOcclusion', `must be in [0, 0.9], got ${c.maxOcclusion}`);
  for (const f of ['distractorRate', 'overlapRate', 'novelRate'] as const)
    if (!(c[f] >= 0 && c[f] <= 1)) fail(f, `must be in [0, 1], got ${c[f]}`);
  if (!(Number.isInteger(c.clutter) && c.clutter >= 0))
    fail('clutter', `must be a non-negative integer, got ${c.clutter}`);
  for (const f of ['splits', 'nlvr2Pairs'] as const) {
    for (const s of SPLITS)
      if (!(Number.isInteger(c[f]?.[s]) && c[f][s] >= 0))
        fail(`${f}.${s}`, `must be a non-negative integer, got ${c[f]?.[s]}`);
  }
  for (const f of ['captionsPerScene', 'questionsPerScene'] as const)
    if (!(Number.isInteger(c[f]) && c[f] >= 1)) fail(f, `must be a positive integer, got ${c[f]}`);
  checkSubset<Shape>('heldOutClasses', c.heldOutClasses, c.shapes, true);
  if (c.heldOutClasses.length >= c.shapes.length)
    fail('heldOutClasses', 'must leave at least one class for the fine-grained stage');
}

/** Picks held-out colour–shape pairs; every colour and shape must keep a pair seen in train. */
function heldOutPairs(c: WorldConfig): [Colour, Shape][] {
  const spec = c.heldOutCompositions ?? Math.min(c.colours.length, c.shapes.length);
  let pairs: [Colour, Shape][];
  if (typeof spec === 'number') {
    const max = Math.min(c.colours.length, c.shapes.length);
    if (!(Number.isInteger(spec) && spec >= 0 && spec <= max))
      fail('heldOutCompositions', `must be an integer in [0, ${max}] (or a list of pairs), got ${spec}`);
    const g = new Generator(mixSeed(c.seed, STREAM.heldOut));
    const colours = g.permutation(c.colours.length).map((i) => c.colours[i]);
    const shapes = g.permutation(c.shapes.length).map((i) => c.shapes[i]);
    pairs = Array.from({ length: spec }, (_, i) => [colours[i], shapes[i]]);
  } else {
    pairs = spec.map(([col, s], i) => {
      if (!c.colours.includes(col) || !c.shapes.includes(s))
        fail(`heldOutCompositions[${i}]`, `${JSON.stringify([col, s])} is not a configured colour and shape`);
      return [col, s];
    });
  }
  const held = new Set(pairs.map(([col, s]) => pairKey(col, s)));
  for (const col of c.colours)
    if (c.shapes.every((s) => held.has(pairKey(col, s))))
      fail('heldOutCompositions', `holds out every shape in ${col}`);
  for (const s of c.shapes)
    if (c.colours.every((col) => held.has(pairKey(col, s))))
      fail('heldOutCompositions', `holds out every colour of ${s}`);
  // plain code-unit order (localeCompare would depend on the platform's locale)
  return pairs.sort((a, b) => (pairKey(...a) < pairKey(...b) ? -1 : 1));
}

export class World {
  readonly config: WorldConfig;
  readonly heldOutCompositions: [Colour, Shape][];
  readonly classes: DetectionClass[];
  private readonly heldOutKeys: Set<string>;
  private readonly language: LanguageConfig;

  constructor(config: Partial<WorldConfig> = {}) {
    const configured = config.shapes ?? WORLD_DEFAULTS.shapes;
    const heldOutClasses = config.heldOutClasses ?? WORLD_DEFAULTS.heldOutClasses.filter((s) => configured.includes(s));
    this.config = { ...WORLD_DEFAULTS, ...config, heldOutClasses };
    checkConfig(this.config);
    this.heldOutCompositions = heldOutPairs(this.config);
    this.heldOutKeys = new Set(this.heldOutCompositions.map(([c, s]) => pairKey(c, s)));
    this.classes = this.config.shapes.map((name, i) => ({
      id: i + 1,
      name,
      heldOut: this.config.heldOutClasses.includes(name),
    }));
    const { shapes, colours, sizes, textures, captionsPerScene, questionsPerScene, objects } = this.config;
    this.language = { shapes, colours, sizes, textures, captionsPerScene, questionsPerScene, maxCount: objects[1] };
  }

  size(split: Split): number {
    return this.config.splits[this.checkSplit(split)];
  }

  nlvr2Size(split: Split): number {
    return this.config.nlvr2Pairs[this.checkSplit(split)];
  }

  /** Answers each VQA question type can have. */
  get answers(): Record<QuestionType, string[]> {
    const counts = Array.from({ length: this.config.objects[1] + 1 }, (_, i) => String(i));
    return {
      colour: [...this.config.colours],
      shape: [...this.config.shapes],
      count: counts,
      relation: [...RELATIONS],
      yesno: ['yes', 'no'],
      exists: ['yes', 'no'],
    };
  }

  /** Every answer once (a VQA classifier's label set), in a fixed order. */
  get answerVocabulary(): string[] {
    return [...new Set(QUESTION_TYPES.flatMap((t) => this.answers[t]))];
  }

  metadata(): WorldMetadata {
    return {
      config: this.config,
      heldOutCompositions: this.heldOutCompositions,
      classes: this.classes,
      answers: this.answers,
    };
  }

  /** The layout of scene `index` of `split` (no text). */
  scene(split: Split, index: number): Scene {
    this.checkIndex(split, index, this.size(split));
    const g = new Generator(mixSeed(this.config.seed, SPLIT_CODE[split], index, STREAM.scene));
    return sampleScene(g, this.config, this.compositionRules(split), { id: `${split}-${index}`, split, index });
  }

  /** Scene, captions, questions, referring expressions and detection boxes of scene `index`. */
  sample(split: Split, index: number): WorldSample {
    const scene = this.scene(split, index);
    const g = new Generator(mixSeed(this.config.seed, SPLIT_CODE[split], index, STREAM.text));
    const annotations = annotateScene(g, scene, this.language, this.rules(split));
    const detections = scene.objects.map((o, k): Detection => {
      const cls = this.classes.find((c) => c.name === o.shape)!;
      return { object: k, box: o.box, category: cls.id, name: o.shape, heldOut: cls.heldOut };
    });
    return { scene, ...annotations, detections };
  }

  /** The image of scene `index` (rendered on the fly). */
  image(split: Split, index: number): RawImage {
    return renderScene(this.scene(split, index));
  }

  *samples(
    split: Split,
    { start = 0, end = this.size(split) }: { start?: number; end?: number } = {},
  ): IterableIterator<WorldSample> {
    for (let i = start; i < Math.min(end, this.size(split)); i++) yield this.sample(split, i);
  }

  /** NLVR2 pair `index`: labels alternate within each block of two pairs, so every split is balanced. */
  nlvr2(split: Split, index: number): Nlvr2Pair {
    this.checkIndex(split, index, this.nlvr2Size(split));
    const g = new Generator(mixSeed(this.config.seed, SPLIT_CODE[split], index, STREAM.nlvr2));
    const flip = (mixSeed(this.config.seed, SPLIT_CODE[split], index >> 1, STREAM.nlvr2) & 1) === 1;
    const label = ((index & 1) === 1) !== flip;
    const rules = this.rules(split);
    const id = `${split}-pair${index}`;
    for (let attempt = 0; attempt < 50; attempt++) {
      const left = sampleScene(g, this.config, this.compositionRules(split), { id: `${id}-left`, split, index });
      const right = sampleScene(g, this.config, this.compositionRules(split), { id: `${id}-right`, split, index });
      const s = statementFor(g, left, right, label, this.language, rules);
      if (!s) continue;
      return { id, left, right, statement: s.text, label, kind: s.kind, novel: statementNovel(s, left, right, rules) };
    }
    throw new Error(`world: no ${label} statement found for NLVR2 pair ${id} in 50 pairs of scenes (a generator bug)`);
  }

  /**
   * What the fine-grained stage may see of a sample: detections, phrases and referring expressions
   * of held-out classes are removed (their images and caption words stay, as GLIP's pre-training
   * images hold unannotated rare classes).
   */
  fineGrained(sample: WorldSample): WorldSample {
    const held = new Set(
      sample.scene.objects.flatMap((o, k) => (this.config.heldOutClasses.includes(o.shape) ? [k] : [])),
    );
    return {
      ...sample,
      detections: sample.detections.filter((d) => !held.has(d.object)),
      captions: sample.captions.map((c) => ({
        ...c,
        phrases: c.phrases.filter((p) => !p.objects.some((k) => held.has(k))),
      })),
      expressions: sample.expressions.filter((e) => !held.has(e.object)),
    };
  }

  private compositionRules(split: Split): CompositionRules {
    return { train: split === 'train', heldOut: this.heldOutCompositions };
  }

  private rules(split: Split): TextRules {
    return { train: split === 'train', heldOut: this.heldOutKeys };
  }

  private checkSplit(split: Split): Split {
    if (!SPLITS.includes(split))
      throw new RangeError(`world: unknown split ${JSON.stringify(split)}, expected one of ${SPLITS.join(', ')}`);
    return split;
  }

  private checkIndex(split: Split, index: number, size: number) {
    if (!(Number.isInteger(index) && index >= 0 && index < size))
      throw new RangeError(`world: index ${index} is outside ${split} [0, ${size})`);
  }
}

/** A world with the defaults, a preset's settings, then `config` on top. */
export function createWorld(config: Partial<WorldConfig> & { preset?: keyof typeof WORLD_PRESETS } = {}): World {
  const { preset = 'base', ...rest } = config;
  if (!Object.hasOwn(WORLD_PRESETS, preset))
    throw new RangeError(`world: unknown preset ${JSON.stringify(preset)}, expected small or base`);
  return new World({ ...WORLD_PRESETS[preset], ...rest });
}

// Batches of the built-in world for every stage of the main job: coarse pre-training (image +
// caption), VQA, captioning, NLVR2, and the fine-grained stage (detection prompts over the seen
// classes; grounding prompts with boxes and referring expressions too for `fiber-bench train`).
// Deterministic: which caption or question of a scene is used comes from the generator passed in.
import type { ByteLevelBpeTokenizer } from '@fiber-vl/roberta';
import { fiberPixelValues, type RawImage } from '@fiber-vl/swin';
import { type Generator, tf } from '@fiber-vl/tensor-core';
import {
  encodeDetectionPrompt,
  encodeGroundingPrompt,
  finePixelBatch,
  type FineTarget,
  type GroundingPrompt,
} from '@fiber-vl/heads-fine';
import { MemoWorld } from './memo-world.js';
import {
  COLOURS,
  SHAPES,
  type Scene,
  type SceneObject,
  type Split,
  type World,
  type WorldSample,
  plural,
  renderScene,
} from '@fiber-vl/trainer';

export interface TextBatch {
  ids: tf.Tensor2D;
  mask: tf.Tensor2D;
}

export function encodeTexts(tokenizer: ByteLevelBpeTokenizer, texts: string[], maxLength: number): TextBatch {
  const enc = tokenizer.encodeBatch(texts, { maxLength, padding: 'max_length' });
  return {
    ids: tf.tensor2d(
      enc.map((e) => e.ids),
      undefined,
      'int32',
    ),
    mask: tf.tensor2d(
      enc.map((e) => e.attentionMask),
      undefined,
      'int32',
    ),
  };
}

/**
 * Square coarse-model pixels of the scenes (Pillow bicubic to `size`, ImageNet normalisation:
 * `fiberPixelValues`); a MemoWorld's kept pixels where it has them.
 */
export function coarsePixels(world: World, split: Split, indices: number[], size: number): tf.Tensor4D {
  if (world instanceof MemoWorld && indices.length > 0)
    return tf.tensor4d(world.pixelBatch(split, indices, size), [indices.length, 3, size, size]);
  return fiberPixelValues(
    indices.map((i) => world.image(split, i)),
    size,
  );
}

/** coarsePixels of scene layouts already at hand (`world.scene`): renders them without laying them out again. */
export function scenePixels(scenes: readonly Scene[], size: number): tf.Tensor4D {
  return fiberPixelValues(scenes.map(renderScene), size);
}

/** Objects the probes and the image pre-training's object term look at: less than half hidden. */
const isVisible = (o: SceneObject): boolean => o.occlusion < 0.5;

/**
 * Row of the cell holding the centre of `box` (scene pixels of a `width` x `height` scene) in scene
 * `b`'s `grid` x `grid` cells of a batch's stage output flattened to [B * grid * grid].
 */
function centreCell(box: readonly number[], width: number, height: number, grid: number, b: number): number {
  const x = Math.min(grid - 1, Math.floor((((box[0] + box[2]) / 2) * grid) / width));
  const y = Math.min(grid - 1, Math.floor((((box[1] + box[3]) / 2) * grid) / height));
  return (b * grid + y) * grid + x;
}

/**
 * The visible objects (less than half hidden) of a batch's `scenes`, in order, and per grid in
 * `grids` the row of each one's centre cell among the batch's [B * grid * grid] cells (scene b =
 * its position in `scenes`): where the probes and the image pre-training read them.
 */
export function visibleObjectCells(
  scenes: readonly Scene[],
  grids: readonly number[],
): { objects: SceneObject[]; rows: number[][] } {
  const objects: SceneObject[] = [];
  const rows: number[][] = grids.map(() => []);
  scenes.forEach((scene, b) => {
    for (const o of scene.objects) {
      if (!isVisible(o)) continue;
      objects.push(o);
      grids.forEach((grid, k) => rows[k].push(centreCell(o.box, scene.width, scene.height, grid, b)));
    }
  });
  return { objects, rows };
}

/**
 * For each of a batch's `scenes` that has one, a cell of the coarsest grid in `grids` that no object
 * touches (hidden ones included), picked by the scene's place in the batch (no generator drawn);
 * per grid in `grids` the row of that cell's centre among the batch's [B * grid * grid] cells, and
 * the place of each such scene in `scenes`.
 */
export function objectFreeCells(
  scenes: readonly Scene[],
  grids: readonly number[],
): { scenes: number[]; rows: number[][] } {
  const coarse = Math.min(...grids);
  const places: number[] = [];
  const rows: number[][] = grids.map(() => []);
  scenes.forEach((scene, b) => {
    const free: number[][] = [];
    for (let gy = 0; gy < coarse; gy++)
      for (let gx = 0; gx < coarse; gx++) {
        const [x0, y0] = [(gx * scene.width) / coarse, (gy * scene.height) / coarse];
        const [x1, y1] = [((gx + 1) * scene.width) / coarse, ((gy + 1) * scene.height) / coarse];
        if (!scene.objects.some((o) => o.box[0] < x1 && o.box[2] > x0 && o.box[1] < y1 && o.box[3] > y0))
          free.push([x0, y0, x1, y1]);
      }
    if (!free.length) return;
    const cell = free[b % free.length];
    places.push(b);
    grids.forEach((grid, k) => rows[k].push(centreCell(cell, scene.width, scene.height, grid, b)));
  });
  return { scenes: places, rows };
}

export interface CaptionPairs {
  indices: number[];
  texts: string[];
}

/** One caption per scene, drawn with `rng`. */
export function captionPairs(world: World, split: Split, indices: number[], rng: Generator): CaptionPairs {
  return { indices, texts: indices.map((i) => pick(world.sample(split, i).captions, rng).text) };
}

/**
 * The word kinds perturbCaption swaps within: colours, shapes, plural shapes ("crosses") and the
 * counts the captions use ("two shapes", "three objects").
 */
export const SWAP_WORDS: readonly (readonly string[])[] = [
  COLOURS,
  SHAPES,
  SHAPES.map(plural),
  ['two', 'three', 'four', 'five'],
];

/**
 * `text` with one of its colour, shape or count words swapped for another of the same kind, both
 * drawn with `rng`; null when it has none ("a single object on a noisy background"). A negative
 * caption for the retrieval ITM fine-tune: it names something else than the scene shows, unless the
 * scene also shows what the new word names (not checked).
 */
export function perturbCaption(text: string, rng: Generator): string | null {
  const words = text.split(' ');
  const spots: [number, readonly string[]][] = [];
  words.forEach((w, i) => {
    for (const kind of SWAP_WORDS) if (kind.includes(w)) spots.push([i, kind]);
  });
  if (!spots.length) return null;
  const [i, kind] = pick(spots, rng);
  words[i] = pick(
    kind.filter((w) => w !== words[i]),
    rng,
  );
  return words.join(' ');
}

export interface VqaExample {
  scene: number;
  question: string;
  answer: string;
  type: string;
  novel: boolean;
}

/** Every question of the scenes (or one per scene with `rng`). */
export function vqaExamples(world: World, split: Split, indices: number[], rng?: Generator): VqaExample[] {
  return indices.flatMap((scene) => {
    const qs = world.sample(split, scene).questions;
    const chosen = rng ? [pick(qs, rng)] : qs;
    return chosen.map((q) => ({ scene, question: q.question, answer: q.answer, type: q.type, novel: q.novel }));
  });
}

/**
 * The image a control pairs with scene `scene` of the first `scenes` test scenes: scene
 * (scene + floor(scenes / 2)) mod scenes, as in the MLM probe. It may hold the same answer, so a
 * model that reads the image loses less with it than its reading is worth; one that does not, nothing.
 */
export function otherScene(scene: number, scenes: number): number {
  if (!(Number.isInteger(scenes) && scenes >= 2))
    throw new RangeError(`other image: needs 2 or more scenes, got ${scenes}`);
  if (!(Number.isInteger(scene) && scene >= 0 && scene < scenes))
    throw new RangeError(`other image: scene ${scene} is not one of the ${scenes} evaluated`);
  return (scene + Math.floor(scenes / 2)) % scenes;
}

export interface Nlvr2Example {
  index: number;
  left: RawImage;
  right: RawImage;
  statement: string;
  label: boolean;
  novel: boolean;
}

export function nlvr2Examples(world: World, split: Split, indices: number[]): Nlvr2Example[] {
  return indices.map((index) => {
    const p = world.nlvr2(split, index);
    return {
      index,
      // NLVR2 scenes are not indexed: rendered directly
      left: renderScene(p.left),
      right: renderScene(p.right),
      statement: p.statement,
      label: p.label,
      novel: p.novel,
    };
  });
}

/** A grounding example of the fine-grained stage: one caption with its phrases tied to boxes. */
export interface FineExample {
  scene: number;
  image: RawImage;
  prompt: GroundingPrompt;
  /** xyxy boxes in original pixels (maskrcnn convention: x2 the last pixel) and the phrase of each. */
  boxes: number[][];
  phraseOfBox: number[];
  /** Phrases the image shows without a box (image-level labels; see heads-fine's `FineTarget.imageLabels`). */
  imageLabels?: number[];
}

/** maskrcnn_benchmark boxes: the world's boxes are [x, y, x2, y2) half-open; the official ones end on the last pixel. */
function toFineBox(b: readonly number[]): number[] {
  return [b[0], b[1], b[2] - 1, b[3] - 1];
}

/**
 * Grounding examples: a caption of the scene (held-out classes removed from its phrases, as the
 * fine-grained stage may not see them) with each phrase's objects as boxes; captions without a
 * phrase are skipped.
 */
export function groundingExamples(
  world: World,
  split: Split,
  indices: number[],
  tokenizer: ByteLevelBpeTokenizer,
  maxQueryLen: number,
  rng: Generator,
  { fineOnly = true } = {},
): FineExample[] {
  const out: FineExample[] = [];
  for (const scene of indices) {
    let s: WorldSample = world.sample(split, scene);
    if (fineOnly) s = world.fineGrained(s);
    const captions = s.captions.filter((c) => c.phrases.length > 0);
    if (!captions.length) continue;
    const c = pick(captions, rng);
    const prompt = encodeGroundingPrompt(
      tokenizer,
      c.text,
      c.phrases.map((p) => [[p.start, p.end] as [number, number]]),
      { maxQueryLen },
    );
    const boxes: number[][] = [];
    const phraseOfBox: number[] = [];
    c.phrases.forEach((p, k) => {
      if (!prompt.phrases[k].tokens.length) return;
      for (const o of p.objects) {
        boxes.push(toFineBox(s.scene.objects[o].box));
        phraseOfBox.push(k);
      }
    });
    if (boxes.length) out.push({ scene, image: world.image(split, scene), prompt, boxes, phraseOfBox });
  }
  return out;
}

/** Detection examples: the prompt of `classNames` ("circle. square. ..."), boxes of those classes. */
export function detectionExamples(
  world: World,
  split: Split,
  indices: number[],
  tokenizer: ByteLevelBpeTokenizer,
  maxQueryLen: number,
  classNames: string[],
  {
    boxed = classNames,
    captionLabels = [],
  }: {
    /** The classes whose boxes are given (default: every class of the prompt). */
    boxed?: readonly string[];
    /** Classes of the prompt that are the scene's image-level labels where its captions name them (no box). */
    captionLabels?: readonly string[];
  } = {},
): FineExample[] {
  for (const name of captionLabels)
    if (!classNames.includes(name) || boxed.includes(name))
      throw new RangeError(`captionLabels: "${name}" must be a class of the prompt without boxes`);
  const prompt = encodeDetectionPrompt(tokenizer, classNames, { maxQueryLen });
  return indices.flatMap((scene) => {
    const s = world.sample(split, scene);
    const boxes: number[][] = [];
    const phraseOfBox: number[] = [];
    for (const d of s.detections) {
      const k = classNames.indexOf(d.name);
      if (k < 0 || !boxed.includes(d.name)) continue;
      boxes.push(toFineBox(d.box));
      phraseOfBox.push(k);
    }
    if (!boxes.length) return [];
    const imageLabels = captionLabels
      .filter((name) => s.captions.some((c) => namesClass(c.text, name)))
      .map((name) => classNames.indexOf(name));
    const example: FineExample = { scene, image: world.image(split, scene), prompt, boxes, phraseOfBox };
    return [imageLabels.length ? { ...example, imageLabels } : example];
  });
}

/**
 * The caption names the class: its name as a word, singular or plural with -s / -es ("a star", "two
 * stars"), between characters other than a-z ("star-shaped" counts; "no star" too: the world's
 * captions never negate).
 */
export function namesClass(caption: string, name: string): boolean {
  if (!name.trim()) throw new RangeError('namesClass: the class name is empty');
  const word = name.toLowerCase().replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^a-z])${word}(e?s)?($|[^a-z])`).test(caption.toLowerCase());
}

/** Referring expressions as one-phrase grounding examples (the whole expression names one box). */
export function referringExamples(
  world: World,
  split: Split,
  indices: number[],
  tokenizer: ByteLevelBpeTokenizer,
  maxQueryLen: number,
  rng: Generator,
): FineExample[] {
  return indices.flatMap((scene) => {
    const s = world.fineGrained(world.sample(split, scene));
    if (!s.expressions.length) return [];
    const e = pick(s.expressions, rng);
    const prompt = encodeGroundingPrompt(tokenizer, e.text, [[[0, e.text.length]]], { maxQueryLen });
    return [{ scene, image: world.image(split, scene), prompt, boxes: [toFineBox(e.box)], phraseOfBox: [0] }];
  });
}

export interface FineBatch {
  pixels: tf.Tensor4D;
  ids: tf.Tensor2D;
  mask: tf.Tensor2D;
  /** Per image: boxes scaled to the network input and the 0/1 token map of each box. */
  targets: FineTarget[];
}

/** Pixels (official fine transform at `size`), prompts and targets of a batch of fine examples. */
export function fineBatch(examples: FineExample[], size: number): FineBatch {
  const { pixels, sizes } = finePixelBatch(
    examples.map((e) => e.image),
    { minSize: size, maxSize: Math.round(size * 1.67) },
  );
  const targets = examples.map((e, b): FineTarget => {
    const sx = sizes[b].width / e.image.width;
    const sy = sizes[b].height / e.image.height;
    const T = e.prompt.maxQueryLen;
    const positiveMap = new Float32Array(e.boxes.length * T);
    e.boxes.forEach((_, g) => {
      for (const t of e.prompt.phrases[e.phraseOfBox[g]].tokens) positiveMap[g * T + t] = 1;
    });
    const boxes = e.boxes.flatMap(([x1, y1, x2, y2]) => [x1 * sx, y1 * sy, x2 * sx, y2 * sy]);
    // a phrase cut off by MAX_QUERY_LEN has no tokens to label
    const imageLabels = e.imageLabels?.map((k) => [...e.prompt.phrases[k].tokens]).filter((t) => t.length);
    return imageLabels?.length ? { boxes, positiveMap, imageLabels } : { boxes, positiveMap };
  });
  return {
    pixels,
    ids: tf.tensor2d(
      examples.map((e) => e.prompt.inputIds),
      undefined,
      'int32',
    ),
    mask: tf.tensor2d(
      examples.map((e) => e.prompt.attentionMask),
      undefined,
      'int32',
    ),
    targets,
  };
}

export function pick<T>(items: readonly T[], rng: Generator): T {
  if (!items.length) throw new RangeError('pick: no items');
  return items[rng.nextInt(items.length)];
}

/** `n` indices of [0, size) in a seeded random order (repeats the order when n > size). */
export function sampleIndices(size: number, n: number, rng: Generator): number[] {
  if (n > 0 && !(size >= 1)) throw new RangeError(`sampleIndices: ${n} indices asked of a split of ${size} records`);
  const out: number[] = [];
  while (out.length < n) out.push(...rng.permutation(size).slice(0, n - out.length));
  return out;
}

// What chance or a majority guess scores on a split, per task, so that a trained model's results
// can be read against them; and COCO-format ground truth / chance detections for COCOeval.
import { Generator } from '@fiber-vl/tensor-core';
import { QUESTION_TYPES, type QuestionType } from './language.js';
import type { Box } from './raster.js';
import { mixSeed, type Split, type World } from './world.js';

export interface RecallAtK {
  r1: number;
  r5: number;
  r10: number;
}

export interface WorldBaselines {
  split: Split;
  scenes: number;
  /**
   * Per question type, the better of two guesses that do not look at the image: the type's majority
   * answer (taken from train) and a uniform guess among the type's answers (1 / their number). The
   * held-out compositions shift the answers between splits, so the train majority can score under
   * the uniform guess on test (a colour that is frequent in train). `accuracy` weights each type's
   * better guess by its questions.
   */
  vqa: {
    accuracy: number;
    questions: number;
    byType: Record<
      QuestionType,
      {
        majority: string;
        /** The majority answer's accuracy on the split. */
        accuracy: number;
        /** A uniform guess's expected accuracy: 1 / the type's answers. */
        chance: number;
        questions: number;
      }
    >;
  };
  /** Image–text matching of balanced positives and negatives. */
  itm: { accuracy: number };
  /** Majority label. */
  nlvr2: { accuracy: number; pairs: number };
  /** Random ranking: text->image among `images`, image->text among images x captions. */
  retrieval: { images: number; captionsPerImage: number; textToImage: RecallAtK; imageToText: RecallAtK };
  /** Picking one of the scene's objects at random (IoU >= 0.5): a stronger floor than a random box. */
  rec: { accuracy: number; expressions: number };
  /** Ranking the scene's object boxes at random, a hit at IoU >= 0.5 with any of the phrase's boxes. */
  grounding: { r1: number; r5: number; phrases: number };
}

export interface BaselineOptions {
  /** Scenes (and NLVR2 pairs) of the split to score; default all. */
  limit?: number;
  /** Train scenes the VQA majority answers are counted on; default min(train size, 1000). */
  referenceLimit?: number;
}

export function iou(a: Box, b: Box): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

/** Probability that k picks without replacement from n items, `hits` of them good, include a good one. */
export function hitProbability(n: number, hits: number, k: number): number {
  if (hits <= 0) return 0;
  let miss = 1;
  for (let i = 0; i < k; i++) {
    if (n - hits - i <= 0) return 1;
    miss *= (n - hits - i) / (n - i);
  }
  return 1 - miss;
}

function recallAtK(n: number, hits: number): RecallAtK {
  return { r1: hitProbability(n, hits, 1), r5: hitProbability(n, hits, 5), r10: hitProbability(n, hits, 10) };
}

function majority(counts: Map<string, number>): string {
  let best = '';
  let bestCount = -1;
  // ties go to the answer that sorts first, so the choice does not depend on iteration order
  for (const [answer, n] of [...counts].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (n > bestCount) [best, bestCount] = [answer, n];
  }
  return best;
}

export function worldBaselines(
  world: World,
  split: Split,
  { limit, referenceLimit }: BaselineOptions = {},
): WorldBaselines {
  const scenes = Math.min(limit ?? world.size(split), world.size(split));
  const refScenes = Math.min(referenceLimit ?? 1000, world.size('train'));
  const prior = new Map<QuestionType, Map<string, number>>(QUESTION_TYPES.map((t) => [t, new Map()]));
  for (const s of world.samples('train', { end: refScenes })) {
    for (const q of s.questions) prior.get(q.type)!.set(q.answer, (prior.get(q.type)!.get(q.answer) ?? 0) + 1);
  }
  const majorityOf = new Map(QUESTION_TYPES.map((t) => [t, majority(prior.get(t)!)]));

  const byType = new Map(QUESTION_TYPES.map((t) => [t, { correct: 0, n: 0 }]));
  let captions = 0;
  let rec = 0;
  let expressions = 0;
  const grounding = { r1: 0, r5: 0, n: 0 };
  for (const s of world.samples(split, { end: scenes })) {
    for (const q of s.questions) {
      const t = byType.get(q.type)!;
      t.n++;
      if (q.answer === majorityOf.get(q.type)) t.correct++;
    }
    captions += s.captions.length;
    const boxes = s.scene.objects.map((o) => o.box);
    for (const e of s.expressions) {
      rec += boxes.filter((b) => iou(b, e.box) >= 0.5).length / boxes.length;
      expressions++;
    }
    for (const c of s.captions) {
      for (const p of c.phrases) {
        const hits = boxes.filter((b) => p.objects.some((k) => iou(b, boxes[k]) >= 0.5)).length;
        grounding.r1 += hitProbability(boxes.length, hits, 1);
        grounding.r5 += hitProbability(boxes.length, hits, 5);
        grounding.n++;
      }
    }
  }

  const pairs = Math.min(limit ?? world.nlvr2Size(split), world.nlvr2Size(split));
  let trues = 0;
  for (let i = 0; i < pairs; i++) if (world.nlvr2(split, i).label) trues++;

  const questions = [...byType.values()].reduce((a, t) => a + t.n, 0);
  const chanceOf = (t: QuestionType) => 1 / world.answers[t].length;
  // each type's better guess, in expected correct answers
  const correct = QUESTION_TYPES.reduce((a, t) => {
    const { correct: c, n } = byType.get(t)!;
    return a + Math.max(c, n * chanceOf(t));
  }, 0);
  const perImage = scenes ? captions / scenes : 0;
  const k = Math.round(perImage);
  const vqaByType = Object.fromEntries(
    QUESTION_TYPES.map((t) => {
      const { correct: c, n } = byType.get(t)!;
      return [t, { majority: majorityOf.get(t)!, accuracy: n ? c / n : 0, chance: chanceOf(t), questions: n }];
    }),
  ) as WorldBaselines['vqa']['byType'];
  return {
    split,
    scenes,
    vqa: { accuracy: questions ? correct / questions : 0, questions, byType: vqaByType },
    itm: { accuracy: 0.5 },
    nlvr2: { accuracy: pairs ? Math.max(trues, pairs - trues) / pairs : 0, pairs },
    retrieval: {
      images: scenes,
      captionsPerImage: perImage,
      textToImage: recallAtK(scenes, 1),
      imageToText: recallAtK(scenes * k, k),
    },
    rec: { accuracy: expressions ? rec / expressions : 0, expressions },
    grounding: {
      r1: grounding.n ? grounding.r1 / grounding.n : 0,
      r5: grounding.n ? grounding.r5 / grounding.n : 0,
      phrases: grounding.n,
    },
  };
}

/** For each of the first `limit` scenes of `split`, a caption of a random train scene: the captioning floor. */
export function randomCaptionBaseline(
  world: World,
  split: Split,
  { limit, seed = 0 }: { limit?: number; seed?: number } = {},
): string[] {
  const n = Math.min(limit ?? world.size(split), world.size(split));
  const g = new Generator(mixSeed(world.config.seed, seed, 0x5eed));
  return Array.from({ length: n }, () => {
    const s = world.sample('train', g.nextInt(world.size('train')));
    return s.captions[g.nextInt(s.captions.length)].text;
  });
}

export interface CocoGroundTruthJson {
  images: { id: number; width: number; height: number; file_name: string }[];
  annotations: {
    id: number;
    image_id: number;
    category_id: number;
    bbox: [number, number, number, number];
    area: number;
    iscrowd: 0;
  }[];
  categories: { id: number; name: string }[];
}

export interface CocoDetectionJson {
  image_id: number;
  category_id: number;
  bbox: [number, number, number, number];
  score: number;
}

/**
 * COCO-format ground truth of the first `limit` scenes (image id = index + 1, bbox [x, y, w, h],
 * area = visible pixels), for `classes` 'all', the 'seen' ones or the 'held-out' ones.
 */
export function cocoGroundTruth(
  world: World,
  split: Split,
  { limit, classes = 'all' }: { limit?: number; classes?: 'all' | 'seen' | 'held-out' } = {},
): CocoGroundTruthJson {
  const keep = world.classes.filter((c) => classes === 'all' || (classes === 'held-out') === c.heldOut);
  const ids = new Set(keep.map((c) => c.id));
  const out: CocoGroundTruthJson = {
    images: [],
    annotations: [],
    categories: keep.map(({ id, name }) => ({ id, name })),
  };
  const n = Math.min(limit ?? world.size(split), world.size(split));
  for (let i = 0; i < n; i++) {
    const { scene, detections } = world.sample(split, i);
    out.images.push({ id: i + 1, width: scene.width, height: scene.height, file_name: `${scene.id}.png` });
    for (const d of detections) {
      if (!ids.has(d.category)) continue;
      const [x0, y0, x1, y1] = d.box;
      const area = scene.objects[d.object].area;
      out.annotations.push({
        id: out.annotations.length + 1,
        image_id: i + 1,
        category_id: d.category,
        bbox: [x0, y0, x1 - x0, y1 - y0],
        area,
        iscrowd: 0,
      });
    }
  }
  return out;
}

/**
 * Chance detections: `perImage` boxes per image at random places, with sizes in the world's object
 * range, random classes and random scores. COCOeval of these against `cocoGroundTruth` is the floor.
 */
export function randomDetectionBaseline(
  world: World,
  split: Split,
  { limit, perImage = 10, seed = 0 }: { limit?: number; perImage?: number; seed?: number } = {},
): CocoDetectionJson[] {
  const g = new Generator(mixSeed(world.config.seed, seed, 0xd37));
  const out: CocoDetectionJson[] = [];
  const n = Math.min(limit ?? world.size(split), world.size(split));
  for (let i = 0; i < n; i++) {
    const { width, height } = world.scene(split, i);
    const short = Math.min(width, height);
    for (let k = 0; k < perImage; k++) {
      const side = short * (0.17 + g.nextDouble() * 0.3);
      const x = g.nextDouble() * (width - side);
      const y = g.nextDouble() * (height - side);
      out.push({
        image_id: i + 1,
        category_id: world.classes[g.nextInt(world.classes.length)].id,
        bbox: [x, y, side, side],
        score: g.nextDouble(),
      });
    }
  }
  return out;
}

/**
 * Chance names on perfect boxes: every object's own box once per class, each with a random score.
 * COCOeval of these is what a detector scores that finds every object exactly but cannot tell the
 * classes apart: AP50 a little above each class's share of the objects, the floor for the naming
 * part of detection, as a random pick among the scene's own objects is for REC and grounding. Its
 * boxes are exact, so it is no floor for AP over IoU 0.5:0.95 (use `randomDetectionBaseline`).
 * COCOeval keeps 100 detections per image: past 100 / classes objects in an image it scores lower.
 */
export function randomLabelDetectionBaseline(
  world: World,
  split: Split,
  { limit, seed = 0 }: { limit?: number; seed?: number } = {},
): CocoDetectionJson[] {
  const g = new Generator(mixSeed(world.config.seed, seed, 0x1ab));
  const out: CocoDetectionJson[] = [];
  const n = Math.min(limit ?? world.size(split), world.size(split));
  for (let i = 0; i < n; i++) {
    for (const d of world.sample(split, i).detections) {
      const [x0, y0, x1, y1] = d.box;
      for (const c of world.classes)
        out.push({ image_id: i + 1, category_id: c.id, bbox: [x0, y0, x1 - x0, y1 - y0], score: g.nextDouble() });
    }
  }
  return out;
}

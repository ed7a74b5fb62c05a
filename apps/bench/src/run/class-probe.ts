// Where is a class name read? Each detection class (seen in the fine stage or held out of it) ranks the
// evaluated test images twice: by the coarse model's ITC similarity between the image and "a <class>"
// (zero-shot, as CLIP classifies) and by the fine detector's best score for a box under that name
// (the detection prompt of every class). The average precision of the images that show the class
// says which model links the name to the shape: for the held-out classes only the captions can make
// that link, through ITC in the coarse stage and through the fine stage's image-level labels
// (apps/bench/MEASUREMENTS.md, "Held-out classes were not named").
import type { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { tf } from '@fiber-vl/tensor-core';
import { chunks, type RunContext } from './context.js';
import { coarsePixels, encodeTexts } from './data.js';

export interface ClassProbeResult {
  class: string;
  heldOut: boolean;
  /** Evaluated test images that show an object of the class. */
  images: number;
  /** Average precision of those images ranked by the coarse model's ITC similarity to "a <class>". */
  coarseItc: number;
  /** ... ranked by the fine detector's best score for a box of the class (0 for none). */
  fineDetector: number;
  /**
   * ... ranked by the image's number of objects: a score blind to the name, which beats a random
   * ranking as an image with more objects is likelier to show any class.
   */
  objectCount: number;
  /** The expected average precision of a random ranking (randomRankingAp). */
  chance: number;
  /**
   * The evaluated images whose only object is of the class, and the share of them each model names
   * (the class with the highest score among all; a tie, or a detector without a box, names none):
   * free of the object count, which the rankings above also answer to (chance 1 / classes). Null
   * where no such image is evaluated.
   */
  singleObject: { images: number; coarseItc: number; fineDetector: number } | null;
}

/** The ITC prompt of a class: "a <class>", one of the world's caption templates ("a diamond"). */
export const classPrompt = (name: string) => `a ${name}`;

/**
 * Average precision of the positives in `scores` ranked high to low: the mean, over the positives, of
 * the precision at each one's rank. Items of equal score are in no order, so a group of ties counts
 * what every order of it gives on average (the positive at place j of a group of g holding p
 * positives, after h positives and b items, has precision (h + 1 + (j - 1)(p - 1) / (g - 1)) /
 * (b + j) on average): scores all equal give randomRankingAp. RangeError without a positive.
 */
export function averagePrecision(scores: readonly number[], positives: readonly boolean[]): number {
  if (scores.length !== positives.length)
    throw new RangeError(`average precision: ${scores.length} scores for ${positives.length} labels`);
  const order = scores.map((_, i) => i).sort((a, b) => scores[b] - scores[a]);
  const total = positives.filter(Boolean).length;
  if (!total) throw new RangeError('average precision: no positive among the ranked items');
  let sum = 0;
  let before = 0;
  let hitsBefore = 0;
  for (let start = 0; start < order.length; ) {
    let end = start + 1;
    while (end < order.length && scores[order[end]] === scores[order[start]]) end++;
    const g = end - start;
    const p = order.slice(start, end).filter((i) => positives[i]).length;
    for (let j = 1; p > 0 && j <= g; j++)
      sum += ((p / g) * (hitsBefore + 1 + (g > 1 ? ((j - 1) * (p - 1)) / (g - 1) : 0))) / (before + j);
    before += g;
    hitsBefore += p;
    start = end;
  }
  return sum / total;
}

/**
 * The expected average precision of a uniformly random ranking of n items, m of them positive:
 * (m - 1) / (n - 1) + H_n (n - m) / (n (n - 1)), H_n the n-th harmonic number (the positive at rank i
 * has precision (1 + (i - 1)(m - 1) / (n - 1)) / i on average); a little above the prevalence m / n.
 */
export function randomRankingAp(n: number, m: number): number {
  if (!(Number.isInteger(n) && Number.isInteger(m) && m >= 1 && m <= n))
    throw new RangeError(`random ranking AP: needs 1 <= positives <= items, got ${m} of ${n}`);
  if (n === 1) return 1;
  let harmonic = 0;
  for (let i = 1; i <= n; i++) harmonic += 1 / i;
  return (m - 1) / (n - 1) + (harmonic * (n - m)) / (n * (n - 1));
}

/**
 * Keeps, in `scores` ([class][scene]), the best score of `scene`'s detections under each class
 * (`label.index` is the class's index in the prompt, which lists the classes in world order).
 */
export function recordClassScores(
  scores: number[][],
  scene: number,
  detections: readonly { label: { index: number }; score: number }[],
): void {
  for (const d of detections) {
    const row = scores[d.label.index];
    if (!row || !(scene >= 0 && scene < row.length))
      throw new RangeError(`class scores: no slot for class ${d.label.index} of ${scores.length}, scene ${scene}`);
    row[scene] = Math.max(row[scene], d.score);
  }
}

/**
 * ITC similarity of each of the first `scenes` test images to each class prompt: [class][image]
 * (images encoded `chunk` at a time).
 */
export async function itcClassScores(
  ctx: RunContext,
  model: FiberCoarseModel,
  scenes: number,
  chunk = 64,
): Promise<number[][]> {
  const { world, tokenizer, preset } = ctx;
  const wasTraining = model.training;
  model.eval();
  try {
    const simT = tf.tidy(() => {
      const text = encodeTexts(
        tokenizer,
        world.classes.map((c) => classPrompt(c.name)),
        preset.model.maxTextLen,
      );
      const txt = model.encodeText(text.ids, text.mask).textCls;
      const img = tf.concat(
        chunks(scenes, chunk).map(
          ([a, b]) =>
            model.encodeImage(
              coarsePixels(
                world,
                'test',
                Array.from({ length: b - a }, (_, i) => a + i),
                preset.model.imageSize,
              ),
            ).imageCls,
        ),
      );
      return tf.matMul(txt, img, false, true);
    });
    try {
      return (await simT.array()) as number[][];
    } finally {
      simT.dispose();
    }
  } finally {
    if (wasTraining) model.train();
  }
}

/**
 * The probe over the first `scenes` test scenes from the two rankings ([class][image] scores, classes
 * in world order); a class no evaluated image shows is left out.
 */
export function classProbe(
  ctx: RunContext,
  scenes: number,
  coarseItc: number[][],
  fineDetector: number[][],
): ClassProbeResult[] {
  const { world } = ctx;
  const n = world.classes.length;
  for (const [what, s] of [
    ['coarse ITC', coarseItc],
    ['fine detector', fineDetector],
  ] as const)
    if (s.length !== n || s.some((row) => row.length !== scenes)) {
      const bad = s.findIndex((row) => row.length !== scenes);
      throw new RangeError(
        `class probe: ${what} scores must be ${n} classes x ${scenes} images, got ${s.length} classes` +
          (bad >= 0 ? ` (class ${bad}: ${s[bad].length} images)` : ''),
      );
    }
  const detections = Array.from({ length: scenes }, (_, i) => world.sample('test', i).detections);
  const shown = detections.map((ds) => new Set(ds.map((d) => d.name)));
  const objects = detections.map((ds) => ds.length);
  /** The class index with the highest score for image i, or -1 on a tie (a row of zeros included). */
  const named = (scores: number[][], i: number) => {
    let best = 0;
    let tie = false;
    for (let k = 1; k < n; k++) {
      if (scores[k][i] > scores[best][i]) [best, tie] = [k, false];
      else if (scores[k][i] === scores[best][i]) tie = true;
    }
    return tie ? -1 : best;
  };
  const results = world.classes.flatMap((c, k) => {
    const positives = shown.map((names) => names.has(c.name));
    const images = positives.filter(Boolean).length;
    if (!images) return [];
    const single = detections.flatMap((ds, i) => (ds.length === 1 && ds[0].name === c.name ? [i] : []));
    return [
      {
        class: c.name,
        heldOut: c.heldOut,
        images,
        coarseItc: averagePrecision(coarseItc[k], positives),
        fineDetector: averagePrecision(fineDetector[k], positives),
        objectCount: averagePrecision(objects, positives),
        chance: randomRankingAp(scenes, images),
        singleObject: single.length
          ? {
              images: single.length,
              coarseItc: single.filter((i) => named(coarseItc, i) === k).length / single.length,
              fineDetector: single.filter((i) => named(fineDetector, i) === k).length / single.length,
            }
          : null,
      },
    ];
  });
  ctx.log(
    `[seed ${ctx.seed}] class probe, AP of the images showing each class by coarse ITC / fine detector / object count (chance), and its single-object images named by ITC / detector: ${results.map((r) => `${r.class}${r.heldOut ? ' (held out)' : ''} ${r.coarseItc.toFixed(2)} / ${r.fineDetector.toFixed(2)} / ${r.objectCount.toFixed(2)} (${r.chance.toFixed(2)}), ${r.singleObject ? `${r.singleObject.coarseItc.toFixed(2)} / ${r.singleObject.fineDetector.toFixed(2)} of ${r.singleObject.images}` : 'none'}`).join('; ')}`,
  );
  return results;
}

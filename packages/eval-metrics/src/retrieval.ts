/**
 * Image-text retrieval Recall@K with the VSE++ protocol (fartashf/vsepp `evaluation.py` i2t / t2i),
 * which COCO and Flickr30k retrieval numbers are reported with (metrics-spec §10).
 *
 * Ranks are computed by counting, not sorting: the 0-based position of an item in a descending
 * sort is the number of items scored strictly higher. Memory beyond the matrix is O(#images +
 * #texts); a 25k x 5k matrix is two passes over its rows.
 *
 * Ties, which the reference leaves to an unstable sort, count at their expected value over a
 * random order of the tied items: R@K is the mean probability that the ground truth lands in the
 * top K, and a rank is the expected position. A model that scores everything alike gets chance
 * (R@1 = 1 / #images for t2i), not 100; two identical captions of different images, which any
 * model scores alike, each come first half the time. Without ties these are the plain counts.
 */

import { MetricInputError, show, where } from './errors.js';

/** A row-major [images x texts] similarity matrix. */
export interface SimilarityMatrix {
  rows: number;
  cols: number;
  data: ArrayLike<number>;
}

export interface DirectionScores {
  'R@1': number;
  'R@5': number;
  'R@10': number;
  medr: number;
  meanr: number;
}

export interface RetrievalScores {
  /** Image annotation: each image queries all texts. */
  i2t: DirectionScores;
  /** Image search: each text queries all images. */
  t2i: DirectionScores;
  /** Sum of the six R@K values. */
  rsum: number;
  /**
   * 0-based rank of each query's best ground truth: with ties, its expected value over a random
   * order of the tied items (an integer where nothing ties with it).
   */
  i2tRanks: Float64Array;
  t2iRanks: Float64Array;
}

/** The matrix as rows x cols float64, every value checked to be a finite number. */
function toMatrix(sim: SimilarityMatrix | readonly (readonly number[])[], at: string): SimilarityMatrix {
  if (Array.isArray(sim)) {
    const rows = sim.length;
    if (rows === 0) throw new MetricInputError(`${at}"similarity" has no rows (no images)`);
    const first: unknown = sim[0];
    if (!Array.isArray(first))
      throw new MetricInputError(`${at}similarity[0] is not a list of numbers: ${show(first)}`);
    const cols = first.length;
    if (cols === 0) throw new MetricInputError(`${at}similarity[0] is empty (no texts)`);
    const data = new Float64Array(rows * cols);
    // index loops, not forEach: a hole in a sparse array is a missing value
    for (let i = 0; i < rows; i++) {
      const row: unknown = sim[i];
      if (!Array.isArray(row))
        throw new MetricInputError(`${at}similarity[${i}] is not a list of numbers: ${show(row)}`);
      if (row.length !== cols) {
        throw new MetricInputError(`${at}similarity[${i}] has ${row.length} values, similarity[0] has ${cols}`);
      }
      for (let j = 0; j < cols; j++) {
        const v: unknown = row[j];
        if (typeof v !== 'number' || !Number.isFinite(v)) {
          throw new MetricInputError(`${at}similarity[${i}][${j}] is not a finite number: ${show(v)}`);
        }
        data[i * cols + j] = v;
      }
    }
    return { rows, cols, data };
  }
  const m = sim as Partial<SimilarityMatrix> | null;
  if (!m || typeof m !== 'object' || !('data' in m)) {
    throw new MetricInputError(
      `${at}"similarity" must be a matrix (a list of rows) or {rows, cols, data}, got ${show(m)}`,
    );
  }
  const { rows, cols, data } = m;
  for (const [name, v] of [
    ['rows', rows],
    ['cols', cols],
  ] as const) {
    if (!Number.isInteger(v) || (v as number) < 1)
      throw new MetricInputError(`${at}similarity.${name} must be a positive integer, got ${show(v)}`);
  }
  if (!data || typeof data.length !== 'number' || data.length !== rows! * cols!) {
    throw new MetricInputError(`${at}similarity has ${data?.length} values, expected ${rows} x ${cols}`);
  }
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new MetricInputError(
        `${at}similarity[${Math.floor(i / cols!)}][${i % cols!}] is not a finite number: ${show(v)}`,
      );
    }
  }
  return { rows: rows!, cols: cols!, data };
}

/**
 * Where each query's best ground truth lands: `above` items scored higher than it, `tied` other
 * items scored the same, `shared` ground truths with that same best score (1 unless two tie).
 */
interface Placement {
  above: Int32Array;
  tied: Int32Array;
  shared: Int32Array;
}

/**
 * P(the first of `shared` ground truths comes within the top k) when `above` items precede them
 * and `tied` others are in a random order with them: 1 - P(at least k - above of the tied come first).
 */
function withinTop(k: number, above: number, tied: number, shared: number): number {
  const x = k - above;
  if (x <= 0) return 0;
  if (x > tied) return 1;
  let allFirst = 1; // P(the first x of the tied group are all not ground truths)
  for (let i = 0; i < x; i++) allFirst *= (tied - i) / (tied + shared - i);
  return 1 - allFirst;
}

function summarize({ above, tied, shared }: Placement): { scores: DirectionScores; ranks: Float64Array } {
  const n = above.length;
  const ranks = new Float64Array(n);
  for (let q = 0; q < n; q++) ranks[q] = above[q] + tied[q] / (shared[q] + 1);
  const within = (k: number) => {
    let c = 0;
    for (let q = 0; q < n; q++) c += withinTop(k, above[q], tied[q], shared[q]);
    return (100 * c) / n;
  };
  const sorted = Float64Array.from(ranks).sort();
  const median = n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  let sum = 0;
  for (const r of ranks) sum += r;
  return {
    scores: {
      'R@1': within(1),
      'R@5': within(5),
      'R@10': within(10),
      medr: Math.floor(median) + 1,
      meanr: sum / n + 1,
    },
    ranks,
  };
}

/**
 * @param similarity sim[i][j] = score of image i against text j (higher = more similar)
 * @param textToImage for each text j, the index of the image it describes (COCO/Flickr order:
 *   Math.floor(j / 5)); any mapping works, including a different number of texts per image.
 */
export function retrievalRecall(
  similarity: SimilarityMatrix | readonly (readonly number[])[],
  textToImage: ArrayLike<number>,
  { file }: { file?: string } = {},
): RetrievalScores {
  const at = where(file);
  // in a file the mapping is the field text_to_image
  const mapName = file ? 'text_to_image' : 'textToImage';
  const { rows, cols, data } = toMatrix(similarity, at);
  if (!textToImage || typeof textToImage !== 'object' || typeof textToImage.length !== 'number') {
    throw new MetricInputError(`${at}${mapName} must be a list of image indices, got ${show(textToImage)}`);
  }
  if (textToImage.length !== cols) {
    throw new MetricInputError(
      `${at}${mapName} has ${textToImage.length} entries for ${cols} texts (similarity columns)`,
    );
  }
  const hasText = new Uint8Array(rows);
  for (let j = 0; j < cols; j++) {
    const img = textToImage[j];
    if (!Number.isInteger(img) || img < 0 || img >= rows) {
      throw new MetricInputError(`${at}${mapName}[${j}] = ${show(img)} is not an image index in [0, ${rows})`);
    }
    hasText[img] = 1;
  }
  const missing = hasText.indexOf(0);
  if (missing >= 0)
    throw new MetricInputError(`${at}image ${missing} has no text in ${mapName}, so its i2t rank is undefined`);

  // i2t: best ground-truth score per image (and how many of its texts reach it), then count the
  // other texts scored above it and level with it.
  const i2t: Placement = { above: new Int32Array(rows), tied: new Int32Array(rows), shared: new Int32Array(rows) };
  const best = new Float64Array(rows).fill(-Infinity);
  for (let j = 0; j < cols; j++) {
    const i = textToImage[j];
    const v = data[i * cols + j];
    if (v > best[i]) {
      best[i] = v;
      i2t.shared[i] = 1;
    } else if (v === best[i]) i2t.shared[i]++;
  }
  // t2i: each text's ground-truth score, then count the other images above and level with it
  // (row-major pass).
  const t2i: Placement = {
    above: new Int32Array(cols),
    tied: new Int32Array(cols),
    shared: new Int32Array(cols).fill(1),
  };
  const target = new Float64Array(cols);
  for (let j = 0; j < cols; j++) target[j] = data[textToImage[j] * cols + j];
  for (let i = 0; i < rows; i++) {
    const off = i * cols;
    const b = best[i];
    let above = 0;
    let tied = 0;
    for (let j = 0; j < cols; j++) {
      const v = data[off + j];
      const own = textToImage[j] === i;
      if (v > b) above++;
      else if (v === b && !own) tied++;
      if (v > target[j]) t2i.above[j]++;
      else if (v === target[j] && !own) t2i.tied[j]++;
    }
    i2t.above[i] = above;
    i2t.tied[i] = tied;
  }
  const a = summarize(i2t);
  const b = summarize(t2i);
  const rsum =
    a.scores['R@1'] + a.scores['R@5'] + a.scores['R@10'] + b.scores['R@1'] + b.scores['R@5'] + b.scores['R@10'];
  return { i2t: a.scores, t2i: b.scores, rsum, i2tRanks: a.ranks, t2iRanks: b.ranks };
}

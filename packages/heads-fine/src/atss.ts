// ATSS target assignment of the fine-grained detector (`ATSSLossComputation.prepare_targets`):
// per GT, the TOPK anchors per level nearest by centre distance are candidates; a candidate is
// positive when its IoU >= mean + std of the candidates' IoUs and its centre lies inside the GT by
// more than 0.01; an anchor positive for several GTs takes the one with the highest IoU. Plain
// arrays, every step rounded to float32 in the official order so the decisions match it.
import { decodeBoxes, encodeBoxes } from './box-coder.js';
import { pairIouFloat32 } from './boxes.js';

export interface AtssConfig {
  /** Candidates per level and GT (`ATSS.TOPK`), times the anchors per location. */
  topk: number;
  anchorsPerLocation: number;
}

export const FIBER_ATSS: Readonly<AtssConfig> = Object.freeze({ topk: 9, anchorsPerLocation: 1 });

const f = Math.fround;

export interface AtssAssignment {
  /** [A] the GT each anchor is assigned to, -1 for negatives (A = anchors of all levels, level-major). */
  gtIndex: Int32Array;
  /** [A] IoU of each anchor with its GT (-Infinity for negatives). */
  gtIou: Float32Array;
  /** [G] mean + std (unbiased) of each GT's candidate IoUs. */
  iouThresholds: Float32Array;
  /** Positive anchor indices, ascending. */
  positives: number[];
}

/** The anchors of every level in one [A * 4] array (level-major). */
export function concatLevels(levels: readonly ArrayLike<number>[]): Float32Array {
  const out = new Float32Array(levels.reduce((s, l) => s + l.length, 0));
  let o = 0;
  for (const l of levels) {
    if (l.length % 4 !== 0)
      throw new RangeError(`ATSS: a level has ${l.length} anchor values, not a whole number of boxes`);
    out.set(l, o);
    o += l.length;
  }
  return out;
}

function checkGt(boxes: ArrayLike<number>): number {
  if (boxes.length % 4 !== 0)
    throw new RangeError(`ATSS: ${boxes.length} GT box values is not a whole number of boxes (4 each)`);
  const G = boxes.length / 4;
  for (let g = 0; g < G; g++) {
    const [x1, y1, x2, y2] = [boxes[4 * g], boxes[4 * g + 1], boxes[4 * g + 2], boxes[4 * g + 3]];
    if (![x1, y1, x2, y2].every(Number.isFinite) || x2 < x1 || y2 < y1) {
      throw new RangeError(
        `ATSS: GT box ${g} [${x1}, ${y1}, ${x2}, ${y2}] is not a finite xyxy box with x2 >= x1, y2 >= y1`,
      );
    }
  }
  return G;
}

/**
 * Assigns the anchors of one image (`anchorsPerLevel` from `generateAnchors`) to its [G, 4] xyxy GT
 * boxes. Equal centre distances pick the lower anchor index; equal IoUs across GTs the lower GT.
 */
export function atssAssign(
  anchorsPerLevel: readonly ArrayLike<number>[],
  gtBoxes: ArrayLike<number>,
  config: Partial<AtssConfig> = {},
): AtssAssignment {
  const { topk, anchorsPerLocation } = { ...FIBER_ATSS, ...config };
  const anchors = concatLevels(anchorsPerLevel);
  const A = anchors.length / 4;
  const G = checkGt(gtBoxes);
  // the official GT boxes are a float32 tensor: round them as it holds them before any step
  const gt = Float32Array.from(gtBoxes);
  const gtIndex = new Int32Array(A).fill(-1);
  const gtIou = new Float32Array(A).fill(-Infinity);
  const iouThresholds = new Float32Array(G);
  const acx = new Float32Array(A);
  const acy = new Float32Array(A);
  for (let a = 0; a < A; a++) {
    acx[a] = f(anchors[4 * a + 2] + anchors[4 * a]) / 2;
    acy[a] = f(anchors[4 * a + 3] + anchors[4 * a + 1]) / 2;
  }
  for (let g = 0; g < G; g++) {
    const gcx = f(f(gt[4 * g + 2] + gt[4 * g]) / 2);
    const gcy = f(f(gt[4 * g + 3] + gt[4 * g + 1]) / 2);
    const candidates: number[] = [];
    let start = 0;
    for (const level of anchorsPerLevel) {
      const n = level.length / 4;
      const dist = Array.from({ length: n }, (_, i) => {
        const dx = f(acx[start + i] - gcx);
        const dy = f(acy[start + i] - gcy);
        return f(Math.sqrt(f(f(dx * dx) + f(dy * dy))));
      });
      const k = Math.min(topk * anchorsPerLocation, n);
      const order = Array.from({ length: n }, (_, i) => i).sort((p, q) => dist[p] - dist[q] || p - q);
      for (let i = 0; i < k; i++) candidates.push(start + order[i]);
      start += n;
    }
    const ious = candidates.map((a) => pairIouFloat32(anchors, a, gt, g));
    const mean = ious.reduce((s, v) => s + v, 0) / ious.length;
    // torch.std is unbiased: NaN for a single candidate, which makes no anchor positive
    const std = Math.sqrt(ious.reduce((s, v) => s + (v - mean) ** 2, 0) / (ious.length - 1));
    const thresh = f(f(mean) + f(std));
    iouThresholds[g] = thresh;
    candidates.forEach((a, i) => {
      const inside = Math.min(
        f(acx[a] - gt[4 * g]),
        f(acy[a] - gt[4 * g + 1]),
        f(gt[4 * g + 2] - acx[a]),
        f(gt[4 * g + 3] - acy[a]),
      );
      if (ious[i] >= thresh && inside > 0.01 && ious[i] > gtIou[a]) {
        gtIou[a] = ious[i];
        gtIndex[a] = g;
      }
    });
  }
  const positives: number[] = [];
  gtIndex.forEach((g, a) => g >= 0 && positives.push(a));
  return { gtIndex, gtIou, iouThresholds, positives };
}

/** What the ATSS loss needs of one image. */
export interface AtssTargets extends AtssAssignment {
  /**
   * [A, T] token targets: the assigned GT's positive-map row (binarised), or the "no object" row
   * (1 on the last token).
   */
  tokenTargets: Float32Array;
  /** [P, 4] regression targets of the positives (`BoxCoder.encode`). */
  regTargets: Float32Array;
  /** [P, 4] the positives' anchors. */
  positiveAnchors: Float32Array;
  /** [P] centerness targets of the positives. */
  centernessTargets: Float32Array;
}

/** One image's ground truth for the grounding loss. */
export interface FineTarget {
  /** [G, 4] xyxy boxes in network-input pixels. */
  boxes: ArrayLike<number>;
  /** [G, T] positive map: row g marks the tokens of box g's phrase (normalised or 0/1; > 0 counts). */
  positiveMap: ArrayLike<number>;
  /**
   * Image-level labels (Detic-style weak supervision, not in FIBER): names the image shows without a
   * box, each as the prompt token indices of its phrase (e.g. a class named by the image's captions).
   * `atssLoss` makes the best-scoring anchor that no box took, centred outside every box, a positive
   * of those tokens and leaves the other anchors no box took out of their loss; see `atssLoss`.
   */
  imageLabels?: readonly (readonly number[])[];
}

/**
 * `compute_centerness_targets`: sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b)) of each anchor
 * centre within the box decoded back from its regression target.
 */
export function centernessTargets(regTargets: ArrayLike<number>, anchors: ArrayLike<number>): Float32Array {
  const gts = decodeBoxes(regTargets, anchors);
  const out = new Float32Array(gts.length / 4);
  for (let i = 0; i < out.length; i++) {
    const cx = f(f(anchors[4 * i + 2] + anchors[4 * i]) / 2);
    const cy = f(f(anchors[4 * i + 3] + anchors[4 * i + 1]) / 2);
    const l = f(cx - gts[4 * i]);
    const t = f(cy - gts[4 * i + 1]);
    const r = f(gts[4 * i + 2] - cx);
    const b = f(gts[4 * i + 3] - cy);
    out[i] = Math.sqrt(f(f(Math.min(l, r) / Math.max(l, r)) * f(Math.min(t, b) / Math.max(t, b))));
  }
  return out;
}

/** ATSS assignment plus every per-anchor target of one image. */
export function atssTargets(
  anchorsPerLevel: readonly ArrayLike<number>[],
  target: FineTarget,
  numTokens: number,
  config: Partial<AtssConfig> = {},
): AtssTargets {
  const assignment = atssAssign(anchorsPerLevel, target.boxes, config);
  const G = target.boxes.length / 4;
  if (target.positiveMap.length !== G * numTokens) {
    throw new RangeError(
      `ATSS: the positive map has ${target.positiveMap.length} values, expected ${G} boxes x ${numTokens} tokens`,
    );
  }
  const anchors = concatLevels(anchorsPerLevel);
  const { gtIndex, positives } = assignment;
  const tokenTargets = new Float32Array(gtIndex.length * numTokens);
  gtIndex.forEach((g, a) => {
    if (g < 0) tokenTargets[a * numTokens + numTokens - 1] = 1;
    else
      for (let t = 0; t < numTokens; t++)
        tokenTargets[a * numTokens + t] = target.positiveMap[g * numTokens + t] > 0 ? 1 : 0;
  });
  const P = positives.length;
  const matched = new Float32Array(4 * P);
  const positiveAnchors = new Float32Array(4 * P);
  positives.forEach((a, i) => {
    for (let j = 0; j < 4; j++) {
      matched[4 * i + j] = target.boxes[4 * gtIndex[a] + j];
      positiveAnchors[4 * i + j] = anchors[4 * a + j];
    }
  });
  const regTargets = encodeBoxes(matched, positiveAnchors);
  return {
    ...assignment,
    tokenTargets,
    regTargets,
    positiveAnchors,
    centernessTargets: centernessTargets(regTargets, positiveAnchors),
  };
}

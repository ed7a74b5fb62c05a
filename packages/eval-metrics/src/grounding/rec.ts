// Referring expression comprehension accuracy (RefCOCO/+/g): the top-1 predicted box is correct
// when its IoU with the ground-truth box is >= 0.5, inclusive (metrics-spec §11; plain IoU as most
// papers). `overlap: 'giou'` and `k` give FIBER's (and MDETR's) RefExpEvaluator instead: precision@1,
// 5 and 10 at generalised IoU >= 0.5, which is never above the plain IoU.
import { MetricInputError, show, where } from '../errors.js';
import { giouXyxy, iouXyxy, xywhToXyxy, type BoxXywh } from './boxes.js';

export interface RecSample {
  /** Ground-truth box, COCO [x, y, w, h]. */
  gtBox: BoxXywh;
  /** Predicted boxes [x, y, w, h], best first; the first is used (the first k with `k`). */
  predBoxes: BoxXywh[];
}

export interface RecOptions {
  /** The overlap thresholded: plain IoU (default, as most papers) or generalised IoU (FIBER's evaluator). */
  overlap?: 'iou' | 'giou';
  /** Default 0.5, inclusive. */
  iouThreshold?: number;
  /**
   * Also precision@k for each k: the share of samples whose first k boxes hold one at the threshold.
   * FIBER and MDETR report 1, 5 and 10. A sample with fewer boxes uses those it has.
   */
  k?: readonly number[];
  /** Names the file in errors (and the fields by their JSON names, `gt_box` / `pred_boxes`). */
  file?: string;
}

export interface RecResult {
  /** Precision@1: the share of samples whose top-1 box reaches the threshold. */
  accuracy: number;
  n: number;
  overlap: 'iou' | 'giou';
  /** The overlap (IoU, or GIoU under `overlap: 'giou'`) of each sample's top-1 box, and whether it counted as correct. */
  ious: number[];
  correct: boolean[];
  /** Precision@k for each k of the options (empty without them). */
  precisionAt: Record<number, number>;
}

/** A box of a REC sample: [x, y, w, h] finite numbers, w and h not negative (errors name `at` and `field`). */
export function checkRecBox(at: string, field: string, box: unknown): asserts box is BoxXywh {
  if (!Array.isArray(box) || box.length !== 4 || !box.every(Number.isFinite)) {
    throw new MetricInputError(`${at}: "${field}" must be [x, y, w, h] numbers, got ${show(box)}`);
  }
  if (box[2] < 0 || box[3] < 0) {
    throw new MetricInputError(`${at}: "${field}" has a negative width or height: ${show(box)}`);
  }
}

/**
 * Checks one REC sample as `recAccuracy` reads it: its ground-truth box, and its predicted boxes
 * (a non-empty list) up to the first `depth`. Errors name `at` and the fields as `names` gives them.
 */
export function checkRecSample(
  at: string,
  s: unknown,
  depth: number,
  names: { gt: string; pred: string } = { gt: 'gtBox', pred: 'predBoxes' },
): asserts s is RecSample {
  if (typeof s !== 'object' || s === null) throw new MetricInputError(`${at}: not an object (${show(s)})`);
  const { gtBox, predBoxes } = s as Partial<Record<keyof RecSample, unknown>>;
  checkRecBox(at, names.gt, gtBox);
  if (!Array.isArray(predBoxes))
    throw new MetricInputError(`${at}: "${names.pred}" must be a list of [x, y, w, h] boxes, got ${show(predBoxes)}`);
  if (!predBoxes.length) checkRecBox(at, `${names.pred}[0]`, undefined);
  predBoxes.slice(0, depth).forEach((box, j) => checkRecBox(at, `${names.pred}[${j}]`, box));
}

/** How many boxes of each sample `recAccuracy` reads: the largest k, at least 1. */
export const recDepth = (k: readonly number[] = []) => Math.max(1, ...k);

export function recAccuracy(
  samples: readonly RecSample[],
  { iouThreshold = 0.5, overlap = 'iou', k = [], file }: RecOptions = {},
): RecResult {
  if (!Array.isArray(samples))
    throw new MetricInputError(`${where(file)}expected a list of samples, got ${show(samples)}`);
  if (samples.length === 0) throw new MetricInputError(`${where(file)}no samples to evaluate`);
  if (overlap !== 'iou' && overlap !== 'giou')
    throw new MetricInputError(`overlap must be 'iou' or 'giou', got ${show(overlap)}`);
  if (!Array.isArray(k) || !k.every((v) => Number.isInteger(v) && v >= 1))
    throw new MetricInputError(`k must be a list of positive integers, got ${show(k)}`);
  const measure = overlap === 'giou' ? giouXyxy : iouXyxy;
  const depth = recDepth(k);
  // in a file the fields are gt_box and pred_boxes
  const names = file ? { gt: 'gt_box', pred: 'pred_boxes' } : undefined;
  // the overlap of each sample's first `depth` boxes with its ground truth
  const overlaps = samples.map((s, i) => {
    checkRecSample(file ? `${file}: [${i}]` : `sample ${i}`, s, depth, names);
    const gt = xywhToXyxy(s.gtBox);
    return s.predBoxes.slice(0, depth).map((box) => measure(xywhToXyxy(box), gt));
  });
  const ious = overlaps.map((o) => o[0]);
  const correct = ious.map((v) => v >= iouThreshold);
  const precisionAt: Record<number, number> = {};
  for (const kk of k)
    precisionAt[kk] = overlaps.filter((o) => o.slice(0, kk).some((v) => v >= iouThreshold)).length / samples.length;
  return {
    accuracy: correct.filter(Boolean).length / samples.length,
    n: samples.length,
    overlap,
    ious,
    correct,
    precisionAt,
  };
}

// Referring expression comprehension accuracy (RefCOCO/+/g): the top-1 predicted box is correct
// when its IoU with the ground-truth box is >= 0.5, inclusive (metrics-spec §11; plain IoU as most
// papers, not MDETR's GIoU).
import { MetricInputError, show, where } from '../errors.js';
import { iouXyxy, xywhToXyxy, type BoxXywh } from './boxes.js';

export interface RecSample {
  /** Ground-truth box, COCO [x, y, w, h]. */
  gtBox: BoxXywh;
  /** Predicted boxes [x, y, w, h], best first; only the first is used. */
  predBoxes: BoxXywh[];
}

export interface RecResult {
  accuracy: number;
  n: number;
  /** IoU of each sample's top-1 box, and whether it counted as correct. */
  ious: number[];
  correct: boolean[];
}

export function recAccuracy(
  samples: readonly RecSample[],
  { iouThreshold = 0.5, file }: { iouThreshold?: number; file?: string } = {},
): RecResult {
  if (!Array.isArray(samples))
    throw new MetricInputError(`${where(file)}expected a list of samples, got ${show(samples)}`);
  if (samples.length === 0) throw new MetricInputError(`${where(file)}no samples to evaluate`);
  // in a file the fields are gt_box and pred_boxes
  const [gtName, predName] = file ? ['gt_box', 'pred_boxes[0]'] : ['gtBox', 'predBoxes[0]'];
  const ious = samples.map((s, i) => {
    const at = file ? `${file}: [${i}]` : `sample ${i}`;
    if (typeof s !== 'object' || s === null) throw new MetricInputError(`${at}: not an object (${show(s)})`);
    for (const [field, box] of [
      [gtName, s.gtBox],
      [predName, s.predBoxes?.[0]],
    ] as const) {
      if (!Array.isArray(box) || box.length !== 4 || !box.every(Number.isFinite)) {
        throw new MetricInputError(`${at}: "${field}" must be [x, y, w, h] numbers, got ${show(box)}`);
      }
      if (box[2] < 0 || box[3] < 0) {
        throw new MetricInputError(`${at}: "${field}" has a negative width or height: ${show(box)}`);
      }
    }
    return iouXyxy(xywhToXyxy(s.predBoxes[0]), xywhToXyxy(s.gtBox));
  });
  const correct = ious.map((v) => v >= iouThreshold);
  return { accuracy: correct.filter(Boolean).length / samples.length, n: samples.length, ious, correct };
}

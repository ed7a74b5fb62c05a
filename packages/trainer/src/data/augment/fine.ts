// FIBER's fine-grained transform (fine_grained/maskrcnn_benchmark/data/transforms/build.py):
// Resize(shorter side drawn from MULT_MIN_SIZE_TRAIN = 480..800 step 80, longer <= 1333, bilinear)
// -> RandomHorizontalFlip(0.5; 0 for RefCOCO) -> ToTensor -> BGR x 255 with the Caffe mean / std.
// Boxes use maskrcnn_benchmark's pixel convention: COCO [x, y, w, h] -> [x, y, x + w - 1, y + h - 1],
// clipped to [0, W - 1] x [0, H - 1]; a flip maps x to W - x - 1.
import { DETECTION_PIXEL_MEAN, DETECTION_PIXEL_STD, detectionSize, pillowResize, type RawImage } from '@fiber-vl/swin';
import type { Generator } from '@fiber-vl/tensor-core';
import type { Box } from '../records.js';
import type { Skip } from '../skips.js';
import { hflip, type Rgb } from './ops.js';
import type { Targets } from './targets.js';

/** AUGMENT.MULT_MIN_SIZE_TRAIN of every FIBER fine-grained config. */
export const FIBER_FINE_MIN_SIZES = [480, 560, 640, 720, 800] as const;

/**
 * Continuous boxes to maskrcnn_benchmark's inclusive ones (ConvertCocoPolysToMask + clip_to_image):
 * x2 - 1, y2 - 1, clipped to the last pixel; boxes of at most one pixel are dropped ('degenerate-box').
 */
export function toLegacyBoxes(t: Targets, width: number, height: number, dropped: Skip[]): Targets {
  const keep: boolean[] = [];
  const boxes = t.boxes.map((b, i): Box => {
    const c: Box = [
      Math.min(Math.max(b[0], 0), width - 1),
      Math.min(Math.max(b[1], 0), height - 1),
      Math.min(Math.max(b[2] - 1, 0), width - 1),
      Math.min(Math.max(b[3] - 1, 0), height - 1),
    ];
    keep[i] = c[2] > c[0] && c[3] > c[1];
    if (!keep[i])
      dropped.push({
        reason: 'degenerate-box',
        detail: `box ${i} [${b.join(', ')}] is at most one pixel wide or high (maskrcnn_benchmark's TO_REMOVE = 1)`,
      });
    return c;
  });
  const sel = <T>(xs: T[] | undefined) => xs?.filter((_, i) => keep[i]);
  const out: Targets = { boxes: boxes.filter((_, i) => keep[i]) };
  if (t.spans) out.spans = sel(t.spans);
  if (t.categories) out.categories = sel(t.categories);
  return out;
}

export interface FineAugmentOptions {
  /** Shorter-side sizes to draw from (eval: [800]). */
  minSizes?: readonly number[];
  maxSize?: number;
  flipProb?: number;
}

/** Resize (multi-scale) + flip of an image and its legacy-convention boxes. */
export function fineAugment(
  img: Rgb,
  rng: Generator,
  { minSizes = FIBER_FINE_MIN_SIZES, maxSize = 1333, flipProb = 0.5 }: FineAugmentOptions,
  targets?: Targets,
): { image: Rgb; targets?: Targets; flipped: boolean; minSize: number } {
  // random.choice(min_size) is drawn even when there is a single size, keeping the stream aligned.
  const minSize = minSizes[rng.nextInt(minSizes.length)];
  const { width, height } = detectionSize(img.width, img.height, minSize, maxSize);
  let image = pillowResize(img, width, height, 'bilinear') as Rgb;
  // BoxList.resize: one ratio when both axes scale alike, else per axis.
  const rx = width / img.width;
  const ry = height / img.height;
  let t = targets && {
    ...targets,
    boxes: targets.boxes.map(([x1, y1, x2, y2]): Box => [x1 * rx, y1 * ry, x2 * rx, y2 * ry]),
  };
  const flipped = rng.nextDouble() < flipProb;
  if (flipped) {
    image = hflip(image);
    t = t && { ...t, boxes: t.boxes.map(([x1, y1, x2, y2]): Box => [width - x2 - 1, y1, width - x1 - 1, y2]) };
  }
  return { image, targets: t, flipped, minSize };
}

/** ToTensor, RGB -> BGR, x 255, Caffe mean / std (detectionImageTransform's arithmetic) -> Float32Array [3, H, W]. */
export function fineNormalize(img: RawImage): Float32Array {
  const { width, height } = img;
  const n = width * height;
  const out = new Float32Array(3 * n);
  const f = Math.fround;
  for (let c = 0; c < 3; c++) {
    const src = 2 - c;
    const mean = f(DETECTION_PIXEL_MEAN[c]);
    const std = f(DETECTION_PIXEL_STD[c]);
    for (let i = 0; i < n; i++) out[c * n + i] = f(f(img.data[i * img.channels + src] - mean) / std);
  }
  return out;
}

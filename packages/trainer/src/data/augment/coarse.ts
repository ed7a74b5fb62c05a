// FIBER's coarse-grained training transform `albef_randaug` (coarse_grained/fiber/transforms/
// transform.py): RandomResizedCrop(S, scale=(0.5, 1), bicubic) -> RandomHorizontalFlip ->
// RandomAugment(2, 7, 10 ops) -> ToTensor -> Normalize; and the eval transform `albef` (resize only).
// Random draws come from the sample's Generator, in the order the official code draws them.
import { fiberImageTransform, pillowResize, type RawImage } from '@fiber-vl/swin';
import type { Generator } from '@fiber-vl/tensor-core';
import type { Skip } from '../skips.js';
import {
  type Affine,
  autoContrast,
  brightness,
  crop,
  equalize,
  hflip,
  rotationMatrix,
  type Rgb,
  sharpness,
  shearXMatrix,
  shearYMatrix,
  translateXMatrix,
  translateYMatrix,
  warpAffine,
} from './ops.js';
import { affineTargets, cropTargets, flipTargets, scaleTargets, type Targets } from './targets.js';

/** Python's round(): halves to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * torchvision RandomResizedCrop.get_params: [top, left, height, width]; 10 tries, then a centre crop of clamped
 * ratio.
 */
export function randomResizedCropParams(
  width: number,
  height: number,
  rng: Generator,
  scale: readonly [number, number] = [0.5, 1],
  ratio: readonly [number, number] = [3 / 4, 4 / 3],
): [number, number, number, number] {
  const area = width * height;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * (scale[0] + (scale[1] - scale[0]) * rng.nextDouble());
    const aspect = Math.exp(logRatio[0] + (logRatio[1] - logRatio[0]) * rng.nextDouble());
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height)
      return [rng.nextInt(height - h + 1), rng.nextInt(width - w + 1), h, w];
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < Math.min(...ratio)) h = roundHalfEven(w / Math.min(...ratio));
  else if (inRatio > Math.max(...ratio)) w = roundHalfEven(h * Math.max(...ratio));
  return [Math.floor((height - h) / 2), Math.floor((width - w) / 2), h, w];
}

/** The ops FIBER's `albef_randaug` samples from (transform.py's `augs` list). */
export const FIBER_RANDAUG_OPS = [
  'Identity',
  'AutoContrast',
  'Equalize',
  'Brightness',
  'Sharpness',
  'ShearX',
  'ShearY',
  'TranslateX',
  'TranslateY',
  'Rotate',
] as const;
export type RandAugmentOp = (typeof FIBER_RANDAUG_OPS)[number];

export interface RandAugmentOptions {
  /** Ops drawn per image (with replacement), each applied with probability 0.5. FIBER: 2. */
  n?: number;
  /** Magnitude on the 0..10 scale. FIBER: 7. */
  m?: number;
  ops?: readonly RandAugmentOp[];
  /**
   * Reproduce two numpy artefacts of the official code: AutoContrast's uint8 `-low` wrap (channels
   * with a minimum above 0 turn white) and Sharpness' wrapping float -> uint8 cast. Default false.
   */
  albefQuirks?: boolean;
}

const MAX_LEVEL = 10;
const TRANSLATE_CONST = 10;
const FILL: [number, number, number] = [128, 128, 128];

/**
 * One op at magnitude m, as ALBEF's arg_dict maps it: enhance factor m/10*1.8+0.1, shear m/10*0.3, translate m px,
 * rotate m/10*30 degrees.
 */
function applyOp(
  img: Rgb,
  op: RandAugmentOp,
  m: number,
  rng: Generator,
  quirks: boolean,
  t: Targets | undefined,
  dropped: Skip[],
): [Rgb, Targets | undefined] {
  const geometric = (M: Affine): [Rgb, Targets | undefined] => [
    warpAffine(img, M, FILL),
    t && affineTargets(t, M, img.width, img.height, dropped),
  ];
  // shear / translate negate when random() > 0.5; rotate when random() < 0.5 (as in randaug.py).
  const signed = (v: number) => (rng.nextDouble() > 0.5 ? -v : v);
  switch (op) {
    case 'Identity':
      return [img, t];
    case 'AutoContrast':
      return [autoContrast(img, quirks), t];
    case 'Equalize':
      return [equalize(img), t];
    case 'Brightness':
      return [brightness(img, (m / MAX_LEVEL) * 1.8 + 0.1), t];
    case 'Sharpness':
      return [sharpness(img, (m / MAX_LEVEL) * 1.8 + 0.1, quirks), t];
    case 'ShearX':
      return geometric(shearXMatrix(signed((m / MAX_LEVEL) * 0.3)));
    case 'ShearY':
      return geometric(shearYMatrix(signed((m / MAX_LEVEL) * 0.3)));
    case 'TranslateX':
      return geometric(translateXMatrix(signed((m / MAX_LEVEL) * TRANSLATE_CONST)));
    case 'TranslateY':
      return geometric(translateYMatrix(signed((m / MAX_LEVEL) * TRANSLATE_CONST)));
    case 'Rotate': {
      const deg = (m / MAX_LEVEL) * 30;
      return geometric(rotationMatrix(img.width, img.height, rng.nextDouble() < 0.5 ? -deg : deg));
    }
  }
}

/**
 * ALBEF's RandomAugment: draw n ops, then for each, skip it when random() > 0.5, else apply it. Returns the ops
 * applied.
 */
export function randAugment(
  img: Rgb,
  rng: Generator,
  { n = 2, m = 7, ops = FIBER_RANDAUG_OPS, albefQuirks = false }: RandAugmentOptions = {},
  targets?: Targets,
  dropped: Skip[] = [],
): { image: Rgb; targets?: Targets; applied: RandAugmentOp[] } {
  const chosen = Array.from({ length: n }, () => ops[rng.nextInt(ops.length)]);
  const applied: RandAugmentOp[] = [];
  let t = targets;
  for (const op of chosen) {
    if (rng.nextDouble() > 0.5) continue;
    [img, t] = applyOp(img, op, m, rng, albefQuirks, t, dropped);
    applied.push(op);
  }
  return { image: img, targets: t, applied };
}

export interface CoarseAugmentOptions {
  size: number;
  /** RandomResizedCrop area scale and aspect ratio range. */
  scale?: [number, number];
  ratio?: [number, number];
  flipProb?: number;
  /** null: no RandAugment. */
  randAugment?: RandAugmentOptions | null;
}

/** The augmented S x S image (uint8) of `albef_randaug`, with its boxes (if any) carried along. */
export function coarseAugment(
  img: Rgb,
  rng: Generator,
  { size, scale = [0.5, 1], ratio = [3 / 4, 4 / 3], flipProb = 0.5, randAugment: ra = {} }: CoarseAugmentOptions,
  targets?: Targets,
  dropped: Skip[] = [],
): {
  image: Rgb;
  targets?: Targets;
  flipped: boolean;
  crop: [number, number, number, number];
  applied: RandAugmentOp[];
} {
  const [top, left, h, w] = randomResizedCropParams(img.width, img.height, rng, scale, ratio);
  let out = pillowResize(crop(img, left, top, w, h), size, size, 'bicubic') as Rgb;
  let t = targets && scaleTargets(cropTargets(targets, left, top, w, h, dropped), size / w, size / h);
  const flipped = rng.nextDouble() < flipProb;
  if (flipped) {
    out = hflip(out);
    t = t && flipTargets(t, size);
  }
  let applied: RandAugmentOp[] = [];
  if (ra) ({ image: out, targets: t, applied } = randAugment(out, rng, ra, t, dropped));
  return { image: out, targets: t, flipped, crop: [top, left, h, w], applied };
}

/** `albef` eval resize of an image with its boxes: Resize((S, S), bicubic), aspect ratio not kept. */
export function coarseResize(img: RawImage, size: number, targets?: Targets): { image: Rgb; targets?: Targets } {
  const image = pillowResize(img, size, size, 'bicubic') as Rgb;
  return { image, targets: targets && scaleTargets(targets, size / img.width, size / img.height) };
}

/**
 * ToTensor + ImageNet Normalize of an S x S image -> Float32Array [3, S, S] (fiberImageTransform, whose resize is
 * then a no-op).
 */
export function coarseNormalize(img: Rgb): Float32Array {
  if (img.width !== img.height)
    throw new Error(`coarseNormalize: expected a square image, got ${img.width}x${img.height}`);
  return fiberImageTransform(img, img.width);
}

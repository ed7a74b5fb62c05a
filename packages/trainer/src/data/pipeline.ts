// One sample from one record: read and decode its images, check its boxes against the decoded
// size, augment with the sample's own random stream, normalise. A pure function of the task, so a
// worker thread and the training thread prepare identical samples.
import type { ImageDecoder, RawImage } from '@fiber-vl/swin';
import { type FileReader, type ImageLocation, loadImage } from './images.js';
import { sampleGenerator } from './order.js';
import type { DataRecord, GroundingRecord } from './records.js';
import { DataSkipError, type Skip, skipOf } from './skips.js';
import { type BoxPolicy, checkRecordBoxes } from './validate.js';
import {
  coarseAugment,
  coarseNormalize,
  coarseResize,
  type RandAugmentOptions,
  type RandAugmentOp,
} from './augment/coarse.js';
import { FIBER_FINE_MIN_SIZES, fineAugment, fineNormalize, toLegacyBoxes } from './augment/fine.js';
import type { Rgb } from './augment/ops.js';
import { swapLeftRight, type Targets } from './augment/targets.js';

/** The coarse transforms: `albef_randaug` when `augment`, else `albef` (resize to size x size). */
export interface CoarseTransform {
  kind: 'coarse';
  size: number;
  augment: boolean;
  scale?: [number, number];
  ratio?: [number, number];
  flipProb?: number;
  /** Defaults to FIBER's RandAugment(2, 7); null turns it off. */
  randAugment?: RandAugmentOptions | null;
  /** Exchange "left" / "right" in the text of a flipped single-image sample (not FIBER's recipe). Default false. */
  swapLeftRight?: boolean;
  /** 'normalized' (default): Float32Array [3, S, S] ready for the model; 'uint8': the augmented RGB pixels. */
  output?: 'normalized' | 'uint8';
}

/** The fine-grained transform: multi-scale resize + flip when `augment`, else shorter side 800 (<= 1333). */
export interface FineTransform {
  kind: 'fine';
  augment: boolean;
  minSizes?: number[];
  maxSize?: number;
  /** Default 0.5 when augmenting (FIBER's RefCOCO configs use 0). */
  flipProb?: number;
  swapLeftRight?: boolean;
  /** 'normalized' (default): BGR Caffe-normalised Float32Array [3, H, W]; 'uint8': RGB pixels. */
  output?: 'normalized' | 'uint8';
}

/** Decoded RGB pixels, no resize. */
export interface DecodeOnly {
  kind: 'decode';
}

export type TransformSpec = CoarseTransform | FineTransform | DecodeOnly;

export const coarseTrainTransform = (size: number, extra: Partial<CoarseTransform> = {}): CoarseTransform => ({
  kind: 'coarse',
  size,
  augment: true,
  ...extra,
});
export const coarseEvalTransform = (size: number): CoarseTransform => ({ kind: 'coarse', size, augment: false });
export const fineTrainTransform = (extra: Partial<FineTransform> = {}): FineTransform => ({
  kind: 'fine',
  augment: true,
  ...extra,
});
export const fineEvalTransform = (extra: Partial<FineTransform> = {}): FineTransform => ({
  kind: 'fine',
  augment: false,
  ...extra,
});

/** Everything needed to prepare one sample; plain data, posted as is to a worker. */
export interface SampleTask {
  record: DataRecord;
  /** The record's images, located by the training thread (one per image ref, in order). */
  locations: ImageLocation[];
  index: number;
  position: number;
  epoch: number;
  seed: number;
  transform: TransformSpec;
  /** For boxes found bad against the decoded image; default: 'skip-record' for grounding, 'drop-box' for detection. */
  boxPolicy?: BoxPolicy;
}

/** A prepared image: CHW float32 (normalised) or HWC uint8 RGB. */
export type SampleImage =
  | { layout: 'chw'; width: number; height: number; data: Float32Array }
  | { layout: 'hwc'; width: number; height: number; data: Uint8Array };

export interface Sample<R extends DataRecord = DataRecord> {
  /** The record as augmented: text (left/right swapped if asked), boxes in the output image's pixels. */
  record: R;
  images: SampleImage[];
  index: number;
  position: number;
  epoch: number;
  /**
   * 'xyxy': continuous [x1, y1, x2, y2]; 'xyxy-inclusive': maskrcnn_benchmark's [x1, y1, x2, y2] with
   * x2 the last pixel (fine transform).
   */
  boxFormat: 'xyxy' | 'xyxy-inclusive';
  /** Per image: flipped or not, and the RandAugment ops applied. */
  flipped: boolean[];
  augmentOps: RandAugmentOp[][];
  /** Boxes dropped while preparing (outside the decoded image, cropped out, sub-pixel). */
  dropped: Skip[];
}

export type SampleResult = { ok: true; sample: Sample } | { ok: false; skip: Skip; dropped: Skip[] };

export interface SampleIO {
  decoder: ImageDecoder;
  readFile?: FileReader;
}

function targetsOf(r: DataRecord): Targets | undefined {
  if (r.kind === 'grounding') return { boxes: r.boxes, spans: r.spans, categories: r.categories };
  if (r.kind === 'detection') return { boxes: r.boxes, categories: r.labels };
  return undefined;
}

function withTargets(r: DataRecord, t: Targets | undefined, text: string | undefined): DataRecord {
  if (r.kind === 'grounding') {
    const out: GroundingRecord = { ...r, boxes: t!.boxes, spans: t!.spans!, text: text ?? r.text };
    if (r.categories) out.categories = t!.categories;
    return out;
  }
  if (r.kind === 'detection') return { ...r, boxes: t!.boxes, labels: t!.categories! };
  return text !== undefined && 'text' in r ? { ...r, text } : r;
}

const chw = (img: Rgb, data: Float32Array): SampleImage => ({
  layout: 'chw',
  width: img.width,
  height: img.height,
  data,
});
const hwc = (img: RawImage): SampleImage => ({
  layout: 'hwc',
  width: img.width,
  height: img.height,
  data: Uint8Array.from(img.data),
});

/** Prepares one sample; every failure becomes a skip with its reason (never a throw). */
export async function prepareSample(task: SampleTask, io: SampleIO): Promise<SampleResult> {
  const dropped: Skip[] = [];
  try {
    return { ok: true, sample: await prepare(task, io, dropped) };
  } catch (e) {
    return { ok: false, skip: skipOf(e), dropped };
  }
}

async function prepare(task: SampleTask, io: SampleIO, dropped: Skip[]): Promise<Sample> {
  const { transform: spec } = task;
  let record = task.record;
  const decoded: Rgb[] = [];
  for (const loc of task.locations) decoded.push((await loadImage(loc, io.decoder, io.readFile)) as Rgb);
  const where = `${record.kind} ${record.id}`;
  if (record.kind === 'grounding' || record.kind === 'detection') {
    const size = { width: decoded[0].width, height: decoded[0].height };
    const policy = task.boxPolicy ?? (record.kind === 'grounding' ? 'skip-record' : 'drop-box');
    const checked = checkRecordBoxes(record, size, policy, where);
    record = checked.record;
    for (const d of checked.dropped) dropped.push(d); // no push(...list): a record of 100k+ bad boxes overflowed the stack
  }
  const rng = sampleGenerator(task.seed, task.epoch, task.index);
  const base = { index: task.index, position: task.position, epoch: task.epoch, dropped };
  if (spec.kind === 'decode') {
    return {
      ...base,
      record,
      images: decoded.map(hwc),
      boxFormat: 'xyxy',
      flipped: decoded.map(() => false),
      augmentOps: decoded.map(() => []),
    };
  }
  let targets = targetsOf(record);
  const images: SampleImage[] = [];
  const flipped: boolean[] = [];
  const augmentOps: RandAugmentOp[][] = [];
  if (spec.kind === 'coarse') {
    for (const img of decoded) {
      let out: Rgb;
      if (spec.augment) {
        const r = coarseAugment(
          img,
          rng,
          {
            size: spec.size,
            scale: spec.scale,
            ratio: spec.ratio,
            flipProb: spec.flipProb,
            randAugment: spec.randAugment === null ? null : (spec.randAugment ?? {}),
          },
          targets,
          dropped,
        );
        out = r.image;
        targets = r.targets;
        flipped.push(r.flipped);
        augmentOps.push(r.applied);
      } else {
        const r = coarseResize(img, spec.size, targets);
        out = r.image;
        targets = r.targets;
        flipped.push(false);
        augmentOps.push([]);
      }
      images.push(spec.output === 'uint8' ? hwc(out) : chw(out, coarseNormalize(out)));
    }
  } else {
    if (targets) {
      targets = toLegacyBoxes(targets, decoded[0].width, decoded[0].height, dropped);
      if (targets.boxes.length === 0)
        throw new DataSkipError('no-valid-boxes', `${where}: every box is at most one pixel wide or high`);
    }
    for (const img of decoded) {
      const opts = spec.augment
        ? { minSizes: spec.minSizes ?? FIBER_FINE_MIN_SIZES, maxSize: spec.maxSize, flipProb: spec.flipProb }
        : { minSizes: spec.minSizes ?? [800], maxSize: spec.maxSize, flipProb: spec.flipProb ?? 0 };
      const r = fineAugment(img, rng, opts, targets);
      targets = r.targets;
      flipped.push(r.flipped);
      augmentOps.push([]);
      images.push(spec.output === 'uint8' ? hwc(r.image) : chw(r.image, fineNormalize(r.image)));
    }
  }
  let text: string | undefined;
  if (spec.swapLeftRight && decoded.length === 1 && flipped[0] && record.kind !== 'detection') {
    const swapped = swapLeftRight(record.text, targets?.spans);
    text = swapped.text;
    if (targets) targets = { ...targets, spans: swapped.spans };
  }
  return {
    ...base,
    record: withTargets(record, targets, text),
    images,
    boxFormat: spec.kind === 'fine' ? 'xyxy-inclusive' : 'xyxy',
    flipped,
    augmentOps,
  };
}

/** The buffers of a result, to transfer (not copy) from a worker. */
export function transferables(r: SampleResult): ArrayBuffer[] {
  if (!r.ok) return [];
  const out: ArrayBuffer[] = [];
  for (const img of r.sample.images) if (img.data.buffer instanceof ArrayBuffer) out.push(img.data.buffer);
  return out;
}

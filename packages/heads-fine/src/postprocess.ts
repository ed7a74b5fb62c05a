// Inference post-processing of the fine-grained detector: `ATSSPostProcessor` with the dot-product
// token head and the GPU `ml_nms` branch of `select_over_all_levels`, on plain arrays; plus the
// detection / grounding result types of the task API and the map back to original pixels.
import type { tf } from '@fiber-vl/tensor-core';
import { generateAnchors, type AnchorConfig } from './anchors.js';
import { decodeBoxes } from './box-coder.js';
import { argsortDescending, clipBoxes, keepLargeBoxes, keepTopScores, multiLabelNms } from './boxes.js';
import type { DyHeadOutput } from './dyhead.js';
import type { TruncationReport } from './prompts.js';

/** `MODEL.ATSS` inference settings. */
export interface PostprocessConfig {
  /** Candidates need a token-aggregated class score > this, before centerness (`INFERENCE_TH`). */
  preNmsThresh: number;
  /** At most this many candidates per level and image (`PRE_NMS_TOP_N`). */
  preNmsTopN: number;
  /** Class-wise NMS IoU threshold (`NMS_TH`); <= 0 disables NMS. */
  nmsThresh: number;
  /** Detections kept per image (`DETECTIONS_PER_IMG`; 300 for LVIS); <= 0 keeps all. */
  detectionsPerImage: number;
  /** `remove_small_boxes` min size (0 in the official post-processor). */
  minSize: number;
  /** How a class's token probabilities become its score (`DYHEAD.SCORE_AGG`). */
  scoreAggregation: 'mean' | 'max';
}

export const FIBER_POSTPROCESS: Readonly<PostprocessConfig> = Object.freeze({
  preNmsThresh: 0.05,
  preNmsTopN: 1000,
  nmsThresh: 0.6,
  detectionsPerImage: 100,
  minSize: 0,
  scoreAggregation: 'mean',
});

/** Throws through `bad(field, why)` for settings that are not numbers of the right kind. */
export function validatePostprocessConfig(c: PostprocessConfig, bad: (field: string, why: string) => never): void {
  const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  for (const field of ['preNmsThresh', 'nmsThresh'] as const)
    if (!finite(c[field])) bad(field, `must be a finite number, got ${String(c[field])}`);
  if (!Number.isInteger(c.preNmsTopN) || c.preNmsTopN < 1)
    bad('preNmsTopN', `must be a positive integer, got ${String(c.preNmsTopN)}`);
  if (!Number.isInteger(c.detectionsPerImage))
    bad('detectionsPerImage', `must be an integer (<= 0 keeps all), got ${String(c.detectionsPerImage)}`);
  if (!finite(c.minSize) || c.minSize < 0) bad('minSize', `must be a finite number >= 0, got ${String(c.minSize)}`);
  if (c.scoreAggregation !== 'mean' && c.scoreAggregation !== 'max')
    bad('scoreAggregation', `must be "mean" or "max", got ${JSON.stringify(c.scoreAggregation) ?? 'nothing'}`);
}

/** One FPN level of one image, flattened like `permute_and_flatten`: L = H * W * A anchors ordered (y, x, a). */
export interface LevelOutputs {
  /** [L, T] dot-product logits. */
  dotProductLogits: ArrayLike<number>;
  /** [L, 4] box regression codes. */
  boxRegression: ArrayLike<number>;
  /** [L] centerness logits. */
  centerness: ArrayLike<number>;
  /** [L, 4] xyxy anchors of the level (`generateAnchors`). */
  anchors: ArrayLike<number>;
}

/** Detections of one image in network-input pixels (the resized, unpadded image). */
export interface RawDetections {
  /** [N, 4] xyxy. */
  boxes: Float32Array;
  scores: Float32Array;
  /** 1-based labels: label k is row k - 1 of the label -> tokens map. */
  labels: Int32Array;
}

export interface ImageSize {
  width: number;
  height: number;
}

const f = Math.fround;
const sigmoid = (x: number) => f(1 / (1 + Math.exp(-x)));

function levelSize(level: LevelOutputs, index: number): { L: number; T: number } {
  const L = level.centerness.length;
  if (level.boxRegression.length !== 4 * L || level.anchors.length !== 4 * L) {
    throw new RangeError(
      `postprocess: level ${index} has ${L} centerness values but ${level.boxRegression.length / 4} box codes ` +
        `and ${level.anchors.length / 4} anchors`,
    );
  }
  if (L > 0 && level.dotProductLogits.length % L !== 0) {
    throw new RangeError(
      `postprocess: level ${index} has ${level.dotProductLogits.length} dot-product logits, ` +
        `not a multiple of its ${L} anchors`,
    );
  }
  return { L, T: L === 0 ? 0 : level.dotProductLogits.length / L };
}

function checkTokens(labelToTokens: readonly (readonly number[])[], T: number) {
  labelToTokens.forEach((tokens, c) => {
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= T)
        throw new RangeError(`postprocess: label ${c + 1} points at token ${t}, outside the ${T} token logits`);
    }
  });
}

/**
 * `convert_grounding_to_od_logits` on probabilities: [L, C] class scores, score[l, c] = mean (or
 * max) of sigmoid(logit[l, t]) over the tokens t of label c + 1. A label without tokens scores NaN
 * (torch's mean of nothing), which never passes a threshold.
 */
export function classScores(
  dotProductLogits: ArrayLike<number>,
  numTokens: number,
  labelToTokens: readonly (readonly number[])[],
  aggregation: PostprocessConfig['scoreAggregation'] = 'mean',
): Float32Array {
  if (!Number.isInteger(numTokens) || numTokens < 0)
    throw new RangeError(`classScores: numTokens must be an integer >= 0, got ${String(numTokens)}`);
  if (numTokens === 0 ? dotProductLogits.length !== 0 : dotProductLogits.length % numTokens !== 0)
    throw new RangeError(
      `classScores: ${dotProductLogits.length} dot-product logits are not whole rows of ${numTokens} tokens`,
    );
  const L = numTokens === 0 ? 0 : dotProductLogits.length / numTokens;
  checkTokens(labelToTokens, numTokens);
  const C = labelToTokens.length;
  const out = new Float32Array(L * C);
  for (let l = 0; l < L; l++) {
    for (let c = 0; c < C; c++) {
      const tokens = labelToTokens[c];
      let acc = aggregation === 'max' ? -Infinity : 0;
      for (const t of tokens) {
        const p = sigmoid(dotProductLogits[l * numTokens + t]);
        acc = aggregation === 'max' ? Math.max(acc, p) : f(acc + p);
      }
      out[l * C + c] = tokens.length === 0 ? NaN : aggregation === 'max' ? acc : acc / tokens.length;
    }
  }
  return out;
}

/** [L, C] final scores before thresholding: sqrt(classScore * sigmoid(centerness)). */
export function detectionScores(
  level: LevelOutputs,
  labelToTokens: readonly (readonly number[])[],
  aggregation: PostprocessConfig['scoreAggregation'] = 'mean',
): Float32Array {
  const { L, T } = levelSize(level, 0);
  const s = classScores(level.dotProductLogits, T, labelToTokens, aggregation);
  const C = labelToTokens.length;
  for (let l = 0; l < L; l++) {
    const ctr = sigmoid(level.centerness[l]);
    for (let c = 0; c < C; c++) s[l * C + c] = Math.sqrt(f(s[l * C + c] * ctr));
  }
  return s;
}

/** `forward_for_single_feature_map` for one image: thresholded, top-k, decoded, clipped candidates. */
function selectLevel(
  level: LevelOutputs,
  index: number,
  labelToTokens: readonly (readonly number[])[],
  image: ImageSize,
  cfg: PostprocessConfig,
): RawDetections {
  const { L, T } = levelSize(level, index);
  if (L === 0) return { boxes: new Float32Array(0), scores: new Float32Array(0), labels: new Int32Array(0) };
  const C = labelToTokens.length;
  // torch compares the float32 scores with the threshold cast to float32
  const thresh = f(cfg.preNmsThresh);
  const cls = classScores(level.dotProductLogits, T, labelToTokens, cfg.scoreAggregation);
  // candidates in nonzero() order: location-major, then label
  const loc: number[] = [];
  const label: number[] = [];
  const score: number[] = [];
  for (let l = 0; l < L; l++) {
    const ctr = sigmoid(level.centerness[l]);
    for (let c = 0; c < C; c++) {
      const s = cls[l * C + c];
      if (s > thresh) {
        loc.push(l);
        label.push(c + 1);
        score.push(f(s * ctr));
      }
    }
  }
  // topk(min(count, pre_nms_top_n)); equal scores keep candidate order
  const top = argsortDescending(score).slice(0, Math.max(0, Math.min(score.length, cfg.preNmsTopN)));
  const codes = new Float32Array(top.length * 4);
  const anchors = new Float32Array(top.length * 4);
  top.forEach((k, i) => {
    for (let j = 0; j < 4; j++) {
      codes[4 * i + j] = level.boxRegression[4 * loc[k] + j];
      anchors[4 * i + j] = level.anchors[4 * loc[k] + j];
    }
  });
  const boxes = clipBoxes(decodeBoxes(codes, anchors), image.width, image.height);
  const keep = keepLargeBoxes(boxes, cfg.minSize);
  return pick(
    {
      boxes,
      scores: Float32Array.from(top, (k) => Math.sqrt(score[k])),
      labels: Int32Array.from(top, (k) => label[k]),
    },
    keep,
  );
}

function pick(d: RawDetections, keep: readonly number[]): RawDetections {
  const boxes = new Float32Array(keep.length * 4);
  keep.forEach((k, i) => boxes.set(d.boxes.subarray(4 * k, 4 * k + 4), 4 * i));
  return {
    boxes,
    scores: Float32Array.from(keep, (k) => d.scores[k]),
    labels: Int32Array.from(keep, (k) => d.labels[k]),
  };
}

function concat(parts: RawDetections[]): RawDetections {
  const n = parts.reduce((s, p) => s + p.scores.length, 0);
  const out: RawDetections = { boxes: new Float32Array(4 * n), scores: new Float32Array(n), labels: new Int32Array(n) };
  let o = 0;
  for (const p of parts) {
    out.boxes.set(p.boxes, 4 * o);
    out.scores.set(p.scores, o);
    out.labels.set(p.labels, o);
    o += p.scores.length;
  }
  return out;
}

/**
 * `ATSSPostProcessor.forward` + `select_over_all_levels` (GPU `ml_nms`) for one image.
 *
 * `labelToTokens[k]` lists the token positions of label k + 1 (`positive_map_label_to_token`).
 * `image` is the network-input size of the image before batch padding (boxes are clipped to it).
 * Returns the detections sorted by score, highest first (equal scores in the official order:
 * level, then candidate order); the official code leaves them in index order after NMS.
 */
export function postprocessImage(
  levels: readonly LevelOutputs[],
  labelToTokens: readonly (readonly number[])[],
  image: ImageSize,
  config: Partial<PostprocessConfig> = {},
): RawDetections {
  const cfg = { ...FIBER_POSTPROCESS, ...config };
  validatePostprocessConfig(cfg, (field, why) => {
    throw new RangeError(`postprocessImage: config.${field} ${why}`);
  });
  const all = concat(levels.map((level, i) => selectLevel(level, i, labelToTokens, image, cfg)));
  const afterNms = pick(all, multiLabelNms(all.boxes, all.scores, all.labels, cfg.nmsThresh));
  const capped = pick(afterNms, keepTopScores(afterNms.scores, cfg.detectionsPerImage));
  return pick(capped, argsortDescending(capped.scores));
}

/** Head outputs of a batch as the VLDyHead returns them, one tensor per FPN level. */
export interface FineHeadOutputs {
  /** [B, 4A, H, W] regression codes (after `Scale`). */
  bboxReg: readonly tf.Tensor[];
  /** [B, A, H, W] centerness logits. */
  centerness: readonly tf.Tensor[];
  /** [B, H*W*A, T] dot-product logits. */
  dotProductLogits: readonly tf.Tensor[];
}

/** Reorders one image's [A*C, H, W] block to [H*W*A, C] (`permute_and_flatten`). */
function permuteAndFlatten(
  data: ArrayLike<number>,
  offset: number,
  A: number,
  C: number,
  H: number,
  W: number,
): Float32Array {
  const out = new Float32Array(H * W * A * C);
  for (let a = 0; a < A; a++) {
    for (let c = 0; c < C; c++) {
      const src = offset + (a * C + c) * H * W;
      for (let p = 0; p < H * W; p++) out[(p * A + a) * C + c] = data[src + p];
    }
  }
  return out;
}

/**
 * The head's output of a forward pass (`FiberFineModel.forward(...).head`) as per-image, per-level
 * arrays for `postprocessImage`, with the anchors of its level sizes (`anchors`: the model's
 * `config.anchors`, required: another anchor config gives wrong boxes, not an error). Reads the
 * tensors back; disposes nothing.
 */
export function readHeadLevels(head: DyHeadOutput, anchors: AnchorConfig): Promise<LevelOutputs[][]> {
  const { levels } = head;
  const sizes = levels.map((l) => [l.bboxReg.shape[2], l.bboxReg.shape[3]] as [number, number]);
  return headOutputsToLevels(
    {
      bboxReg: levels.map((l) => l.bboxReg),
      centerness: levels.map((l) => l.centerness),
      dotProductLogits: levels.map((l) => l.dotProductLogits),
    },
    generateAnchors(sizes, anchors),
  );
}

/**
 * Reads the head's tensors back (`data()`, nothing disposed) and splits them into per-image,
 * per-level plain arrays for `postprocessImage`. `anchors` from `generateAnchors` for the same levels.
 */
export async function headOutputsToLevels(
  outputs: FineHeadOutputs,
  anchors: readonly Float32Array[],
): Promise<LevelOutputs[][]> {
  const n = anchors.length;
  if (outputs.bboxReg.length !== n || outputs.centerness.length !== n || outputs.dotProductLogits.length !== n) {
    throw new RangeError(
      `headOutputsToLevels: ${n} anchor levels but ${outputs.bboxReg.length} bbox_reg, ` +
        `${outputs.centerness.length} centerness and ${outputs.dotProductLogits.length} dot-product levels`,
    );
  }
  const images: LevelOutputs[][] = [];
  for (let l = 0; l < n; l++) {
    const reg = outputs.bboxReg[l];
    const ctr = outputs.centerness[l];
    const dot = outputs.dotProductLogits[l];
    const [B, A4, H, W] = reg.shape;
    const A = A4 / 4;
    const L = H * W * A;
    if (
      reg.rank !== 4 ||
      ctr.shape.join() !== [B, A, H, W].join() ||
      dot.rank !== 3 ||
      dot.shape[0] !== B ||
      dot.shape[1] !== L ||
      anchors[l].length !== 4 * L
    ) {
      throw new RangeError(
        `headOutputsToLevels: level ${l} shapes disagree: bbox_reg [${reg.shape.join(', ')}], ` +
          `centerness [${ctr.shape.join(', ')}], ` +
          `dot-product logits [${dot.shape.join(', ')}], ${anchors[l].length / 4} anchors`,
      );
    }
    const [r, c, d] = await Promise.all([reg.data(), ctr.data(), dot.data()]);
    const T = dot.shape[2] ?? 0;
    for (let b = 0; b < B; b++) {
      (images[b] ??= []).push({
        boxRegression: permuteAndFlatten(r, b * A4 * H * W, A, 4, H, W),
        centerness: permuteAndFlatten(c, b * A * H * W, A, 1, H, W),
        dotProductLogits: (d as Float32Array).subarray(b * L * T, (b + 1) * L * T),
        anchors: anchors[l],
      });
    }
  }
  return images;
}

/**
 * `BoxList.resize(to)` of xyxy boxes from the network-input size (`from`, the resized image
 * before padding) back to the original image: every coordinate times to/from per axis.
 */
export function rescaleBoxes(boxes: ArrayLike<number>, from: ImageSize, to: ImageSize): Float32Array {
  if (!(from.width > 0 && from.height > 0 && to.width > 0 && to.height > 0)) {
    throw new RangeError(
      `rescaleBoxes: sizes must be positive (from ${from.width}x${from.height} to ${to.width}x${to.height})`,
    );
  }
  const rx = to.width / from.width;
  const ry = to.height / from.height;
  return Float32Array.from(boxes, (v, i) => v * (i % 2 === 0 ? rx : ry));
}

/** COCO [x, y, width, height] of an xyxy box with the +1 convention (`BoxList.convert('xywh')`). */
export function xyxyToCoco(x1: number, y1: number, x2: number, y2: number): [number, number, number, number] {
  return [x1, y1, x2 - x1 + 1, y2 - y1 + 1];
}

/** One detection in original-image pixels. */
export interface Detection {
  /** COCO [x, y, width, height] (width = x2 - x1 + 1, as the official COCO export). */
  bbox: [number, number, number, number];
  /** [x1, y1, x2, y2]. */
  box: [number, number, number, number];
  score: number;
  /** `index` is the 0-based class (or phrase) index of the prompt, `name` its text. */
  label: { index: number; name: string };
}

export interface DetectionOptions {
  /** The resized, unpadded size the network saw. */
  inputSize: ImageSize;
  /** The original image size the boxes are mapped back to (defaults to `inputSize`). */
  originalSize?: ImageSize;
}

/** Raw detections (labels 1-based into `names`) -> `Detection`s in original pixels, in the same order. */
export function toDetections(
  raw: RawDetections,
  names: readonly string[],
  { inputSize, originalSize = inputSize }: DetectionOptions,
): Detection[] {
  const boxes = rescaleBoxes(raw.boxes, inputSize, originalSize);
  return Array.from(raw.scores, (score, i) => {
    const index = raw.labels[i] - 1;
    if (!(index >= 0 && index < names.length))
      throw new RangeError(`toDetections: label ${raw.labels[i]} has no name (${names.length} names)`);
    const [x1, y1, x2, y2] = boxes.subarray(4 * i, 4 * i + 4);
    return { bbox: xyxyToCoco(x1, y1, x2, y2), box: [x1, y1, x2, y2], score, label: { index, name: names[index] } };
  });
}

/** The boxes of one phrase, best first. */
export interface PhraseGrounding {
  index: number;
  phrase: string;
  /** Token positions of the phrase in the prompt (empty when truncation removed it). */
  tokens: number[];
  detections: Detection[];
}

/**
 * Per-phrase grounding results: the detections of each phrase (label = phrase index + 1), ranked
 * by score, at most `topK` each (all when omitted).
 */
export function groundPhrases(
  raw: RawDetections,
  phrases: readonly string[],
  labelToTokens: readonly (readonly number[])[],
  options: DetectionOptions & { topK?: number },
): PhraseGrounding[] {
  // -1 kept all boxes but the last, NaN none
  if (options.topK !== undefined && !(Number.isInteger(options.topK) && options.topK >= 1))
    throw new RangeError(`groundPhrases: topK must be an integer >= 1, got ${String(options.topK)}`);
  if (labelToTokens.length !== phrases.length)
    throw new RangeError(`groundPhrases: ${phrases.length} phrases but ${labelToTokens.length} token lists`);
  const all = toDetections(raw, phrases, options);
  return phrases.map((phrase, index) => {
    const mine = all.filter((d) => d.label.index === index).sort((a, b) => b.score - a.score);
    return {
      index,
      phrase,
      tokens: [...labelToTokens[index]],
      detections: options.topK === undefined ? mine : mine.slice(0, options.topK),
    };
  });
}

/** What `detect(image, classNames)` returns: detections in original pixels and what the prompt lost to truncation. */
export interface DetectionResult {
  detections: Detection[];
  truncation: TruncationReport;
}

/** What `ground(image, caption, phrases)` returns: ranked boxes per phrase and the truncation report. */
export interface GroundingResult {
  phrases: PhraseGrounding[];
  truncation: TruncationReport;
}

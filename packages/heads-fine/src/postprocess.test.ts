// Post-processing semantics (ATSSPostProcessor + GPU ml_nms + kthvalue cap), the token-mean scores
// against the official head fixture, and the maps back to original pixels.
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@fiber-vl/tensor-core/testing';
import { tf } from '@fiber-vl/tensor-core';
import { generateAnchors } from './anchors.js';
import { boxIou, clipBoxes, keepLargeBoxes, keepTopScores, multiLabelNms, pairIou } from './boxes.js';
import {
  type LevelOutputs,
  classScores,
  detectionScores,
  groundPhrases,
  headOutputsToLevels,
  postprocessImage,
  rescaleBoxes,
  toDetections,
  xyxyToCoco,
} from './postprocess.js';
import { chwToHwc, maxAbs, openFixture } from './test-fixtures.js';

const logit = (p: number) => Math.log(p / (1 - p));

/**
 * A level whose anchors are the given boxes and whose codes are 0 (decode returns the anchor), with
 * one token per label: token t of box i has probability probs[i][t]; centerness probability ctr.
 */
function level(boxes: number[][], probs: number[][], ctr = 1 - 1e-7): LevelOutputs {
  return {
    anchors: Float32Array.from(boxes.flat()),
    boxRegression: new Float32Array(boxes.length * 4),
    centerness: Float32Array.from(boxes, () => logit(ctr)),
    dotProductLogits: Float32Array.from(probs.flat().map(logit)),
  };
}
const IMAGE = { width: 200, height: 100 };
const oneTokenPerLabel = (n: number) => Array.from({ length: n }, (_, i) => [i]);

describe('box operations (+1 convention)', () => {
  it('IoU, clip and remove-small follow maskrcnn_benchmark', () => {
    // 10x10 and 10x10 boxes overlapping 5x10: IoU = 50 / 150
    expect(pairIou([0, 0, 9, 9], 0, [5, 0, 14, 9], 0)).toBeCloseTo(1 / 3, 12);
    expect(Array.from(boxIou([0, 0, 9, 9, 20, 20, 29, 29], [0, 0, 9, 9]))).toEqual([1, 0]);
    expect(Array.from(clipBoxes([-5, -3, 250, 120, 10, 10, 5, 5], 200, 100))).toEqual([0, 0, 199, 99, 10, 10, 5, 5]);
    // x2 - x1 + 1 >= min_size: a one-pixel box passes 1, an inverted box (w = 0) passes only 0
    expect(keepLargeBoxes([3, 3, 3, 3, 5, 5, 4, 4, NaN, 0, 1, 1], 0)).toEqual([0, 1]);
    expect(keepLargeBoxes([3, 3, 3, 3, 5, 5, 4, 4], 1)).toEqual([0]);
    expect(() => clipBoxes([0, 0, 1], 2, 2)).toThrow(/not a whole number of boxes/);
    expect(() => clipBoxes([0, 0, 1, 1], 0, 2)).toThrow(/must be positive/);
  });

  it('ml_nms: strict IoU > threshold, same label only, best score first, kept indices ascending', () => {
    // box 1 overlaps box 0 with IoU exactly 0.6 (60 of 100 pixels each... union 100): 10x10 vs 10x6 inside it
    const a = [0, 0, 9, 9];
    const inside = [0, 0, 9, 5]; // area 60, inter 60, union 100 -> IoU 0.6
    expect(pairIou(a, 0, inside, 0)).toBe(0.6);
    expect(multiLabelNms([...a, ...inside], [0.9, 0.8], [1, 1], 0.6)).toEqual([0, 1]);
    expect(multiLabelNms([...a, ...inside], [0.9, 0.8], [1, 1], 0.59)).toEqual([0]);
    // a lower-scored box first in the input is suppressed by the later, better one; output in index order
    expect(multiLabelNms([...inside, ...a, 50, 50, 60, 60], [0.5, 0.9, 0.7], [1, 1, 1], 0.5)).toEqual([1, 2]);
    // different labels never suppress each other
    expect(multiLabelNms([...a, ...a], [0.9, 0.8], [1, 2], 0.5)).toEqual([0, 1]);
    // equal scores: the earlier index is visited first and survives
    expect(multiLabelNms([...a, ...a], [0.7, 0.7], [3, 3], 0.5)).toEqual([0]);
    expect(multiLabelNms([...a, ...a], [0.7, 0.7], [3, 3], 0)).toEqual([0, 1]);
    expect(multiLabelNms([], [], [], 0.6)).toEqual([]);
    expect(() => multiLabelNms(a, [1, 2], [1], 0.5)).toThrow(/1 boxes but 2 scores and 1 labels/);
  });

  it('the detections-per-image cap keeps every score tied with the kth value', () => {
    expect(keepTopScores([0.1, 0.5, 0.3, 0.9], 2)).toEqual([1, 3]);
    expect(keepTopScores([0.1, 0.5, 0.5, 0.9], 2)).toEqual([1, 2, 3]);
    expect(keepTopScores([0.1, 0.5], 2)).toEqual([0, 1]);
    expect(keepTopScores([0.1, 0.5, 0.7], 0)).toEqual([0, 1, 2]);
    // a cap that is not a whole number kept nothing (1.5) or everything (NaN)
    for (const max of [1.5, Number.NaN])
      expect(() => keepTopScores([0.1, 0.5, 0.7], max)).toThrow(/max must be an integer/);
  });

  it('ml_nms refuses a NaN threshold (every box was kept)', () => {
    const a = [0, 0, 9, 9];
    expect(() => multiLabelNms([...a, ...a], [0.7, 0.6], [1, 1], Number.NaN)).toThrow(/threshold must be a number/);
  });
});

describe('postprocessImage', () => {
  it('scores = sqrt(mean token probability x centerness), sorted, boxes decoded and clipped', () => {
    const lv = level(
      [
        [10, 10, 49, 49],
        [-20, 60, 230, 130],
      ],
      [
        [0.6, 0.2, 0.4],
        [0.3, 0.9, 0.2],
      ],
      0.5,
    );
    // label 1 = tokens 0 and 2, label 2 = token 1
    const out = postprocessImage([lv], [[0, 2], [1]], IMAGE);
    expect(Array.from(out.labels)).toEqual([2, 1, 1, 2]);
    const expected = [Math.sqrt(0.9 * 0.5), Math.sqrt(0.5 * 0.5), Math.sqrt(0.25 * 0.5), Math.sqrt(0.2 * 0.5)];
    expect(maxAbs(out.scores, expected)).toBeLessThan(1e-6);
    // the border-crossing box is clipped to [0, 199] x [0, 99]
    expect(Array.from(out.boxes.subarray(0, 4))).toEqual([0, 60, 199, 99]);
    expect(Array.from(out.boxes.subarray(4, 8))).toEqual([10, 10, 49, 49]);
  });

  it('thresholds the class score before centerness (strictly), then keeps the top-N per level', () => {
    // class probability 0.06 passes 0.05 even with a tiny centerness
    const lv = level(
      [
        [0, 0, 9, 9],
        [50, 50, 59, 59],
      ],
      [[0.06], [0.04]],
      1e-4,
    );
    const out = postprocessImage([lv], [[0]], IMAGE);
    expect(out.scores.length).toBe(1);
    expect(out.scores[0]).toBeCloseTo(Math.sqrt(0.06 * 1e-4), 6);
    // a probability exactly at the threshold (sigmoid(0) = 0.5) is not a candidate
    const at = postprocessImage(
      [
        level(
          [
            [0, 0, 9, 9],
            [50, 50, 59, 59],
          ],
          [[0.5], [0.51]],
        ),
      ],
      [[0]],
      IMAGE,
      { preNmsThresh: 0.5 },
    );
    expect(Array.from(at.boxes)).toEqual([50, 50, 59, 59]);
    // pre_nms_top_n = 2 of 3 candidates, per level: each level keeps its own best two
    const boxes = [
      [0, 0, 9, 9],
      [20, 0, 29, 9],
      [40, 0, 49, 9],
    ];
    const l1 = level(boxes, [[0.3], [0.9], [0.6]]);
    const l2 = level(
      boxes.map((b) => b.map((v) => v + 1)),
      [[0.2], [0.1], [0.4]],
    );
    const top = postprocessImage([l1, l2], [[0]], IMAGE, { preNmsTopN: 2, nmsThresh: 0 });
    expect(Array.from(top.scores, (s) => Math.round(s * s * 100) / 100)).toEqual([0.9, 0.6, 0.4, 0.2]);
  });

  it('is empty when nothing passes, for empty levels and for an empty label map', () => {
    const lv = level([[0, 0, 9, 9]], [[0.01]]);
    for (const out of [
      postprocessImage([lv], [[0]], IMAGE),
      postprocessImage([lv], [], IMAGE),
      postprocessImage([], [[0]], IMAGE),
    ]) {
      expect(out.scores.length).toBe(0);
      expect(out.boxes.length).toBe(0);
    }
    const empty: LevelOutputs = { anchors: [], boxRegression: [], centerness: [], dotProductLogits: [] };
    expect(postprocessImage([empty], [[0]], IMAGE).scores.length).toBe(0);
    // a label whose tokens were all truncated away has no score (NaN) and no detection
    expect(postprocessImage([lv], [[]], IMAGE).scores.length).toBe(0);
  });

  it('NMS is class-wise; ties keep the first candidate; degenerate boxes are kept (min_size 0)', () => {
    const same = [10, 10, 19, 19];
    // two labels on the same box both survive; within a label the duplicate goes
    const lv = level(
      [same, same],
      [
        [0.8, 0.7],
        [0.8, 0.7],
      ],
    );
    const out = postprocessImage([lv], oneTokenPerLabel(2), IMAGE);
    expect(Array.from(out.labels)).toEqual([1, 2]);
    // equal scores on one label: the earlier location survives
    const tie = postprocessImage([level([same, [11, 10, 20, 19]], [[0.5], [0.5]])], [[0]], IMAGE);
    expect(Array.from(tie.boxes)).toEqual(same);
    // a box entirely outside the image collapses onto the border and is kept
    const outside = postprocessImage([level([[300, 200, 340, 240]], [[0.9]])], [[0]], IMAGE);
    expect(Array.from(outside.boxes)).toEqual([199, 99, 199, 99]);
  });

  it('caps the detections per image, keeping ties at the cut', () => {
    const boxes = Array.from({ length: 6 }, (_, i) => [i * 30, 0, i * 30 + 9, 9]);
    const lv = level(boxes, [[0.9], [0.8], [0.7], [0.7], [0.6], [0.5]]);
    expect(postprocessImage([lv], [[0]], IMAGE, { detectionsPerImage: 2 }).scores.length).toBe(2);
    expect(postprocessImage([lv], [[0]], IMAGE, { detectionsPerImage: 3 }).scores.length).toBe(4);
    expect(postprocessImage([lv], [[0]], IMAGE, { detectionsPerImage: 0 }).scores.length).toBe(6);
  });

  it('max aggregation and input validation', () => {
    const s = classScores([logit(0.2), logit(0.6)], 2, [[0, 1]], 'max');
    expect(s[0]).toBeCloseTo(0.6, 6);
    expect(() => classScores([0, 0], 2, [[2]])).toThrow(/label 1 points at token 2, outside the 2 token logits/);
    // logits that are not whole rows were read as fewer rows
    expect(() => classScores([0, 0, 0], 2, [[0]])).toThrow(/3 dot-product logits are not whole rows of 2 tokens/);
    expect(() => classScores([0, 0], 1.5, [[0]])).toThrow(/numTokens must be an integer >= 0, got 1.5/);
    // settings that are not numbers of the right kind gave no detections at all
    const one = level([[0, 0, 9, 9]], [[0.9]]);
    expect(postprocessImage([one], [[0]], IMAGE).scores).toHaveLength(1);
    for (const [config, message] of [
      [{ detectionsPerImage: 1.5 }, /config.detectionsPerImage must be an integer/],
      [{ preNmsTopN: Number.NaN }, /config.preNmsTopN must be a positive integer, got NaN/],
      [{ preNmsThresh: Number.NaN }, /config.preNmsThresh must be a finite number/],
    ] as const)
      expect(() => postprocessImage([one], [[0]], IMAGE, config)).toThrow(message);
    const bad = { ...level([[0, 0, 9, 9]], [[0.5]]), anchors: [0, 0, 1, 1, 2, 2, 3, 3] };
    expect(() => postprocessImage([bad], [[0]], IMAGE)).toThrow(
      /level 0 has 1 centerness values but 1 box codes and 2 anchors/,
    );
  });
});

describe('official head fixture (set B, VLDyHead on random FPN features)', () => {
  beforeAll(() => useBackend('cpu'));
  const sizes = [16, 8, 4, 2, 1];
  const labelToTokens = [[1, 2], [4]]; // config.json positive_map_for_scores {1: [1, 2], 2: [4]}

  async function levels(image: number) {
    const fx = await openFixture('set-b-head.safetensors');
    const anchors = generateAnchors(sizes.map((s) => [s, s] as [number, number]));
    const out: { level: LevelOutputs; ref: Float32Array }[] = [];
    for (let l = 0; l < 5; l++) {
      const s = sizes[l];
      const reg = await fx.get(`bbox_reg.${l}`);
      const ctr = await fx.get(`centerness.${l}`);
      const dot = await fx.get(`dot_product_logits.${l}`);
      const ref = await fx.get(`scores_posmap.${l}`);
      out.push({
        level: {
          anchors: anchors[l],
          boxRegression: chwToHwc(reg.data, 4, s, s, image),
          centerness: ctr.data.subarray(image * s * s, (image + 1) * s * s),
          dotProductLogits: dot.data.subarray(image * s * s * 12, (image + 1) * s * s * 12),
        },
        ref: ref.data.subarray(image * s * s * 2, (image + 1) * s * s * 2),
      });
    }
    return out;
  }

  it.each([0, 1])('token-mean scores equal scores_posmap (image %i)', async (image) => {
    for (const { level: lv, ref } of await levels(image))
      expect(maxAbs(detectionScores(lv, labelToTokens), ref)).toBeLessThan(1e-6);
  });

  it.each([0, 1])('full post-processing gives sorted, clipped, NMS-consistent detections (image %i)', async (image) => {
    const lv = await levels(image);
    const out = postprocessImage(
      lv.map((x) => x.level),
      labelToTokens,
      { width: 128, height: 128 },
      { preNmsThresh: 0.01 },
    );
    const n = out.scores.length;
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThanOrEqual(100);
    for (let i = 1; i < n; i++) expect(out.scores[i]).toBeLessThanOrEqual(out.scores[i - 1]);
    for (const v of out.boxes) expect(v >= 0 && v <= 127).toBe(true);
    // no two kept boxes of one label overlap by more than the NMS threshold
    for (let i = 0; i < n; i++)
      for (let j = i + 1; j < n; j++)
        if (out.labels[i] === out.labels[j])
          expect(pairIou(out.boxes, i, out.boxes, j)).toBeLessThanOrEqual(0.6 + 1e-6);
    // every reported score is one of the pre-NMS scores of its level
    const all = lv.map((x) => detectionScores(x.level, labelToTokens));
    for (let i = 0; i < n; i++)
      expect(all.some((s) => s.some((v, k) => k % 2 === out.labels[i] - 1 && Math.abs(v - out.scores[i]) < 1e-7))).toBe(
        true,
      );
  });

  it('headOutputsToLevels reads NCHW head tensors into the same per-image levels', async () => {
    const fx = await openFixture('set-b-head.safetensors');
    const anchors = generateAnchors(sizes.map((s) => [s, s] as [number, number]));
    const t = { bboxReg: [] as tf.Tensor[], centerness: [] as tf.Tensor[], dotProductLogits: [] as tf.Tensor[] };
    for (let l = 0; l < 5; l++) {
      const s = sizes[l];
      t.bboxReg.push(tf.tensor((await fx.get(`bbox_reg.${l}`)).data, [2, 4, s, s]));
      t.centerness.push(tf.tensor((await fx.get(`centerness.${l}`)).data, [2, 1, s, s]));
      t.dotProductLogits.push(tf.tensor((await fx.get(`dot_product_logits.${l}`)).data, [2, s * s, 12]));
    }
    const images = await headOutputsToLevels(t, anchors);
    tf.dispose([...t.bboxReg, ...t.centerness, ...t.dotProductLogits]);
    expect(images.length).toBe(2);
    const ref = await levels(1);
    for (let l = 0; l < 5; l++) {
      expect(maxAbs(images[1][l].boxRegression, ref[l].level.boxRegression)).toBe(0);
      expect(maxAbs(images[1][l].centerness, ref[l].level.centerness)).toBe(0);
      expect(maxAbs(images[1][l].dotProductLogits, ref[l].level.dotProductLogits)).toBe(0);
    }
    await expect(headOutputsToLevels({ bboxReg: [], centerness: [], dotProductLogits: [] }, anchors)).rejects.toThrow(
      /5 anchor levels but 0 bbox_reg/,
    );
  });
});

describe('results in original pixels', () => {
  it('rescales like BoxList.resize and exports COCO xywh with the +1 width', () => {
    const boxes = rescaleBoxes([10, 20, 109, 59], { width: 200, height: 100 }, { width: 400, height: 300 });
    expect(Array.from(boxes)).toEqual([20, 60, 218, 177]);
    expect(xyxyToCoco(20, 60, 218, 177)).toEqual([20, 60, 199, 118]);
    expect(() => rescaleBoxes([0, 0, 1, 1], { width: 0, height: 1 }, { width: 1, height: 1 })).toThrow(
      /must be positive/,
    );
  });

  it('toDetections names the labels; groundPhrases ranks each phrase', () => {
    const raw = {
      boxes: Float32Array.from([0, 0, 9, 9, 10, 10, 19, 19, 20, 20, 29, 29]),
      scores: Float32Array.from([0.9, 0.8, 0.7]),
      labels: Int32Array.from([2, 1, 2]),
    };
    const dets = toDetections(raw, ['cat', 'dog'], {
      inputSize: { width: 100, height: 100 },
      originalSize: { width: 50, height: 50 },
    });
    expect(dets[0]).toEqual({
      bbox: [0, 0, 5.5, 5.5],
      box: [0, 0, 4.5, 4.5],
      score: raw.scores[0],
      label: { index: 1, name: 'dog' },
    });
    const g = groundPhrases(
      raw,
      ['a cat', 'a dog'],
      [
        [1, 2],
        [4, 5],
      ],
      { inputSize: { width: 100, height: 100 }, topK: 1 },
    );
    expect(g.map((p) => [p.phrase, p.detections.length, p.detections[0].score])).toEqual([
      ['a cat', 1, raw.scores[1]],
      ['a dog', 1, raw.scores[0]],
    ]);
    expect(g[1].tokens).toEqual([4, 5]);
    for (const topK of [-1, 0, Number.NaN])
      expect(() => groundPhrases(raw, ['a cat'], [[1, 2]], { inputSize: { width: 100, height: 100 }, topK })).toThrow(
        `groundPhrases: topK must be an integer >= 1, got ${topK}`,
      );
    expect(() => toDetections(raw, ['cat'], { inputSize: { width: 1, height: 1 } })).toThrow(
      /label 2 has no name \(1 names\)/,
    );
  });
});

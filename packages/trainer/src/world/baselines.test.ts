import { type CocoGroundTruth, cocoEvaluate } from '@fiber-vl/eval-metrics';
import { describe, expect, it } from 'vitest';
import {
  cocoGroundTruth,
  hitProbability,
  iou,
  randomCaptionBaseline,
  randomDetectionBaseline,
  randomLabelDetectionBaseline,
  worldBaselines,
} from './baselines.js';
import { createWorld } from './world.js';

const world = createWorld({
  seed: 4,
  splits: { train: 300, val: 50, test: 120 },
  nlvr2Pairs: { train: 20, val: 20, test: 60 },
});

describe('chance and majority baselines', () => {
  it('computes hit probabilities and IoU by hand-checked cases', () => {
    expect(hitProbability(10, 1, 1)).toBeCloseTo(0.1, 12);
    expect(hitProbability(10, 1, 5)).toBeCloseTo(0.5, 12);
    // 2 good of 4, 1 pick: 1/2; 2 picks: 1 - (2/4)(1/3) = 5/6; 3 picks: always
    expect(hitProbability(4, 2, 2)).toBeCloseTo(5 / 6, 12);
    expect(hitProbability(4, 2, 3)).toBe(1);
    expect(hitProbability(4, 0, 3)).toBe(0);
    expect(iou([0, 0, 2, 2], [1, 1, 3, 3])).toBeCloseTo(1 / 7, 12);
    expect(iou([0, 0, 1, 1], [1, 1, 2, 2])).toBe(0);
  });

  it('gives each task its floor on a split', () => {
    const b = worldBaselines(world, 'test');
    expect(b.scenes).toBe(120);
    expect(b.itm.accuracy).toBe(0.5);
    expect(b.nlvr2).toEqual({ accuracy: 0.5, pairs: 60 });
    expect(b.retrieval.textToImage.r1).toBeCloseTo(1 / 120, 12);
    expect(b.retrieval.textToImage.r10).toBeCloseTo(10 / 120, 12);
    expect(b.retrieval.captionsPerImage).toBe(5);
    // image->text: 5 right captions among 600, at least one in the top 1 / top 5
    expect(b.retrieval.imageToText.r1).toBeCloseTo(5 / 600, 12);
    expect(b.retrieval.imageToText.r5).toBeCloseTo(
      1 - [0, 1, 2, 3, 4].reduce((p, i) => (p * (595 - i)) / (600 - i), 1),
      12,
    );
    // one object out of 1..5 (objects overlapping the target at IoU >= 0.5 count too)
    expect(b.rec.accuracy).toBeGreaterThan(1 / 5);
    expect(b.rec.accuracy).toBeLessThan(0.6);
    expect(b.grounding.r1).toBeGreaterThan(0.2);
    expect(b.grounding.r5).toBe(1); // at most five boxes to rank
    let total = 0;
    for (const [type, t] of Object.entries(b.vqa.byType)) {
      expect(world.answers[type as keyof typeof world.answers]).toContain(t.majority);
      expect(t.questions).toBeGreaterThan(20);
      total += t.questions;
    }
    expect(total).toBe(b.vqa.questions);
    expect(b.vqa.byType.yesno.accuracy).toBeGreaterThan(0.35);
    expect(b.vqa.byType.yesno.accuracy).toBeLessThan(0.65);
    expect(b.vqa.byType.colour.accuracy).toBeLessThan(0.3); // eight colours, drawn uniformly
    expect(b.vqa.accuracy).toBeGreaterThan(0.1);
    expect(b.vqa.accuracy).toBeLessThan(0.6);
  });

  it('scores the majority answer as an exact match count, and takes per type the better of it and a uniform guess', () => {
    const b = worldBaselines(world, 'val', { limit: 20, referenceLimit: 100 });
    const qs = Array.from(world.samples('val', { end: 20 })).flatMap((s) => s.questions);
    let expected = 0;
    for (const [type, t] of Object.entries(b.vqa.byType)) {
      const mine = qs.filter((q) => q.type === type);
      const hits = mine.filter((q) => q.answer === t.majority).length;
      expect(t.accuracy).toBeCloseTo(mine.length ? hits / mine.length : 0, 12);
      expect(t.chance).toBe(1 / world.answers[type as keyof typeof world.answers].length);
      expected += Math.max(hits, mine.length * t.chance);
    }
    expect(b.vqa.accuracy).toBeCloseTo(expected / qs.length, 12);
    // never under either guess alone
    const majorityOnly = qs.filter((q) => q.answer === b.vqa.byType[q.type].majority).length / qs.length;
    expect(b.vqa.accuracy).toBeGreaterThanOrEqual(majorityOnly);
    expect(b.scenes).toBe(20);
  });

  it('gives random captions from train and random detections, deterministically', () => {
    const caps = randomCaptionBaseline(world, 'test', { limit: 10 });
    expect(caps).toHaveLength(10);
    expect(randomCaptionBaseline(world, 'test', { limit: 10 })).toEqual(caps);
    const dets = randomDetectionBaseline(world, 'test', { limit: 5, perImage: 4 });
    expect(dets).toHaveLength(20);
    for (const d of dets) {
      const { width, height } = world.scene('test', d.image_id - 1);
      expect(
        d.bbox[0] >= 0 && d.bbox[1] >= 0 && d.bbox[0] + d.bbox[2] <= width && d.bbox[1] + d.bbox[3] <= height,
      ).toBe(true);
      expect(world.classes.map((c) => c.id)).toContain(d.category_id);
    }
  });

  it('gives every object box once per class with random scores: AP about each class share', () => {
    const gt = cocoGroundTruth(world, 'test', { limit: 40 });
    const dets = randomLabelDetectionBaseline(world, 'test', { limit: 40 });
    expect(randomLabelDetectionBaseline(world, 'test', { limit: 40 })).toEqual(dets);
    expect(randomLabelDetectionBaseline(world, 'test', { limit: 40, seed: 1 })).not.toEqual(dets);
    // per image: exactly the cross product of its object boxes and the classes
    const ids = world.classes.map((c) => c.id);
    for (let image = 1; image <= 40; image++) {
      const pairs = dets.filter((d) => d.image_id === image).map((d) => `${d.bbox.join()}|${d.category_id}`);
      const boxes = gt.annotations.filter((a) => a.image_id === image).map((a) => a.bbox.join());
      expect(pairs.sort()).toEqual(boxes.flatMap((b) => ids.map((id) => `${b}|${id}`)).sort());
    }
    const scores = dets.map((d) => d.score);
    const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
    const sd = Math.sqrt(scores.reduce((a, b) => a + (b - mean) ** 2, 0) / scores.length);
    expect(sd).toBeGreaterThan(0.25); // uniform on [0, 1): 0.289
    const shares = gt.categories
      .map((c) => gt.annotations.filter((a) => a.category_id === c.id).length / gt.annotations.length)
      .filter((x) => x > 0);
    const meanShare = shares.reduce((a, b) => a + b, 0) / shares.length;
    const coco: CocoGroundTruth = { ...gt };
    const ap50 = cocoEvaluate(coco, dets).stats.AP50;
    expect(ap50).toBeGreaterThan(meanShare * 0.75);
    // interpolated AP of random scores sits a little above the share; names that helped would approach 1
    expect(ap50).toBeLessThan(meanShare * 2);
  });

  it('exports COCO ground truth, split into seen and held-out classes', () => {
    const all = cocoGroundTruth(world, 'test', { limit: 30 });
    const seen = cocoGroundTruth(world, 'test', { limit: 30, classes: 'seen' });
    const held = cocoGroundTruth(world, 'test', { limit: 30, classes: 'held-out' });
    expect(all.images).toHaveLength(30);
    expect(all.categories.map((c) => c.name)).toEqual(['circle', 'square', 'triangle', 'diamond', 'star', 'cross']);
    expect(held.categories.map((c) => c.name)).toEqual(['diamond', 'star']);
    expect(seen.annotations.length + held.annotations.length).toBe(all.annotations.length);
    const objects = Array.from(world.samples('test', { end: 30 })).reduce((n, s) => n + s.scene.objects.length, 0);
    expect(all.annotations).toHaveLength(objects);
    const s0 = world.sample('test', 0);
    const a0 = all.annotations.filter((a) => a.image_id === 1);
    expect(a0.map((a) => a.bbox)).toEqual(
      s0.scene.objects.map((o) => [o.box[0], o.box[1], o.box[2] - o.box[0], o.box[3] - o.box[1]]),
    );
    expect(new Set(all.annotations.map((a) => a.id)).size).toBe(all.annotations.length);
  });
});

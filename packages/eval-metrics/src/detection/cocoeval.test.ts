import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CocoEval, COCO_STAT_NAMES, cocoEvaluate, defaultCocoParams } from './cocoeval.js';

const fx = JSON.parse(readFileSync(join(__dirname, '../../test/fixtures/detection_cocoeval.json'), 'utf8'));

describe('COCOeval bbox (pycocotools)', () => {
  it.each(fx.cases.map((c: any): [string, any] => [c.name, c]) as [string, any][])(
    '%s: 12 stats and per-category AP, bit-identical to pycocotools',
    (_n, c: any) => {
      const r = cocoEvaluate(c.ground_truth, c.detections);
      for (const s of COCO_STAT_NAMES) expect(r.stats[s], s).toBe(c.expected.stats[s]);
      for (const [k, v] of Object.entries(c.expected.per_category_AP)) expect(r.perCategoryAP[k], `category ${k}`).toBe(v);
    },
  );

  it('runs stage by stage as pycocotools (evaluate, accumulate, summarize), with the same result', () => {
    const c = fx.cases.find((x: any) => x.name === 'synthetic_multi_image');
    const e = new CocoEval(c.ground_truth, c.detections);
    e.evaluate();
    e.accumulate();
    const staged = e.summarize();
    expect(staged).toEqual(cocoEvaluate(c.ground_truth, c.detections));
    expect(e.summarize()).toEqual(staged); // summarize again: same numbers
    expect(new CocoEval(c.ground_truth, c.detections).summarize()).toEqual(staged); // earlier stages run on demand
  });

  it('uses numpy linspace thresholds', () => {
    const p = defaultCocoParams({ images: [], annotations: [], categories: [] });
    expect(p.iouThrs[8]).toBe(0.8999999999999999);
    expect(p.recThrs[35]).toBe(0.35000000000000003);
  });

  it('supports custom maxDets and area ranges', () => {
    const c = fx.cases.find((x: any) => x.name === 'synthetic_multi_image');
    const r = cocoEvaluate(c.ground_truth, c.detections, { params: { maxDets: [1, 10, 100], areaRng: [[0, 1e10]], areaRngLbl: ['all'] } });
    expect(Math.abs(r.stats.AP - c.expected.stats.AP)).toBeLessThanOrEqual(1e-12);
    expect(r.stats.APs).toBe(-1);
  });

  it('names bad input', () => {
    const gt = { images: [{ id: 1 }], annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], area: 100 }], categories: [{ id: 1 }] };
    expect(() => cocoEvaluate(gt as any, [{ image_id: 1, category_id: 1, bbox: [0, 0, -1, 5], score: 1 }], { files: { dets: 'dets.json' } })).toThrow(
      'dets.json: [0]: "bbox" has a negative width or height: [0,0,-1,5]',
    );
    expect(() => cocoEvaluate(gt as any, [{ image_id: 7, category_id: 1, bbox: [0, 0, 1, 5], score: 1 }], { files: { dets: 'dets.json' } })).toThrow(
      'dets.json: [0]: image_id 7 is not in the ground truth images',
    );
    const zeroId = { ...gt, annotations: [{ ...gt.annotations[0], id: 0 }] };
    expect(() => cocoEvaluate(zeroId as any, [], { files: { gt: 'instances.json' } })).toThrow(/instances.json: annotations\[0\] \(id 0\): "id" must be a non-zero number/);
  });
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MetricInputError } from '../errors.js';
import { CocoEval, COCO_STAT_NAMES, cocoEvaluate, defaultCocoParams } from './cocoeval.js';

const fx = JSON.parse(readFileSync(join(__dirname, '../../test/fixtures/detection_cocoeval.json'), 'utf8'));

describe('COCOeval bbox (pycocotools)', () => {
  it.each(fx.cases.map((c: any): [string, any] => [c.name, c]) as [string, any][])(
    '%s: 12 stats and per-category AP, bit-identical to pycocotools',
    (_n, c: any) => {
      const r = cocoEvaluate(c.ground_truth, c.detections);
      for (const s of COCO_STAT_NAMES) expect(r.stats[s], s).toBe(c.expected.stats[s]);
      for (const [k, v] of Object.entries(c.expected.per_category_AP))
        expect(r.perCategoryAP[k], `category ${k}`).toBe(v);
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
    const r = cocoEvaluate(c.ground_truth, c.detections, {
      params: { maxDets: [1, 10, 100], areaRng: [[0, 1e10]], areaRngLbl: ['all'] },
    });
    expect(Math.abs(r.stats.AP - c.expected.stats.AP)).toBeLessThanOrEqual(1e-12);
    expect(r.stats.APs).toBe(-1);
  });

  it('reads recall thresholds in any order, each on its own (numpy searchsorted)', () => {
    const c = fx.cases.find((x: any) => x.name === 'synthetic_multi_image');
    const sorted = [0, 0.2, 0.4, 0.6, 0.8, 1];
    const shuffled = [0.6, 0, 1, 0.2, 0.8, 0.4];
    const a = cocoEvaluate(c.ground_truth, c.detections, { params: { recThrs: sorted } });
    const b = cocoEvaluate(c.ground_truth, c.detections, { params: { recThrs: shuffled } });
    const R = sorted.length;
    const rest = a.precision.length / R / a.params.iouThrs.length; // K * A * M per (t, r)
    for (let t = 0; t < a.params.iouThrs.length; t++)
      shuffled.forEach((thr, r) => {
        const rs = sorted.indexOf(thr);
        const at = (res: typeof a, k: number) =>
          Array.from(res.precision.subarray((t * R + k) * rest, (t * R + k + 1) * rest));
        expect(at(b, r), `iou ${t}, threshold ${thr}`).toEqual(at(a, rs));
      });
  });

  it('names bad input', () => {
    const gt = {
      images: [{ id: 1 }],
      annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], area: 100 }],
      categories: [{ id: 1 }],
    };
    expect(() =>
      cocoEvaluate(gt as any, [{ image_id: 1, category_id: 1, bbox: [0, 0, -1, 5], score: 1 }], {
        files: { dets: 'dets.json' },
      }),
    ).toThrow('dets.json: [0]: "bbox" has a negative width or height: [0,0,-1,5]');
    expect(() =>
      cocoEvaluate(gt as any, [{ image_id: 7, category_id: 1, bbox: [0, 0, 1, 5], score: 1 }], {
        files: { dets: 'dets.json' },
      }),
    ).toThrow('dets.json: [0]: image_id 7 is not in the ground truth images');
    const zeroId = { ...gt, annotations: [{ ...gt.annotations[0], id: 0 }] };
    expect(() => cocoEvaluate(zeroId as any, [], { files: { gt: 'instances.json' } })).toThrow(
      /instances.json: annotations\[0\] \(id 0\): "id" must be a non-zero number/,
    );
  });

  it('refuses hostile ground truth, detections and params with a typed error naming file, entry and field', () => {
    const ann = { id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], area: 100 };
    const det = { image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], score: 0.9 };
    const gt = (o: object) => ({ images: [{ id: 1 }], annotations: [ann], categories: [{ id: 1 }], ...o });
    const files = { gt: 'gt.json', dets: 'dets.json' };
    const cases: [unknown, unknown, string][] = [
      [gt({ images: [{ file_name: 'a.jpg' }] }), [], 'gt.json: images[0]: "id" is missing or not a number'],
      [gt({ images: [null] }), [], 'gt.json: images[0]: "id" is missing or not a number'],
      [gt({ images: [{ id: 1 }, { id: 1 }] }), [], 'gt.json: images[1]: duplicate image id 1'],
      [gt({ images: undefined }), [], 'gt.json: "images" must be a list, got undefined'],
      [[], [], 'gt.json: ground truth must be a COCO instances object, got []'],
      [gt({ categories: [{ name: 'x' }] }), [], 'gt.json: categories[0]: "id" is missing or not a number'],
      [
        gt({ annotations: [{ ...ann, image_id: 5 }] }),
        [],
        'gt.json: annotations[0] (id 1): image_id 5 is not in "images"',
      ],
      [gt({ annotations: [ann, ann] }), [], 'gt.json: annotations[1] (id 1): duplicate annotation id'],
      [
        gt({ annotations: [{ ...ann, bbox: [0, 0, NaN, 1] }] }),
        [],
        'gt.json: annotations[0] (id 1): "bbox" must be [x, y, w, h] numbers',
      ],
      [
        gt({ annotations: [{ ...ann, bbox: [0, 0, -1, 1] }] }),
        [],
        'gt.json: annotations[0] (id 1): "bbox" has a negative width',
      ],
      [
        gt({ annotations: [{ ...ann, area: -4 }] }),
        [],
        'gt.json: annotations[0] (id 1): "area" must be a number >= 0, got -4',
      ],
      [
        gt({ annotations: [{ ...ann, category_id: 'cat' }] }),
        [],
        'gt.json: annotations[0] (id 1): "category_id" is missing',
      ],
      [
        gt({ annotations: [{ ...ann, iscrowd: 'yes' }] }),
        [],
        'gt.json: annotations[0] (id 1): "iscrowd" must be 0, 1 or a boolean',
      ],
      [gt({}), { 0: det }, 'dets.json: detections must be a list'],
      [gt({}), [null], 'dets.json: [0]: not an object (null)'],
      [gt({}), [{ ...det, score: NaN }], 'dets.json: [0]: "score" is missing or not a number'],
      [gt({}), [{ ...det, bbox: [0, 0, 1] }], 'dets.json: [0]: "bbox" must be [x, y, w, h] numbers, got [0,0,1]'],
      // JSON.parse reads 1e999 as Infinity: the message shows it as such, not as JSON's null
      [
        gt({}),
        JSON.parse('[{"image_id": 1, "category_id": 1, "score": 1, "bbox": [0, 0, 1e999, 2]}]'),
        'dets.json: [0]: "bbox" must be [x, y, w, h] numbers, got [0,0,Infinity,2]',
      ],
      [gt({}), [{ ...det, image_id: 9 }], 'dets.json: [0]: image_id 9 is not in the ground truth images'],
    ];
    for (const [g, d, message] of cases) {
      expect(() => new CocoEval(g as any, d as any, { files }), message).toThrow(message);
      expect(() => cocoEvaluate(g as any, d as any), message).toThrow(MetricInputError);
    }
    expect(() => cocoEvaluate(gt({}) as any, [], { params: { maxDets: [0, 10] } })).toThrow('params: "maxDets"');
    expect(() => cocoEvaluate(gt({}) as any, [], { params: { iouThrs: [NaN] } })).toThrow('params: "iouThrs"');
  });
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MetricInputError } from '../errors.js';
import { recAccuracy, type RecSample } from './rec.js';
import { giouXyxy, iouXyxy, xywhToXyxy, type BoxXywh } from './boxes.js';

/** A small seeded generator (mulberry32). */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
import { Flickr30kEntitiesEvaluator, parseFlickr30kAnnotation, parseFlickr30kSentences } from './flickr30k.js';

const load = (f: string) => JSON.parse(readFileSync(join(__dirname, '../../test/fixtures', f), 'utf8'));

describe('REC accuracy', () => {
  const fx = load('rec.json');
  it('matches every case and the accuracy', () => {
    const r = recAccuracy(fx.cases.map((c: any) => ({ gtBox: c.gt_box_xywh, predBoxes: c.pred_boxes_xywh_ranked })));
    fx.cases.forEach((c: any, i: number) => {
      expect(Math.abs(r.ious[i] - c.top1_iou), c.name).toBeLessThanOrEqual(1e-12);
      expect(r.correct[i], c.name).toBe(c.correct);
    });
    expect(Math.abs(r.accuracy - fx.expected.accuracy)).toBeLessThanOrEqual(1e-12);
    expect(r.n).toBe(fx.expected.n);
  });
  it('names a bad box', () => {
    expect(() => recAccuracy([{ gtBox: [0, 0, -2, 3], predBoxes: [[0, 0, 1, 1]] }], { file: 'refs.json' })).toThrow(
      'refs.json: [0]: "gt_box" has a negative width or height: [0,0,-2,3]',
    );
  });
});

describe("REC with FIBER's evaluator (GIoU, precision@1, 5, 10)", () => {
  const fx = load('rec-giou.json');
  const samples = fx.cases.map((c: any) => ({ gtBox: c.gt_box_xywh, predBoxes: c.pred_boxes_xywh_ranked }));
  it('matches the GIoU of every ranked box, each hit and the precisions', () => {
    const r = recAccuracy(samples, { overlap: 'giou', k: [1, 5, 10] });
    expect(r.overlap).toBe('giou');
    fx.cases.forEach((c: any, i: number) => {
      c.pred_boxes_xywh_ranked.forEach((b: BoxXywh, j: number) => {
        const g = giouXyxy(xywhToXyxy(b), xywhToXyxy(c.gt_box_xywh));
        expect(Math.abs(g - c.giou_ranked[j]), `${c.name} box ${j}`).toBeLessThanOrEqual(1e-6);
      });
      expect(r.correct[i], c.name).toBe(c.hit_at['1']);
    });
    for (const k of [1, 5, 10]) expect(r.precisionAt[k]).toBeCloseTo(fx.expected[`precision_at_${k}`], 12);
    expect(r.accuracy).toBe(r.precisionAt[1]);
    expect(r.n).toBe(fx.expected.n);
  });
  it('GIoU is never above IoU, equal to it when one box holds the other, and reads lower off a corner', () => {
    const rng = mulberry32(3);
    for (let t = 0; t < 2000; t++) {
      const box = (): BoxXywh => [rng() * 100, rng() * 100, rng() * 80, rng() * 80];
      const a = xywhToXyxy(box());
      const b = xywhToXyxy(box());
      const g = giouXyxy(a, b);
      const iou = iouXyxy(a, b);
      if (Number.isNaN(iou)) continue; // two empty boxes
      expect(g).toBeLessThanOrEqual(iou + 1e-15);
      expect(g).toBeGreaterThanOrEqual(-1);
    }
    expect(giouXyxy([0, 0, 100, 100], [10, 10, 90, 90])).toBeCloseTo(iouXyxy([0, 0, 100, 100], [10, 10, 90, 90]), 15);
    // where the protocols differ: off the object's corner, IoU 0.506, GIoU 0.460
    const off = { gtBox: [0, 0, 100, 100] as BoxXywh, predBoxes: [[18, 18, 100, 100]] as BoxXywh[] };
    expect(recAccuracy([off]).accuracy).toBe(1);
    expect(recAccuracy([off], { overlap: 'giou' }).accuracy).toBe(0);
  });
  it('precision@k reads the first k boxes (fewer when a sample has fewer), and checks each box it reads', () => {
    const gt: BoxXywh = [0, 0, 10, 10];
    const miss: BoxXywh = [50, 50, 10, 10];
    const r = recAccuracy(
      [
        { gtBox: gt, predBoxes: [miss, miss, gt] },
        { gtBox: gt, predBoxes: [miss] },
      ],
      { k: [1, 2, 3, 10] },
    );
    expect(r.precisionAt).toEqual({ 1: 0, 2: 0, 3: 0.5, 10: 0.5 });
    expect(recAccuracy([{ gtBox: gt, predBoxes: [gt, [0, 0, -1, 1]] }]).accuracy).toBe(1); // only the first read
    expect(() => recAccuracy([{ gtBox: gt, predBoxes: [gt, [0, 0, -1, 1]] }], { k: [5], file: 's.json' })).toThrow(
      's.json: [0]: "pred_boxes[1]" has a negative width or height: [0,0,-1,1]',
    );
    expect(() => recAccuracy([{ gtBox: gt, predBoxes: [] }])).toThrow(
      'sample 0: "predBoxes[0]" must be [x, y, w, h] numbers',
    );
    expect(() => recAccuracy([{ gtBox: gt, predBoxes: [gt] }], { k: [0] })).toThrow(
      'k must be a list of positive integers',
    );
    // an object with a "0" key is not a list of boxes (it read as one box and left the IoU undefined)
    const parsed: RecSample[] = JSON.parse('[{"gtBox": [0, 0, 10, 10], "predBoxes": {"0": [0, 0, 10, 10]}}]');
    expect(() => recAccuracy(parsed, { file: 's.json' })).toThrow(
      's.json: [0]: "pred_boxes" must be a list of [x, y, w, h] boxes',
    );
    expect(() => recAccuracy([{ gtBox: gt, predBoxes: [gt] }], { overlap: 'diou' as 'iou' })).toThrow(
      "overlap must be 'iou' or 'giou'",
    );
  });
});

describe('Flickr30k Entities recall (MDETR flickr_eval)', () => {
  const fx = load('grounding_flickr30k.json');
  const files: Record<string, string> = fx.flickr30k_entities_files;
  const read = (p: string) => {
    if (!(p in files)) throw new Error(`no file ${p}`);
    return files[p];
  };
  const ev = new Flickr30kEntitiesEvaluator(read);

  it('parses phrases and boxes like the reference', () => {
    const flat = fx.phrases.map((p: any) => ({
      image: p.image_id,
      sentence: p.sentence_id,
      index: p.phrase_index,
      id: p.phrase_id,
      phrase: p.phrase,
      types: p.phrase_type,
    }));
    const ours = ev.imageIds.flatMap((img) =>
      ev.phrasesOf(img).flatMap((ph, s) =>
        ph.map((p, index) => ({
          image: img,
          sentence: s,
          index,
          id: p.phraseId,
          phrase: p.phrase,
          types: p.phraseTypes,
        })),
      ),
    );
    const key = (x: any) => `${x.image}/${x.sentence}/${x.index}`;
    expect(new Map(ours.map((x: any) => [key(x), x]))).toEqual(new Map(flat.map((x: any) => [key(x), x])));
    expect(parseFlickr30kSentences('A [/EN#1/people/other young man] runs .\n')[0]).toEqual({
      sentence: 'A young man runs .',
      phrases: [{ firstWordIndex: 1, phrase: 'young man', phraseId: '1', phraseTypes: ['people', 'other'] }],
    });
  });

  it('names the file and line of a malformed sentence or box, where the reference would raise', () => {
    expect(() => parseFlickr30kSentences('A man .\nPhoto: ] ] [[ .\n', 'Sentences/1.txt')).toThrow(
      'Sentences/1.txt: line 2: a phrase opens with "[[", not [/EN#<id>/<type>',
    );
    const xml = (xmin: string) =>
      `<annotation><object><name>1</name><bndbox><xmin>${xmin}</xmin><ymin>0</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>`;
    expect(parseFlickr30kAnnotation(xml('-3'), 'a.xml').boxes.get('1')).toEqual([[-3, 0, 9, 9]]);
    for (const bad of ['2.9e5', '2.5', '', 'x1'])
      expect(() => parseFlickr30kAnnotation(xml(bad), 'a.xml'), bad).toThrow(
        'a.xml: <xmin> is missing or not an integer',
      );
  });

  it('scores a phrase with many ranked boxes (no spread of a long list)', () => {
    const many = {
      ...fx.predictions[0],
      boxes: fx.predictions[0].boxes.map((b: number[][]) => [...Array(300_000).fill([0, 0, 1, 1]), ...b]),
    };
    const rest = fx.predictions.slice(1);
    // the boxes put first are 1 px, so they find nothing: every box list still holds its hits
    const r = ev.evaluate([many, ...rest], { mergeBoxes: true });
    expect(r.upper_bound).toEqual(ev.evaluate(fx.predictions, { mergeBoxes: true }).upper_bound);
  });

  it.each([
    ['any_box', false],
    ['merged_box', true],
  ] as const)('%s protocol', (name, merge) => {
    const r = ev.evaluate(fx.predictions, { mergeBoxes: merge });
    const e = fx.expected[name];
    expect(Object.keys(r).sort()).toEqual(Object.keys(e).sort());
    for (const [k, cats] of Object.entries(e as Record<string, Record<string, number>>)) {
      expect(Object.keys(r[k]).sort(), k).toEqual(Object.keys(cats).sort());
      for (const [cat, v] of Object.entries(cats))
        expect(Math.abs(r[k][cat] - v), `${k} ${cat}`).toBeLessThanOrEqual(1e-12);
    }
  });

  it('refuses missing, duplicate and malformed predictions', () => {
    expect(() => ev.evaluate(fx.predictions.slice(1))).toThrow(/missing predictions for 1 sentence/);
    expect(() => ev.evaluate([...fx.predictions, fx.predictions[0]])).toThrow(
      /a second prediction for sentence 0 of image 3001100/,
    );
    const bad = { ...fx.predictions[0], boxes: fx.predictions[0].boxes.slice(1) };
    expect(() => ev.evaluate([bad])).toThrow(/got 1 box lists, expected 2 for sentence 0 of image 3001100/);
    const file = 'preds.json';
    expect(() => ev.evaluate({ a: 1 } as any, { file })).toThrow(
      'preds.json: expected a list of {image_id, sentence_id, boxes}',
    );
    expect(() => ev.evaluate([null] as any, { file })).toThrow('preds.json: predictions[0]: not an object (null)');
    expect(() => ev.evaluate([{ ...fx.predictions[0], sentence_id: 'x' }], { file })).toThrow(
      'preds.json: predictions[0]: "sentence_id" must be a sentence index, got "x"',
    );
    expect(() => ev.evaluate([{ ...fx.predictions[0], image_id: 42 }], { file })).toThrow(
      'preds.json: predictions[0]: unknown image id 42',
    );
    const nanBox = {
      ...fx.predictions[0],
      boxes: fx.predictions[0].boxes.map((b: number[][]) => [[0, 0, NaN, 1], ...b]),
    };
    expect(() => ev.evaluate([nanBox], { file })).toThrow(
      'preds.json: predictions[0].boxes[0][0]: must be [x1, y1, x2, y2]',
    );
    const flipped = {
      ...fx.predictions[0],
      boxes: fx.predictions[0].boxes.map((b: number[][]) => [[5, 0, 1, 1], ...b]),
    };
    expect(() => ev.evaluate([flipped], { file })).toThrow(MetricInputError);
    expect(() => recAccuracy({} as any)).toThrow(MetricInputError);
    expect(() => recAccuracy([null] as any, { file: 's.json' })).toThrow('s.json: [0]: not an object (null)');
  });
});

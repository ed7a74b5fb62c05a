import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MetricInputError } from '../errors.js';
import { recAccuracy } from './rec.js';
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

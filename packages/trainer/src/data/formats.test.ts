import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { bufferSource } from '@fiber-vl/tensor-core';
import { karpathyCaptions } from './formats/captions.js';
import { buildVqaVocab, normalizeVqaWord, vqaQuestions, vqaScore, vqaTargets } from './formats/vqa.js';
import { genericRecord, indexLines, jsonlSource, nlvr2Record, textLines } from './formats/jsonl.js';
import { MAX_TEXT_LENGTH } from './validate.js';
import { cocoInstances, detectionToGrounding, mdetrGrounding } from './formats/coco.js';
import { concatSources, lazySource, mapSource } from './source.js';
import { DataSkipError } from './skips.js';
import { memoryImageStore } from './images.js';
import { entries, fileSource, fixture, fixtureJson, openJsonl, split } from './test-helpers.js';
import type { CaptionRecord, DetectionRecord } from './records.js';
import type { RecordSource } from './source.js';

describe('Karpathy captions (dataset_coco.json)', () => {
  const json = fixtureJson('coco/karpathy/dataset_coco.json');

  it('gives one record per (image, sentence), image filepath/filename, skipping broken ones', async () => {
    const { records, skips } = await split(karpathyCaptions(json));
    expect(records.map((r) => [r.id, r.image, r.text, r.split])).toEqual([
      ['9/0', 'train2014/COCO_train2014_000000000009.jpg', 'A red box on the left of a blue ball.', 'train'],
      ['25/0', 'train2014/COCO_train2014_000000000025.jpg', 'A square and a circle.', 'restval'],
      ['25/1', 'train2014/COCO_train2014_000000000025.jpg', 'Shapes on a gradient.', 'restval'],
      ['42/0', 'val2014/COCO_val2014_000000000042.jpg', 'A tall picture with a disc on the right.', 'test'],
      ['73/0', 'val2014/COCO_val2014_000000000073.jpg', 'This JPEG is cut in half.', 'val'],
      ['99/0', 'val2014/COCO_val2014_000000000099.jpg', 'The image file of this one is missing.', 'train'],
    ]);
    // "   " is an empty caption; images[5] has no filename.
    expect(skips).toEqual(['empty-text', 'malformed-record']);
  });

  it('keeps duplicates when asked and filters splits', async () => {
    expect(
      (await split(karpathyCaptions(json, { dedupe: false }))).records.filter((r) => r.id.startsWith('25/')),
    ).toHaveLength(3);
    const train = await split(karpathyCaptions(json, { splits: ['train', 'restval'] }));
    expect(new Set(train.records.map((r) => r.split))).toEqual(new Set(['train', 'restval']));
  });

  it('names the file and field of a wrong file', () => {
    expect(() => karpathyCaptions({ nope: [] }, { name: 'x.json' })).toThrow(
      /x\.json: expected a json object with an array "images"/,
    );
  });
});

describe('VQAv2 questions + annotations', () => {
  const trainQ = fixtureJson('vqa/v2_OpenEnded_mscoco_train2014_questions.json');
  const trainA = fixtureJson('vqa/v2_mscoco_train2014_annotations.json');
  const valQ = fixtureJson('vqa/v2_OpenEnded_mscoco_val2014_questions.json');
  const valA = fixtureJson('vqa/v2_mscoco_val2014_annotations.json');
  const expected = fixtureJson('expected/vqa_vocab.json') as Record<
    string,
    { label2ans: string[]; targets: Record<string, { labels: number[]; scores: number[] }> }
  >;

  it('normalises answers as ViLT/FIBER glossary.normalize_word', () => {
    expect(normalizeVqaWord('Two.')).toBe('2');
    expect(normalizeVqaWord('a red box')).toBe('red box');
    expect(normalizeVqaWord('1,000')).toBe('1000');
    expect(normalizeVqaWord('dont')).toBe("don't");
  });

  it('scores 1..4+ annotators as 0.3 / 0.6 / 0.9 / 1 exactly', () => {
    expect([0, 1, 2, 3, 4, 10].map(vqaScore)).toEqual([0, 0.3, 0.6, 0.9, 1, 1]);
  });

  it.each(['1', '2'])(
    'builds the vocabulary and targets of write_vqa.py (min count %s), as the Python reference',
    async (min) => {
      const vocab = buildVqaVocab([trainA, valA], { minCount: Number(min) });
      expect(vocab.answers).toEqual(expected[min].label2ans);
      const source = concatSources('vqa', [
        vqaQuestions({ questions: trainQ, annotations: trainA, vocab }),
        vqaQuestions({ questions: valQ, annotations: valA, vocab }),
      ]);
      for (const e of await entries(source)) {
        if (!e.ok) continue;
        expect({ labels: e.record.labels, scores: e.record.scores }).toEqual(expected[min].targets[e.record.id]);
      }
    },
  );

  it('names the file and the entry whose multiple_choice_answer is missing or not a string', () => {
    const broken = (mc: unknown) => ({
      annotations: [{ multiple_choice_answer: 'yes' }, { multiple_choice_answer: mc }],
    });
    expect(() => buildVqaVocab([valA, broken(null)], { names: ['val.json', 'train.json'] })).toThrow(
      'train.json: annotations[1].multiple_choice_answer is null, not a string',
    );
    expect(() => buildVqaVocab([{ annotations: [{}] }])).toThrow(
      'annotation file 0: annotations[0].multiple_choice_answer is missing, not a string',
    );
  });

  it('skips empty questions, questions without annotation and questions with no answer in the vocabulary', async () => {
    const vocab = buildVqaVocab([trainA, valA], { minCount: 2 });
    const { records, skips } = await split(vqaQuestions({ questions: trainQ, annotations: trainA, vocab }));
    expect(records.map((r) => [r.questionId, r.image, r.text])).toEqual([
      [9001, 'train2014/COCO_train2014_000000000009.jpg', 'How many shapes are there?'],
      [25000, 'train2014/COCO_train2014_000000000025.jpg', 'What shape is blue?'],
    ]);
    // 9000 ("red box" seen once) and 25002 ("purple" once) have no answer in the min-2 vocabulary.
    expect(skips).toEqual(['no-answer-in-vocab', 'empty-text', 'no-answer-in-vocab', 'missing-annotation']);
    // The raw answer "Two." does not match the normalised "2": write_vqa.py counts raw strings.
    expect(vqaTargets(['2', '2', 'Two.', 'two'], vocab)).toEqual({ labels: [vocab.index.get('2')!], scores: [0.6] });
  });

  it('refuses a question id repeated in the questions or the annotations, naming both entries', async () => {
    const vocab = buildVqaVocab([trainA], { minCount: 1 });
    const q = trainQ as { questions: { question_id: number }[] };
    const a = trainA as { annotations: { question_id: number }[] };
    const questions = { ...q, questions: [...q.questions, { ...q.questions[1] }] };
    expect(() => vqaQuestions({ questions, vocab, name: 'q.json' })).toThrow(
      `q.json: questions[${q.questions.length}] has the question_id ${q.questions[1].question_id} of questions[1]; ids must be unique`,
    );
    const annotations = { ...a, annotations: [...a.annotations, { ...a.annotations[0] }] };
    expect(() => vqaQuestions({ questions: trainQ, annotations, vocab, name: 'q.json' })).toThrow(
      `q.json annotations: annotations[${a.annotations.length}] has the question_id ${a.annotations[0].question_id} of annotations[0]`,
    );
    // entries without a numeric id are each skipped as malformed, not taken for repeats of one
    // another (two missing ids, or "1" next to 1, refused the whole file)
    const odd = { ...q, questions: [...q.questions, { question: 'a?', image_id: 9 }, { question: 'b?', image_id: 9 }] };
    odd.questions.push({ ...q.questions[0], question_id: String(q.questions[0].question_id) } as never);
    const { skips } = await split(vqaQuestions({ questions: odd, vocab, name: 'q.json' }));
    expect(skips.filter((s) => s === 'malformed-record')).toHaveLength(3);
    const loose = { ...a, annotations: [...a.annotations, { answers: [] }, { answers: [] }] };
    await split(vqaQuestions({ questions: trainQ, annotations: loose, vocab, name: 'q.json' }));
  });

  it('reads test questions without annotations (no labels, no skips but empty text)', async () => {
    const vocab = buildVqaVocab([trainA], { minCount: 1 });
    const { records, skips } = await split(vqaQuestions({ questions: trainQ, vocab }));
    expect(records).toHaveLength(5);
    expect(records.every((r) => r.labels.length === 0)).toBe(true);
    expect(skips).toEqual(['empty-text']);
  });
});

describe('NLVR2 json lines', () => {
  it('reads train.json with image pairs under images/train/<directory>/ and skips broken lines', async () => {
    const { records, skips } = await split(await openJsonl(fixture('nlvr2/data/train.json'), nlvr2Record));
    expect(records.map((r) => [r.id, r.images, r.label])).toEqual([
      ['train-100-0-0', ['images/train/3/train-100-0-img0.png', 'images/train/3/train-100-0-img1.png'], true],
      ['train-100-0-1', ['images/train/3/train-100-0-img0.png', 'images/train/3/train-100-0-img1.png'], false],
      ['train-200-1-0', ['images/train/47/train-200-1-img0.png', 'images/train/47/train-200-1-img1.png'], true],
      ['train-300-2-0', ['images/train/5/train-300-2-img0.png', 'images/train/5/train-300-2-img1.png'], false],
    ]);
    expect(skips).toEqual(['empty-text', 'malformed-record']);
  });

  it('names dev images <split>/<pair>-img<k>.png', async () => {
    const { records } = await split(
      jsonlSource(textLines(readFileSync(fixture('nlvr2/data/dev.json'), 'utf8')), nlvr2Record),
    );
    expect(records[0].images).toEqual(['dev/dev-7-0-img0.png', 'dev/dev-7-0-img1.png']);
  });
});

describe('COCO instances', () => {
  const source = cocoInstances(fixtureJson('coco/annotations/instances_val2014.json'), { imagePrefix: 'val2014/' });

  it('maps category ids to contiguous labels by sorted id', () => {
    expect(source.categories).toEqual([
      { id: 1, label: 1, name: 'square' },
      { id: 18, label: 2, name: 'disc' },
    ]);
  });

  it('reads images in id order, drops crowd / unknown / degenerate / outside boxes, clips the rest', async () => {
    const all = await entries(source);
    expect(all.map((e) => (e.ok ? e.record.id : e.skip.reason))).toEqual(['42', '73', '74', '99', 'no-valid-boxes']);
    const [img42, , img74] = all.map((e) => (e.ok ? e.record : undefined)) as DetectionRecord[];
    expect(img42.image).toBe('val2014/COCO_val2014_000000000042.jpg');
    expect(img42.boxes).toEqual([
      [4, 12, 12.5, 28],
      [21.3, 24, 21.3 + 9, 34],
      [28, 40, 32, 48], // clipped to the 32x48 image
    ]);
    expect(img42.labels).toEqual([1, 2, 2]);
    expect(img74.boxes).toEqual([[3, 4, 15, 13]]);
    const e74 = all[2];
    expect(e74.ok && e74.dropped!.map((d) => d.reason)).toEqual([
      'unknown-category',
      'degenerate-box',
      'box-outside-image',
    ]);
  });

  it('skips the whole image under boxPolicy skip-record', async () => {
    const strict = cocoInstances(fixtureJson('coco/annotations/instances_val2014.json'), { boxPolicy: 'skip-record' });
    expect((await split(strict)).skips).toEqual(['unknown-category', 'no-valid-boxes']);
  });

  it('reads iscrowd as 0/1 or false/true, and a missing one as not crowd; any other value skips the image', async () => {
    const json = fixtureJson('coco/annotations/instances_val2014.json') as any;
    const first = json.annotations.findIndex((a: any) => a.image_id === 42);
    const boxesOf42 = async (iscrowd: unknown) => {
      const annotations = json.annotations.map((a: any, i: number) => {
        if (i !== first) return a;
        const { iscrowd: _, ...rest } = a;
        return iscrowd === undefined ? rest : { ...rest, iscrowd };
      });
      const [e] = await entries(cocoInstances({ ...json, annotations }, { name: 'i.json' }));
      return e.ok ? e.record.boxes.length : e.skip;
    };
    const all = await boxesOf42(0);
    expect(all).toBe(3);
    expect(await boxesOf42(false)).toBe(3);
    expect(await boxesOf42(undefined)).toBe(3);
    expect(await boxesOf42(1)).toBe(2);
    expect(await boxesOf42(true)).toBe(2);
    for (const bad of [5, '1', null]) {
      expect(await boxesOf42(bad)).toEqual({
        reason: 'malformed-record',
        detail: expect.stringMatching(/^i\.json.*annotation .*: field "iscrowd" must be 0 or 1, got /),
      });
    }
  });

  it('refuses images or categories that repeat an id (one image would get the boxes of another)', () => {
    const json = fixtureJson('coco/annotations/instances_val2014.json') as any;
    const images = [...json.images, { ...json.images[0] }];
    expect(() => cocoInstances({ ...json, images }, { name: 'i.json' })).toThrow(
      `i.json: images[${json.images.length}] has the id ${json.images[0].id} of images[0]; ids must be unique`,
    );
    const categories = [...json.categories, { ...json.categories[0], name: 'again' }];
    expect(() => mdetrGrounding({ ...json, categories }, { name: 'm.json' })).toThrow(
      `m.json: categories[${categories.length - 1}] has the id ${json.categories[0].id} of categories[0]`,
    );
  });

  it('counts an images entry that is not an object; refuses an annotation it cannot join to an image', async () => {
    const json = fixtureJson('coco/annotations/instances_val2014.json') as any;
    const n = json.images.length;
    const got = await entries(cocoInstances({ ...json, images: [...json.images, null, 5] }, { name: 'i.json' }));
    expect(got.filter((e) => !e.ok).map((e) => (e.ok ? '' : e.skip.detail))).toEqual(
      expect.arrayContaining([`i.json: images[${n}] is not an object`, `i.json: images[${n + 1}] is not an object`]),
    );
    const m = json.annotations.length;
    for (const [bad, message] of [
      [null, `i.json: annotations[${m}] is not an object`],
      [
        { ...json.annotations[0], image_id: String(json.annotations[0].image_id) },
        `i.json: annotations[${m}].image_id is "${json.annotations[0].image_id}", not a number (it names the annotation's image)`,
      ],
    ] as const) {
      expect(() => cocoInstances({ ...json, annotations: [...json.annotations, bad] }, { name: 'i.json' })).toThrow(
        new TypeError(message),
      );
      expect(() => mdetrGrounding({ ...json, annotations: [...json.annotations, bad] }, { name: 'i.json' })).toThrow(
        message,
      );
    }
    const huge = [...json.categories, { id: 2 ** 60, name: 'far' }];
    expect(() => cocoInstances({ ...json, categories: huge }, { name: 'i.json' })).toThrow(
      `i.json: categories[${huge.length - 1}].id is 1152921504606847000, past 2^53 (not exactly representable)`,
    );
  });

  it('keeps the images in id order when some have no numeric id; those are skipped, not refused as repeats', async () => {
    const json = fixtureJson('coco/annotations/instances_val2014.json') as any;
    const ids = json.images.map((im: any) => im.id).sort((a: number, b: number) => a - b);
    const { id: _, ...noId } = json.images[0];
    // id-less entries between the others, in reverse id order (a NaN comparison left them unsorted)
    const images = [...json.images].reverse().flatMap((im: any, i: number) => (i % 2 ? [im] : [im, noId]));
    images.push({ ...noId, id: 'x' });
    const got = await entries(cocoInstances({ ...json, images }, { name: 'i.json' }));
    const kept = got.filter((e) => e.ok).map((e) => (e.ok ? Number(e.record.id) : 0));
    expect(kept.length).toBeGreaterThan(2);
    expect(kept).toEqual(ids.filter((id: number) => kept.includes(id)));
    const unnumbered = images.length - json.images.length;
    expect(got.slice(-unnumbered).map((e) => (e.ok ? 'ok' : e.skip.reason))).toEqual(
      Array(unnumbered).fill('malformed-record'),
    );
  });

  it('refuses a category without an integer id or a name (it would move every class name onto other boxes)', () => {
    const json = fixtureJson('coco/annotations/instances_val2014.json') as any;
    const n = json.categories.length;
    for (const [extra, message] of [
      [{ id: 'abc', name: 'zebra' }, `i.json: categories[${n}].id is "abc", not an integer`],
      [{ name: 'zebra' }, `i.json: categories[${n}].id is missing, not an integer`],
      [{ id: 1.5, name: 'zebra' }, `i.json: categories[${n}].id is 1.5, not an integer`],
      [{ id: 99, name: null }, `i.json: categories[${n}].name is not a string`],
      [null, `i.json: categories[${n}] is not an object`],
    ] as const) {
      const categories = [...json.categories, extra];
      expect(() => cocoInstances({ ...json, categories }, { name: 'i.json' })).toThrow(message);
    }
  });

  it('turns detection into grounding with the class-name prompt (". " separated)', async () => {
    const g = mapSource(source, (r) => detectionToGrounding(r, source.categories));
    const first = await g.get(0);
    expect(first.ok && first.record.text).toBe('square. disc');
    expect(first.ok && first.record.spans).toEqual([[[0, 6]], [[8, 12]], [[8, 12]]]);
  });
});

describe('MDETR grounding json', () => {
  it('reads tokens_positive as Python code points: a caption with emoji keeps its phrases on the same words', async () => {
    const caption = '\u{1F600}\u{1F600} red square and blue disc';
    // Python: caption[3:13] == 'red square', caption[18:27] == 'blue disc'
    const json = {
      images: [{ id: 1, file_name: 'a.jpg', caption, height: 32, width: 32, tokens_positive_eval: [[[3, 13]]] }],
      annotations: [
        { id: 1, image_id: 1, bbox: [1, 1, 10, 10], category_id: 1, tokens_positive: [[3, 13]] },
        { id: 2, image_id: 1, bbox: [12, 12, 10, 10], category_id: 1, tokens_positive: [[18, 27]] },
      ],
      categories: [{ id: 1, name: 'object' }],
    };
    const r = await mdetrGrounding(json, { name: 'emoji.json' }).get(0);
    if (!r.ok) throw new Error(JSON.stringify(r));
    const phrase = ([a, b]: [number, number]) => caption.slice(a, b);
    expect(r.record.spans.map((s) => s.map(phrase))).toEqual([['red square'], ['blue disc']]);
    expect(r.record.evalSpans!.map((s) => s.map(phrase))).toEqual([['red square']]);
    // the last code point is 26; a span to 28 is outside, counted in code points
    const outside = structuredClone(json);
    outside.annotations[1].tokens_positive = [[18, 28]];
    const o = await mdetrGrounding(outside, { name: 'emoji.json' }).get(0);
    expect(!o.ok && o.skip.reason).toBe('span-outside-text');
    expect(!o.ok && o.skip.detail).toMatch(/not inside the 27-character text/);
    // a broken evaluation span skips the record, unless the reader is told not to read them
    const badEval = structuredClone(json);
    badEval.images[0].tokens_positive_eval = [[[3, 99]]];
    const e = await mdetrGrounding(badEval, { name: 'emoji.json' }).get(0);
    expect(!e.ok && e.skip.reason).toBe('span-outside-text');
    const t = await mdetrGrounding(badEval, { name: 'emoji.json', evalSpans: false }).get(0);
    expect(t.ok && t.record.evalSpans).toBeUndefined();
    expect(t.ok && t.record.spans.map((sp) => sp.map(phrase))).toEqual([['red square'], ['blue disc']]);
  });

  it('reads Flickr30k separateGT with tokens_positive(_eval), skipping bad spans and outside boxes', async () => {
    const s = mdetrGrounding(fixtureJson('mdetr_annotations/final_flickr_separateGT_train.json'), { name: 'flickr' });
    const all = await entries(s);
    expect(all.map((e) => (e.ok ? e.record.id : e.skip.reason))).toEqual([
      '0',
      'span-outside-text',
      'box-outside-image',
    ]);
    const r = all[0].ok ? all[0].record : undefined;
    expect(r).toEqual({
      kind: 'grounding',
      id: '0',
      image: '1000092795.jpg',
      text: 'A red square sits left of a blue disc .',
      boxes: [
        [6, 10, 19, 24],
        [33, 20, 45, 32],
      ],
      spans: [[[0, 12]], [[26, 37]]],
      categories: [1, 1],
      evalSpans: [[[0, 12]], [[26, 37]]],
      size: { width: 50, height: 40 },
      dataset: 'flickr',
    });
    expect(r!.spans.map((ss) => r!.text.slice(...ss[0]))).toEqual(['A red square', 'a blue disc']);
  });

  it('reads RefCOCO refexp (COCO categories), skipping undeclared categories and empty expressions', async () => {
    const { records, skips } = await split(
      mdetrGrounding(fixtureJson('mdetr_annotations/final_refexp_val.json'), { imagePrefix: 'coco/train2014/' }),
    );
    expect(records.map((r) => [r.image, r.text, r.categories])).toEqual([
      ['coco/train2014/COCO_train2014_000000000025.jpg', 'blue disc on the right', [18]],
    ]);
    expect(skips).toEqual(['unknown-category', 'empty-text']);
  });

  it('reads mixed files with the image folder chosen by data_source, skipping degenerate boxes', async () => {
    const s = mdetrGrounding(fixtureJson('mdetr_annotations/final_mixed_train.json'), {
      dataSourcePrefix: { coco: 'coco/train2014/', vg: 'gqa/images/' },
    });
    const { records, skips } = await split(s);
    expect(records.map((r) => [r.image, r.spans])).toEqual([
      ['coco/train2014/COCO_train2014_000000000009.jpg', [[[2, 12]], [[16, 25]]]],
      ['gqa/images/2354786.jpg', [[[4, 8]]]],
    ]);
    expect(skips).toEqual(['degenerate-box']);
  });
});

describe('generic JSONL', () => {
  it('reads lines of an indexed file (CRLF, blank lines), naming the line of a bad one', async () => {
    const s = jsonlSource(
      await indexLines(await fileSource(fixture('jsonl/data.jsonl')), { chunkSize: 16 }),
      genericRecord(),
    );
    const all = await entries(s);
    expect(all.map((e) => (e.ok ? e.record.kind : e.skip.reason))).toEqual([
      'caption',
      'grounding',
      'grounding',
      'malformed-record',
      'malformed-record',
      'grounding',
      'caption',
      'empty-text',
    ]);
    const bad = all[3];
    expect(!bad.ok && bad.skip.detail).toMatch(/data\.jsonl:4: not json/);
    const mismatch = all[4];
    expect(!mismatch.ok && mismatch.skip.detail).toMatch(
      /data\.jsonl:6: "boxes" and "phrases" must be arrays of the same length/,
    );
    const g = all[2].ok ? all[2].record : undefined;
    expect(g).toMatchObject({
      kind: 'grounding',
      id: '2',
      text: 'two shapes',
      boxes: [[3, 10, 28, 29]],
      spans: [
        [
          [0, 3],
          [4, 10],
        ],
      ],
    });
    const b1 = all[1].ok ? all[1].record : undefined;
    expect(b1).toMatchObject({ id: 'b-1', spans: [[[0, 10]], [[23, 27]]] });
  });

  it('gives the same entries from memory as from the file index', async () => {
    const text = readFileSync(fixture('jsonl/data.jsonl'), 'utf8');
    const a = await entries(jsonlSource(textLines(text, 'data.jsonl'), genericRecord()));
    const b = await entries(
      jsonlSource(await indexLines(await fileSource(fixture('jsonl/data.jsonl'))), genericRecord()),
    );
    expect(a.map((e) => (e.ok ? e.record : e.skip.reason))).toEqual(b.map((e) => (e.ok ? e.record : e.skip.reason)));
  });

  it('skips a line that is not UTF-8 (Python refuses it; it was read with U+FFFD)', async () => {
    const bytes = Buffer.concat([
      Buffer.from('{"image": "a.jpg", "text": "caf'),
      Buffer.from([0xe9]), // Latin-1 é
      Buffer.from('"}\n\uFEFF{"image": "a.jpg", "text": "café"}\n'),
    ]);
    const all = await entries(
      jsonlSource(await indexLines(bufferSource(new Uint8Array(bytes), 'l.jsonl')), genericRecord()),
    );
    expect(all.map((e) => (e.ok ? e.record.kind === 'caption' && e.record.text : e.skip))).toEqual([
      { reason: 'malformed-record', detail: 'l.jsonl:1: not UTF-8 text' },
      'café',
    ]);
  });

  it('skips a text longer than MAX_TEXT_LENGTH as malformed, naming its length', async () => {
    const long = 'a'.repeat(MAX_TEXT_LENGTH + 1);
    const lines = [JSON.stringify({ image: 'a.jpg', text: long }), JSON.stringify({ image: 'a.jpg', text: 'a cat' })];
    const all = await entries(jsonlSource(textLines(lines.join('\n'), 'long.jsonl'), genericRecord()));
    expect(all.map((e) => (e.ok ? e.record.kind : e.skip.detail))).toEqual([
      `long.jsonl:1: a text of ${MAX_TEXT_LENGTH + 1} characters, more than the ${MAX_TEXT_LENGTH} a record may hold`,
      'caption',
    ]);
  });

  it("with boxes: 'required' skips caption lines (a grounding stage cannot use them)", async () => {
    const text = readFileSync(fixture('jsonl/data.jsonl'), 'utf8');
    const all = await entries(jsonlSource(textLines(text, 'data.jsonl'), genericRecord({ boxes: 'required' })));
    expect(all.map((e) => (e.ok ? e.record.kind : e.skip.reason))).toEqual([
      'no-valid-boxes',
      'grounding',
      'grounding',
      'malformed-record',
      'malformed-record',
      'grounding',
      'no-valid-boxes',
      'empty-text',
    ]);
    expect(!all[0].ok && all[0].skip.detail).toBe(
      'data.jsonl:1: no "boxes" (a caption line, where boxes are required)',
    );
  });

  it('reads COCO-style xywh boxes and flags spans outside the text', async () => {
    const parse = genericRecord({ boxFormat: 'xywh' });
    expect(parse({ image: 'a', text: 'abc', boxes: [[1, 2, 3, 4]], phrases: [[0, 3]] }, 'x', 0)).toMatchObject({
      record: { boxes: [[1, 2, 4, 6]] },
    });
    expect(() => parse({ image: 'a', text: 'abc', boxes: [[1, 2, 3, 4]], phrases: [[1, 9]] }, 'x', 0)).toThrow(
      /span \[1, 9\) is not inside the 3-character text/,
    );
  });
});

describe('skipped entries keep the id the file gives them', () => {
  const skipped = async (source: RecordSource) =>
    (await entries(source)).flatMap((e) => (e.ok ? [] : [[e.skip.reason, e.id]]));

  it('in each reader that can read one, so a skip report names the entry', async () => {
    const vocab = buildVqaVocab([fixtureJson('vqa/v2_mscoco_train2014_annotations.json')], { minCount: 2 });
    const questions = vqaQuestions({
      questions: fixtureJson('vqa/v2_OpenEnded_mscoco_train2014_questions.json'),
      annotations: fixtureJson('vqa/v2_mscoco_train2014_annotations.json'),
      vocab,
    });
    const instances = cocoInstances(fixtureJson('coco/annotations/instances_val2014.json'), {
      boxPolicy: 'skip-record',
    });
    expect({
      karpathy: await skipped(karpathyCaptions(fixtureJson('coco/karpathy/dataset_coco.json'))),
      vqa: await skipped(questions),
      instances: await skipped(instances),
      mdetr: await skipped(mdetrGrounding(fixtureJson('mdetr_annotations/final_refexp_val.json'))),
      flickr: await skipped(mdetrGrounding(fixtureJson('mdetr_annotations/final_flickr_separateGT_train.json'))),
    }).toEqual({
      // image 9's sentence 1 is "   "; image 100 has no filename
      karpathy: [
        ['empty-text', '9/1'],
        ['malformed-record', '100'],
      ],
      vqa: [
        ['no-answer-in-vocab', '9000'],
        ['no-answer-in-vocab', '9001'],
        ['no-answer-in-vocab', '25000'],
        ['empty-text', '25001'],
        ['no-answer-in-vocab', '25002'],
        ['missing-annotation', '25003'],
      ],
      instances: [
        ['unknown-category', '74'],
        ['no-valid-boxes', '105'],
      ],
      mdetr: [
        ['unknown-category', '1'],
        ['empty-text', '2'],
      ],
      flickr: [
        ['span-outside-text', '1'],
        ['box-outside-image', '2'],
      ],
    });
  });

  it('and none where the entry has no usable id; a mapped record that fails keeps its own', async () => {
    const json = {
      images: [{ id: { nested: 1 }, file_name: 'a.jpg', caption: 'x' }, { file_name: 'b.jpg', caption: 'y' }, 7],
      annotations: [],
    };
    expect(await skipped(mdetrGrounding(json))).toEqual([
      ['malformed-record', undefined],
      ['malformed-record', undefined],
      ['malformed-record', undefined],
    ]);
    const mapped = mapSource(cocoInstances(fixtureJson('coco/annotations/instances_val2014.json')), (r) => {
      if (r.id === '42') throw new Error('no');
      return r;
    });
    // image 105 is skipped by the reader itself (no box left)
    expect(await skipped(mapped)).toEqual([
      ['malformed-record', '42'],
      ['no-valid-boxes', '105'],
    ]);
  });
});

describe('custom and JSON-lines sources name a skipped entry by its id', () => {
  const skipped = async (source: RecordSource) =>
    (await entries(source)).flatMap((e) => (e.ok ? [] : [[e.skip.reason, e.id]]));
  const caption = (id: string, text: string) => ({ kind: 'caption' as const, id, image: `${id}.jpg`, text });

  it('lazySource asks idOf for the entries parse rejects, and only for those', async () => {
    const rows: unknown[] = [{ id: 'a', text: 'one' }, { id: 7, text: 5 }, { text: 1 }, 'junk', { id: 'e' }];
    const asked: number[] = [];
    const parse = (i: number) => {
      const r = rows[i] as { id: string; text: unknown };
      if (typeof r?.text !== 'string') throw new DataSkipError('empty-text', `row ${i}: no text`);
      return caption(r.id ?? String(i), r.text);
    };
    const idOf = (i: number) => {
      asked.push(i);
      if (rows[i] === 'junk') throw new TypeError('not an object');
      return (rows[i] as { id?: string | number }).id;
    };
    const source = lazySource('rows', rows.length, parse, { idOf });
    expect(await skipped(source)).toEqual([
      ['empty-text', '7'], // a number's decimal text
      ['empty-text', undefined], // no id field
      ['empty-text', undefined], // idOf threw: no id, the skip itself unchanged
      ['empty-text', 'e'],
    ]);
    expect(asked).toEqual([1, 2, 3, 4]);
    // the image store alone, the older fourth argument, still works
    const store = memoryImageStore(new Map(), 'mem');
    expect(lazySource('rows', rows.length, parse, store).images).toBe(store);
    expect(lazySource('rows', rows.length, parse, { images: store, idOf }).images).toBe(store);
  });

  it('takes no id from an idOf that is async (its rejection caught), and refuses one that is not a function', async () => {
    const reject = () => {
      throw new DataSkipError('empty-text', 'no');
    };
    // a JS caller's async idOf: TypeScript's type says synchronous
    const asyncIdOf = async (): Promise<string> => Promise.reject(new Error('later'));
    const source = lazySource<CaptionRecord>('rows', 2, reject, { idOf: asyncIdOf as never });
    expect(await skipped(source)).toEqual([
      ['empty-text', undefined],
      ['empty-text', undefined],
    ]);
    await new Promise((r) => setTimeout(r, 10)); // an unhandled rejection would fail the run here
    expect(() => lazySource('rows', 1, reject, { idOf: 'id' as never })).toThrow(
      'lazySource(rows): idOf must be a function, got string',
    );
    expect(() => jsonlSource(textLines('{}', 'x.jsonl'), genericRecord(), { idOf: 5 as never })).toThrow(
      'jsonlSource(x.jsonl): idOf must be a function, got number',
    );
    // null for the options, from JS, is no options
    expect(lazySource('rows', 1, reject, null as never).images).toBeUndefined();
  });

  it("jsonlSource gives a rejected JSON line its id (else NLVR2's identifier), a line that is not JSON none", async () => {
    const text = [
      '{"id": "g1", "image": "a.jpg", "text": "a cat"}',
      '{"id": "g2", "image": "b.jpg", "text": "  "}',
      '{"id": 3, "text": "no image"}',
      '{"identifier": "dev-1-0-0", "sentence": "x", "label": "maybe"}',
      'not json',
      '{"id": {"deep": 1}, "text": ""}',
    ].join('\n');
    expect(await skipped(jsonlSource(textLines(text, 'g.jsonl'), genericRecord()))).toEqual([
      ['empty-text', 'g2'],
      ['malformed-record', '3'],
      ['malformed-record', 'dev-1-0-0'],
      ['malformed-record', undefined],
      ['malformed-record', undefined],
    ]);
    expect(await skipped(jsonlSource(textLines(text, 'n.jsonl'), nlvr2Record))).toContainEqual([
      'malformed-record',
      'dev-1-0-0',
    ]);
    const custom = jsonlSource(textLines(text, 'g.jsonl'), genericRecord(), {
      idOf: (obj, index) => `line ${index}: ${(obj as { id?: unknown }).id ?? '?'}`,
    });
    expect((await skipped(custom)).map(([, id]) => id)).toEqual([
      'line 1: g2',
      'line 2: 3',
      'line 3: ?',
      undefined,
      'line 5: [object Object]',
    ]);
  });
});

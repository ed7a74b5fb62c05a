// RefCOCO / RefCOCO+ / RefCOCOg referring expression comprehension on MDETR's annotation files (the
// layout of FIBER's fine-grained paths_catalog): the expression grounded by the fine-grained model,
// its best box against the referred box, accuracy at IoU >= 0.5 (@fiber-vl/eval-metrics recAccuracy),
// and FIBER's own RefExpEvaluator: precision@1, 5, 10 at generalised IoU >= 0.5 (its paper's numbers).
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { recAccuracy, type RecSample } from '@fiber-vl/eval-metrics';
import { FiberFinePipeline } from '@fiber-vl/heads-fine';
import { mdetrGrounding, type Span } from '@fiber-vl/trainer';
import { imageFolder } from '@fiber-vl/trainer/node';
import { checkpointShapes, checkTokenizer, loadFine, requireKind } from '../checkpoint.js';
import type { EvalContext, TaskReport } from '../context.js';
import { fileStamp, parseFile, readJsonObject, readSource, requireDir } from '../data.js';
import { fail } from '../errors.js';
import { runStage, type Item } from '../runner.js';
import { baseFingerprint, boxesField, numbersField, pct, record, refOf } from './common.js';

interface RecResult {
  /** The expression's boxes, best first, COCO [x, y, w, h] with w = x2 - x1 (as the ground truth). */
  boxes: number[][];
  scores: number[];
}

type Data = { id: number; caption: string; spans: Span[] };

export async function evalRefcoco(ctx: EvalContext): Promise<TaskReport> {
  const { opts } = ctx;
  const dataset = opts.dataset ?? 'refcoco';
  if (!['refcoco', 'refcoco+', 'refcocog'].includes(dataset))
    fail(`--dataset: "${dataset}" is not refcoco, refcoco+ or refcocog`);
  const split = opts.split ?? 'val';
  const dir = join(opts.data, 'mdetr_annotations');
  // FIBER's paths_catalog reads refcocog test from the corrected file MDETR released later
  const candidates = [`finetune_${dataset}_${split}_corrected.json`, `finetune_${dataset}_${split}.json`].map((f) =>
    join(dir, f),
  );
  const annFile = opts.ann ?? candidates.find((f) => existsSync(f)) ?? candidates[1];
  const imagesDir = requireDir(
    opts.images ?? join(opts.data, 'refcoco', 'train2014'),
    'RefCOCO images',
    'COCO train2014 images; set --images',
  );
  const json = readJsonObject(annFile, `${dataset} ${split} annotations`);
  const shapes = await checkpointShapes(opts.checkpoint);
  requireKind(opts.checkpoint, shapes, 'fine', 'refcoco', `a fine-grained checkpoint fine-tuned on ${dataset}`);

  const source = parseFile('RefCOCO annotations', annFile, () => mdetrGrounding(json, { name: basename(annFile) }));
  // one expression per image entry and one referred box: FIBER's RefExpEvaluator asserts a single
  // annotation per image, so the box the phrase grounds and the box it is scored against are one
  const gtBox = new Map<number, [number, number, number, number]>();
  const annotationCount = new Map<number, number>();
  for (const a of (json as { annotations?: { image_id?: number; bbox?: number[] }[] }).annotations ?? []) {
    if (typeof a?.image_id !== 'number') continue;
    annotationCount.set(a.image_id, (annotationCount.get(a.image_id) ?? 0) + 1);
    if (Array.isArray(a.bbox) && a.bbox.length === 4)
      gtBox.set(a.image_id, [a.bbox[0], a.bbox[1], a.bbox[2], a.bbox[3]]);
  }
  const read: Item<Data>[] = await readSource(
    source,
    (r) => {
      const id = Number(r.id);
      // the referred object's phrase: tokens_positive_eval when given, else its tokens_positive
      return {
        key: `e${id}`,
        images: [refOf(r.image)],
        data: { id, caption: r.text, spans: r.evalSpans?.[0] ?? r.spans[0] },
      };
    },
    ctx.skips,
    opts.limit,
  );
  const items = read.filter((it) => {
    const n = annotationCount.get(it.data.id) ?? 0;
    if (n === 1 && gtBox.has(it.data.id)) return true;
    const at = `${basename(annFile)} image ${it.data.id}`;
    ctx.skips.add(at, {
      reason: 'malformed-record',
      detail:
        n === 1
          ? `${at}: its annotation's bbox is not [x, y, w, h]`
          : `${at}: ${n} annotations, where a referring expression refers to one box (FIBER's RefExpEvaluator ` +
            'asserts one per image)',
    });
    return false;
  });

  const tokenizer = ctx.tokenizer();
  const setup = await loadFine(opts.checkpoint, shapes, {
    officialVersion: 'v3',
    minSize: opts.minSize,
    maxSize: opts.maxSize,
  });
  try {
    checkTokenizer(tokenizer, opts.tokenizer!, setup.model.config.backbone.roberta.vocabSize);
    const fiber = new FiberFinePipeline(setup.model, tokenizer, { minSize: setup.minSize, maxSize: setup.maxSize });
    const name = `${dataset}_${split}`;
    const fingerprint = baseFingerprint(ctx, {
      annotations: fileStamp(annFile),
      minSize: setup.minSize,
      maxSize: setup.maxSize,
    });
    const run = ctx.run(name, fingerprint, imageFolder(imagesDir));
    const results = await runStage<Data, RecResult>(run, {
      label: `${dataset} ${split}`,
      items,
      batch: 1,
      async infer([b]) {
        // the official refexp evaluation: INFERENCE_TH 0, PRE_NMS_TOP_N 3000, DETECTIONS_PER_IMG 100
        const { phrases } = await fiber.ground(b.images[0], b.item.data.caption, [b.item.data.spans], {
          topK: 10,
          preNmsThresh: 0,
          preNmsTopN: 3000,
          detectionsPerImage: 100,
        });
        // ordered as the official summarize() sorts (score, box) tuples, highest first: equal scores
        // by their [x1, y1, x2, y2] boxes, also highest first
        const dets = [...phrases[0].detections].sort((a, b) => {
          if (a.score !== b.score) return b.score - a.score;
          const k = a.box.findIndex((v, i) => v !== b.box[i]);
          return k < 0 ? 0 : b.box[k] - a.box[k];
        });
        return [
          {
            boxes: dets.map(({ box: [x1, y1, x2, y2] }) => [x1, y1, x2 - x1, y2 - y1]),
            scores: dets.map((d) => d.score),
          },
        ];
      },
      decode(v, key) {
        const o = record(v, key);
        const r = { boxes: boxesField(o, 'boxes', key), scores: numbersField(o, 'scores', key) };
        if (r.scores.length !== r.boxes.length)
          throw new TypeError(`partial result ${key}: ${r.scores.length} scores for ${r.boxes.length} boxes`);
        return r;
      },
    });

    const done = items.filter((it) => results.has(it.key));
    if (!done.length) fail(`${dataset}: no expression could be evaluated (skipped: ${ctx.skips.summary()})`);
    // fiber-metrics rec --samples reads this file ({gt_box, pred_boxes}); a model without any box answers [0, 0, 0, 0]
    const samples = done.map((it) => {
      const r = results.get(it.key)!;
      return {
        image_id: it.data.id,
        expression: it.data.caption,
        gt_box: gtBox.get(it.data.id)!,
        pred_boxes: r.boxes.length ? r.boxes : [[0, 0, 0, 0]],
        scores: r.scores,
      };
    });
    const resultsFile = ctx.writeJson(`${name}_rec_results.json`, samples);
    const recSamples = samples.map(
      (s): RecSample => ({ gtBox: s.gt_box, predBoxes: s.pred_boxes as RecSample['predBoxes'] }),
    );
    const acc = recAccuracy(recSamples);
    const fiberEval = recAccuracy(recSamples, { overlap: 'giou', k: [1, 5, 10] }).precisionAt;
    return {
      name,
      split,
      dataset,
      model: setup.description,
      protocol:
        'the expression grounded as one phrase (its tokens_positive; threshold 0, 3000 candidates per level, 100 ' +
        "boxes), the best box against the referred box, IoU >= 0.5; and FIBER's RefExpEvaluator (the paper's " +
        'numbers): precision@1/5/10 at generalised IoU >= 0.5; one image per forward',
      data: { annotations: annFile, images: imagesDir },
      counts: { samples: Math.min(source.length, opts.limit ?? Infinity), evaluated: done.length },
      metrics: {
        accuracy: acc.accuracy,
        correct: acc.correct.filter(Boolean).length,
        total: acc.n,
        giou: { precision_at_1: fiberEval[1], precision_at_5: fiberEval[5], precision_at_10: fiberEval[10] },
      },
      rows: [
        [`accuracy @ IoU 0.5 (${dataset} ${split})`, pct(acc.accuracy)],
        ["P@1 @ GIoU 0.5 (FIBER's evaluator)", pct(fiberEval[1])],
        ['P@5 @ GIoU 0.5', pct(fiberEval[5])],
        ['P@10 @ GIoU 0.5', pct(fiberEval[10])],
      ],
      files: { results: resultsFile },
      notes: [],
    };
  } finally {
    setup.model.dispose();
  }
}

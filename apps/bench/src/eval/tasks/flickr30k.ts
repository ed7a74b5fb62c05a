// Flickr30k Entities phrase grounding on MDETR's `final_flickr_{separate,merged}GT_<split>.json`
// (one entry per sentence, `tokens_positive_eval` = its phrases that have boxes): ranked boxes per
// phrase in MDETR's prediction format, Recall@1/5/10 with the Flickr30k Entities evaluator of
// @fiber-vl/eval-metrics on the original annotation files (MDETR flickr_eval.py).
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Flickr30kEntitiesEvaluator, type Flickr30kPrediction } from '@fiber-vl/eval-metrics';
import { folderReader } from '@fiber-vl/eval-metrics/node';
import { FIBER_POSTPROCESS, FiberFinePipeline } from '@fiber-vl/heads-fine';
import { mdetrGrounding, type Span } from '@fiber-vl/trainer';
import { imageFolder } from '@fiber-vl/trainer/node';
import { checkpointShapes, checkTokenizer, loadFine, requireKind } from '../checkpoint.js';
import type { EvalContext, TaskReport } from '../context.js';
import { SkipLog, fileStamp, parseFile, readJsonObject, readSource, requireDir, requireFile } from '../data.js';
import { fail } from '../errors.js';
import { runStage, type Item } from '../runner.js';
import { baseFingerprint, boxesField, pct, record, refOf } from './common.js';

/** The official Flickr30k evaluation's score threshold: ATSS.INFERENCE_TH at its default 0.05 (only the RefCOCO configs set 0). */
const PRE_NMS_THRESH = FIBER_POSTPROCESS.preNmsThresh;

interface GroundResult {
  /** Per phrase, its boxes [x1, y1, x2, y2] best first (at least one: MDETR appends [0, 0, 0, 0]). */
  boxes: number[][][];
}

type Data = { imageId: string; sentenceId: number; caption: string; phrases: Span[][] };

export async function evalFlickr30kEntities(ctx: EvalContext): Promise<TaskReport> {
  const { opts } = ctx;
  const split = opts.split ?? 'test';
  const annFile = opts.ann ?? join(opts.data, 'mdetr_annotations', `final_flickr_${opts.gt}GT_${split}.json`);
  const imagesDir = requireDir(
    opts.images ?? join(opts.data, 'flickr30k', 'flickr30k_images', split),
    'Flickr30k images',
    'set --images',
  );
  const entitiesDir = requireDir(
    opts.entities ?? join(opts.data, 'flickr30k', 'flickr30k_entities'),
    'Flickr30k Entities',
    'Sentences/, Annotations/, <split>.txt; set --entities',
  );
  requireFile(join(entitiesDir, `${split}.txt`), 'Flickr30k Entities split list');
  const json = readJsonObject(annFile, `Flickr30k Entities ${split} annotations`);
  const shapes = await checkpointShapes(opts.checkpoint);
  requireKind(
    opts.checkpoint,
    shapes,
    'fine',
    'flickr30k-entities',
    'a fine-grained grounding checkpoint (fiber_coarse_then_fine.pth)',
  );

  const source = parseFile('Flickr30k Entities annotations', annFile, () =>
    mdetrGrounding(json, { name: basename(annFile) }),
  );
  // sentence entry id -> its Flickr image id and sentence index, fields the grounding records do
  // not keep
  const imageOf = new Map<string, string>();
  const meta = new Map<string, { imageId: string; sentenceId: number }>();
  const images: unknown[] = Array.isArray(json.images) ? json.images : [];
  for (const img of images) {
    if (typeof img !== 'object' || img === null) continue;
    const { id, original_img_id: original, sentence_id: sentence } = img as Record<string, unknown>;
    if (typeof original !== 'number' && typeof original !== 'string') continue;
    imageOf.set(String(id), String(original));
    if (typeof sentence === 'number' && Number.isInteger(sentence))
      meta.set(String(id), { imageId: String(original), sentenceId: sentence });
  }
  // the reader's skips, counted below for the images --limit chooses (the reader reads every entry)
  const readSkips = new SkipLog(() => {});
  const read: (Item<Data> | undefined)[] = await readSource(
    source,
    (r) => {
      const m = meta.get(r.id);
      if (!m) {
        readSkips.add(
          `${source.name} image ${r.id}`,
          { reason: 'malformed-record', detail: 'no original_img_id / sentence_id' },
          r.id,
        );
        return undefined;
      }
      const phrases = r.evalSpans ?? r.spans;
      return {
        key: `s${m.imageId}_${m.sentenceId}`,
        images: [refOf(r.image)],
        data: { ...m, caption: r.text, phrases },
      };
    },
    readSkips,
  );
  // sentences without a phrase that has a box are not evaluated (MDETR's evaluator skips them too)
  const all = read.filter((x): x is Item<Data> => x !== undefined && x.data.phrases.length > 0);
  // the evaluator scores whole images: --limit is rounded up to the last image's sentences
  const chosen = new Set(all.slice(0, opts.limit ?? Infinity).map((it) => it.data.imageId));
  // the chosen images' sentences, grouped once: the checks below and the completeness test read
  // them by image
  const sentencesOf = new Map<string, Item<Data>[]>([...chosen].map((id) => [id, []]));
  for (const it of all) sentencesOf.get(it.data.imageId)?.push(it);
  // the reader's skips of the chosen images (and of entries whose image is unknown) are counted
  const readSkipped = readSkips.replayInto(ctx.skips, ({ id }) => {
    const image = id === undefined ? undefined : imageOf.get(id);
    return opts.limit === undefined || image === undefined || chosen.has(image);
  });
  // Each image's sentences against what the evaluator will expect of them (Sentences/, Annotations/),
  // before the model runs: an image whose phrases do not match is skipped rather than refused by
  // the evaluator after the last image.
  const evaluator = new Flickr30kEntitiesEvaluator(folderReader(entitiesDir), split);
  const consistent = new Set(
    [...chosen].filter((id) => {
      const sentences = sentencesOf.get(id)!;
      // an image that cannot be evaluated skips each of its sentences (the samples counted)
      const mismatch = (detail: string) => {
        for (const it of sentences)
          ctx.skips.add(it.key, { reason: 'malformed-record', detail: `image ${id}: ${detail}` });
        return false;
      };
      let expected: unknown[][];
      try {
        expected = evaluator.phrasesOf(id);
      } catch (e) {
        return mismatch((e as Error).message.split('\n')[0]);
      }
      for (const it of sentences) {
        const want = expected[it.data.sentenceId]?.length ?? 0;
        if (it.data.phrases.length !== want)
          return mismatch(
            `sentence ${it.data.sentenceId} has ${it.data.phrases.length} phrases in ${basename(annFile)}, ` +
              `${want} with boxes in Sentences/${id}.txt and Annotations/${id}.xml`,
          );
      }
      // a boxed sentence without its record (the reader skipped it, and said why) leaves the image incomplete
      const missing = expected.flatMap((ph, s) =>
        ph.length && !sentences.some((it) => it.data.sentenceId === s) ? [s] : [],
      );
      if (missing.length)
        return mismatch(
          `sentence${missing.length > 1 ? 's' : ''} ${missing.join(', ')} with boxes not read from ` +
            `${basename(annFile)}; the evaluator scores whole images`,
        );
      return true;
    }),
  );
  const items = all.filter((it) => consistent.has(it.data.imageId));

  const tokenizer = ctx.tokenizer();
  const setup = await loadFine(opts.checkpoint, shapes, {
    officialVersion: 'v2',
    minSize: opts.minSize,
    maxSize: opts.maxSize,
  });
  try {
    checkTokenizer(tokenizer, opts.tokenizer!, setup.model.config.backbone.roberta.vocabSize);
    const fiber = new FiberFinePipeline(setup.model, tokenizer, { minSize: setup.minSize, maxSize: setup.maxSize });
    // separate and merged GT are two runs (another annotation file): their files must not overwrite each other
    const name = `flickr30k_entities_${split}${opts.gt === 'merged' ? '_merged' : ''}`;
    const run = ctx.run(
      name,
      baseFingerprint(ctx, {
        annotations: fileStamp(annFile),
        minSize: setup.minSize,
        maxSize: setup.maxSize,
        preNmsThresh: PRE_NMS_THRESH,
      }),
      imageFolder(imagesDir),
    );
    const results = await runStage<Data, GroundResult>(run, {
      label: `flickr30k-entities ${split}`,
      items,
      batch: 1,
      async infer([b]) {
        // MDETR_STYLE_AGGREGATE_CLASS_NUM 100
        const { phrases } = await fiber.ground(b.images[0], b.item.data.caption, b.item.data.phrases, {
          topK: 100,
          preNmsThresh: PRE_NMS_THRESH,
        });
        return [{ boxes: phrases.map((p) => [...p.detections.map((d) => d.box), [0, 0, 0, 0]]) }];
      },
      decode(v, key) {
        const o = record(v, key);
        const boxes = o.boxes;
        if (!Array.isArray(boxes)) throw new TypeError(`partial result ${key}: "boxes" is not a list`);
        return { boxes: boxes.map((_, j) => boxesField({ b: boxes[j] }, 'b', key)) };
      },
    });

    // an image is evaluated when every sentence of it was grounded (none of its images skipped)
    // the grounded sentences of an image another sentence of which was skipped leave with it (the
    // evaluator scores whole images): each is skipped, so that every sentence read is counted once
    const complete: string[] = [];
    for (const id of consistent) {
      const sentences = sentencesOf.get(id)!;
      const lost = sentences.filter((it) => !results.has(it.key)).map((it) => it.data.sentenceId);
      if (!lost.length) {
        complete.push(id);
        continue;
      }
      for (const it of sentences)
        if (results.has(it.key))
          ctx.skips.add(it.key, {
            reason: 'malformed-record',
            detail: `image ${id}: sentence${lost.length > 1 ? 's' : ''} ${lost.join(', ')} skipped; the evaluator scores whole images`,
          });
    }
    if (!complete.length) fail(`flickr30k-entities: no image could be evaluated (skipped: ${ctx.skips.summary()})`);
    const keepIds = new Set(complete);
    const predictions: Flickr30kPrediction[] = items
      .filter((it) => keepIds.has(it.data.imageId))
      .map((it) => ({ image_id: it.data.imageId, sentence_id: it.data.sentenceId, boxes: results.get(it.key)!.boxes }));
    const resultsFile = ctx.writeJson(`${name}_results.json`, predictions);
    // the evaluated images as the split list, so that the evaluator expects exactly them
    const subsetFile = ctx.writeText(`${name}_images.txt`, `${complete.join('\n')}\n`);
    const read = folderReader(entitiesDir);
    const subsetEvaluator = new Flickr30kEntitiesEvaluator(
      (rel) => (rel === `${split}.txt` ? readFileSync(subsetFile, 'utf8') : read(rel)),
      split,
    );
    const recall = subsetEvaluator.evaluate(predictions, { mergeBoxes: opts.gt === 'merged', file: resultsFile });
    const all1 = recall['R@1'].all;
    return {
      name,
      split,
      model: setup.description,
      protocol:
        `each sentence's phrases (tokens_positive_eval) grounded with the whole sentence as prompt, boxes ` +
        `ranked by score; ${opts.gt} GT, IoU >= 0.5; one image per forward`,
      data: { annotations: annFile, images: imagesDir, entities: entitiesDir },
      counts: {
        samples: all.filter((it) => chosen.has(it.data.imageId)).length + readSkipped,
        evaluated: predictions.length,
      },
      metrics: { recall, images: complete.length, sentences: predictions.length },
      rows: [
        ['R@1 (all phrases)', pct(all1)],
        ['R@5', pct(recall['R@5'].all)],
        ['R@10', pct(recall['R@10'].all)],
        ['upper bound', pct(recall.upper_bound.all)],
      ],
      files: { results: resultsFile, images: subsetFile },
      notes:
        complete.length < chosen.size
          ? [
              `recall over the ${complete.length} of ${chosen.size} images whose sentences could all be grounded ` +
                `(the list: ${basename(subsetFile)})`,
            ]
          : [],
    };
  } finally {
    setup.model.dispose();
  }
}

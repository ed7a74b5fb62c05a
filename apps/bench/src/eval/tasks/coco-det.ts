// COCO detection (zero-shot with the fine-grained pre-trained weights, or fine-tuned fiber_coco.pth):
// the category names as the prompt ("person. bicycle. ..."; GLIP's clean_name), the official ATSS
// post-processing, COCO detection results ([{image_id, category_id, bbox, score}]) and the 12
// COCOeval numbers of @fiber-vl/eval-metrics.
import { join } from 'node:path';
import { cocoEvaluate, COCO_STAT_NAMES, type CocoDetection, type CocoGroundTruth } from '@fiber-vl/eval-metrics';
import { detectionPrompt, encodeDetectionPrompt, FiberFinePipeline, PromptError } from '@fiber-vl/heads-fine';
import { imageFolder } from '@fiber-vl/trainer/node';
import { checkpointShapes, checkTokenizer, loadFine, requireKind } from '../checkpoint.js';
import type { EvalContext, TaskReport } from '../context.js';
import { fileStamp, readJsonObject, requireDir } from '../data.js';
import { fail } from '../errors.js';
import { runStage, type Item } from '../runner.js';
import { baseFingerprint, numberField, pct, record } from './common.js';

interface ImageDetections {
  detections: { category_id: number; bbox: number[]; score: number }[];
}

/** The official cap of detections per image (DETECTIONS_PER_IMG); also applied after merging prompt chunks. */
const MAX_DETECTIONS = 100;

export async function evalCocoDetection(ctx: EvalContext): Promise<TaskReport> {
  const { opts } = ctx;
  const split = opts.split ?? 'val2017';
  const annFile = opts.ann ?? join(opts.data, 'coco', 'annotations', `instances_${split}.json`);
  const imagesDir = requireDir(opts.images ?? join(opts.data, 'coco', split), 'COCO images', 'set --images');
  const gt = readJsonObject(annFile, `COCO ${split} instances`) as CocoGroundTruth;
  if (!Array.isArray(gt?.images) || !Array.isArray(gt.categories) || !Array.isArray(gt.annotations)) {
    fail(`COCO ${split} instances: ${annFile} needs "images", "annotations" and "categories" lists`);
  }
  if (!gt.categories.length) fail(`COCO ${split} instances: ${annFile} has no categories (nothing to detect)`);
  // COCOeval's checks of the ground truth now, on no detections, rather than after the last image
  cocoEvaluate(gt, [], { files: { gt: annFile, dets: 'no detections (checking the ground truth)' } });
  const shapes = await checkpointShapes(opts.checkpoint);
  requireKind(
    opts.checkpoint,
    shapes,
    'fine',
    'coco-det',
    'a fine-grained detection checkpoint (fiber_coarse_then_fine.pth zero-shot, fiber_coco.pth fine-tuned)',
  );

  // classes in category-id order (the official json_category_id_to_contiguous_id), prompts of --chunk classes
  const categories = [...gt.categories].sort((a, b) => a.id - b.id);
  const names = categories.map((c) => {
    const n = (c as { name?: unknown }).name;
    return typeof n === 'string' ? n : fail(`COCO ${split} instances: category ${c.id} has no name`);
  });
  const chunk = opts.chunk ?? names.length;
  const prompts: number[][] = [];
  for (let s = 0; s < names.length; s += chunk) prompts.push(categories.slice(s, s + chunk).map((_, k) => s + k));
  // a name the prompt cannot hold (empty after clean_name) is the file's fault: said once, before the
  // model loads, not as a skip of every image
  for (const classes of prompts) {
    try {
      detectionPrompt(classes.map((k) => names[k]));
    } catch (e) {
      if (!(e instanceof PromptError)) throw e;
      const at = /^classNames\[(\d+)\]$/.exec(e.field);
      const category = at ? categories[classes[Number(at[1])]] : undefined;
      fail(`COCO ${split} instances: ${annFile}: ${category ? `category ${category.id}: ` : ''}${e.detail}`);
    }
  }
  const images = [...gt.images].sort((a, b) => a.id - b.id).slice(0, opts.limit ?? Infinity);
  const items: Item<{ imageId: number }>[] = images.map((img) => {
    const file = (img as { file_name?: unknown }).file_name;
    return {
      key: `i${img.id}`,
      images: [typeof file === 'string' ? file : `${String(img.id).padStart(12, '0')}.jpg`],
      data: { imageId: img.id },
    };
  });

  const tokenizer = ctx.tokenizer();
  const setup = await loadFine(opts.checkpoint, shapes, {
    officialVersion: 'v2',
    minSize: opts.minSize,
    maxSize: opts.maxSize,
  });
  try {
    checkTokenizer(tokenizer, opts.tokenizer!, setup.model.config.backbone.roberta.vocabSize);
    const fiber = new FiberFinePipeline(setup.model, tokenizer, { minSize: setup.minSize, maxSize: setup.maxSize });
    // what each prompt loses to the query length depends on the class names alone: known before
    // the loop, so a resumed run (whose images are not run again) reports it too
    const truncated = new Set<string>();
    for (const classes of prompts) {
      const { truncation } = encodeDetectionPrompt(
        tokenizer,
        classes.map((k) => names[k]),
        { maxQueryLen: setup.model.config.backbone.maxQueryLen },
      );
      if (truncation.truncated) truncated.add(truncation.message);
    }
    const name = `coco_det_${split}`;
    const fingerprint = baseFingerprint(ctx, {
      instances: fileStamp(annFile),
      chunk,
      minSize: setup.minSize,
      maxSize: setup.maxSize,
    });
    const run = ctx.run(name, fingerprint, imageFolder(imagesDir));
    const results = await runStage<{ imageId: number }, ImageDetections>(run, {
      label: `coco-det ${split}`,
      items,
      batch: 1,
      async infer([b]) {
        const found: ImageDetections['detections'] = [];
        for (const classes of prompts) {
          const { detections } = await fiber.detect(
            b.images[0],
            classes.map((k) => names[k]),
          );
          for (const d of detections)
            found.push({ category_id: categories[classes[d.label.index]].id, bbox: d.bbox, score: d.score });
        }
        // stable: equal scores keep the prompt order
        const best =
          prompts.length > 1
            ? found
                .map((d, i) => [d, i] as const)
                .sort((x, y) => y[0].score - x[0].score || x[1] - y[1])
                .map(([d]) => d)
                .slice(0, MAX_DETECTIONS)
            : found;
        return [{ detections: best }];
      },
      decode(v, key) {
        const list = record(v, key).detections;
        if (!Array.isArray(list)) throw new TypeError(`partial result ${key}: "detections" is not a list`);
        if (list.length > MAX_DETECTIONS)
          throw new TypeError(`partial result ${key}: ${list.length} detections, over the ${MAX_DETECTIONS} per image`);
        return {
          detections: list.map((d) => {
            const o = record(d, key);
            const bbox = o.bbox;
            if (!Array.isArray(bbox) || bbox.length !== 4 || !bbox.every(Number.isFinite))
              throw new TypeError(`partial result ${key}: a bbox is not 4 numbers`);
            return { category_id: numberField(o, 'category_id', key), bbox, score: numberField(o, 'score', key) };
          }),
        };
      },
    });

    const done = images.filter((img) => results.has(`i${img.id}`));
    if (!done.length) fail(`coco-det: no image could be evaluated (skipped: ${ctx.skips.summary()})`);
    const detections: CocoDetection[] = done.flatMap((img) =>
      results.get(`i${img.id}`)!.detections.map((d) => ({
        image_id: img.id,
        category_id: d.category_id,
        bbox: [d.bbox[0], d.bbox[1], d.bbox[2], d.bbox[3]],
        score: d.score,
      })),
    );
    const resultsFile = ctx.writeJson(`detections_${split}_fiber_results.json`, detections);
    const imgIds = done.map((img) => img.id);
    const stats = cocoEvaluate(gt, detections, { params: { imgIds }, files: { gt: annFile, dets: resultsFile } }).stats;
    const notes = [...truncated].map((m) => `prompt truncated: ${m} (use --chunk N for fewer classes per prompt)`);
    if (done.length < gt.images.length)
      notes.push(`COCOeval over the ${done.length} evaluated images of ${gt.images.length} (params.imgIds)`);
    return {
      name,
      split,
      model: setup.description,
      protocol:
        `${prompts.length === 1 ? 'all' : `${chunk} per prompt,`} ${names.length} category names as the ` +
        `prompt, ATSS post-processing (threshold 0.05, NMS 0.6, ${MAX_DETECTIONS} per image); COCOeval bbox; one ` +
        `image per forward`,
      data: { instances: annFile, images: imagesDir },
      counts: { samples: images.length, evaluated: done.length },
      metrics: { ...stats },
      // COCOeval gives -1 where no ground truth falls in the area range
      rows: COCO_STAT_NAMES.map((k): [string, string] => [k, stats[k] < 0 ? '- (no such boxes)' : pct(stats[k])]),
      files: { results: resultsFile },
      notes,
    };
  } finally {
    setup.model.dispose();
  }
}

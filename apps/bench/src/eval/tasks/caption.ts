// COCO captioning on the Karpathy split: the official beam search (beam 5, length-normalised) of
// the captioning checkpoint; results as COCO caption results ([{image_id, caption}]); BLEU-1..4,
// METEOR (without the paraphrase table: METEOR_no_paraphrase), ROUGE-L and CIDEr-D against every
// reference sentence of the image.
import { basename, join } from 'node:path';
import { evaluateCaptions } from '@fiber-vl/eval-metrics';
import { loadMeteorResources } from '@fiber-vl/eval-metrics/node';
import { beamSearchCaptions } from '@fiber-vl/heads-coarse';
import { fiberPixelValues } from '@fiber-vl/swin';
import { karpathyCaptions } from '@fiber-vl/trainer';
import { imageFolder } from '@fiber-vl/trainer/node';
import { checkpointShapes, checkTokenizer, coarseHeadsOf, headsText, loadCoarse, requireKind } from '../checkpoint.js';
import type { EvalContext, TaskReport } from '../context.js';
import { SkipLog, fileStamp, parseFile, readJsonObject, readSource, requireDir, requireFile } from '../data.js';
import { fail } from '../errors.js';
import { runStage, type Item } from '../runner.js';
import { baseFingerprint, numbersField, record, refOf, stringField } from './common.js';

interface CaptionResult {
  caption: string;
  tokens: number[];
}

/** The image part of a Karpathy record id `<cocoid>/<k>`; an image's own id (a skipped image) is all of it. */
const imageKeyOf = (id: string): string => (id.includes('/') ? id.slice(0, id.lastIndexOf('/')) : id);

/** The image id of a Karpathy record id `<cocoid>/<k>`: a number as the file had it, else the text. */
const imageIdOf = (id: string): number | string => {
  const head = imageKeyOf(id);
  // an integer's canonical text only ("0101" stays text: as a number it would be another id's 101)
  return /^-?(0|[1-9]\d*)$/.test(head) && Number.isSafeInteger(Number(head)) ? Number(head) : head;
};

export async function evalCaption(ctx: EvalContext): Promise<TaskReport> {
  const { opts } = ctx;
  const split = opts.split ?? 'test';
  const annFile = requireFile(
    opts.ann ?? join(opts.data, 'karpathy', 'dataset_coco.json'),
    'Karpathy captions',
    'set --data or --ann',
  );
  const imagesDir = requireDir(opts.images ?? opts.data, 'COCO images', 'the folder with val2014/; set --images');
  const shapes = await checkpointShapes(opts.checkpoint);
  requireKind(opts.checkpoint, shapes, 'coarse', 'caption', 'the captioning checkpoint (fiber_coco_caption.ckpt)');
  const heads = coarseHeadsOf(shapes);
  if (!heads.caption || !heads.mlm) {
    fail(
      `${opts.checkpoint}: a coarse checkpoint without the captioning heads (heads: ${headsText(heads)}); --task ` +
        `caption needs fiber_coco_caption.ckpt`,
    );
  }

  // one record per (image, sentence); every sentence of the image is a reference
  const json = readJsonObject(annFile, 'Karpathy captions');
  const source = parseFile('Karpathy captions', annFile, () =>
    karpathyCaptions(json, { splits: [split], dedupe: false, name: basename(annFile) }),
  );
  // the reader's skips are logged once the file has passed the checks below (a refused file is one line)
  const readSkips = new SkipLog(() => {});
  const records = await readSource(source, (r) => r, readSkips);
  const byImage = new Map<string, { imageId: number | string; ref: string; references: string[] }>();
  for (const r of records) {
    const ref = refOf(r.image);
    const imageId = imageIdOf(r.id);
    const img = byImage.get(ref) ?? byImage.set(ref, { imageId, ref, references: [] }).get(ref)!;
    // two entries of one file would pool their references under the first id: the file is wrong
    if (img.imageId !== imageId)
      fail(`Karpathy captions: ${annFile}: images ${img.imageId} and ${imageId} are the same file ${ref}`);
    img.references.push(r.text);
  }
  const images = [...byImage.values()].slice(0, opts.limit ?? Infinity);
  // the reader's skips, of the images --limit chooses (an entry's id is <cocoid> or <cocoid>/<k>)
  // and of entries without an id
  const chosen = new Set(images.map((img) => String(img.imageId)));
  const unreadable = readSkips.replayInto(
    ctx.skips,
    ({ id }) => opts.limit === undefined || id === undefined || chosen.has(imageKeyOf(id)),
  );
  if (!byImage.size && !ctx.skips.items.length) fail(`Karpathy captions: ${annFile} has no images in split "${split}"`);
  const items: Item<{ imageId: number | string }>[] = images.map((img) => ({
    key: `img${img.imageId}`,
    images: [img.ref],
    data: { imageId: img.imageId },
  }));

  const tokenizer = ctx.tokenizer();
  const setup = await loadCoarse(opts.checkpoint, shapes, {
    officialImageSize: 576,
    imageSize: opts.imageSize,
    maxTextLen: opts.maxTextLen,
  });
  try {
    checkTokenizer(tokenizer, opts.tokenizer!, setup.model.config.roberta.vocabSize);
    // each beam step keeps the best `beam` tokens of the vocabulary: checked before any image runs
    if (opts.beam > setup.model.config.roberta.vocabSize)
      fail(`--beam ${opts.beam}: more beams than the model's ${setup.model.config.roberta.vocabSize} tokens`);
    const fingerprint = baseFingerprint(ctx, {
      captions: fileStamp(annFile),
      split,
      imageSize: setup.imageSize,
      maxTextLen: setup.maxTextLen,
      beam: opts.beam,
    });
    const run = ctx.run(`caption_${split}`, fingerprint, imageFolder(imagesDir));
    const results = await runStage<{ imageId: number | string }, CaptionResult>(run, {
      label: `caption ${split}`,
      items,
      batch: opts.batch,
      async infer(batch) {
        const px = fiberPixelValues(
          batch.map((b) => b.images[0]),
          setup.imageSize,
        );
        try {
          const rows = await beamSearchCaptions(setup.model, px, { beamSize: opts.beam, maxLength: setup.maxTextLen });
          return rows.map((tokens) => ({ caption: tokenizer.decode(tokens).trim(), tokens }));
        } finally {
          px.dispose();
        }
      },
      decode(v, key) {
        const o = record(v, key);
        return { caption: stringField(o, 'caption', key), tokens: numbersField(o, 'tokens', key) };
      },
    });

    const done = images.filter((img) => results.has(`img${img.imageId}`));
    if (!done.length) fail(`caption: no image could be captioned (skipped: ${ctx.skips.summary()})`);
    const predictions = done.map((img) => ({
      image_id: img.imageId,
      caption: results.get(`img${img.imageId}`)!.caption,
    }));
    const resultsFile = ctx.writeJson(`captions_karpathy_${split}_fiber_results.json`, predictions);
    // the references in the COCO captions layout, so that any COCO caption evaluation can re-score the results
    const refsFile = ctx.writeJson(`captions_karpathy_${split}_references.json`, {
      images: done.map((img) => ({ id: img.imageId })),
      annotations: done.flatMap((img, i) =>
        img.references.map((caption, k) => ({ image_id: img.imageId, id: i * 1000 + k, caption })),
      ),
    });
    const scores = evaluateCaptions({
      references: new Map(done.map((img) => [String(img.imageId), img.references])),
      candidates: new Map(predictions.map((p) => [String(p.image_id), p.caption])),
      meteor: loadMeteorResources(),
      files: { references: refsFile, candidates: resultsFile },
    }).corpus;
    const rows: [string, string][] = Object.entries(scores).map(([k, v]) => [k, (100 * (v ?? 0)).toFixed(2)]);
    return {
      name: `caption_${split}`,
      split,
      model: setup.description,
      protocol:
        `beam search (beam ${opts.beam}, length-normalised, <mask> forbidden), ${setup.maxTextLen} tokens; ` +
        `${setup.imageSize} px`,
      data: { captions: annFile, images: imagesDir },
      counts: { samples: images.length + unreadable, evaluated: done.length },
      metrics: { ...scores },
      rows,
      files: { results: resultsFile, references: refsFile },
      notes: [
        'scores x100 as papers print them (CIDEr-D on the raw scale is the metrics JSON value)',
        'METEOR_no_paraphrase: Meteor 1.5 without its paraphrase table (not shipped), at or below official COCO ' +
          'METEOR; SPICE not computed',
      ],
    };
  } finally {
    setup.model.dispose();
  }
}

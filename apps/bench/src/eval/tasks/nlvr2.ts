// NLVR2: two fused passes (left and right image, same statement) and the NLVR2 classifier; the
// predictions as the NLVR2 evaluation script reads them (`identifier,True|False` lines); accuracy
// (plain accuracy: the paper's test-P number is on test1).
import { basename, join } from 'node:path';
import { fiberPixelValues } from '@fiber-vl/swin';
import { disposeOutput } from '@fiber-vl/tensor-core';
import { nlvr2Record } from '@fiber-vl/trainer';
import { imageFolder, openJsonl } from '@fiber-vl/trainer/node';
import { checkpointShapes, checkTokenizer, coarseHeadsOf, headsText, loadCoarse, requireKind } from '../checkpoint.js';
import type { EvalContext, TaskReport } from '../context.js';
import { fileStamp, readSource, requireDir, requireFile } from '../data.js';
import { fail } from '../errors.js';
import { runStage, type Item } from '../runner.js';
import { baseFingerprint, numberField, numbersField, pct, record, refOf, textInputs } from './common.js';

interface Nlvr2Result {
  /** 1 = the statement is true of the pair. */
  prediction: number;
  logits: number[];
}

export async function evalNlvr2(ctx: EvalContext): Promise<TaskReport> {
  const { opts } = ctx;
  const split = opts.split ?? 'test1';
  const file = requireFile(
    opts.ann ?? join(opts.data, 'data', `${split}.json`),
    'NLVR2 statements',
    'set --data, --split or --ann',
  );
  const imagesDir = requireDir(opts.images ?? opts.data, 'NLVR2 images', `the folder with ${split}/; set --images`);
  const shapes = await checkpointShapes(opts.checkpoint);
  requireKind(opts.checkpoint, shapes, 'coarse', 'nlvr2', 'the NLVR2 checkpoint (fiber_nlvr2.ckpt)');
  const heads = coarseHeadsOf(shapes);
  if (!heads.nlvr2)
    fail(
      `${opts.checkpoint}: a coarse checkpoint without the NLVR2 head (heads: ${headsText(heads)}); --task nlvr2 ` +
        `needs fiber_nlvr2.ckpt`,
    );

  const source = await openJsonl(file, nlvr2Record);
  type Data = { identifier: string; text: string; label: boolean };
  let items: Item<Data>[];
  try {
    items = await readSource(
      source,
      (r) => ({ key: r.id, images: r.images.map(refOf), data: { identifier: r.id, text: r.text, label: r.label } }),
      ctx.skips,
      opts.limit,
    );
  } finally {
    await source.close?.();
  }

  const tokenizer = ctx.tokenizer();
  const setup = await loadCoarse(opts.checkpoint, shapes, {
    officialImageSize: 384,
    imageSize: opts.imageSize,
    maxTextLen: opts.maxTextLen,
  });
  try {
    checkTokenizer(tokenizer, opts.tokenizer!, setup.model.config.roberta.vocabSize);
    const run = ctx.run(
      `nlvr2_${split}`,
      baseFingerprint(ctx, { statements: fileStamp(file), imageSize: setup.imageSize, maxTextLen: setup.maxTextLen }),
      imageFolder(imagesDir),
    );
    const results = await runStage<Data, Nlvr2Result>(run, {
      label: `nlvr2 ${split}`,
      items,
      batch: opts.batch,
      async infer(batch) {
        const left = fiberPixelValues(
          batch.map((b) => b.images[0]),
          setup.imageSize,
        );
        const right = fiberPixelValues(
          batch.map((b) => b.images[1]),
          setup.imageSize,
        );
        const { ids, mask } = textInputs(
          tokenizer,
          batch.map((b) => b.item.data.text),
          setup.maxTextLen,
        );
        const out = setup.model.nlvr2(left, right, ids, mask);
        try {
          const logits = (await out.logits.data()) as Float32Array;
          return batch.map((_, r) => ({
            prediction: logits[2 * r + 1] > logits[2 * r] ? 1 : 0,
            logits: [logits[2 * r], logits[2 * r + 1]],
          }));
        } finally {
          disposeOutput([out, left, right, ids, mask]);
        }
      },
      decode(v, key) {
        const o = record(v, key);
        const prediction = numberField(o, 'prediction', key);
        if (prediction !== 0 && prediction !== 1)
          throw new TypeError(`partial result ${key}: prediction ${prediction} is not 0 or 1`);
        return { prediction, logits: numbersField(o, 'logits', key) };
      },
    });

    const done = items.filter((it) => results.has(it.key));
    if (!done.length) fail(`nlvr2: no statement could be evaluated (skipped: ${ctx.skips.summary()})`);
    const lines = done.map((it) => `${it.data.identifier},${results.get(it.key)!.prediction ? 'True' : 'False'}`);
    const predictionsFile = ctx.writeText(`nlvr2_${split}_predictions.csv`, `${lines.join('\n')}\n`);
    const correct = done.filter((it) => (results.get(it.key)!.prediction === 1) === it.data.label).length;
    const accuracy = correct / done.length;
    return {
      name: `nlvr2_${split}`,
      split,
      model: setup.description,
      protocol:
        `NLVR2 classifier on the two fused passes (index 1 = True); ${setup.imageSize} px, ` +
        `${setup.maxTextLen} tokens`,
      data: { statements: file, images: imagesDir },
      counts: { samples: Math.min(source.length, opts.limit ?? Infinity), evaluated: done.length },
      metrics: { accuracy, correct, total: done.length },
      rows: [[`accuracy (${basename(file)})`, pct(accuracy)]],
      files: { predictions: predictionsFile },
      notes: [],
    };
  } finally {
    setup.model.dispose();
  }
}

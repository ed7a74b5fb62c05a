// VQAv2: the fused model's answer classifier (argmax over the answer list) on every question of the
// split; results as the evaluation server takes them ([{question_id, answer}]); accuracy with the
// official formula where the split's annotations exist (val).
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { MetricInputError, vqaAccuracy, type VqaAnnotation } from '@fiber-vl/eval-metrics';
import { fiberPixelValues } from '@fiber-vl/swin';
import { tf } from '@fiber-vl/tensor-core';
import { buildVqaVocab, vqaQuestions } from '@fiber-vl/trainer';
import { imageFolder } from '@fiber-vl/trainer/node';
import { checkpointShapes, checkTokenizer, headsText, coarseHeadsOf, loadCoarse, requireKind } from '../checkpoint.js';
import type { EvalContext, TaskReport } from '../context.js';
import { fileStamp, parseFile, readJsonFile, readJsonObject, readSource, requireDir, requireFile } from '../data.js';
import { fail } from '../errors.js';
import { requireUniqueKeys, runStage, type Item } from '../runner.js';
import { argmaxRows, baseFingerprint, numberField, record, refOf, stringField, textInputs } from './common.js';

interface VqaResult {
  answer: string;
  label: number;
  /** sigmoid of the answer's logit (trained with BCE). */
  score: number;
}

/** An annotation record's question_id (undefined for a record that is not an object). */
const questionIdOf = (a: unknown): unknown =>
  typeof a === 'object' && a !== null ? (a as VqaAnnotation).question_id : undefined;

/** The annotations of the given questions (vqaAccuracy checks each record's fields). */
function annotationsOf(all: readonly unknown[], questionIds: number[]): VqaAnnotation[] {
  const ids = new Set(questionIds);
  return all.filter((a): a is VqaAnnotation => ids.has(questionIdOf(a) as number));
}

/** The answer list of --answers: a JSON list in label order, or ViLT's {answer: label}. */
function readAnswerList(path: string): string[] {
  const json = readJsonFile(path, '--answers');
  if (Array.isArray(json) && json.every((a) => typeof a === 'string')) return json;
  if (typeof json === 'object' && json !== null && !Array.isArray(json)) {
    const entries = Object.entries(json);
    if (entries.every(([, v]) => Number.isInteger(v))) {
      const list: string[] = [];
      for (const [a, i] of entries) list[i as number] = a;
      // biome-ignore lint/complexity/useIndexOf: indexOf skips the holes of a sparse array
      const holes = list.findIndex((a) => a === undefined);
      if (list.length === entries.length && holes < 0) return list;
    }
  }
  return fail(
    `--answers: ${path} must be a JSON list of answers in label order, or an {"answer": label} map with labels 0..N-1`,
  );
}

/** The answer list (not in checkpoints): --answers, or ViLT's write_vqa.py rule on train + val annotations. */
function answerList(ctx: EvalContext): { answers: string[]; source: string } {
  const { opts } = ctx;
  if (opts.answers) return { answers: readAnswerList(opts.answers), source: opts.answers };
  const files = ['v2_mscoco_train2014_annotations.json', 'v2_mscoco_val2014_annotations.json'].map((f) =>
    join(opts.data, f),
  );
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length) {
    fail(
      `vqa: no answer list: the checkpoints do not hold it; pass --answers FILE (a JSON list in label order) or put ` +
        `${missing.map((f) => basename(f)).join(' and ')} in ${opts.data} to build it by ViLT's rule (count >= ` +
        `${opts.answerMinCount})`,
    );
  }
  const json = files.map((f) => readJsonObject(f, 'VQA annotations'));
  const vocab = parseFile('VQA annotations', files.join(' + '), () =>
    buildVqaVocab(json, { minCount: opts.answerMinCount, names: files }),
  );
  return {
    answers: vocab.answers,
    source: `built from ${files.map((f) => basename(f)).join(' + ')} (ViLT's rule: count >= ${opts.answerMinCount})`,
  };
}

export async function evalVqa(ctx: EvalContext): Promise<TaskReport> {
  const { opts } = ctx;
  const split = opts.split ?? 'val2014';
  const qFile = requireFile(
    opts.ann ?? join(opts.data, `v2_OpenEnded_mscoco_${split}_questions.json`),
    'VQA questions',
    'set --data, --split or --ann',
  );
  const aFile = opts.annotations ?? join(opts.data, `v2_mscoco_${split}_annotations.json`);
  if (opts.annotations) requireFile(aFile, '--annotations');
  const imagesDir = requireDir(
    opts.images ?? opts.data,
    'VQA images',
    'the folder with train2014/, val2014/, test2015/; set --images',
  );
  const shapes = await checkpointShapes(opts.checkpoint);
  requireKind(opts.checkpoint, shapes, 'coarse', 'vqa', 'the VQA checkpoint (fiber_vqa.ckpt)');
  const heads = coarseHeadsOf(shapes);
  if (!heads.vqaLabels)
    fail(
      `${opts.checkpoint}: a coarse checkpoint without the VQA head (heads: ${headsText(heads)}); --task vqa needs ` +
        `fiber_vqa.ckpt`,
    );
  const { answers, source: answerSource } = answerList(ctx);
  if (answers.length !== heads.vqaLabels) {
    fail(
      `vqa: the answer list has ${answers.length} answers (${answerSource}) but the checkpoint's VQA head has ` +
        `${heads.vqaLabels}`,
    );
  }
  const answersFile = ctx.writeJson(`vqa_${split}_answers.json`, answers);

  const questions = readJsonObject(qFile, 'VQA questions');
  const subtypeField = questions.data_subtype;
  const subtype = typeof subtypeField === 'string' ? subtypeField : split;
  // test-dev questions are about test2015 images
  const imageSubtype = subtype === 'test-dev2015' ? 'test2015' : subtype;
  const source = parseFile('VQA questions', qFile, () =>
    vqaQuestions({
      questions,
      vocab: { answers, index: new Map(answers.map((a, i) => [a, i])) },
      imagePath: (id) => `${imageSubtype}/COCO_${imageSubtype}_${String(id).padStart(12, '0')}.jpg`,
      name: basename(qFile),
    }),
  );
  let items: Item<{ questionId: number; text: string }>[] = await readSource(
    source,
    (r) => ({ key: `q${r.questionId}`, images: [refOf(r.image)], data: { questionId: r.questionId, text: r.text } }),
    ctx.skips,
    opts.limit,
  );
  // The split's annotations (val), read and checked before the model runs: a question without one
  // is skipped, and what the accuracy would refuse is refused now rather than after the last batch.
  let annotations: readonly unknown[] | undefined;
  if (existsSync(aFile)) {
    const all = readJsonObject(aFile, 'VQA annotations');
    if (!Array.isArray(all.annotations)) fail(`VQA annotations: ${aFile} has no "annotations" list`);
    annotations = all.annotations as unknown[];
    const annotated = new Set(annotations.map(questionIdOf));
    const read = items.length;
    items = items.filter((it) => {
      if (annotated.has(it.data.questionId)) return true;
      ctx.skips.add(it.key, {
        reason: 'missing-annotation',
        detail: `question ${it.data.questionId} has no annotation in ${basename(aFile)}`,
      });
      return false;
    });
    if (read && !items.length) {
      const said = typeof subtypeField === 'string' ? `says data_subtype "${subtypeField}"` : 'has no data_subtype';
      fail(
        `vqa: none of the ${read} questions has an annotation in ${aFile}: questions of another split? ` +
          `(${basename(qFile)} ${said}; --split ${split} reads ${basename(aFile)}, --annotations FILE reads another)`,
      );
    }
    if (!items.length) fail(`vqa: no question could be evaluated (skipped: ${ctx.skips.summary()})`);
    requireUniqueKeys(`vqa ${split}`, items);
    // the accuracy's checks of these questions' annotations, on placeholder answers; its messages
    // count annotations within the subset, so they are given the file's index back
    const subset = annotationsOf(
      annotations,
      items.map((it) => it.data.questionId),
    );
    try {
      vqaAccuracy({
        annotations: subset,
        predictions: items.map((it) => ({ question_id: it.data.questionId, answer: '' })),
        files: { annotations: aFile, predictions: qFile },
      });
    } catch (e) {
      if (!(e instanceof MetricInputError)) throw e;
      const all = annotations;
      fail(e.message.replace(/annotations\[(\d+)\]/g, (_m, k) => `annotations[${all.indexOf(subset[Number(k)])}]`));
    }
  }

  const tokenizer = ctx.tokenizer();
  const setup = await loadCoarse(opts.checkpoint, shapes, {
    officialImageSize: 576,
    imageSize: opts.imageSize,
    maxTextLen: opts.maxTextLen,
  });
  try {
    checkTokenizer(tokenizer, opts.tokenizer!, setup.model.config.roberta.vocabSize);
    const run = ctx.run(
      `vqa_${split}`,
      baseFingerprint(ctx, {
        questions: fileStamp(qFile),
        answers,
        imageSize: setup.imageSize,
        maxTextLen: setup.maxTextLen,
      }),
      imageFolder(imagesDir),
    );
    const results = await runStage<{ questionId: number; text: string }, VqaResult>(run, {
      label: `vqa ${split}`,
      items,
      batch: opts.batch,
      async infer(batch) {
        const px = fiberPixelValues(
          batch.map((b) => b.images[0]),
          setup.imageSize,
        );
        const { ids, mask } = textInputs(
          tokenizer,
          batch.map((b) => b.item.data.text),
          setup.maxTextLen,
        );
        const probs = tf.tidy(() => tf.sigmoid(setup.model.vqa(px, ids, mask)));
        tf.dispose([px, ids, mask]);
        const data = (await probs.data()) as Float32Array;
        probs.dispose();
        return argmaxRows(data, answers.length).map((label, r) => ({
          answer: answers[label],
          label,
          score: data[r * answers.length + label],
        }));
      },
      decode(v, key) {
        const o = record(v, key);
        const r = {
          answer: stringField(o, 'answer', key),
          label: numberField(o, 'label', key),
          score: numberField(o, 'score', key),
        };
        // a stored answer is the head's label in this answer list
        if (answers[r.label] !== r.answer)
          throw new TypeError(
            `partial result ${key}: answer ${JSON.stringify(r.answer)} is not label ${r.label} of the answer list`,
          );
        return r;
      },
    });

    const predictions = items
      .filter((it) => results.has(it.key))
      .map((it) => ({ question_id: it.data.questionId, answer: results.get(it.key)!.answer }));
    if (!predictions.length) fail(`vqa: no question could be evaluated (skipped: ${ctx.skips.summary()})`);
    const resultsFile = ctx.writeJson(`vqa_OpenEnded_mscoco_${split}_fiber_results.json`, predictions);
    const report: TaskReport = {
      name: `vqa_${split}`,
      split,
      model: setup.description,
      protocol: `argmax of the VQA head over ${answers.length} answers; ${setup.imageSize} px, ${setup.maxTextLen} tokens`,
      data: { questions: qFile, images: imagesDir, answers: answerSource },
      counts: { samples: Math.min(source.length, opts.limit ?? Infinity), evaluated: predictions.length },
      metrics: {},
      rows: [],
      files: { results: resultsFile, answers: answersFile },
      notes: [],
    };
    if (annotations) {
      const answered = annotationsOf(
        annotations,
        predictions.map((p) => p.question_id),
      );
      const scores = vqaAccuracy({
        annotations: answered,
        predictions,
        files: { annotations: aFile, predictions: resultsFile },
      });
      report.data.annotations = aFile;
      report.metrics = {
        accuracy: scores.official.overall,
        perAnswerType: scores.official.perAnswerType,
        unrounded: scores.overall,
      };
      report.rows.push(['VQA accuracy (official formula)', scores.official.overall.toFixed(2)]);
      for (const [t, v] of Object.entries(scores.official.perAnswerType))
        report.rows.push([`accuracy: ${t}`, v.toFixed(2)]);
      if (answered.length < annotations.length) {
        report.notes.push(
          `accuracy over the ${answered.length} answered questions of ${annotations.length} in ${basename(aFile)}`,
        );
      }
    } else {
      const total = (questions as { questions?: unknown[] }).questions?.length ?? 0;
      report.notes.push(
        `no annotations for ${split} (${basename(aFile)}): submit ${basename(resultsFile)} to the VQA evaluation ` +
          `server (EvalAI)` +
          (predictions.length < total
            ? `; it answers ${predictions.length} of the ${total} questions and the server needs all`
            : ''),
      );
    }
    return report;
  } finally {
    setup.model.dispose();
  }
}

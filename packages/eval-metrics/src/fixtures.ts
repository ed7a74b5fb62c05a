// Runs the reference fixture files (the format of fiber-vl's shared metric fixtures) and reports
// one line per check with its max error. Used by `fiber-metrics fixtures DIR` and by the tests.
import { basename } from 'node:path';
import { evaluateCaptions } from './caption/evaluate.js';
import type { MeteorResources } from './caption/meteor/resources.js';
import { cocoEvaluate, COCO_STAT_NAMES } from './detection/cocoeval.js';
import { Flickr30kEntitiesEvaluator } from './grounding/flickr30k.js';
import { recAccuracy } from './grounding/rec.js';
import { giouXyxy, xywhToXyxy, type BoxXywh } from './grounding/boxes.js';
import { retrievalRecall } from './retrieval.js';
import { ptbTokenize } from './tokenize/ptb.js';
import { vqaAccuracy } from './vqa/evaluate.js';

export interface FixtureCheck {
  file: string;
  check: string;
  maxError: number;
  tolerance: number;
  ok: boolean;
  detail?: string;
}

// biome-ignore lint/suspicious/noExplicitAny: fixture JSON of many shapes, each field checked where it is read
type Fx = Record<string, any>;

function compare(checks: FixtureCheck[], file: string, check: string, pairs: [number, number][], tolerance: number) {
  let maxError = 0;
  for (const [got, want] of pairs) {
    const e = Number.isNaN(got) !== Number.isNaN(want) ? Infinity : Number.isNaN(got) ? 0 : Math.abs(got - want);
    maxError = Math.max(maxError, e);
  }
  checks.push({ file, check, maxError, tolerance, ok: maxError <= tolerance });
}

function exact(checks: FixtureCheck[], file: string, check: string, mismatches: string[]) {
  checks.push({
    file,
    check,
    maxError: mismatches.length,
    tolerance: 0,
    ok: mismatches.length === 0,
    detail: mismatches.slice(0, 3).join('; ') || undefined,
  });
}

const runners: Record<string, (fx: Fx, file: string, checks: FixtureCheck[], meteor?: MeteorResources) => void> = {
  'ptb_tokenizer.json': (fx, file, checks) => {
    const out = ptbTokenize(fx.cases.map((c: Fx) => c.input));
    exact(
      checks,
      file,
      `tokenized (${fx.cases.length} cases)`,
      fx.cases.flatMap((c: Fx, i: number) =>
        out[i] === c.tokenized ? [] : [`${JSON.stringify(c.input)} -> ${JSON.stringify(out[i])}`],
      ),
    );
  },
  'captioning.json': (fx, file, checks, meteor) => {
    const M = ['BLEU_1', 'BLEU_2', 'BLEU_3', 'BLEU_4', 'ROUGE_L', 'CIDEr_D'] as const;
    const run = (images: Fx[], tokenized: boolean) =>
      evaluateCaptions({
        references: new Map(images.map((im) => [im.image_id, tokenized ? im.references_tokenized : im.references])),
        candidates: new Map(images.map((im) => [im.image_id, tokenized ? im.candidate_tokenized : im.candidate])),
        tokenized,
        meteor,
      });
    const full = run(fx.images, true);
    for (const m of M) {
      compare(
        checks,
        file,
        `${m} per image`,
        fx.images.map((im: Fx) => [full.perImage.get(String(im.image_id))![m], im.scores[m]]),
        1e-9,
      );
      compare(checks, file, `${m} corpus`, [[full.corpus[m], fx.corpus_scores[m]]], 1e-9);
    }
    if (meteor) {
      compare(
        checks,
        file,
        'METEOR_no_paraphrase per image',
        fx.images.map((im: Fx) => [
          full.perImage.get(String(im.image_id))!.METEOR_no_paraphrase!,
          im.scores.METEOR_no_paraphrase,
        ]),
        1e-6,
      );
      compare(
        checks,
        file,
        'METEOR_no_paraphrase corpus',
        [[full.corpus.METEOR_no_paraphrase!, fx.corpus_scores.METEOR_no_paraphrase]],
        1e-6,
      );
    }
    const raw = run(fx.images, false);
    exact(
      checks,
      file,
      'PTB tokenization of references and candidates',
      fx.images.flatMap((im: Fx) => {
        const t = raw.tokenized.get(String(im.image_id))!;
        return t.candidate === im.candidate_tokenized && t.references.every((r, i) => r === im.references_tokenized[i])
          ? []
          : [`image ${im.image_id}`];
      }),
    );
    for (const mc of fx.mini_corpora ?? []) {
      const images = fx.images.filter((im: Fx) => mc.image_ids.includes(im.image_id));
      const r = run(images, true);
      const pairs: [number, number][] = [];
      for (const m of M) {
        pairs.push([r.corpus[m], mc.corpus_scores[m]]);
        for (const [id, s] of Object.entries(mc.per_image_scores as Record<string, Fx>))
          pairs.push([r.perImage.get(id)![m], s[m]]);
      }
      compare(checks, file, `mini corpus ${mc.name}`, pairs, 1e-9);
    }
  },
  'vqa.json': (fx, file, checks) => {
    const r = vqaAccuracy({ annotations: fx.annotations, questions: fx.questions, predictions: fx.predictions });
    const e = fx.expected;
    compare(
      checks,
      file,
      'per-question accuracy',
      Object.entries(e.per_question_accuracy).map(([q, v]) => [r.perQuestion[q], v as number]),
      1e-9,
    );
    compare(
      checks,
      file,
      'overall / per answer type / per question type (unrounded)',
      [
        [r.overall, e.overall_accuracy_percent_unrounded],
        ...Object.entries(e.per_answer_type_percent_unrounded).map(
          ([k, v]) => [r.perAnswerType[k], v as number] as [number, number],
        ),
        ...Object.entries(e.per_question_type_percent_unrounded).map(
          ([k, v]) => [r.perQuestionType[k], v as number] as [number, number],
        ),
      ],
      1e-9,
    );
    compare(
      checks,
      file,
      'official rounded values',
      [
        [r.official.overall, e.overall_accuracy_percent_official_rounded],
        ...Object.entries(e.per_answer_type_percent_official_rounded).map(
          ([k, v]) => [r.official.perAnswerType[k], v as number] as [number, number],
        ),
        ...Object.entries(e.per_question_type_percent_official_rounded).map(
          ([k, v]) => [r.official.perQuestionType[k], v as number] as [number, number],
        ),
        ...Object.entries(e.per_question_accuracy_official_rounded).map(
          ([k, v]) => [r.official.perQuestion[k], v as number] as [number, number],
        ),
      ],
      0,
    );
  },
  'detection_cocoeval.json': (fx, file, checks) => {
    for (const c of fx.cases) {
      const r = cocoEvaluate(c.ground_truth, c.detections);
      compare(
        checks,
        file,
        `${c.name}: 12 stats + per-category AP`,
        [
          ...COCO_STAT_NAMES.map((s) => [r.stats[s], c.expected.stats[s]] as [number, number]),
          ...Object.entries(c.expected.per_category_AP).map(
            ([k, v]) => [r.perCategoryAP[k], v as number] as [number, number],
          ),
        ],
        1e-12,
      );
    }
  },
  'retrieval.json': (fx, file, checks) => {
    for (const c of fx.cases) {
      const r = retrievalRecall(c.similarity, c.text_to_image);
      const pairs: [number, number][] = [[r.rsum, c.expected.rsum]];
      for (const d of ['i2t', 't2i'] as const)
        for (const [k, v] of Object.entries(c.expected[d])) {
          const got: Record<string, number> = { ...r[d] };
          pairs.push([got[k], v as number]);
        }
      c.expected.i2t_ranks_0based.forEach((v: number, i: number) => pairs.push([r.i2tRanks[i], v]));
      c.expected.t2i_ranks_0based.forEach((v: number, i: number) => pairs.push([r.t2iRanks[i], v]));
      compare(checks, file, `${c.name}: R@K, medr, meanr, rsum, ranks`, pairs, 1e-9);
    }
  },
  'rec.json': (fx, file, checks) => {
    const r = recAccuracy(fx.cases.map((c: Fx) => ({ gtBox: c.gt_box_xywh, predBoxes: c.pred_boxes_xywh_ranked })));
    compare(
      checks,
      file,
      'top-1 IoU per case',
      fx.cases.map((c: Fx, i: number) => [r.ious[i], c.top1_iou]),
      1e-12,
    );
    compare(
      checks,
      file,
      'accuracy',
      [
        [r.accuracy, fx.expected.accuracy],
        [r.n, fx.expected.n],
      ],
      1e-12,
    );
  },
  'rec-giou.json': (fx, file, checks) => {
    // FIBER's RefExpEvaluator: boxes sorted by score, GIoU (float32 in torch), precision@1, 5, 10
    const samples = fx.cases.map((c: Fx) => ({ gtBox: c.gt_box_xywh, predBoxes: c.pred_boxes_xywh_ranked }));
    const r = recAccuracy(samples, { overlap: 'giou', k: [1, 5, 10] });
    const giou = (b: number[], g: number[]) => giouXyxy(xywhToXyxy(b as BoxXywh), xywhToXyxy(g as BoxXywh));
    compare(
      checks,
      file,
      'GIoU of every ranked box (float32 reference)',
      fx.cases.flatMap((c: Fx) =>
        c.pred_boxes_xywh_ranked.map((b: number[], j: number) => [giou(b, c.gt_box_xywh), c.giou_ranked[j]]),
      ),
      1e-6,
    );
    compare(
      checks,
      file,
      'hit@1 per case, precision@1, 5, 10',
      [
        ...fx.cases.map((c: Fx, i: number) => [Number(r.correct[i]), Number(c.hit_at['1'])] as [number, number]),
        ...[1, 5, 10].map((k) => [r.precisionAt[k], fx.expected[`precision_at_${k}`]] as [number, number]),
        [r.accuracy, fx.expected.precision_at_1],
        [r.n, fx.expected.n],
      ],
      1e-12,
    );
  },
  'grounding_flickr30k.json': (fx, file, checks) => {
    const files = fx.flickr30k_entities_files as Record<string, string>;
    const ev = new Flickr30kEntitiesEvaluator((p) => {
      if (!(p in files)) throw new Error(`${file}: the miniature dataset has no ${p}`);
      return files[p];
    });
    for (const [name, merge] of [
      ['any_box', false],
      ['merged_box', true],
    ] as const) {
      const r = ev.evaluate(fx.predictions, { mergeBoxes: merge });
      const pairs: [number, number][] = [];
      for (const [k, cats] of Object.entries(fx.expected[name] as Record<string, Record<string, number>>)) {
        for (const [cat, v] of Object.entries(cats)) pairs.push([r[k]?.[cat] ?? NaN, v]);
      }
      compare(checks, file, `${name} R@1/5/10 + upper bound, per phrase type`, pairs, 1e-12);
    }
  },
};

/** Runs the fixture files (path -> parsed JSON); a file of unknown name is a failed check. */
export function runFixtures(files: [string, unknown][], { meteor }: { meteor?: MeteorResources } = {}): FixtureCheck[] {
  const checks: FixtureCheck[] = [];
  for (const [path, json] of files) {
    const name = basename(path);
    const runner = runners[name];
    if (!runner) {
      // A fixture nobody checks must not pass silently.
      const known = Object.keys(runners).join(', ');
      checks.push({
        file: name,
        check: 'not a known fixture file',
        maxError: Infinity,
        tolerance: 0,
        ok: false,
        detail: `known: ${known}`,
      });
      continue;
    }
    try {
      runner(json as Fx, name, checks, meteor);
    } catch (e) {
      checks.push({
        file: name,
        check: 'run',
        maxError: Infinity,
        tolerance: 0,
        ok: false,
        detail: (e as Error).message,
      });
    }
  }
  return checks;
}

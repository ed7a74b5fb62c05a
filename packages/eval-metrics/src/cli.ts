// fiber-metrics: the reference VL metrics on the standard files users already have.
import { existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { evaluateCaptions } from './caption/evaluate.js';
import { cocoEvaluate, type CocoDetection, type CocoGroundTruth } from './detection/cocoeval.js';
import { MetricInputError, show } from './errors.js';
import { Flickr30kEntitiesEvaluator, type Flickr30kPrediction } from './grounding/flickr30k.js';
import type { BoxXywh } from './grounding/boxes.js';
import { checkRecSample, recAccuracy, recDepth } from './grounding/rec.js';
import {
  cocoCaptionReferences,
  cocoCaptionResults,
  folderReader,
  jsonFilesIn,
  loadMeteorResources,
  loadParaphraseTable,
  readJson,
  runFixtures,
  type FixtureCheck,
} from './node.js';
import { retrievalRecall } from './retrieval.js';
import { vqaAccuracy } from './vqa/evaluate.js';
import { spiceApprox } from './caption/spice.js';

const USAGE = `usage: fiber-metrics <command> [options]

  caption    --refs coco_captions.json --preds results.json [--no-meteor] [--spice] [--meteor-data DIR]
             [--meteor-paraphrase paraphrase-en.gz] [--per-image]
             BLEU-1..4, ROUGE-L, CIDEr-D (pycocoevalcap); METEOR_no_paraphrase, or METEOR when a Meteor
             paraphrase table is given; SPICE_approx (opt-in, approximate parser)
  vqa        --questions Q.json --annotations A.json --preds R.json
  detection  --gt instances.json --dets dets.json          (COCOeval, iouType bbox)
  retrieval  --sims sims.json    {"similarity": [[...]], "text_to_image": [...]} or a bare matrix
             (then text j belongs to image floor(j / --captions-per-image, default 5))
  rec        --samples S.json [--giou]   [{"gt_box": [x,y,w,h], "pred_boxes": [[x,y,w,h], ...]}, ...]
             accuracy at IoU >= 0.5 of the first box; --giou: FIBER's / MDETR's evaluator, precision@1, 5, 10
             at generalised IoU >= 0.5. pred_boxes best first, or in any order with "scores" (one per
             box), then ranked by them as FIBER's evaluator ranks them (highest first)
  grounding  --flickr-dir DIR --preds P.json [--subset test]   (MDETR format predictions)
  fixtures   DIR                 run every reference fixture JSON in DIR, one line per check

output: JSON on stdout (raw scale); --table for a readable table; --scale100 multiplies
scores in [0, 1] by 100 (and CIDEr-D by 100), as papers print them.
`;

type Scores = Record<string, unknown>;

function need(values: Record<string, unknown>, ...names: string[]): string[] {
  const missing = names.filter((n) => typeof values[n] !== 'string');
  if (missing.length) throw new MetricInputError(`missing option(s): ${missing.map((m) => `--${m}`).join(', ')}`);
  return names.map((n) => values[n] as string);
}

/** Multiplies every number in `scores` except counts, ranks and keys listed in `keep`. */
function scale100(x: unknown, keep = /^(medr|meanr|n|count|rsum)$/, key = ''): unknown {
  if (typeof x === 'number') return keep.test(key) ? x : x === -1 ? -1 : x * 100;
  if (Array.isArray(x)) return x.map((v) => scale100(v, keep, key));
  if (x && typeof x === 'object')
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, scale100(v, keep, k)]));
  return x;
}

function table(scores: Scores, prefix = ''): string[] {
  const rows: string[] = [];
  for (const [k, v] of Object.entries(scores)) {
    const name = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) rows.push(...table(v as Scores, name));
    else rows.push(`${name.padEnd(44)} ${typeof v === 'number' ? v.toFixed(4) : JSON.stringify(v)}`);
  }
  return rows;
}

/** parseArgs, with its errors (unknown option, missing value) as input errors of one line. */
function parse(argv: string[]) {
  try {
    return parseArgsStrict(argv);
  } catch (e) {
    const message = (e as Error).message.split('. ')[0];
    throw new MetricInputError(`${message} (see fiber-metrics --help)`);
  }
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  const [command, arg] = positionals;
  if (!command || values.help) {
    process.stdout.write(USAGE);
    return command || values.help ? 0 : 2;
  }
  return run(command, arg, values);
}

function parseArgsStrict(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      refs: { type: 'string' },
      preds: { type: 'string' },
      questions: { type: 'string' },
      annotations: { type: 'string' },
      gt: { type: 'string' },
      dets: { type: 'string' },
      sims: { type: 'string' },
      samples: { type: 'string' },
      giou: { type: 'boolean' },
      'flickr-dir': { type: 'string' },
      subset: { type: 'string' },
      'captions-per-image': { type: 'string' },
      'meteor-data': { type: 'string' },
      'meteor-paraphrase': { type: 'string' },
      'no-meteor': { type: 'boolean' },
      spice: { type: 'boolean' },
      'per-image': { type: 'boolean' },
      table: { type: 'boolean' },
      scale100: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

type Values = ReturnType<typeof parseArgsStrict>['values'];

async function run(command: string, arg: string | undefined, values: Values): Promise<number> {
  let scores: Scores;
  switch (command) {
    case 'caption': {
      const [refsFile, predsFile] = need(values, 'refs', 'preds');
      const meteor = values['no-meteor'] ? undefined : loadMeteorResources(values['meteor-data']);
      const r = evaluateCaptions({
        references: cocoCaptionReferences(readJson(refsFile), refsFile),
        candidates: cocoCaptionResults(readJson(predsFile), predsFile),
        files: { references: refsFile, candidates: predsFile },
        meteor,
        meteorParaphrases:
          meteor && values['meteor-paraphrase'] ? loadParaphraseTable(values['meteor-paraphrase']) : undefined,
        spice: values.spice ? spiceApprox : undefined,
      });
      scores = { ...r.corpus, ...(values['per-image'] ? { perImage: Object.fromEntries(r.perImage) } : {}) };
      if (values.spice)
        scores.note =
          'SPICE_approx is SPICE computed with an approximate (wink-nlp) scene-graph parser, not the official SPICE';
      if (meteor && !values['meteor-paraphrase'])
        scores.meteorNote = 'METEOR_no_paraphrase: Meteor 1.5 exact+stem+synonym, without the paraphrase table';
      break;
    }
    case 'vqa': {
      const [qFile, aFile, pFile] = need(values, 'questions', 'annotations', 'preds');
      const r = vqaAccuracy({
        questions: readJson(qFile),
        annotations: readJson(aFile),
        predictions: readJson(pFile),
        files: { questions: qFile, annotations: aFile, predictions: pFile },
      });
      scores = {
        overall: r.overall,
        perAnswerType: r.perAnswerType,
        perQuestionType: r.perQuestionType,
        ...(values['per-image'] ? { perQuestion: r.perQuestion } : {}),
      };
      if (values.scale100) {
        // VQA accuracies are already percentages.
        return print(scores, !!values.table);
      }
      break;
    }
    case 'detection': {
      const [gtFile, detsFile] = need(values, 'gt', 'dets');
      const r = cocoEvaluate(readJson<CocoGroundTruth>(gtFile), readJson<CocoDetection[]>(detsFile), {
        files: { gt: gtFile, dets: detsFile },
      });
      scores = { ...r.stats, perCategoryAP: r.perCategoryAP };
      break;
    }
    case 'retrieval': {
      const [simsFile] = need(values, 'sims');
      const json = readJson<unknown>(simsFile);
      const isObj = typeof json === 'object' && json !== null && !Array.isArray(json);
      const fields = isObj ? (json as { similarity?: unknown; text_to_image?: unknown }) : {};
      const sim = Array.isArray(json) ? json : fields.similarity;
      if (sim === undefined) {
        throw new MetricInputError(
          `${simsFile}: "similarity" is missing (expected a matrix or {"similarity": [[...]], "text_to_image": [...]})`,
        );
      }
      if (!Array.isArray(sim))
        throw new MetricInputError(`${simsFile}: "similarity" must be a list of rows, got ${show(sim)}`);
      let map = fields.text_to_image as number[] | undefined;
      if (map === undefined) {
        const per = Number(values['captions-per-image'] ?? 5);
        if (!Number.isInteger(per) || per < 1) {
          throw new MetricInputError(
            `--captions-per-image must be a positive integer, got ${values['captions-per-image']}`,
          );
        }
        const cols = Array.isArray(sim[0]) ? sim[0].length : 0;
        map = Array.from({ length: cols }, (_, j) => Math.floor(j / per));
      }
      const r = retrievalRecall(sim, map, { file: simsFile });
      scores = { i2t: r.i2t, t2i: r.t2i, rsum: r.rsum };
      if (values.scale100) return print(scores, !!values.table); // already percentages
      break;
    }
    case 'rec': {
      const [samplesFile] = need(values, 'samples');
      const json = readJson<unknown>(samplesFile);
      const list: unknown = Array.isArray(json) ? json : (json as { cases?: unknown } | null)?.cases;
      if (!Array.isArray(list)) throw new MetricInputError(`${samplesFile}: expected a list of {gt_box, pred_boxes}`);
      const depth = recDepth(values.giou ? REC_GIOU_K : []);
      const samples = list.map((s: unknown, i) => {
        const at = `${samplesFile}: [${i}]`;
        if (typeof s !== 'object' || s === null) throw new MetricInputError(`${at}: not an object (${show(s)})`);
        const o = s as Record<string, unknown>;
        // errors name the fields as the file writes them (the official fixtures' longer names too)
        // (read as before: the short name unless it is null or missing, as `??` reads it)
        const names = {
          gt: o.gt_box == null && o.gt_box_xywh != null ? 'gt_box_xywh' : 'gt_box',
          pred: o.pred_boxes == null && o.pred_boxes_xywh_ranked != null ? 'pred_boxes_xywh_ranked' : 'pred_boxes',
        };
        const sample = { gtBox: o[names.gt], predBoxes: o[names.pred] };
        if (o.scores === undefined) {
          checkRecSample(at, sample, depth, names);
          return sample;
        }
        // every box is ranked, so every box is checked
        checkRecSample(at, sample, Infinity, names);
        return { ...sample, predBoxes: rankedByScore(sample.predBoxes, o.scores, at, names.pred) };
      });
      if (values.giou) {
        const r = recAccuracy(samples, { file: samplesFile, overlap: 'giou', k: REC_GIOU_K });
        scores = {
          overlap: 'giou',
          precision_at_1: r.precisionAt[1],
          precision_at_5: r.precisionAt[5],
          precision_at_10: r.precisionAt[10],
          n: r.n,
        };
      } else {
        const r = recAccuracy(samples, { file: samplesFile });
        scores = { accuracy: r.accuracy, n: r.n };
      }
      break;
    }
    case 'grounding': {
      const [dir, predsFile] = need(values, 'flickr-dir', 'preds');
      if (!existsSync(dir) || !statSync(dir).isDirectory())
        throw new MetricInputError(`--flickr-dir ${dir} is not a folder`);
      const ev = new Flickr30kEntitiesEvaluator(folderReader(dir), values.subset ?? 'test');
      const preds = readJson<Flickr30kPrediction[]>(predsFile);
      scores = {
        any_box: ev.evaluate(preds, { file: predsFile }),
        merged_box: ev.evaluate(preds, { mergeBoxes: true, file: predsFile }),
      };
      break;
    }
    case 'fixtures': {
      if (!arg) throw new MetricInputError('usage: fiber-metrics fixtures DIR');
      const paths = jsonFilesIn(arg);
      if (!paths.length) throw new MetricInputError(`${arg}: no .json fixture files`);
      const checks: FixtureCheck[] = [];
      const files: [string, unknown][] = [];
      for (const f of paths) {
        try {
          files.push([f, readJson(f)]);
        } catch (e) {
          checks.push({
            file: basename(f),
            check: 'read',
            maxError: Infinity,
            tolerance: 0,
            ok: false,
            detail: (e as Error).message,
          });
        }
      }
      const meteor = values['no-meteor'] ? undefined : loadMeteorResources(values['meteor-data']);
      checks.push(...runFixtures(files, { meteor }));
      for (const c of checks) {
        const err = Number.isFinite(c.maxError) ? c.maxError.toExponential(2) : String(c.maxError);
        process.stdout.write(
          `${c.ok ? 'ok  ' : 'FAIL'} ${c.file.padEnd(26)} ${c.check.padEnd(60)} max error ${err} (tolerance ${c.tolerance})` +
            `${c.detail ? `  ${c.detail}` : ''}\n`,
        );
      }
      const failed = checks.filter((c) => !c.ok).length;
      process.stdout.write(`\n${checks.length - failed} checks passed, ${failed} failed\n`);
      return failed ? 1 : 0;
    }
    default:
      throw new MetricInputError(`unknown command "${command}" (see fiber-metrics --help)`);
  }
  if (values.scale100) scores = scale100(scores) as Scores;
  return print(scores, !!values.table);
}

/** The k of `rec --giou`: FIBER's and MDETR's precision@1, 5 and 10. */
const REC_GIOU_K = [1, 5, 10];

/**
 * The boxes ranked as FIBER's RefExpEvaluator ranks them: Python's sorted() of (score, box) pairs,
 * highest first, its boxes [x0, y0, x1, y1] (here [x, y, x + w, y + h]), so that equal scores put
 * the larger box first. The boxes are checked by the caller.
 */
function rankedByScore(boxes: BoxXywh[], scores: unknown, where: string, field: string): BoxXywh[] {
  if (!Array.isArray(scores) || scores.length !== boxes.length || !scores.every((v) => Number.isFinite(v)))
    throw new MetricInputError(
      `${where}: "scores" must be a list of finite numbers, one per box of "${field}" (${boxes.length})`,
    );
  const xyxy = boxes.map(([x, y, w, h]) => [x, y, x + w, y + h]);
  const order = boxes.map((_, i) => i);
  order.sort((a, b) => {
    if (scores[a] !== scores[b]) return scores[b] - scores[a];
    for (let k = 0; k < 4; k++) if (xyxy[a][k] !== xyxy[b][k]) return xyxy[b][k] - xyxy[a][k];
    return 0;
  });
  return order.map((i) => boxes[i]);
}

function print(scores: Scores, asTable: boolean): number {
  process.stdout.write(asTable ? `${table(scores).join('\n')}\n` : `${JSON.stringify(scores, null, 2)}\n`);
  return 0;
}

/**
 * process.exit once stdout and stderr have flushed. Node writes to a pipe asynchronously on Linux,
 * and process.exit drops what is still queued: a slow reader lost the last lines of a report.
 */
function exitWhenFlushed(code: number): void {
  let open = 2;
  const done = () => {
    open -= 1;
    if (open === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

main(process.argv.slice(2)).then(
  (code) => exitWhenFlushed(code),
  (e) => {
    // One line: an input error names the file (or option), the entry and the field.
    process.stderr.write(`fiber-metrics: ${String((e as Error)?.message ?? e).replace(/\s*\n\s*/g, ' ')}\n`);
    exitWhenFlushed(e instanceof MetricInputError ? 2 : 1);
  },
);

// `fiber-bench eval` on the sample folders (fixtures/eval, the public layouts, a corrupted sample in
// each) with tiny seeded checkpoints: the official result files' exact format, the printed metrics
// equal to @fiber-vl/eval-metrics on the written files, golden values (regression), --resume after
// a killed run, and the error paths (one line, exit code 2).
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Flickr30kEntitiesEvaluator,
  cocoEvaluate,
  evaluateCaptions,
  recAccuracy,
  retrievalRecall,
  vqaAccuracy,
  type CocoGroundTruth,
  type BoxXywh,
} from '@fiber-vl/eval-metrics';
import {
  cocoCaptionReferences,
  cocoCaptionResults,
  folderReader,
  loadMeteorResources,
} from '@fiber-vl/eval-metrics/node';
import { SafetensorsFile, TorchCheckpoint, serializeSafetensors, tf } from '@fiber-vl/tensor-core';
import { evalMain } from '../src/eval/index.js';
import { makeEvalAssets, root, samples, type EvalAssets } from './eval-assets.js';

const cli = join(root, 'apps/bench/dist/cli.js');
const backend = process.env.FIBER_EVAL_TEST_BACKEND ?? 'wasm';
const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

let assets: EvalAssets;
let work: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'fiber-eval-'));
  assets = await makeEvalAssets(join(work, 'assets'));
}, 120_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  out: string;
  /** Metric rows of the Markdown summary. */
  rows: Map<string, string>;
  summary: Record<string, unknown> & {
    files: Record<string, string>;
    metrics: Record<string, unknown>;
    counts: Record<string, number>;
    skipped: Record<string, number>;
  };
}

let runs = 0;
/** `fiber-bench eval` in this process, with the tokenizer, a fresh --out, the test backend and the JS decoder. */
async function evalRun(args: string[], { out = join(work, `out${runs++}`), tokenizer = true } = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io = { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) } };
  const common = [
    '--out',
    out,
    '--backend',
    backend,
    ...(args.includes('--decoder') ? [] : ['--decoder', 'js']),
    ...(tokenizer ? ['--tokenizer', assets.tokenizer] : []),
  ];
  const code = await evalMain([...args, ...common], io);
  const rows = new Map([...stdout.matchAll(/^\| (.+?) \| (.+?) \|$/gm)].map((m) => [m[1], m[2]]));
  const metricsFile = code === 0 ? readdirSync(out).find((f) => f.endsWith('_metrics.json')) : undefined;
  return {
    code,
    stdout,
    stderr,
    out,
    rows,
    summary: metricsFile ? json(join(out, metricsFile)) : ({} as Run['summary']),
  };
}

/** `retrieval` with the pre-training checkpoint (ITC and ITM heads): its ITC top 2 re-ranked by ITM. */
const rerankArgs = (data = join(samples, 'coco')) => [
  ...['--task', 'retrieval', '--checkpoint', assets.ckpt.pretrain],
  ...['--itm-rerank', '2', '--data', data],
];
const close = (a: number, b: number, tol = 1e-4) => expect(Math.abs(a - b)).toBeLessThanOrEqual(tol);
const closeAll = (a: number[], b: number[], tol = 1e-4) => {
  expect(a).toHaveLength(b.length);
  a.forEach((v, i) => close(v, b[i], tol));
};

/** The stored result of each item of a run (its partial results), by key. */
function partialValues(r: Run): Map<string, Record<string, never>> {
  const lines = readFileSync(r.summary.files.partial, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => JSON.parse(l));
  return new Map(lines.filter((l) => 'value' in l).map((l) => [l.key, l.value]));
}

describe('fiber-bench eval vqa', () => {
  let r: Run;
  beforeAll(async () => {
    r = await evalRun([
      '--task',
      'vqa',
      '--checkpoint',
      assets.ckpt.vqa,
      '--data',
      join(samples, 'vqa'),
      '--images',
      join(samples, 'coco'),
    ]);
  });

  it('writes the evaluation server format and the answer list of ViLT rule', () => {
    expect(r.code, r.stderr).toBe(0);
    const results = json(r.summary.files.results);
    expect(r.summary.files.results.endsWith('vqa_OpenEnded_mscoco_val2014_fiber_results.json')).toBe(true);
    expect(results.map((x: object) => Object.keys(x))).toEqual(Array(5).fill(['question_id', 'answer']));
    expect(results.map((x: { question_id: number }) => x.question_id)).toEqual([
      101000, 101001, 102000, 102001, 103000,
    ]);
    // train + val multiple_choice_answer counted >= 9, first occurrence order, normalised ("Green" -> "green")
    expect(json(r.summary.files.answers)).toEqual(['yes', 'no', '2', 'red', 'triangle', 'square', 'green']);
    expect(r.summary.skipped).toEqual({ 'corrupt-image': 1, 'missing-image': 1 });
    expect(r.stderr).toMatch(/skipped q104000: corrupt-image/);
    expect(r.stderr).toMatch(/vqa val2014: 7\/7 \(100\.0%\) [\d.]+\/s took/);
  });

  it('prints the accuracy that eval-metrics computes on the written results', () => {
    const annotations = json(join(samples, 'vqa/v2_mscoco_val2014_annotations.json')).annotations;
    const predictions = json(r.summary.files.results);
    const ids = new Set(predictions.map((p: { question_id: number }) => p.question_id));
    const scores = vqaAccuracy({
      annotations: annotations.filter((a: { question_id: number }) => ids.has(a.question_id)),
      predictions,
    });
    expect(r.rows.get('VQA accuracy (official formula)')).toBe(scores.official.overall.toFixed(2));
    expect(r.summary.metrics.accuracy).toBe(scores.official.overall);
  });

  it('gives the golden answers of the seeded model', () => {
    const stored = partialValues(r);
    expect([...stored.keys()]).toEqual(['q101000', 'q101001', 'q102000', 'q102001', 'q103000']);
    const golden = [0.6121477, 0.611867, 0.6199453, 0.6168511, 0.606658];
    [...stored.values()].forEach((v, i) => {
      expect(v.answer).toBe('square');
      close(v.score, golden[i]);
    });
    expect(r.summary.metrics.accuracy).toBe(0);
  });

  it('reads --answers as a list or as ViLT ans2label, and refuses a list of the wrong length', async () => {
    const list = join(work, 'answers.json');
    const answers = ['yes', 'no', '2', 'red', 'triangle', 'square', 'green'];
    writeFileSync(list, JSON.stringify(Object.fromEntries(answers.map((a, i) => [a, i]))));
    const again = await evalRun([
      '--task',
      'vqa',
      '--checkpoint',
      assets.ckpt.vqa,
      '--data',
      join(samples, 'vqa'),
      '--images',
      join(samples, 'coco'),
      '--answers',
      list,
    ]);
    expect(again.code, again.stderr).toBe(0);
    expect(readFileSync(again.summary.files.results, 'utf8')).toBe(readFileSync(r.summary.files.results, 'utf8'));
    writeFileSync(list, JSON.stringify(answers.slice(0, 5)));
    const bad = await evalRun([
      '--task',
      'vqa',
      '--checkpoint',
      assets.ckpt.vqa,
      '--data',
      join(samples, 'vqa'),
      '--images',
      join(samples, 'coco'),
      '--answers',
      list,
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /^fiber-bench eval: vqa: the answer list has 5 answers .* the checkpoint's VQA head has 7\n$/,
    );
  });

  it('says clearly when there is no answer list', async () => {
    const dir = join(work, 'vqa-no-train');
    mkdirSync(dir, { recursive: true });
    for (const f of ['v2_OpenEnded_mscoco_val2014_questions.json', 'v2_mscoco_val2014_annotations.json'])
      writeFileSync(join(dir, f), readFileSync(join(samples, 'vqa', f)));
    const bad = await evalRun([
      '--task',
      'vqa',
      '--checkpoint',
      assets.ckpt.vqa,
      '--data',
      dir,
      '--images',
      join(samples, 'coco'),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /^fiber-bench eval: vqa: no answer list: .*--answers FILE.*v2_mscoco_train2014_annotations.json/,
    );
    expect(bad.stdout).toBe('');
  });

  it('names a data file whose top level is not an object (null, a list)', async () => {
    const dir = join(work, 'vqa-null');
    cpSync(join(samples, 'vqa'), dir, { recursive: true });
    const questions = join(dir, 'v2_OpenEnded_mscoco_val2014_questions.json');
    for (const [text, shown] of [
      ['null', 'null'],
      ['[1, 2]', 'a list'],
    ]) {
      writeFileSync(questions, text);
      const bad = await evalRun([
        '--task',
        'vqa',
        '--checkpoint',
        assets.ckpt.vqa,
        '--data',
        dir,
        '--images',
        join(samples, 'coco'),
      ]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toBe(`fiber-bench eval: VQA questions: ${questions} holds ${shown}, not a JSON object\n`);
    }
  });

  it('checks the annotations before the model runs: a broken one is exit 2, a question without one a skip', async () => {
    const dir = join(work, 'vqa-ann');
    cpSync(join(samples, 'vqa'), dir, { recursive: true });
    const annFile = join(dir, 'v2_mscoco_val2014_annotations.json');
    const ann = JSON.parse(readFileSync(annFile, 'utf8'));
    const args = ['--task', 'vqa', '--checkpoint', assets.ckpt.vqa, '--data', dir, '--images', join(samples, 'coco')];
    const first = ann.annotations[0];
    writeFileSync(
      annFile,
      JSON.stringify({ ...ann, annotations: [{ ...first, answers: null }, ...ann.annotations.slice(1)] }),
    );
    const broken = await evalRun(args);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain(
      `${annFile}: annotations[0] (question ${first.question_id}): "answers" must be a non-empty list`,
    );
    // the file's index, also when the questions before it are not evaluated (here: the first one's text is empty)
    const qFile = join(dir, 'v2_OpenEnded_mscoco_val2014_questions.json');
    const qs = JSON.parse(readFileSync(qFile, 'utf8'));
    const third = ann.annotations[2];
    writeFileSync(
      qFile,
      JSON.stringify({
        ...qs,
        questions: qs.questions.map((q: { question_id: number }) =>
          q.question_id === first.question_id ? { ...q, question: '' } : q,
        ),
      }),
    );
    writeFileSync(
      annFile,
      JSON.stringify({
        ...ann,
        annotations: ann.annotations.map((a: object, k: number) => (k === 2 ? { ...a, answers: null } : a)),
      }),
    );
    const later = await evalRun(args);
    expect(later.code).toBe(2);
    expect(later.stderr).toContain(
      `${annFile}: annotations[2] (question ${third.question_id}): "answers" must be a non-empty list`,
    );
    expect(broken.stderr).not.toMatch(/vqa val2014: \d+\/\d+/); // no progress: the model did not run

    // questions of another split: none has an annotation here
    writeFileSync(
      qFile,
      JSON.stringify({
        ...qs,
        data_subtype: 'test2015',
        questions: qs.questions.map((q: { question_id: number }) => ({
          ...q,
          question_id: q.question_id + 900_000_000,
        })),
      }),
    );
    const other = await evalRun(args);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(
      /vqa: none of the \d+ questions has an annotation in .*v2_mscoco_val2014_annotations\.json: questions of another split\? \(v2_OpenEnded_mscoco_val2014_questions\.json says data_subtype "test2015"; --split val2014 reads/,
    );

    writeFileSync(qFile, JSON.stringify(qs));
    writeFileSync(annFile, JSON.stringify({ ...ann, annotations: ann.annotations.slice(1) }));
    const missing = await evalRun(args);
    expect(missing.code, missing.stderr).toBe(0);
    expect(missing.summary.skipped['missing-annotation']).toBe(1);
    expect(missing.summary.skippedSamples).toContainEqual({
      key: `q${first.question_id}`,
      reason: 'missing-annotation',
      detail: `question ${first.question_id} has no annotation in v2_mscoco_val2014_annotations.json`,
    });
  });

  it('coco-det checks the ground truth before the model runs (a negative box, no categories)', async () => {
    const ann = json(join(samples, 'coco/annotations/instances_val2017.json'));
    const annFile = join(work, 'instances-bad.json');
    const args = ['--task', 'coco-det', '--checkpoint', assets.ckpt.detector, '--data', samples, '--ann', annFile];
    const [a0] = ann.annotations;
    writeFileSync(
      annFile,
      JSON.stringify({ ...ann, annotations: [{ ...a0, bbox: [1, 1, -5, 4] }, ...ann.annotations.slice(1)] }),
    );
    const negative = await evalRun(args);
    expect(negative.code).toBe(2);
    expect(negative.stderr).toContain(
      `${annFile}: annotations[0] (id ${a0.id}): "bbox" has a negative width or height`,
    );
    expect(negative.stderr).not.toMatch(/coco-det val2017: \d+\/\d+/); // no progress: the model did not run
    writeFileSync(annFile, JSON.stringify({ ...ann, categories: [], annotations: [] }));
    const empty = await evalRun(args);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toBe(
      `fiber-bench eval: COCO val2017 instances: ${annFile} has no categories (nothing to detect)\n`,
    );
  });

  it('--limit evaluates the first N questions; --json prints only the metrics JSON', async () => {
    const lim = await evalRun([
      '--task',
      'vqa',
      '--checkpoint',
      assets.ckpt.vqa,
      '--data',
      join(samples, 'vqa'),
      '--images',
      join(samples, 'coco'),
      '--limit',
      '2',
      '--json',
    ]);
    expect(lim.code, lim.stderr).toBe(0);
    const parsed = JSON.parse(lim.stdout);
    expect(parsed).toMatchObject({
      command: 'eval',
      schemaVersion: 1,
      task: 'vqa',
      split: 'val2014',
      counts: { samples: 2, evaluated: 2, skipped: 0 },
    });
    expect(json(parsed.files.results)).toHaveLength(2);
  });
});

describe('fiber-bench eval caption', () => {
  let r: Run;
  beforeAll(async () => {
    r = await evalRun([
      '--task',
      'caption',
      '--checkpoint',
      assets.ckpt.caption,
      '--data',
      join(samples, 'coco'),
      '--batch',
      '2',
    ]);
  });

  it('writes COCO caption results and the scores eval-metrics gives on them', () => {
    expect(r.code, r.stderr).toBe(0);
    const results = json(r.summary.files.results);
    expect(results.map((x: object) => Object.keys(x))).toEqual(Array(3).fill(['image_id', 'caption']));
    expect(results.map((x: { image_id: number }) => x.image_id)).toEqual([101, 102, 103]);
    expect(r.summary.skipped).toEqual({ 'malformed-record': 1, 'corrupt-image': 1, 'missing-image': 1 });
    const scores = evaluateCaptions({
      references: cocoCaptionReferences(json(r.summary.files.references)),
      candidates: cocoCaptionResults(results),
      meteor: loadMeteorResources(),
    }).corpus;
    // every Karpathy sentence of the image is a reference
    expect(cocoCaptionReferences(json(r.summary.files.references)).get('102')).toEqual([
      'Two green discs.',
      'A big green circle above a small one.',
      'Green circles on a noisy background.',
    ]);
    for (const [k, v] of Object.entries(scores)) {
      expect(r.rows.get(k)).toBe((100 * v!).toFixed(2));
      expect(r.summary.metrics[k]).toBe(v);
    }
    // golden: the seeded model's beam search gives the same tokens for the three images
    const tokens = [
      73, 73, 231, 181, 150, 287, 73, 150, 287, 73, 150, 44, 374, 4, 374, 4, 287, 303, 78, 73, 150, 183, 287, 73, 303,
      146, 287, 381, 299, 367, 73,
    ];
    expect([...partialValues(r).values()].map((v) => v.tokens)).toEqual([tokens, tokens, tokens]);
    close(r.summary.metrics.METEOR_no_paraphrase as number, 0.022775800711743774, 1e-9);
    expect(r.summary.metrics.CIDEr_D).toBe(0);
    // the entry the reader could not read (no filename) is named by its id
    expect(r.summary.skippedSamples).toContainEqual(expect.objectContaining({ reason: 'malformed-record', id: '106' }));
  });

  it('--limit counts the reader skips of the images it chooses only', async () => {
    const limited = await evalRun([
      ...['--task', 'caption', '--checkpoint', assets.ckpt.caption],
      ...['--data', join(samples, 'coco'), '--limit', '2'],
    ]);
    expect(limited.code, limited.stderr).toBe(0);
    // image 106 (no filename) is not one of the first two: its skip is not counted (it was)
    expect(limited.summary.counts).toEqual({ samples: 2, evaluated: 2, skipped: 0 });
  });
});

describe('fiber-bench eval nlvr2', () => {
  it('writes identifier,True|False lines and their accuracy', async () => {
    const r = await evalRun([
      '--task',
      'nlvr2',
      '--checkpoint',
      assets.ckpt.nlvr2,
      '--data',
      join(samples, 'nlvr2'),
      '--split',
      'dev',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lines = readFileSync(r.summary.files.predictions, 'utf8').trim().split('\n');
    expect(lines.map((l) => l.split(',')[0])).toEqual(['dev-1-0-0', 'dev-1-0-1', 'dev-2-1-0']);
    for (const l of lines) expect(l).toMatch(/^dev-\d-\d-\d,(True|False)$/);
    const labels = new Map(
      readFileSync(join(samples, 'nlvr2/data/dev.json'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .map((o) => [o.identifier, o.label]),
    );
    const acc = lines.filter((l) => l.split(',')[1] === labels.get(l.split(',')[0])).length / lines.length;
    expect(r.rows.get('accuracy (dev.json)')).toBe((100 * acc).toFixed(2));
    expect(r.summary.skipped).toEqual({ 'malformed-record': 1, 'missing-image': 1 });
    // the line whose label is not a truth value is named by its identifier, as a read record is
    expect(r.summary.skippedSamples).toContainEqual(
      expect.objectContaining({ reason: 'malformed-record', id: 'dev-4-0-0' }),
    );
    // golden
    expect(lines).toEqual(['dev-1-0-0,True', 'dev-1-0-1,True', 'dev-2-1-0,True']);
    closeAll(
      [...partialValues(r).values()].flatMap((v) => v.logits),
      [-0.5443355, -0.4045454, -0.5057223, -0.3708684, -0.5927022, -0.551854],
    );
  });
});

describe('fiber-bench eval retrieval', () => {
  /** The matrices of a scores file (float32) and its text_to_image (int32). */
  const read = async (file: string): Promise<Record<string, Float32Array> & { text_to_image: Int32Array }> => {
    const f = await SafetensorsFile.open(file);
    try {
      const out: Record<string, Float32Array> = {};
      for (const k of f.keys())
        if (k !== 'text_to_image') out[k] = Float32Array.from((await f.readRaw(k)).data as ArrayLike<number>);
      return Object.assign(out, {
        text_to_image: Int32Array.from((await f.readRaw('text_to_image')).data as ArrayLike<number>),
      });
    } finally {
      await f.close();
    }
  };
  const recallRows = (r: Run) =>
    ['IR@1 (text -> image)', 'IR@5', 'IR@10', 'TR@1 (image -> text)', 'TR@5', 'TR@10'].map((k) => r.rows.get(k));
  let itm: Run;

  it('ITC: the similarity matrix and the recall eval-metrics computes from it', async () => {
    const r = await evalRun(['--task', 'retrieval', '--checkpoint', assets.ckpt.itc, '--data', join(samples, 'coco')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ITC: dual-encoder cosine similarity/);
    const m = await read(r.summary.files.scores);
    const ids = json(r.summary.files.ids);
    expect(ids.image_ids).toEqual([101, 102, 103]);
    expect(ids.text_ids).toHaveLength(9);
    expect([...m.text_to_image]).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2]);
    const rec = retrievalRecall({ rows: 3, cols: 9, data: m.similarity }, m.text_to_image);
    expect(recallRows(r)).toEqual(
      [rec.t2i['R@1'], rec.t2i['R@5'], rec.t2i['R@10'], rec.i2t['R@1'], rec.i2t['R@5'], rec.i2t['R@10']].map((v) =>
        v.toFixed(2),
      ),
    );
    // golden
    closeAll([...m.similarity.subarray(0, 6)], [0.1059171, 0.0937056, 0.0931887, 0.0820992, 0.0926939, 0.0885011]);
  });

  it('ITM exhaustive, and ITC top-K re-ranked by ITM equals it when K covers every candidate', async () => {
    itm = await evalRun(['--task', 'retrieval', '--checkpoint', assets.ckpt.itm, '--data', join(samples, 'coco')]);
    expect(itm.code, itm.stderr).toBe(0);
    expect(itm.stdout).toMatch(/ITM, exhaustive: every \(image, text\) pair/);
    const full = (await read(itm.summary.files.scores)).similarity;
    const rr = await evalRun([
      '--task',
      'retrieval',
      '--checkpoint',
      assets.ckpt.itc,
      '--itm-checkpoint',
      assets.ckpt.itm,
      '--itm-rerank',
      '9',
      '--data',
      join(samples, 'coco'),
    ]);
    expect(rr.code, rr.stderr).toBe(0);
    expect(rr.stdout).toMatch(/top 9 of each query re-ranked by ITM/);
    const m = await read(rr.summary.files.scores);
    close(Math.max(...full.map((v, i) => Math.abs(v - m.similarity_i2t[i]))), 0);
    close(Math.max(...full.map((v, i) => Math.abs(v - m.similarity_t2i[i]))), 0);
    expect(recallRows(rr)).toEqual(recallRows(itm));
    const i2t = retrievalRecall({ rows: 3, cols: 9, data: m.similarity_i2t }, m.text_to_image).i2t;
    const t2i = retrievalRecall({ rows: 3, cols: 9, data: m.similarity_t2i }, m.text_to_image).t2i;
    expect(rr.rows.get('TR@1 (image -> text)')).toBe(i2t['R@1'].toFixed(2));
    expect(rr.rows.get('IR@1 (text -> image)')).toBe(t2i['R@1'].toFixed(2));
    closeAll([...full.subarray(0, 6)], [0.0735582, 0.080502, 0.0389637, 0.0643584, 0.0795489, 0.0705306]); // golden
  });

  it('re-ranks only the top K: other candidates stay below, in ITC order', async () => {
    const rr = await evalRun(rerankArgs());
    expect(rr.code, rr.stderr).toBe(0);
    const m = await read(rr.summary.files.scores);
    const itc = await evalRun([
      '--task',
      'retrieval',
      '--checkpoint',
      assets.ckpt.pretrain,
      '--data',
      join(samples, 'coco'),
    ]);
    const s = (await read(itc.summary.files.scores)).similarity;
    for (let i = 0; i < 3; i++) {
      const row = (a: Float32Array) => Array.from(a.subarray(i * 9, i * 9 + 9));
      const top = row(s)
        .map((v, j) => [v, j])
        .sort((a, b) => b[0] - a[0] || a[1] - b[1])
        .map(([, j]) => j);
      const rer = row(m.similarity_i2t)
        .map((v, j) => [v, j])
        .sort((a, b) => b[0] - a[0] || a[1] - b[1])
        .map(([, j]) => j);
      expect(new Set(rer.slice(0, 2))).toEqual(new Set(top.slice(0, 2)));
      expect(rer.slice(2)).toEqual(top.slice(2));
    }
  });
});

describe('fiber-bench eval refcoco', () => {
  it('detects v3, writes {gt_box, pred_boxes} samples and their accuracy', async () => {
    const r = await evalRun(['--task', 'refcoco', '--checkpoint', assets.ckpt.fineV3, '--data', samples]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/fine-grained FIBER-tiny v3, detected from the checkpoint's keys/);
    const samplesFile = json(r.summary.files.results);
    expect(samplesFile.map((s: { image_id: number }) => s.image_id)).toEqual([0, 1, 2, 3]);
    expect(samplesFile[0].gt_box).toEqual([6, 10, 18, 18]);
    for (const s of samplesFile) expect(s.pred_boxes.length).toBeGreaterThan(0);
    const acc = recAccuracy(
      samplesFile.map((s: { gt_box: number[]; pred_boxes: number[][] }) => ({
        gtBox: s.gt_box,
        predBoxes: s.pred_boxes,
      })),
    );
    expect(r.rows.get('accuracy @ IoU 0.5 (refcoco val)')).toBe((100 * acc.accuracy).toFixed(2));
    // FIBER's RefExpEvaluator: precision@1, 5, 10 at GIoU >= 0.5 of the boxes best first
    const giou = recAccuracy(
      samplesFile.map((s: { gt_box: BoxXywh; pred_boxes: BoxXywh[] }) => ({
        gtBox: s.gt_box,
        predBoxes: s.pred_boxes,
      })),
      { overlap: 'giou', k: [1, 5, 10] },
    ).precisionAt;
    expect(r.summary.metrics.giou).toEqual({
      precision_at_1: giou[1],
      precision_at_5: giou[5],
      precision_at_10: giou[10],
    });
    expect(r.rows.get("P@1 @ GIoU 0.5 (FIBER's evaluator)")).toBe((100 * giou[1]).toFixed(2));
    expect(r.rows.get('P@10 @ GIoU 0.5')).toBe((100 * giou[10]).toFixed(2));
    expect(giou[1]).toBeLessThanOrEqual(acc.accuracy);
    expect(r.summary.skipped).toEqual({ 'degenerate-box': 1, 'corrupt-image': 1 });
    // golden: the best box of each expression
    const best = [
      [0, 0, 63.24706, 47.25],
      [5.971323, 0, 57.27574, 47.25],
      [0, 0, 55.125, 55.125],
      [0, 0, 55.125, 55.125],
    ];
    samplesFile.forEach((s: { pred_boxes: number[][] }, i: number) => closeAll(s.pred_boxes[0], best[i], 1e-3));
  });
});

describe('fiber-bench eval refcoco: one referred box per expression', () => {
  it('skips an expression with two annotations (it was scored against the last one while grounding the first)', async () => {
    const ann = join(work, 'refcoco-two-boxes.json');
    const data = JSON.parse(readFileSync(join(samples, 'mdetr_annotations/finetune_refcoco_val.json'), 'utf8'));
    data.annotations.push({ ...data.annotations[0], id: 999, bbox: [40, 30, 10, 10] });
    writeFileSync(ann, JSON.stringify(data));
    const r = await evalRun(['--task', 'refcoco', '--checkpoint', assets.ckpt.fineV3, '--data', samples, '--ann', ann]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.summary.skipped).toEqual({ 'degenerate-box': 1, 'corrupt-image': 1, 'malformed-record': 1 });
    expect(r.stderr).toMatch(/image 0: 2 annotations, where a referring expression refers to one box/);
    expect(json(r.summary.files.results).map((s: { image_id: number }) => s.image_id)).toEqual([1, 2, 3]);
  });
});

describe('fiber-bench eval flickr30k-entities', () => {
  it('writes MDETR predictions; recall as the evaluator computes it on the evaluated images', async () => {
    const r = await evalRun(['--task', 'flickr30k-entities', '--checkpoint', assets.ckpt.fineV2, '--data', samples]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/fine-grained FIBER-tiny v2/);
    const preds = json(r.summary.files.results);
    expect(preds.map((p: { image_id: string; sentence_id: number }) => `${p.image_id}_${p.sentence_id}`)).toEqual([
      '1001_0',
      '1001_1',
      '1004_0',
    ]);
    expect(preds.map((p: { boxes: unknown[] }) => p.boxes.length)).toEqual([2, 1, 1]);
    expect(readFileSync(r.summary.files.images, 'utf8')).toBe('1001\n1004\n');
    const read = folderReader(join(samples, 'flickr30k/flickr30k_entities'));
    const ev = new Flickr30kEntitiesEvaluator(
      (rel) => (rel === 'test.txt' ? readFileSync(r.summary.files.images, 'utf8') : read(rel)),
      'test',
    );
    const rec = ev.evaluate(preds);
    expect(r.rows.get('R@1 (all phrases)')).toBe((100 * rec['R@1'].all).toFixed(2));
    expect(r.rows.get('R@5')).toBe((100 * rec['R@5'].all).toFixed(2));
    // image 1002's other sentence is skipped with it: the evaluator scores whole images
    expect(r.summary.skipped).toEqual({ 'span-outside-text': 1, 'corrupt-image': 1, 'malformed-record': 1 });
    expect(r.summary.skippedSamples).toContainEqual({
      key: 's1002_0',
      reason: 'malformed-record',
      detail:
        'image 1002: sentence 1 with boxes not read from final_flickr_separateGT_test.json; the evaluator scores whole images',
    });
    expect(r.summary.counts).toEqual({ samples: 6, evaluated: 3, skipped: 3 }); // every sentence read is in one
    expect(r.stdout).toMatch(/recall over the 2 of 4 images/);
    // the official threshold (0.05): this random head scores every phrase about 0.01, so each
    // gets only the evaluator's dummy box
    expect(preds.flatMap((p: { boxes: number[][][] }) => p.boxes.map((b) => b))).toEqual(
      Array.from({ length: 4 }, () => [[0, 0, 0, 0]]), // 4 phrases, the dummy box alone
    );
  });

  it('ranks the boxes over the threshold (a head whose scores clear it)', async () => {
    const r = await evalRun(['--task', 'flickr30k-entities', '--checkpoint', assets.ckpt.detector, '--data', samples]);
    expect(r.code, r.stderr).toBe(0);
    const preds = json(r.summary.files.results);
    // golden: the best box of each phrase, and the dummy box last
    const best = [
      [
        [0, 0, 63.24706, 47.25],
        [0, 0, 63.24706, 47.25],
      ],
      [[0, 0, 63.24706, 47.25]],
      [[0, 0, 47.25, 63.24706]],
    ];
    expect(preds.map((p: { boxes: number[][][] }) => p.boxes.map((b) => b.length))).toEqual([[17, 16], [16], [15]]);
    for (const p of preds) for (const b of p.boxes) expect(b[b.length - 1]).toEqual([0, 0, 0, 0]);
    preds.forEach((p: { boxes: number[][][] }, i: number) =>
      p.boxes.forEach((b, j) => closeAll(b[0], best[i][j], 1e-3)),
    );
  });

  it('skips an image whose Annotations XML does not match its phrases before the model runs', async () => {
    const dir = join(work, 'flickr-trunc');
    for (const sub of ['flickr30k', 'mdetr_annotations'])
      cpSync(join(samples, sub), join(dir, sub), { recursive: true });
    const xml = join(dir, 'flickr30k/flickr30k_entities/Annotations/1001.xml');
    const text = readFileSync(xml, 'utf8');
    writeFileSync(xml, text.slice(0, text.indexOf('<object>'))); // cut before its first box
    const r = await evalRun(['--task', 'flickr30k-entities', '--checkpoint', assets.ckpt.fineV2, '--data', dir]);
    expect(r.code, r.stderr).toBe(0);
    for (const key of ['s1001_0', 's1001_1'])
      expect(r.summary.skippedSamples).toContainEqual({
        key,
        reason: 'malformed-record',
        detail:
          'image 1001: sentence 0 has 2 phrases in final_flickr_separateGT_test.json, 0 with boxes in Sentences/1001.txt and Annotations/1001.xml',
      });
    expect(readFileSync(r.summary.files.images, 'utf8')).toBe('1004\n');
    // images 1003 (whose file is corrupt) and 1004 went to the model, not 1001's two sentences
    expect(r.stderr).toMatch(/flickr30k-entities test: 2\/2 /);
  });

  it('--gt merged writes files of its own (the separate-GT run in the same --out kept its files)', async () => {
    const out = join(work, 'flickr-gt');
    const args = ['--task', 'flickr30k-entities', '--checkpoint', assets.ckpt.fineV2, '--data', samples];
    const separate = await evalRun(args, { out });
    expect(separate.code, separate.stderr).toBe(0);
    // the sample folder has the separate-GT file only: read as merged, its boxes are merged per phrase
    const ann = join(samples, 'mdetr_annotations/final_flickr_separateGT_test.json');
    const merged = await evalRun([...args, '--gt', 'merged', '--ann', ann], { out });
    expect(merged.code, merged.stderr).toBe(0);
    expect(
      readdirSync(out)
        .filter((f) => f.endsWith('_results.json'))
        .sort(),
    ).toEqual(['flickr30k_entities_test_merged_results.json', 'flickr30k_entities_test_results.json']);
  });

  it('--limit counts sentences, rounded up to whole images', async () => {
    const r = await evalRun([
      '--task',
      'flickr30k-entities',
      '--checkpoint',
      assets.ckpt.fineV2,
      '--data',
      samples,
      '--limit',
      '1',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const preds = json(r.summary.files.results);
    expect(preds.map((p: { image_id: string; sentence_id: number }) => `${p.image_id}_${p.sentence_id}`)).toEqual([
      '1001_0',
      '1001_1',
    ]);
    // the reader's skips of images the limit leaves out are not counted (they were)
    expect(r.summary.counts).toEqual({ samples: 2, evaluated: 2, skipped: 0 });
    // the same with the file's entries in another order (the reader reads them in id order)
    const ann = join(work, 'flickr-reversed.json');
    const data = JSON.parse(readFileSync(join(samples, 'mdetr_annotations/final_flickr_separateGT_test.json'), 'utf8'));
    data.images.reverse();
    writeFileSync(ann, JSON.stringify(data));
    const reversed = await evalRun([
      ...['--task', 'flickr30k-entities', '--checkpoint', assets.ckpt.fineV2, '--data', samples],
      ...['--limit', '1', '--ann', ann],
    ]);
    expect(reversed.code, reversed.stderr).toBe(0);
    expect(reversed.summary.counts).toEqual({ samples: 2, evaluated: 2, skipped: 0 });
  });
});

describe('fiber-bench eval coco-det', () => {
  it('writes COCO detection results; COCOeval on them gives the printed numbers', async () => {
    const r = await evalRun(['--task', 'coco-det', '--checkpoint', assets.ckpt.detector, '--data', samples]);
    expect(r.code, r.stderr).toBe(0);
    const dets = json(r.summary.files.results);
    expect(dets.length).toBeGreaterThan(0);
    for (const d of dets) {
      expect(Object.keys(d)).toEqual(['image_id', 'category_id', 'bbox', 'score']);
      expect([201, 202, 204]).toContain(d.image_id);
      expect([1, 3, 18]).toContain(d.category_id);
      expect(d.bbox).toHaveLength(4);
    }
    const gt: CocoGroundTruth = json(join(samples, 'coco/annotations/instances_val2017.json'));
    const stats = cocoEvaluate(gt, dets, { params: { imgIds: [201, 202, 204] } }).stats;
    expect(r.summary.metrics).toEqual({ ...stats });
    expect(r.rows.get('AP')).toBe((100 * stats.AP).toFixed(2));
    expect(r.summary.skipped).toEqual({ 'corrupt-image': 1 });
    // golden
    expect(dets).toHaveLength(113);
    closeAll(
      [...dets[0].bbox, dets[0].score, ...dets[1].bbox, dets[1].score],
      [0, 0, 64.24706, 48.25, 0.6556299, 26.97018, 20.97421, 37.27688, 27.27579, 0.6542314],
      1e-3,
    );
    close(stats.AP, 0.0004155971152670822, 1e-9);
    close(stats.AP50, 0.004155971152670822, 1e-9);
    close(stats.AR100, 0.01111111111111111, 1e-9);
  });
});

describe('fiber-bench eval error paths', () => {
  const cases: [string, () => string[], RegExp][] = [
    [
      'a missing data file',
      () => ['--task', 'vqa', '--checkpoint', assets.ckpt.vqa, '--data', join(samples, 'coco')],
      /^VQA questions: .*v2_OpenEnded_mscoco_val2014_questions\.json does not exist/,
    ],
    [
      'a data file of the wrong shape',
      () => [
        '--task',
        'vqa',
        '--checkpoint',
        assets.ckpt.vqa,
        '--data',
        join(samples, 'vqa'),
        '--ann',
        join(samples, 'vqa/v2_mscoco_val2014_annotations.json'),
      ],
      /^VQA questions: .*v2_mscoco_val2014_annotations\.json: .*expected a json object with an array "questions"$/,
    ],
    [
      'a repeated question id (a plain Error of the reader was exit 1)',
      () => {
        const dir = join(work, 'vqa-repeated-id');
        cpSync(join(samples, 'vqa'), dir, { recursive: true });
        const file = join(dir, 'v2_OpenEnded_mscoco_val2014_questions.json');
        const q = JSON.parse(readFileSync(file, 'utf8'));
        q.questions[1].question_id = q.questions[0].question_id;
        writeFileSync(file, JSON.stringify(q));
        return ['--task', 'vqa', '--checkpoint', assets.ckpt.vqa, '--data', dir, '--images', join(samples, 'coco')];
      },
      /questions\[1\] has the question_id \d+ of questions\[0\]; ids must be unique$/,
    ],
    [
      'a COCO category whose name is empty after clean_name (it skipped every image)',
      () => {
        const ann = join(work, 'coco-empty-name.json');
        const gt = JSON.parse(readFileSync(join(samples, 'coco/annotations/instances_val2017.json'), 'utf8'));
        gt.categories[1].name = '(x)';
        writeFileSync(ann, JSON.stringify(gt));
        return ['--task', 'coco-det', '--checkpoint', assets.ckpt.detector, '--data', samples, '--ann', ann];
      },
      /^COCO val2017 instances: .*coco-empty-name\.json: category 3: the class name "\(x\)" is empty after clean_name$/,
    ],
    [
      'a Flickr30k Entities file whose "images" is not a list (it was iterated before the reader checked it)',
      () => {
        const ann = join(work, 'flickr-images-number.json');
        writeFileSync(ann, JSON.stringify({ images: 5, annotations: [], categories: [] }));
        return ['--task', 'flickr30k-entities', '--checkpoint', assets.ckpt.fineV2, '--data', samples, '--ann', ann];
      },
      /^Flickr30k Entities annotations: .*flickr-images-number\.json: .*"images"/,
    ],
    [
      'two Karpathy images of one file (their references were pooled under the first id)',
      () => {
        const dir = join(work, 'karpathy-same-file');
        cpSync(join(samples, 'coco'), dir, { recursive: true });
        const file = join(dir, 'karpathy', 'dataset_coco.json');
        const data = JSON.parse(readFileSync(file, 'utf8'));
        const test = data.images.filter((i: { split: string }) => i.split === 'test');
        test[1].filename = test[0].filename;
        test[1].filepath = test[0].filepath;
        writeFileSync(file, JSON.stringify(data));
        return ['--task', 'caption', '--checkpoint', assets.ckpt.caption, '--data', dir];
      },
      /^Karpathy captions: .*dataset_coco\.json: images \d+ and \d+ are the same file /,
    ],
    [
      'a missing checkpoint',
      () => [
        '--task',
        'nlvr2',
        '--checkpoint',
        join(work, 'nope.ckpt'),
        '--data',
        join(samples, 'nlvr2'),
        '--split',
        'dev',
      ],
      /^checkpoint: .*nope\.ckpt does not exist$/,
    ],
    [
      'a fine-grained checkpoint for a coarse task',
      () => ['--task', 'caption', '--checkpoint', assets.ckpt.fineV2, '--data', join(samples, 'coco')],
      /a fine-grained \(detection \/ grounding\) checkpoint; --task caption needs the captioning checkpoint/,
    ],
    [
      'a coarse checkpoint without the task head',
      () => ['--task', 'nlvr2', '--checkpoint', assets.ckpt.vqa, '--data', join(samples, 'nlvr2'), '--split', 'dev'],
      /a coarse checkpoint without the NLVR2 head \(heads: vqa \(7 answers\)\)/,
    ],
    [
      'a coarse checkpoint for a fine-grained task',
      () => ['--task', 'refcoco', '--checkpoint', assets.ckpt.itc, '--data', samples],
      /a coarse-grained checkpoint; --task refcoco needs a fine-grained checkpoint/,
    ],
    [
      'a file that is no checkpoint',
      () => [
        '--task',
        'coco-det',
        '--checkpoint',
        join(samples, 'coco/annotations/instances_val2017.json'),
        '--data',
        samples,
      ],
      /is neither a torch\.save checkpoint/,
    ],
    [
      '--itm-rerank without an ITM head',
      () => [
        '--task',
        'retrieval',
        '--checkpoint',
        assets.ckpt.itc,
        '--itm-rerank',
        '2',
        '--data',
        join(samples, 'coco'),
      ],
      /no ITM head .* pass --itm-checkpoint/,
    ],
    [
      'an unknown task',
      () => ['--task', 'gqa', '--checkpoint', 'x', '--data', 'y'],
      /^--task: "gqa" is not one of vqa, caption/,
    ],
    ['an unknown option', () => ['--task', 'vqa', '--frobnicate'], /Unknown option '--frobnicate'/],
    [
      'a limit in hexadecimal',
      () => ['--task', 'vqa', '--checkpoint', 'x', '--data', 'y', '--limit', '0x10'],
      /^--limit: expected an integer >= 1, got "0x10"/,
    ],
  ];
  it.each(cases)('%s: one line, exit code 2', async (_, args, message) => {
    const r = await evalRun(args());
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')).toHaveLength(2);
    expect(r.stderr.trim().replace(/^fiber-bench eval: /, '')).toMatch(message);
  });

  it('an --out under a file: one line naming it, exit code 2, before any sample runs', async () => {
    const out = join(assets.ckpt.nlvr2, 'results');
    const r = await evalRun(
      ['--task', 'nlvr2', '--checkpoint', assets.ckpt.nlvr2, '--data', join(samples, 'nlvr2'), '--split', 'dev'],
      { out },
    );
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`fiber-bench eval: --out ${out}: ${assets.ckpt.nlvr2} is a file, not a folder\n`);
  });

  it('needs a tokenizer and says why', async () => {
    const r = await evalRun(
      ['--task', 'nlvr2', '--checkpoint', assets.ckpt.nlvr2, '--data', join(samples, 'nlvr2'), '--split', 'dev'],
      { tokenizer: false },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--tokenizer DIR is required: the roberta-base tokenizer .* cannot download it/);
  });

  it.each([
    [
      'nlvr2',
      () => ['--task', 'nlvr2', '--checkpoint', assets.ckpt.nlvr2, '--data', join(samples, 'nlvr2'), '--split', 'dev'],
    ],
    ['refcoco', () => ['--task', 'refcoco', '--checkpoint', assets.ckpt.fineV3, '--data', samples, '--limit', '2']],
  ])('%s: a run leaves no tensor behind', async (_, args) => {
    await evalRun(args());
    const before = tf.memory().numTensors;
    await evalRun(args());
    expect(tf.memory().numTensors).toBe(before);
  });
});

/**
 * The NLVR2 test checkpoint as safetensors bytes, whose tensor bytes can be changed without breaking
 * the file, with its first float32 tensor: name, size and the offset of its data.
 */
async function nlvr2Safetensors(): Promise<{ bytes: Buffer; name: string; size: number; firstF32: number }> {
  const torch = await TorchCheckpoint.open(assets.ckpt.nlvr2);
  const state = await torch.readStateDict();
  await torch.close();
  const bytes = Buffer.from(serializeSafetensors(state));
  tf.dispose([...state.values()]);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  const [name, f32] = Object.entries<{ dtype: string; shape: number[]; data_offsets: number[] }>(header).find(
    ([n, t]) => n !== '__metadata__' && t.dtype === 'F32',
  )!;
  return {
    bytes,
    name,
    size: f32.shape.reduce((a, b) => a * b, 1),
    firstF32: 8 + headerLength + f32.data_offsets[0],
  };
}

describe('fiber-bench eval --resume', () => {
  const spawnEval = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(
      process.execPath,
      [cli, 'eval', ...args, '--tokenizer', assets.tokenizer, '--backend', backend, '--decoder', 'js'],
      { encoding: 'utf8', env: { ...process.env, ...env } },
    );

  it('continues a killed run and gives the results of an uninterrupted one', async () => {
    const args = [
      '--task',
      'caption',
      '--checkpoint',
      assets.ckpt.caption,
      '--data',
      join(samples, 'coco'),
      '--batch',
      '1',
    ];
    const whole = await evalRun(args);
    expect(whole.code, whole.stderr).toBe(0);
    const out = join(work, 'killed');
    const killed = spawnEval([...args, '--out', out], { FIBER_BENCH_EVAL_KILL_AFTER: '2' });
    expect(killed.signal).toBe('SIGKILL');
    const partial = join(out, 'caption_test.partial.jsonl');
    expect(readFileSync(partial, 'utf8').trim().split('\n')).toHaveLength(3); // header + 2 items
    appendFileSync(partial, '{"key":"img103","val'); // a line cut short by the kill
    const resumed = spawnEval([...args, '--out', out, '--resume']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/caption test: 2 of 5 done in an earlier run \(--resume\)/);
    expect(readFileSync(join(out, 'captions_karpathy_test_fiber_results.json'), 'utf8')).toBe(
      readFileSync(whole.summary.files.results, 'utf8'),
    );
    const metrics = json(join(out, 'caption_test_metrics.json'));
    expect(metrics.metrics).toEqual(whole.summary.metrics);
    expect(metrics.counts).toEqual(whole.summary.counts);
    expect(resumed.stdout).toContain('| CIDEr_D |');
  });

  it('coco-det reports a truncated prompt after a resume too (it depends on the class names, not the images)', async () => {
    const ann = join(work, 'long-names.json');
    const gt = json(join(samples, 'coco/annotations/instances_val2017.json'));
    gt.categories[2].name = `${'very '.repeat(300)}light`; // past the query length: the class is cut
    writeFileSync(ann, JSON.stringify(gt));
    const args = ['--task', 'coco-det', '--checkpoint', assets.ckpt.detector, '--data', samples, '--ann', ann];
    const out = join(work, 'det-killed');
    // killed after its last image, before the results: the resumed run runs no image through the
    // model (it reads the corrupt one again, and skips it again)
    const killed = spawnEval([...args, '--out', out], { FIBER_BENCH_EVAL_KILL_AFTER: '4' });
    expect(killed.signal).toBe('SIGKILL');
    const resumed = spawnEval([...args, '--out', out, '--resume']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/coco-det val2017: 3 of 4 done in an earlier run \(--resume\)/);
    const notes = json(join(out, 'coco_det_val2017_metrics.json')).notes as string[];
    expect(notes.some((n) => n.startsWith('prompt truncated: '))).toBe(true);
    const whole = await evalRun(args);
    expect(whole.code, whole.stderr).toBe(0);
    expect(notes).toEqual(whole.summary.notes);
  });

  it('reads again on --resume the images it could not read (a run goes on after its files were put right)', async () => {
    const images = join(work, 'images-fixed-later');
    cpSync(join(samples, 'coco'), images, { recursive: true });
    const args = ['--task', 'vqa', '--checkpoint', assets.ckpt.vqa, '--data', join(samples, 'vqa'), '--images', images];
    const out = join(work, 'images-fixed-later-out');
    const first = await evalRun(args, { out });
    expect(first.code, first.stderr).toBe(0);
    expect(first.summary.skipped).toMatchObject({
      'corrupt-image': expect.any(Number),
      'missing-image': expect.any(Number),
    });
    // put every image right: a copy of a good one under each name the run could not read
    const val = join(images, 'val2014');
    for (const id of [104, 105])
      cpSync(join(val, 'COCO_val2014_000000000101.jpg'), join(val, `COCO_val2014_${String(id).padStart(12, '0')}.jpg`));
    const resumed = await evalRun([...args, '--resume'], { out });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.summary.skipped).toEqual({});
    const fresh = await evalRun(args);
    expect(resumed.summary.metrics).toEqual(fresh.summary.metrics);
    expect(resumed.summary.counts).toEqual(fresh.summary.counts);
  });

  it('ITC top-K re-ranking resumed after missing images were put right re-scores the images whose candidates changed', async () => {
    const data = join(work, 'rerank-fixed-later');
    cpSync(join(samples, 'coco'), data, { recursive: true });
    const args = rerankArgs(data);
    const out = join(work, 'rerank-fixed-later-out');
    const first = await evalRun(args, { out });
    expect(first.code, first.stderr).toBe(0);
    expect(first.summary.metrics.images).toBe(3); // 104 is corrupt, 105 missing
    const val = join(data, 'val2014');
    for (const id of [104, 105])
      cpSync(join(val, 'COCO_val2014_000000000101.jpg'), join(val, `COCO_val2014_${String(id).padStart(12, '0')}.jpg`));
    // every image's ITC top 2 may change with two more images: rows over other texts are not reused
    const resumed = await evalRun([...args, '--resume'], { out });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.summary.metrics.images).toBe(5);
    const fresh = await evalRun(args);
    expect(resumed.summary.metrics).toEqual(fresh.summary.metrics);
  });

  it('refuses partial results of another run', async () => {
    const out = join(work, 'other');
    const first = await evalRun(
      ['--task', 'nlvr2', '--checkpoint', assets.ckpt.nlvr2, '--data', join(samples, 'nlvr2'), '--split', 'dev'],
      { out },
    );
    expect(first.code).toBe(0);
    const other = await evalRun(
      [
        '--task',
        'nlvr2',
        '--checkpoint',
        assets.ckpt.nlvr2,
        '--data',
        join(samples, 'nlvr2'),
        '--split',
        'dev',
        '--image-size',
        '96',
        '--resume',
      ],
      { out },
    );
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(
      /partial results come from another run \(imageSize: 64 then, 96 now\); rerun without --resume/,
    );
  });

  it('refuses partial results made from other images, another tokenizer, or another checkpoint of the same size and time', async () => {
    const base = join(work, 'stamps');
    const data = join(samples, 'nlvr2');
    const images = join(base, 'nlvr2-copy');
    cpSync(data, images, { recursive: true });
    const tok = join(base, 'tokenizer');
    cpSync(assets.tokenizer, tok, { recursive: true });
    const ckpt = join(base, 'nlvr2.safetensors');
    const { bytes, firstF32 } = await nlvr2Safetensors();
    writeFileSync(ckpt, bytes);
    const args = ['--task', 'nlvr2', '--checkpoint', ckpt, '--data', data, '--split', 'dev', '--tokenizer', tok];
    const out = join(base, 'out');
    const first = await evalRun(args, { out, tokenizer: false });
    expect(first.code, first.stderr).toBe(0);
    const resume = (extra: string[] = []) => evalRun([...args, ...extra, '--resume'], { out, tokenizer: false });
    const same = await resume();
    expect(same.code, same.stderr).toBe(0);
    expect(same.stderr).toMatch(/done in an earlier run \(--resume\)/);

    // another decoder: sharp and the JS decoder differ on some files
    const otherDecoder = await evalRun([...args, '--resume', '--decoder', 'sharp'], { out, tokenizer: false });
    expect(otherDecoder.code).toBe(2);
    expect(otherDecoder.stderr).toMatch(/another run \(decoder: "js" then, "sharp" now\)/);

    const otherImages = await resume(['--images', images]);
    expect(otherImages.code).toBe(2);
    expect(otherImages.stderr).toMatch(/another run \(images: ".*nlvr2" then, ".*nlvr2-copy" now\)/);

    // the sign of one float32 weight flipped: another valid checkpoint of the same size and time
    const { atime, mtime, mtimeMs } = statSync(ckpt);
    bytes[firstF32 + 3] ^= 0x80;
    writeFileSync(ckpt, bytes);
    utimesSync(ckpt, atime, mtime);
    expect(Math.round(statSync(ckpt).mtimeMs)).toBe(Math.round(mtimeMs)); // as the stamp reads it
    const otherCheckpoint = await resume();
    expect(otherCheckpoint.code).toBe(2);
    expect(otherCheckpoint.stderr).toMatch(/another run \(checkpoint: .* then, .* now\); rerun without --resume/);

    const vocab = join(tok, 'vocab.json');
    writeFileSync(vocab, JSON.stringify(JSON.parse(readFileSync(vocab, 'utf8')), null, 1));
    const otherTokenizer = await resume();
    expect(otherTokenizer.code).toBe(2);
    expect(otherTokenizer.stderr).toMatch(/tokenizer: \[.*vocab\.json.* then, /);
  });

  it('refuses a checkpoint whose weights hold NaN, naming the tensor', async () => {
    const ckpt = join(work, 'nan-nlvr2.safetensors');
    const { bytes, firstF32, name, size } = await nlvr2Safetensors();
    bytes.writeFloatLE(Number.NaN, firstF32);
    writeFileSync(ckpt, bytes);
    const r = await evalRun([
      '--task',
      'nlvr2',
      '--checkpoint',
      ckpt,
      '--data',
      join(samples, 'nlvr2'),
      '--split',
      'dev',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `${ckpt}: 1 tensor(s) hold NaN or Infinity (${name}: 1 of ${size}); the checkpoint is broken`,
    );
  });

  it('names the partial results file when a stored line or value cannot be read back', async () => {
    const out = join(work, 'stored');
    const args = [
      '--task',
      'nlvr2',
      '--checkpoint',
      assets.ckpt.nlvr2,
      '--data',
      join(samples, 'nlvr2'),
      '--split',
      'dev',
    ];
    expect((await evalRun(args, { out })).code).toBe(0);
    const partial = join(out, readdirSync(out).find((f) => f.endsWith('.partial.jsonl'))!);
    const lines = readFileSync(partial, 'utf8').trim().split('\n');
    const edit = (line: Record<string, unknown>) =>
      writeFileSync(partial, `${[lines[0], JSON.stringify(line), ...lines.slice(2)].join('\n')}\n`);
    const key = JSON.parse(lines[1]).key;

    edit({ key, value: 'garbage' });
    const badValue = await evalRun([...args, '--resume'], { out });
    expect(badValue.code).toBe(2);
    expect(badValue.stderr).toContain(`${partial}: partial result ${key}: `);
    expect(badValue.stderr).toMatch(/; rerun without --resume/);

    // valid JSON of the right types, but not a value the stage writes: refused too (it was counted)
    edit({ key, value: { prediction: 7, logits: [0, 1] } });
    const badPrediction = await evalRun([...args, '--resume'], { out });
    expect(badPrediction.code).toBe(2);
    expect(badPrediction.stderr).toContain(`${partial}: partial result ${key}: prediction 7 is not 0 or 1`);

    edit({ key, skip: { reason: 'bogus-reason', detail: 'made up' } });
    const badSkip = await evalRun([...args, '--resume'], { out });
    expect(badSkip.code).toBe(2);
    expect(badSkip.stderr).toContain(`${partial}: line 2 is not a result line; rerun without --resume`);
  });

  it('retrieval with ITM: refuses to resume over another gallery (--limit), and checks stored rows against it', async () => {
    const out = join(work, 'gallery');
    const itm = ['--task', 'retrieval', '--checkpoint', assets.ckpt.itm, '--data', join(samples, 'coco')];
    const first = await evalRun([...itm, '--limit', '2'], { out });
    expect(first.code, first.stderr).toBe(0);
    // the rows of 2 images each hold 6 ITM scores: a resume over 3 images (9 texts) must not reuse them
    const wider = await evalRun([...itm, '--limit', '3', '--resume'], { out });
    expect(wider.code).toBe(2);
    expect(wider.stderr).toMatch(
      /another run \(gallery: "2 images, 6 texts, sha256 \w+" then, "3 images, 9 texts, sha256 \w+" now\)/,
    );
    const same = await evalRun([...itm, '--limit', '2', '--resume'], { out });
    expect(same.code, same.stderr).toBe(0);
    expect(same.rows).toEqual(first.rows);

    const partial = join(out, 'retrieval_coco_test_itm.partial.jsonl');
    const lines = readFileSync(partial, 'utf8').trim().split('\n');
    const row = JSON.parse(lines[1]);
    const f32 = Buffer.from(row.value.f32, 'base64');
    row.value.f32 = f32.subarray(0, 4 * 5).toString('base64'); // 5 scores where the gallery has 6 texts
    writeFileSync(partial, `${[lines[0], JSON.stringify(row), ...lines.slice(2)].join('\n')}\n`);
    const short = await evalRun([...itm, '--limit', '2', '--resume'], { out });
    expect(short.code).toBe(2);
    expect(short.stderr).toContain(`${partial}: partial result ${row.key}: 5 ITM scores where the gallery has 6 texts`);

    // re-ranking: a stored row over other candidates than the ITC top K is refused, not mixed in
    const rrOut = join(work, 'gallery-rerank');
    const rr = rerankArgs();
    expect((await evalRun(rr, { out: rrOut })).code).toBe(0);
    const rrPartial = join(rrOut, 'retrieval_coco_test_itc+itm2.partial.jsonl');
    const rrLines = readFileSync(rrPartial, 'utf8').trim().split('\n');
    const at = rrLines.findIndex((l) => l.startsWith('{"key":"k'));
    const stored = JSON.parse(rrLines[at]);
    expect(stored.value.texts.length).toBeGreaterThanOrEqual(2); // the image's own top 2 at least
    stored.value.texts = [...stored.value.texts].reverse();
    rrLines[at] = JSON.stringify(stored);
    writeFileSync(rrPartial, `${rrLines.join('\n')}\n`);
    const mixed = await evalRun([...rr, '--resume'], { out: rrOut });
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toMatch(/is over other texts than this run's ITC top 2; rerun without --resume/);
  });

  it('refuses an id the data file repeats before running the model (results are kept by id)', async () => {
    const dir = join(work, 'nlvr2-dup');
    cpSync(join(samples, 'nlvr2'), dir, { recursive: true });
    const dev = join(dir, 'data', 'dev.json');
    const lines = readFileSync(dev, 'utf8').trim().split('\n');
    const second = JSON.parse(lines[1]);
    second.identifier = JSON.parse(lines[0]).identifier;
    writeFileSync(dev, `${[lines[0], JSON.stringify(second), ...lines.slice(2)].join('\n')}\n`);
    const r = await evalRun(['--task', 'nlvr2', '--checkpoint', assets.ckpt.nlvr2, '--data', dir, '--split', 'dev']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^fiber-bench eval: nlvr2 dev: the id dev-1-0-0 comes twice \(items 1 and 2\); ids in the data file must be unique$/m,
    );
    expect(r.stderr).not.toMatch(/\d+\/\d+ \(/); // no progress line: nothing was evaluated
  });

  it('an output file that cannot be written is exit 2 naming it', async () => {
    const args = [
      '--task',
      'nlvr2',
      '--checkpoint',
      assets.ckpt.nlvr2,
      '--data',
      join(samples, 'nlvr2'),
      '--split',
      'dev',
    ];
    const ok = await evalRun(args, { out: join(work, 'writes-ok') });
    expect(ok.code, ok.stderr).toBe(0);
    const partialName = basename(ok.summary.files.partial);
    const metricsName = basename(ok.summary.files.metrics);

    const out = join(work, 'writes-partial');
    mkdirSync(join(out, partialName), { recursive: true });
    const fresh = await evalRun(args, { out });
    expect(fresh.code).toBe(2);
    expect(fresh.stderr).toContain(
      `fiber-bench eval: ${join(out, partialName)}: cannot write the partial results (it is a folder)\n`,
    );
    const resumed = await evalRun([...args, '--resume'], { out });
    expect(resumed.code).toBe(2);
    expect(resumed.stderr).toContain(`${join(out, partialName)}: not a partial results file (a folder)`);

    const late = join(work, 'writes-metrics');
    mkdirSync(join(late, metricsName), { recursive: true });
    const r = await evalRun(args, { out: late });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`fiber-bench eval: ${join(late, metricsName)}: cannot write (EISDIR`);
  });

  it('the CLI answers a bad input with exit code 2 and one line', () => {
    const r = spawnEval(['--task', 'coco-det', '--checkpoint', assets.ckpt.vqa, '--data', samples]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /^fiber-bench eval: .*tiny_vqa\.ckpt: a coarse-grained checkpoint; --task coco-det needs a fine-grained/,
    );
    expect(r.stdout).toBe('');
  });
});

// `fiber-bench eval` options: parsed, checked and typed; any problem is one EvalInputError line.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { BackendName } from '@fiber-vl/tensor-core';
import { fail } from './errors.js';
import { parseIntOption } from '../int-option.js';
import { oneLine } from '../one-line.js';

export const EVAL_TASKS = [
  'vqa',
  'caption',
  'retrieval',
  'nlvr2',
  'refcoco',
  'flickr30k-entities',
  'coco-det',
] as const;
export type EvalTask = (typeof EVAL_TASKS)[number];

export const EVAL_USAGE = `usage: fiber-bench eval --task TASK --checkpoint FILE --data DIR --tokenizer DIR [options]

Evaluates a FIBER checkpoint (official .ckpt / .pth, or safetensors) on a benchmark in its public
layout, writes the official result files and a metrics JSON to --out, and prints a Markdown summary.

tasks (data layout under --data; files can be named with the options below):
  vqa                 VQAv2: v2_OpenEnded_mscoco_<split>_questions.json, v2_mscoco_<split>_annotations.json
                      (val only), images <subtype>/COCO_<subtype>_<id>.jpg (--images); answer list from
                      --answers FILE or v2_mscoco_{train,val}2014_annotations.json (ViLT's rule). split: val2014
  caption             COCO Karpathy: karpathy/dataset_coco.json + val2014/ ... ; beam search. split: test
  retrieval           COCO / Flickr30k Karpathy (--dataset coco|f30k): karpathy/dataset_{coco,flickr30k}.json,
                      images under DIR (f30k: flickr30k-images/). --mode itc|itm, --itm-rerank K. split: test
  nlvr2               NLVR2: data/<split>.json, images <split>/<pair>-img{0,1}.png. split: test1 (test-P) or dev
  refcoco             GLIP layout: mdetr_annotations/finetune_<dataset>_<split>.json, refcoco/train2014/
                      (--dataset refcoco|refcoco+|refcocog). split: val
  flickr30k-entities  GLIP layout: mdetr_annotations/final_flickr_separateGT_<split>.json,
                      flickr30k/flickr30k_images/<split>/, flickr30k/flickr30k_entities/. split: test
  coco-det            GLIP layout: coco/annotations/instances_<split>.json, coco/<split>/. split: val2017

options:
  --task TASK            one of ${EVAL_TASKS.join(', ')}
  --checkpoint FILE      .ckpt / .pth / .safetensors; its kind, size, heads and (fine-grained)
                         v2 / v3 are read from its keys
  --data DIR             the dataset root in its public layout
  --tokenizer DIR        roberta-base vocab.json + merges.txt, or tokenizer.json (not in checkpoints)
  --split NAME           the split to evaluate (defaults above)
  --limit N              only the first N samples: questions, images (caption, retrieval, coco-det),
                         statements, expressions, or sentences (flickr30k-entities: rounded up to whole images)
  --out DIR              result files, metrics JSON and partial results (default ./eval-results)
  --resume               continue from the partial results of an interrupted run with the same settings
  --batch N              samples per forward pass (coarse tasks; default 8); fine-grained tasks run one image at a time
  --backend NAME         webgpu, wasm, cpu or auto (default auto); --threads N: wasm threads (default
                         FIBER_WASM_THREADS, else every core)
  --json                 print only the metrics JSON on stdout
  --images DIR           image root (default: DIR, or the layout's image folder)
  --ann FILE             the annotation / question / caption file (overrides the layout's name)
  --annotations FILE     vqa: the split's annotations (for the accuracy)
  --answers FILE         vqa: answer list in label order (JSON list, or {"answer": label} as ViLT's ans2label)
  --answer-min-count N   vqa: ViLT's count threshold when the list is built from annotations (default 9)
  --dataset NAME         retrieval: coco or f30k; refcoco: refcoco, refcoco+ or refcocog
  --mode itc|itm         retrieval: dual-encoder ITC (default when the checkpoint has it) or exhaustive ITM
  --itm-rerank K         retrieval: re-rank the ITC top K of each query with ITM
  --itm-checkpoint FILE  retrieval: the ITM checkpoint for --itm-rerank (default: --checkpoint)
  --image-size N         coarse: image side (default: the task's official 384 / 576 for FIBER-B)
  --max-text-len N       coarse: text length (default 50)
  --beam N               caption: beam size (default 5)
  --min-size N, --max-size N   fine-grained: image resize (default 800 / 1333 for FIBER-B)
  --gt separate|merged   flickr30k-entities: MDETR's ground-truth protocol (default separate)
  --entities DIR         flickr30k-entities: the Flickr30k Entities folder (test.txt, Sentences/, Annotations/)
  --chunk N              coco-det: classes per prompt (default: all in one prompt)
  --decoder auto|sharp|js   image decoder (default auto: sharp when it loads)
`;

export interface EvalOptions {
  task: EvalTask;
  checkpoint: string;
  data: string;
  tokenizer?: string;
  split?: string;
  limit?: number;
  out: string;
  resume: boolean;
  batch: number;
  backend: BackendName | 'auto';
  threads?: number;
  json: boolean;
  images?: string;
  ann?: string;
  annotations?: string;
  answers?: string;
  answerMinCount: number;
  dataset?: string;
  mode?: 'itc' | 'itm';
  itmRerank?: number;
  itmCheckpoint?: string;
  imageSize?: number;
  maxTextLen?: number;
  beam: number;
  minSize?: number;
  maxSize?: number;
  gt: 'separate' | 'merged';
  entities?: string;
  chunk?: number;
  decoder: 'auto' | 'sharp' | 'js';
}

const int = (name: string, v: string | undefined, min = 1, max = Number.MAX_SAFE_INTEGER): number | undefined => {
  if (v === undefined) return undefined;
  const n = parseIntOption(v, min);
  if (n === undefined || n > max)
    fail(
      `--${name}: expected an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`}, got "${v}"`,
    );
  return n;
};

/** A split names files in --out (`<task>_<split>...`): letters, digits and `_ . + -`, never a path. */
function splitName(v: string | undefined): string | undefined {
  if (v !== undefined && (!/^[A-Za-z0-9_.+-]+$/.test(v) || /^\.+$/.test(v)))
    fail(`--split: "${v}" is not a split name (letters, digits, _ . + -)`);
  return v;
}

/** Image sides past this allocate gigabytes before anything fails (FIBER reads 384-1333 px). */
const MAX_SIDE = 8192;

const oneOf = <T extends string>(name: string, v: string | undefined, allowed: readonly T[]): T | undefined => {
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T)) fail(`--${name}: "${v}" is not one of ${allowed.join(', ')}`);
  return v as T;
};

/** Parses `fiber-bench eval` arguments; returns undefined for --help. */
export function parseEvalArgs(argv: string[]): EvalOptions | undefined {
  const s = { type: 'string' } as const;
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        task: s,
        checkpoint: s,
        data: s,
        tokenizer: s,
        split: s,
        limit: s,
        out: s,
        batch: s,
        backend: s,
        threads: s,
        images: s,
        ann: s,
        annotations: s,
        answers: s,
        'answer-min-count': s,
        dataset: s,
        mode: s,
        'itm-rerank': s,
        'itm-checkpoint': s,
        'image-size': s,
        'max-text-len': s,
        beam: s,
        'min-size': s,
        'max-size': s,
        gt: s,
        entities: s,
        chunk: s,
        decoder: s,
        resume: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    return fail(`${oneLine((e as Error).message)} (see fiber-bench eval --help)`);
  }
  if (values.help) return undefined;
  const task = oneOf('task', values.task, EVAL_TASKS);
  if (!task) fail(`--task is required (${EVAL_TASKS.join(', ')})`);
  if (!values.checkpoint) fail('--checkpoint FILE is required');
  if (!values.data) fail('--data DIR is required (the dataset root in its public layout)');
  const path = (p: string | undefined) => (p === undefined ? undefined : resolve(p));
  return {
    task: task!,
    checkpoint: resolve(values.checkpoint!),
    data: resolve(values.data!),
    tokenizer: path(values.tokenizer),
    split: splitName(values.split),
    limit: int('limit', values.limit),
    out: resolve(values.out ?? 'eval-results'),
    resume: values.resume ?? false,
    batch: int('batch', values.batch) ?? 8,
    backend: oneOf('backend', values.backend, ['webgpu', 'wasm', 'cpu', 'auto'] as const) ?? 'auto',
    threads: int('threads', values.threads),
    json: values.json ?? false,
    images: path(values.images),
    ann: path(values.ann),
    annotations: path(values.annotations),
    answers: path(values.answers),
    answerMinCount: int('answer-min-count', values['answer-min-count']) ?? 9,
    dataset: values.dataset,
    mode: oneOf('mode', values.mode, ['itc', 'itm'] as const),
    itmRerank: int('itm-rerank', values['itm-rerank']),
    itmCheckpoint: path(values['itm-checkpoint']),
    imageSize: int('image-size', values['image-size'], 32, MAX_SIDE / 2),
    maxTextLen: int('max-text-len', values['max-text-len'], 2),
    beam: int('beam', values.beam) ?? 5,
    minSize: int('min-size', values['min-size'], 32, MAX_SIDE),
    maxSize: int('max-size', values['max-size'], 32, MAX_SIDE),
    gt: oneOf('gt', values.gt, ['separate', 'merged'] as const) ?? 'separate',
    entities: path(values.entities),
    chunk: int('chunk', values.chunk),
    decoder: oneOf('decoder', values.decoder, ['auto', 'sharp', 'js'] as const) ?? 'auto',
  };
}

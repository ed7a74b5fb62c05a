// `fiber-bench train` arguments: parsed and checked before anything is loaded; a bad one is a
// UsageError (one line on stderr, exit 2).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { BackendName } from '@fiber-vl/tensor-core';
import { oneLine } from '../one-line.js';
import { parseIntOption, parseNumberOption } from '../int-option.js';

export const TRAIN_TASKS = [
  'pretrain-coarse',
  'pretrain-fine',
  'vqa',
  'caption',
  'nlvr2',
  'retrieval-itc',
  'retrieval-itm',
  'refcoco',
  'detection',
] as const;
export type TrainTask = (typeof TRAIN_TASKS)[number];

/** Tasks that train the fine-grained model (ATSS grounding losses); the others train the coarse one. */
export const FINE_TASKS: readonly TrainTask[] = ['pretrain-fine', 'refcoco', 'detection'];

export const TRAIN_USAGE = `usage: fiber-bench train --task T --model M --data DIR|builtin (--steps N | --epochs E) --batch B --out DIR
                         [--init CKPT] [--accumulate K] [--resume] [--seed S] [--backend wasm|cpu|webgpu]
                         [--lr LR] [--checkpoint-every N] [--keep N] [--images DIR] [--tokenizer DIR]
                         [--image-size N] [--queue Q] [--workers N]

Trains one FIBER task with @fiber-vl/trainer and leaves DIR/final/model.safetensors (official key
layout), DIR/log.jsonl (one record per step), DIR/config.json and checkpoints under DIR/checkpoints/.

  --task T            pretrain-coarse (ITC + ITM hard negatives + MLM), retrieval-itc, retrieval-itm,
                      vqa, caption (MLE), nlvr2: the coarse model; pretrain-fine (grounding + detection
                      prompts), refcoco, detection: the fine-grained model (ATSS grounding losses)
  --model M           micro (the main job's test size), tiny, small, base (FIBER's sizes), or a JSON
                      file: a FiberCoarseConfig / FiberFineModelConfig, or a run folder's config.json
  --init CKPT         start from an official FIBER checkpoint (.ckpt/.pth/.bin/.safetensors) or a
                      project one (a final/model.safetensors); only the matching tensors are loaded.
                      pretrain-fine from --init freezes the Swin's patch embedding and stage 0, as
                      FIBER does; the fine-tunes and runs from random weights train every stage
  --data D            builtin (the procedural world of fiber-bench run) or a folder in the public layout
                      (see apps/bench/README.md "fiber-bench train": which files each task reads)
  --images DIR        image root of a data folder (default: the data folder)
  --tokenizer DIR     vocab.json + merges.txt or tokenizer.json (default: the world's BPE for builtin
                      data; DATA/tokenizer/ if present; else a BPE trained on the data, saved in OUT/tokenizer/)
  --steps N           optimizer steps (or --epochs E: passes over the training records)
  --batch B           pairs per micro-batch;  --accumulate K  micro-batches per step (default 1; read
                      one at a time; a micro-batch's images past half the machine's memory are refused)
  --lr LR             base learning rate (default 1e-4 coarse, 1e-5 fine)
  --image-size N      fine tasks: the shorter image side (default 64 for micro, else FIBER's 480-800;
                      at most 4096)
  --queue Q           pretrain-coarse, retrieval-itc: ITC queue size (default 16 for micro, else the
                      official 4096: it keeps Q raw images, Q x 3 x S x S floats, refused past half
                      the machine's memory; 0: in-batch ITC)
  --workers N         data folders: threads that read, decode and augment the images ahead of the
                      training thread (default min(4, CPUs - 1), at least 1; 0: in the training
                      thread; at most 64). The batches are the same whatever N.
  --out DIR           the run folder;  --resume  continue from its newest complete checkpoint
  --checkpoint-every N  save every N steps (default 100) and at the end; --keep N  last N kept (default 3)
  --seed S            model initialisation, data order, masking and negatives (default 0)
  --backend B         wasm (default), cpu or webgpu
`;

export class UsageError extends Error {
  override name = 'UsageError';
}

/** `--name`'s value as an integer >= min, or a UsageError naming the option and the value. */
export function intArg(name: string, v: string, min: number, max?: number): number {
  const n = parseIntOption(v, min);
  if (n === undefined || (max !== undefined && n > max))
    throw new UsageError(
      `--${name}: expected an integer ${max === undefined ? `>= ${min}` : `in [${min}, ${max}]`}, got "${v}"`,
    );
  return n;
}

/** Upper bounds of options whose size is memory: past them a run allocates gigabytes before it fails. */
const MAX_IMAGE_SIZE = 4096; // FIBER trains at 384-1333 px
const MAX_WORKERS = 64;

/** A decimal number option (parseNumberOption) that `ok` accepts; `expected` says which in the error. */
export function numberArg(name: string, v: string, expected: string, ok: (n: number) => boolean): number {
  const n = parseNumberOption(v);
  if (n === undefined || !ok(n)) throw new UsageError(`--${name}: expected ${expected}, got "${v}"`);
  return n;
}

export interface TrainArgs {
  task: TrainTask;
  model: string;
  init?: string;
  data: string;
  images?: string;
  tokenizer?: string;
  steps?: number;
  epochs?: number;
  batch: number;
  accumulate: number;
  lr?: number;
  imageSize?: number;
  queue?: number;
  /** Decode threads for data folders (undefined: the pool's default; 0: in the training thread). */
  workers?: number;
  out: string;
  resume: boolean;
  seed: number;
  backend: BackendName;
  checkpointEvery: number;
  keep: number;
}

export function parseTrainArgs(argv: string[]): TrainArgs | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        task: { type: 'string' },
        model: { type: 'string' },
        init: { type: 'string' },
        data: { type: 'string' },
        images: { type: 'string' },
        tokenizer: { type: 'string' },
        steps: { type: 'string' },
        epochs: { type: 'string' },
        batch: { type: 'string' },
        accumulate: { type: 'string', default: '1' },
        lr: { type: 'string' },
        'image-size': { type: 'string' },
        queue: { type: 'string' },
        workers: { type: 'string' },
        out: { type: 'string' },
        resume: { type: 'boolean', default: false },
        seed: { type: 'string', default: '0' },
        backend: { type: 'string', default: 'wasm' },
        'checkpoint-every': { type: 'string', default: '100' },
        keep: { type: 'string', default: '3' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
    }));
  } catch (e) {
    throw new UsageError(oneLine((e as Error).message));
  }
  if (values.help) return 'help';
  const need = (name: string, v: string | undefined): string => {
    if (v === undefined || v === '') throw new UsageError(`--${name} is required (see fiber-bench train --help)`);
    return v;
  };
  /** An optional path: an empty one (`--init ""`, an unset shell variable) would mean nothing, or the current folder. */
  const path = (name: string, v: string | undefined): string | undefined => {
    if (v === '') throw new UsageError(`--${name}: an empty path`);
    return v;
  };
  const task = need('task', values.task);
  if (!(TRAIN_TASKS as readonly string[]).includes(task))
    throw new UsageError(`--task: unknown task "${task}" (expected ${TRAIN_TASKS.join(', ')})`);
  if (!['wasm', 'cpu', 'webgpu'].includes(values.backend))
    throw new UsageError(`--backend: unknown backend "${values.backend}" (expected wasm, cpu, webgpu)`);
  if ((values.steps === undefined) === (values.epochs === undefined))
    throw new UsageError('give exactly one of --steps N and --epochs E');
  const epochs =
    values.epochs === undefined
      ? undefined
      : numberArg('epochs', values.epochs, 'a number > 0', (n) => n > 0 && n <= 1e6);
  const lr =
    values.lr === undefined ? undefined : numberArg('lr', values.lr, 'a number in (0, 1)', (n) => n > 0 && n < 1);
  return {
    task: task as TrainTask,
    model: need('model', values.model),
    init: path('init', values.init),
    data: need('data', values.data),
    images: path('images', values.images),
    tokenizer: path('tokenizer', values.tokenizer),
    steps: values.steps === undefined ? undefined : intArg('steps', values.steps, 1),
    epochs,
    batch: intArg('batch', need('batch', values.batch), 1),
    accumulate: intArg('accumulate', values.accumulate, 1),
    lr,
    imageSize:
      values['image-size'] === undefined ? undefined : intArg('image-size', values['image-size'], 32, MAX_IMAGE_SIZE),
    queue: values.queue === undefined ? undefined : intArg('queue', values.queue, 0),
    workers: values.workers === undefined ? undefined : intArg('workers', values.workers, 0, MAX_WORKERS),
    out: resolve(need('out', values.out)),
    resume: values.resume,
    // 32 bits, as the seeds of the run's generators are mixed from it in float64 integers
    seed: intArg('seed', values.seed, 0, 2 ** 32 - 1),
    backend: values.backend as BackendName,
    checkpointEvery: intArg('checkpoint-every', values['checkpoint-every'], 1),
    keep: intArg('keep', values.keep, 1),
  };
}

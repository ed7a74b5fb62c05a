// `--data DIR`: the public formats read by @fiber-vl/trainer's readers, loaded by its DataLoader
// (deterministic by (seed, epoch), resumable by position, bad records skipped and counted) with the
// official augmentations, and turned into the tensors of each task's batch.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { type GroundingPrompt, cleanName, encodeDetectionPrompt, encodeGroundingPrompt } from '@fiber-vl/heads-fine';
import type { ByteLevelBpeTokenizer } from '@fiber-vl/roberta';
import { tf } from '@fiber-vl/tensor-core';
import {
  type DataRecord,
  type DataSource,
  DataLoader,
  type RecordSource,
  type Sample,
  type SampleImage,
  buildVqaVocab,
  coarseTrainTransform,
  concatSources,
  fineTrainTransform,
  genericRecord,
  karpathyCaptions,
  mdetrGrounding,
  cocoInstances,
  derivedGenerator,
  nlvr2Record,
  recordText,
  vqaQuestions,
  withImages,
} from '@fiber-vl/trainer';
import { WorkerPool, imageFolder, nodeInThreadExecutor, openJsonl, readJson } from '@fiber-vl/trainer/node';
import { encodeTexts } from '../run/data.js';
import { type TrainTask, UsageError } from './args.js';
import type { TaskBatch } from './tasks.js';

export interface FolderData {
  source: RecordSource;
  /** Detection: the class names (category order = labels 1..K). */
  classNames?: string[];
  /** VQA: the answer vocabulary. */
  answers?: string[];
  /** Files read, for the run's config.json. */
  files: string[];
}

const jsonFiles = (dir: string, test: (name: string) => boolean): string[] =>
  existsSync(dir)
    ? readdirSync(dir)
        .filter(test)
        .sort()
        .map((n) => join(dir, n))
    : [];

function needFiles(task: TrainTask, files: string[], what: string): string[] {
  if (!files.length) throw new UsageError(`--data: no ${what} found for --task ${task} (see fiber-bench train --help)`);
  return files;
}

/** Opens the task's files in `dir` (layout in apps/bench/README.md); images are read from `imagesDir`. */
export async function openFolder(task: TrainTask, dir: string, imagesDir: string): Promise<FolderData> {
  if (!existsSync(dir)) throw new UsageError(`--data: no folder ${dir}`);
  if (!statSync(dir).isDirectory()) throw new UsageError(`--data: ${dir} is not a folder`);
  if (!existsSync(imagesDir) || !statSync(imagesDir).isDirectory())
    throw new UsageError(`--images: ${imagesDir} is not a folder`);
  const images = imageFolder(imagesDir);
  const jsonl = jsonFiles(dir, (n) => n.endsWith('.jsonl'));
  const openJsonlAll = async () => Promise.all(jsonl.map((f) => openJsonl(f, genericRecord(), images)));
  switch (task) {
    case 'pretrain-coarse':
    case 'retrieval-itc':
    case 'retrieval-itm':
    case 'caption': {
      const karpathy = jsonFiles(join(dir, 'karpathy'), (n) => /^dataset_.*\.json$/.test(n));
      needFiles(task, [...karpathy, ...jsonl], 'karpathy/dataset_*.json or *.jsonl');
      const sources: RecordSource[] = [];
      for (const f of karpathy)
        sources.push(
          withImages(karpathyCaptions(await readJson(f), { splits: ['train', 'restval'], name: f }), images),
        );
      sources.push(...(await openJsonlAll()));
      return { source: concatSources(dir, sources), files: [...karpathy, ...jsonl] };
    }
    case 'vqa': {
      const q = join(dir, 'v2_OpenEnded_mscoco_train2014_questions.json');
      const a = join(dir, 'v2_mscoco_train2014_annotations.json');
      needFiles(task, [q, a].filter(existsSync).length === 2 ? [q] : [], `${q} and ${a}`);
      const annotations = await readJson(a);
      const vocab = buildVqaVocab([annotations], { names: [a] });
      if (!vocab.answers.length)
        throw new UsageError(
          `--data: ${a} has no answer that is the multiple_choice_answer of >= 9 questions (the official vocabulary threshold)`,
        );
      const source = withImages(vqaQuestions({ questions: await readJson(q), annotations, vocab, name: q }), images);
      return { source, answers: vocab.answers, files: [q, a] };
    }
    case 'nlvr2': {
      const f = needFiles(
        task,
        [join(dir, 'data/train.json'), join(dir, 'train.json')].filter(existsSync),
        'data/train.json',
      );
      return { source: await openJsonl(f[0], nlvr2Record, images), files: [f[0]] };
    }
    case 'pretrain-fine':
    case 'refcoco': {
      const pattern = task === 'refcoco' ? /^final_refexp_.*train.*\.json$/ : /^final_.*train.*\.json$/;
      const files = [
        ...jsonFiles(dir, (n) => pattern.test(n)),
        ...jsonFiles(join(dir, 'mdetr_annotations'), (n) => pattern.test(n)),
      ];
      // pretrain-fine reads MDETR files and/or JSONL grounding records (as pretrain-coarse reads Karpathy and/or JSONL)
      if (task === 'refcoco') needFiles(task, files, `MDETR ${pattern.source} files`);
      else needFiles(task, [...files, ...jsonl], `MDETR ${pattern.source} files or *.jsonl`);
      const sources: RecordSource[] = [];
      // training reads tokens_positive, never tokens_positive_eval: a broken eval span skips nothing
      for (const f of files)
        sources.push(withImages(mdetrGrounding(await readJson(f), { name: f, evalSpans: false }), images));
      if (task === 'pretrain-fine')
        for (const f of jsonl) sources.push(await openJsonl(f, genericRecord({ boxes: 'required' }), images));
      return { source: concatSources(dir, sources), files: [...files, ...(task === 'pretrain-fine' ? jsonl : [])] };
    }
    case 'detection': {
      const files = needFiles(
        task,
        jsonFiles(join(dir, 'annotations'), (n) => /^instances_.*train.*\.json$/.test(n)),
        'annotations/instances_*train*.json',
      );
      // one file's categories make the prompt; two files (train2014 and train2017) would overlap
      if (files.length > 1)
        throw new UsageError(
          `--data: ${join(dir, 'annotations')} holds ${files.length} training instance files (${files.map((f) => basename(f)).join(', ')}): ` +
            'keep one in the folder given (a folder per split, or links to the one to train on)',
        );
      // COCO's layout: annotations/instances_<split>.json beside <split>/ holding the images
      const split = /^instances_(.+)\.json$/.exec(basename(files[0]))?.[1];
      const imagePrefix = split && existsSync(join(imagesDir, split)) ? `${split}/` : undefined;
      const coco = cocoInstances(await readJson(files[0]), { name: files[0], imagePrefix });
      // the prompt is made of the names: one that clean_name empties fails every batch, so say it now
      const blank = coco.categories.find((c) => cleanName(c.name).trim() === '');
      if (blank)
        throw new UsageError(
          `--data: ${files[0]}: category ${blank.id} has the name ${JSON.stringify(blank.name)}, empty after clean_name (the detection prompt is made of the names)`,
        );
      return {
        source: withImages(coco, images),
        classNames: coco.categories.map((c) => c.name),
        files: [files[0]],
      };
    }
  }
}

/** [3, H, W] CHW images padded with zeros at the bottom / right to [B, 3, Hmax, Wmax], sides rounded up to `divisible`. */
function stackImages(images: SampleImage[], divisible = 1): tf.Tensor4D {
  const up = (v: number) => Math.ceil(v / divisible) * divisible;
  const H = up(Math.max(...images.map((i) => i.height)));
  const W = up(Math.max(...images.map((i) => i.width)));
  const out = new Float32Array(images.length * 3 * H * W);
  images.forEach((img, b) => {
    if (img.layout !== 'chw') throw new TypeError('train: expected normalised CHW images from the transform');
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < img.height; y++)
        out.set(
          img.data.subarray((c * img.height + y) * img.width, (c * img.height + y + 1) * img.width),
          ((b * 3 + c) * H + y) * W,
        );
  });
  return tf.tensor4d(out, [images.length, 3, H, W]);
}

export interface FolderBatchOptions {
  task: TrainTask;
  tokenizer: ByteLevelBpeTokenizer;
  batch: number;
  seed: number;
  imageSize: number;
  maxTextLen: number;
  maxQueryLen: number;
  /** Fine tasks: the shorter side (undefined: FIBER's multi-scale 480-800, longer side <= 1333). */
  fineSize?: number;
  data: FolderData;
  /** Decode threads (undefined: WorkerPool's default; 0: in the training thread). */
  workers?: number;
}

/** The positive map [G, T] of a prompt whose phrase g belongs to box g. */
function positiveMap(prompt: GroundingPrompt, phraseOfBox: number[]): Float32Array {
  const T = prompt.maxQueryLen;
  const map = new Float32Array(phraseOfBox.length * T);
  phraseOfBox.forEach((p, g) => {
    for (const t of prompt.phrases[p].tokens) map[g * T + t] = 1;
  });
  return map;
}

/**
 * Boxes that stay positives with an empty token row, as in the official datasets
 * (`create_positive_map` skips a span it cannot map): they still train the box and centerness
 * outputs and name no token.
 */
export interface PromptCuts {
  /** Boxes whose phrase (for detection, class name) the truncation to the model's query length cut. */
  emptyRows: number;
  /** The first truncation report (heads-fine's message). */
  message?: string;
  /** Grounding boxes whose phrase covers no token at all (whitespace, or out of the fallbacks' reach). */
  uncovered: number;
  /** The first of those, named: file or source, record, box. */
  firstUncovered?: string;
}

/**
 * `SOLVER.MAX_NEG_PER_BATCH`: the official trainer (`engine/trainer.py`) skips a batch whose images
 * are all without a box, or more than this share of them.
 */
export const MAX_NEG_PER_BATCH = 0.1;

/** Epochs in a row without a trained batch before `fiber-bench train` gives up (the official trainer never does). */
const MAX_EMPTY_EPOCHS = 20;

/** The images of a batch without a box (the official trainer's `nnegative`). */
function negativeImages(targets: readonly { boxes: ArrayLike<number> }[]): number {
  return targets.filter((t) => t.boxes.length === 0).length;
}

/** The official trainer's rule: skip when every image, or more than MAX_NEG_PER_BATCH of them, has no box. */
function tooManyNegatives(negatives: number, size: number): boolean {
  return negatives === size || negatives > size * MAX_NEG_PER_BATCH;
}

/** Whether the official trainer skips a batch with these targets (too many images without a box). */
export function skipsBatch(targets: readonly { boxes: ArrayLike<number> }[]): boolean {
  return tooManyNegatives(negativeImages(targets), targets.length);
}

/** Counts the boxes whose phrase has no token: cut by the truncation, or covering none at all. */
function countCut(prompt: GroundingPrompt, phraseOfBox: readonly number[], cuts: PromptCuts, where: string) {
  phraseOfBox.forEach((p, g) => {
    const phrase = prompt.phrases[p];
    if (phrase.tokens.length) return;
    if (phrase.fullTokens.length === 0) {
      cuts.uncovered++;
      cuts.firstUncovered ??= `${where}, box ${g}: ${JSON.stringify(phrase.text)}`;
    } else {
      cuts.emptyRows++;
      cuts.message ??= prompt.truncation.message;
    }
  });
}

/** Domain tag of a detection prompt's class order (derivedGenerator). */
const PROMPT_ORDER_TAG = 0x70726f6d; // 'prom'

/**
 * The class order of one sample's detection prompt: FIBER's COCO fine-tuning
 * (`DATASETS.DISABLE_SHUFFLE` False) shuffles the names for every image
 * (`convert_od_to_grounding_simple`); here the permutation is a function of (seed, epoch, index).
 */
export function promptClassOrder(classes: number, seed: number, epoch: number, index: number): number[] {
  return derivedGenerator(PROMPT_ORDER_TAG, seed, epoch, index).permutation(classes);
}

export interface FineTargets {
  prompts: GroundingPrompt[];
  /** Per image: [G * 4] xyxy boxes and the [G, T] 0/1 positive map. */
  targets: { boxes: number[]; positiveMap: Float32Array }[];
}

/** The prompts and targets of one fine batch's samples, as the official datasets build them. */
export function fineTargets(
  samples: readonly Pick<Sample, 'record' | 'epoch' | 'index'>[],
  o: FolderBatchOptions,
  cuts: PromptCuts,
): FineTargets {
  const prompts: GroundingPrompt[] = [];
  const targets = samples.map(({ record: r, epoch, index }) => {
    const where = `${o.data.source.name} record ${index} (id ${r.id})`;
    try {
      return recordTargets(r, epoch, index, where);
    } catch (e) {
      // what the readers let through and a prompt refuses: name the record (the order is seeded,
      // so a resumed run meets it again)
      throw new Error(`${where}: ${(e as Error).message}`, { cause: e });
    }
  });
  function recordTargets(r: DataRecord, epoch: number, index: number, where: string) {
    if (r.kind === 'detection') {
      const names = o.data.classNames ?? [];
      const order = promptClassOrder(names.length, o.seed, epoch, index);
      const prompt = encodeDetectionPrompt(
        o.tokenizer,
        order.map((c) => names[c]),
        { maxQueryLen: o.maxQueryLen },
      );
      prompts.push(prompt);
      const phraseOfClass = new Array<number>(names.length);
      order.forEach((c, k) => (phraseOfClass[c] = k));
      const phraseOfBox = r.labels.map((l) => phraseOfClass[l - 1]);
      countCut(prompt, phraseOfBox, cuts, where);
      return { boxes: r.boxes.flat(), positiveMap: positiveMap(prompt, phraseOfBox) };
    }
    if (r.kind !== 'grounding') throw new TypeError(`train --task ${o.task}: a ${r.kind} record`);
    // each box is a phrase (its spans); a box with no span is dropped from the targets, and an
    // image left without one is a negative (the whole text as the prompt, no box)
    const kept = r.spans.map((sp, g) => (sp.length ? g : -1)).filter((g) => g >= 0);
    const phrases = kept.length ? kept.map((g) => r.spans[g]) : [[[0, r.text.length] as [number, number]]];
    // a span that maps to no token (whitespace, or 3+ of it at an end): an empty row, as
    // create_positive_map leaves it
    const prompt = encodeGroundingPrompt(o.tokenizer, r.text, phrases, {
      maxQueryLen: o.maxQueryLen,
      uncovered: 'empty',
    });
    prompts.push(prompt);
    const phraseOfBox = kept.map((_, k) => k);
    countCut(prompt, phraseOfBox, cuts, where);
    return {
      boxes: kept.flatMap((g) => r.boxes[g]),
      positiveMap: positiveMap(prompt, phraseOfBox),
    };
  }
  return { prompts, targets };
}

function fineBatch(samples: Sample[], { prompts, targets }: FineTargets): TaskBatch {
  return {
    kind: 'fine',
    pixels: stackImages(
      samples.map((s) => s.images[0]),
      32,
    ),
    textIds: tf.tensor2d(
      prompts.map((p) => p.inputIds),
      undefined,
      'int32',
    ),
    textMasks: tf.tensor2d(
      prompts.map((p) => p.attentionMask),
      undefined,
      'int32',
    ),
    targets,
  };
}

function coarseBatch(samples: Sample[], o: FolderBatchOptions): TaskBatch {
  const text = encodeTexts(
    o.tokenizer,
    samples.map((s) => recordText(s.record)),
    o.maxTextLen,
  );
  const first = () => stackImages(samples.map((s) => s.images[0]));
  switch (o.task) {
    case 'vqa': {
      const answers = o.data.answers?.length ?? 0;
      const scores = new Float32Array(samples.length * answers);
      samples.forEach((s, b) => {
        if (s.record.kind !== 'vqa') throw new TypeError(`train --task vqa: a ${s.record.kind} record`);
        const { labels, scores: sc } = s.record;
        labels.forEach((l, k) => (scores[b * answers + l] = sc[k]));
      });
      return {
        kind: 'vqa',
        pixels: first(),
        textIds: text.ids,
        textMasks: text.mask,
        targets: tf.tensor2d(scores, [samples.length, answers]),
      };
    }
    case 'nlvr2':
      return {
        kind: 'nlvr2',
        pixels0: first(),
        pixels1: stackImages(samples.map((s) => s.images[1])),
        textIds: text.ids,
        textMasks: text.mask,
        labels: tf.tensor1d(
          samples.map((s) => (s.record.kind === 'nlvr2' && s.record.label ? 1 : 0)),
          'int32',
        ),
      };
    case 'retrieval-itm': {
      // the false image of pair b is pair b+1's (a random other image of the split, as draw_false_image)
      const images = samples.map((s) => s.images[0]);
      return {
        kind: 'itm',
        pixels: stackImages(images),
        falsePixels: stackImages([...images.slice(1), images[0]]),
        textIds: text.ids,
        textMasks: text.mask,
      };
    }
    default:
      return { kind: 'pair', pixels: first(), textIds: text.ids, textMasks: text.mask };
  }
}

export interface FolderSource extends DataSource<TaskBatch> {
  loader: DataLoader<DataRecord>;
  /** Fine tasks: boxes whose phrase the prompt's truncation cut. */
  cuts: PromptCuts;
  /** Fine tasks: batches skipped as the official trainer skips them (`MAX_NEG_PER_BATCH`). */
  negativeBatches: { skipped: number };
  /** Decode threads (0: the training thread). */
  workers: number;
}

export async function folderSource(o: FolderBatchOptions, fine: boolean): Promise<FolderSource> {
  const transform = fine
    ? fineTrainTransform({
        ...(o.fineSize ? { minSizes: [o.fineSize], maxSize: Math.round(o.fineSize * 1.67) } : {}),
        ...(o.task === 'refcoco' ? { flipProb: 0 } : {}),
      })
    : coarseTrainTransform(o.imageSize);
  // samples depend only on (seed, epoch, index), never on the thread that prepared them
  const executor = o.workers === 0 ? await nodeInThreadExecutor() : new WorkerPool({ workers: o.workers });
  let loader: DataLoader<DataRecord>;
  try {
    loader = new DataLoader(o.data.source, { seed: o.seed, transform, executor });
  } catch (e) {
    await executor.close(); // idle worker threads would keep the process alive
    throw e;
  }
  const cuts: PromptCuts = { emptyRows: 0, uncovered: 0 };
  const negativeBatches = { skipped: 0 };
  // the boxed images a batch needs to train under MAX_NEG_PER_BATCH
  const need = o.batch - Math.floor(o.batch * MAX_NEG_PER_BATCH);
  return {
    loader,
    cuts,
    negativeBatches,
    workers: executor instanceof WorkerPool ? executor.size : 0,
    async *batches(from) {
      let start = from ? { epoch: from.epoch, position: Number(from.cursor) } : { epoch: 0, position: 0 };
      let emptyEpochs = 0; // whole epochs in a row whose every batch was skipped
      for (;;) {
        let n = 0;
        let skipped = 0;
        let boxed = 0;
        for await (const b of loader.batches(o.batch, start, { dropLast: true })) {
          n++;
          let batch: TaskBatch;
          if (fine) {
            const targets = fineTargets(b.samples, o, cuts);
            const negatives = negativeImages(targets.targets);
            boxed += o.batch - negatives;
            // drawn and not trained, as the official trainer's `continue`; --steps counts the others
            if (tooManyNegatives(negatives, targets.targets.length)) {
              if (skipped++ === 0)
                console.warn(
                  `[fiber-vl data] epoch ${start.epoch}: a batch with ${negatives} of its ${o.batch} images without a box skipped ` +
                    `(more than ${MAX_NEG_PER_BATCH * 100}%, the official SOLVER.MAX_NEG_PER_BATCH); the summary counts the others`,
                );
              negativeBatches.skipped++;
              continue;
            }
            batch = fineBatch(b.samples, targets);
          } else batch = coarseBatch(b.samples, o);
          yield { batch, position: { epoch: b.next.epoch, cursor: b.next.position } };
        }
        if (n === 0 && start.position === 0)
          throw new Error(
            `${o.data.source.name}: epoch ${start.epoch} gave no full batch of ${o.batch} ` +
              `(${loader.stats.delivered} records delivered; skipped: ${JSON.stringify(loader.stats.summary().records)})`,
          );
        const allSkipped = n > 0 && skipped === n && start.position === 0;
        if (skipped > 0 && !allSkipped)
          console.warn(
            `[fiber-vl data] epoch ${start.epoch}: ${skipped} of the ${n} batches read` +
              `${start.position ? ' since the resume' : ''} skipped (more than ${MAX_NEG_PER_BATCH * 100}% ` +
              `of their images without a box), ${n - skipped} trained`,
          );
        if (skipped < n) emptyEpochs = 0;
        else if (allSkipped) {
          // another epoch's order may gather enough boxed images in a batch, unless there are too few
          const what =
            `${o.data.source.name}: all ${n} batches of ${o.batch} of epoch ${start.epoch} were skipped ` +
            `(more than ${MAX_NEG_PER_BATCH * 100}% of their images without a box, the official SOLVER.MAX_NEG_PER_BATCH); ` +
            `${boxed} of the epoch's ${n * o.batch} images have a box and a batch needs ${need}`;
          if (boxed < need) throw new Error(`${what}: no step can train on these records`);
          if (++emptyEpochs >= MAX_EMPTY_EPOCHS)
            throw new Error(
              `${what}, and ${emptyEpochs} epochs in a row trained no batch: too few of the images have a box`,
            );
          console.warn(`[fiber-vl data] ${what}; the next epoch's order is drawn anew`);
        }
        start = { epoch: start.epoch + 1, position: 0 };
      }
    },
  };
}

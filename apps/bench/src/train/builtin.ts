// `--data builtin`: batches of every task from the procedural world of the main job (its `small`
// layout, world seed 0), built with the main job's batch builders. Batch k is a function of
// (seed, k) only, so a resumed run sees the batches an uninterrupted one would.
import type { ByteLevelBpeTokenizer } from '@fiber-vl/roberta';
import { fiberPixelValues } from '@fiber-vl/swin';
import { tf, type Generator } from '@fiber-vl/tensor-core';
import { type DataSource, type World, derivedGenerator, worldTokenizer } from '@fiber-vl/trainer';
import {
  captionPairs,
  coarsePixels,
  detectionExamples,
  encodeTexts,
  fineBatch,
  groundingExamples,
  nlvr2Examples,
  referringExamples,
  sampleIndices,
  vqaExamples,
  type FineExample,
} from '../run/data.js';
import { RUN_PRESETS } from '../run/presets.js';
import { runWorld } from '../run/seed.js';
import type { TrainTask } from './args.js';
import type { TaskBatch } from './tasks.js';

const BUILTIN_TAG = 0x6275696c; // 'buil'

export function builtinWorld(): { world: World; tokenizer: ByteLevelBpeTokenizer } {
  const preset = RUN_PRESETS.small;
  const world = runWorld(preset, 0);
  const tokenizer = worldTokenizer(world, { vocabSize: preset.vocabSize, scenes: Math.min(500, preset.world.train) });
  return { world, tokenizer };
}

/** What a builtin batch needs to know of the model. */
export interface BuiltinShape {
  batch: number;
  /** Coarse: square input side and text length. */
  imageSize: number;
  maxTextLen: number;
  /** Fine: shorter image side and the prompt length (MAX_QUERY_LEN). */
  fineSize: number;
  maxQueryLen: number;
}

/** A DataSource whose batch k is `make(generator of (seed, k))`. */
function indexedSource<B>(seed: number, make: (rng: Generator) => B): DataSource<B> {
  return {
    async *batches(from) {
      let k = from === undefined ? 0 : Number(from.cursor);
      if (!(Number.isSafeInteger(k) && k >= 0)) throw new TypeError(`builtin data: bad resume cursor ${from?.cursor}`);
      for (;;) {
        const batch = make(derivedGenerator(BUILTIN_TAG, seed, k));
        k++;
        yield { batch, position: { epoch: 0, cursor: k } };
      }
    },
  };
}

/** One-hot soft scores over the world's answers. */
function oneHot(answers: string[], picked: string[]): tf.Tensor2D {
  return tf.tidy(
    () =>
      tf.cast(
        tf.oneHot(
          tf.tensor1d(
            picked.map((a) => answers.indexOf(a)),
            'int32',
          ),
          answers.length,
        ),
        'float32',
      ) as tf.Tensor2D,
  );
}

/** Fine examples of one batch: grounding captions, detection prompts over every class, referring expressions. */
function fineExamples(
  task: TrainTask,
  world: World,
  tokenizer: ByteLevelBpeTokenizer,
  s: BuiltinShape,
  rng: Generator,
): FineExample[] {
  const classes = world.classes.map((c) => c.name);
  const out: FineExample[] = [];
  for (let tries = 0; out.length < s.batch; tries++) {
    if (tries > 100 * s.batch) throw new Error(`builtin data: no ${task} examples in the world`);
    const scene = [rng.nextInt(world.size('train'))];
    const kind = task === 'refcoco' ? 2 : task === 'detection' ? 1 : rng.nextInt(3);
    if (kind === 0) out.push(...groundingExamples(world, 'train', scene, tokenizer, s.maxQueryLen, rng));
    else if (kind === 1) out.push(...detectionExamples(world, 'train', scene, tokenizer, s.maxQueryLen, classes));
    else out.push(...referringExamples(world, 'train', scene, tokenizer, s.maxQueryLen, rng));
  }
  return out.slice(0, s.batch);
}

/** Training records per epoch (scenes, or NLVR2 pairs) for --epochs. */
export function builtinRecords(task: TrainTask, world: World): number {
  return task === 'nlvr2' ? world.nlvr2Size('train') : world.size('train');
}

export function builtinSource(
  task: TrainTask,
  world: World,
  tokenizer: ByteLevelBpeTokenizer,
  s: BuiltinShape,
  seed: number,
): DataSource<TaskBatch> {
  const n = world.size('train');
  const text = (texts: string[]) => encodeTexts(tokenizer, texts, s.maxTextLen);
  const make = (rng: Generator): TaskBatch => {
    switch (task) {
      case 'pretrain-coarse':
      case 'retrieval-itc':
      case 'caption': {
        const idx = sampleIndices(n, s.batch, rng);
        const t = text(captionPairs(world, 'train', idx, rng).texts);
        return {
          kind: 'pair',
          pixels: coarsePixels(world, 'train', idx, s.imageSize),
          textIds: t.ids,
          textMasks: t.mask,
        };
      }
      case 'retrieval-itm': {
        const idx = sampleIndices(n, s.batch, rng);
        // the official draw_false_image: another random image of the split
        const other = idx.map((i) => (i + 1 + rng.nextInt(n - 1)) % n);
        const t = text(captionPairs(world, 'train', idx, rng).texts);
        return {
          kind: 'itm',
          pixels: coarsePixels(world, 'train', idx, s.imageSize),
          falsePixels: coarsePixels(world, 'train', other, s.imageSize),
          textIds: t.ids,
          textMasks: t.mask,
        };
      }
      case 'vqa': {
        const idx = sampleIndices(n, s.batch, rng);
        const ex = vqaExamples(world, 'train', idx, rng);
        const t = text(ex.map((x) => x.question));
        return {
          kind: 'vqa',
          pixels: coarsePixels(world, 'train', idx, s.imageSize),
          textIds: t.ids,
          textMasks: t.mask,
          targets: oneHot(
            world.answerVocabulary,
            ex.map((x) => x.answer),
          ),
        };
      }
      case 'nlvr2': {
        const ex = nlvr2Examples(world, 'train', sampleIndices(world.nlvr2Size('train'), s.batch, rng));
        const t = text(ex.map((x) => x.statement));
        return {
          kind: 'nlvr2',
          pixels0: fiberPixelValues(
            ex.map((x) => x.left),
            s.imageSize,
          ),
          pixels1: fiberPixelValues(
            ex.map((x) => x.right),
            s.imageSize,
          ),
          textIds: t.ids,
          textMasks: t.mask,
          labels: tf.tensor1d(
            ex.map((x) => (x.label ? 1 : 0)),
            'int32',
          ),
        };
      }
      case 'pretrain-fine':
      case 'refcoco':
      case 'detection': {
        const b = fineBatch(fineExamples(task, world, tokenizer, s, rng), s.fineSize);
        return { kind: 'fine', pixels: b.pixels, textIds: b.ids, textMasks: b.mask, targets: b.targets };
      }
    }
  };
  return indexedSource(seed, make);
}

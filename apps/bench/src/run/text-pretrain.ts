// Unimodal text pre-training: the stand-in, on the built-in world, for the pre-trained RoBERTa FIBER
// starts from. FIBER's ITC and its fused heads read the text `<s>` token (through the `_itc` and
// fused poolers); from scratch that token's output is almost the same for every sentence (cosine
// ~0.99) and no coarse objective makes it gather the sentence within the budget (MLM never reads it;
// ITC then collapses both sides, see apps/bench/MEASUREMENTS.md). So the `<s>` output of the text encoder
// learns to say which words a text contains (a bag-of-words multi-label BCE over the world's
// frequent words) on every kind of text the tasks use: captions, questions, referring expressions
// and NLVR2 statements. The classifier is dropped and the encoder's weights (`text_transformer.*`)
// seed the coarse model. Measured: the loss stays near its prior (0.199) for ~200 steps of 32 at
// lr 3e-3 and is at 0.012 after 600.
import type { FiberCoarseConfig } from '@fiber-vl/fusion';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { type Generator, Linear, Module, tf } from '@fiber-vl/tensor-core';
import { AdamW, type Objective, type Split, Trainer, type World, coarseSchedule } from '@fiber-vl/trainer';
import { type RunContext, seedRng, snapshotState, trainStage } from './context.js';
import { encodeTexts, pick, sampleIndices } from './data.js';
import { NO_HEADS } from './coarse-model.js';

/** Lower-case words of a text (the unit the bag-of-words targets count). */
export function wordsOf(text: string): string[] {
  return text
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
}

/**
 * Every kind of text the run's tasks feed the encoder: captions, VQA questions, referring
 * expressions and NLVR2 statements, drawn in that order of weight (4 : 3 : 2 : 1).
 */
export function worldTexts(world: World, split: Split, indices: number[], rng: Generator): string[] {
  return indices.map((i) => {
    const s = world.sample(split, i);
    const u = rng.nextInt(10);
    // a scene without questions (or expressions) gives a caption in their place
    if (u >= 4 && u < 7 && s.questions.length) return pick(s.questions, rng).question;
    if (u >= 7 && u < 9 && s.expressions.length) return pick(s.expressions, rng).text;
    if (u >= 9) return world.nlvr2(split, i % world.nlvr2Size(split)).statement;
    return pick(s.captions, rng).text;
  });
}

/** The words of the train texts seen at least `minCount` times in `scenes` scenes, sorted. */
export function wordVocabulary(world: World, scenes: number, minCount = 3): string[] {
  const counts = new Map<string, number>();
  const add = (t: string) => {
    for (const w of new Set(wordsOf(t))) counts.set(w, (counts.get(w) ?? 0) + 1);
  };
  for (let i = 0; i < Math.min(scenes, world.size('train')); i++) {
    const s = world.sample('train', i);
    for (const c of s.captions) add(c.text);
    for (const q of s.questions) add(q.question);
    for (const e of s.expressions) add(e.text);
  }
  for (let i = 0; i < Math.min(scenes, world.nlvr2Size('train')); i++) add(world.nlvr2('train', i).statement);
  return [...counts]
    .filter(([, n]) => n >= minCount)
    .map(([w]) => w)
    .sort();
}

/** [n, vocabulary.length] multi-hot of the vocabulary words each text contains. */
export function bagOfWords(texts: string[], vocabulary: readonly string[]): tf.Tensor2D {
  const index = new Map(vocabulary.map((w, i) => [w, i]));
  const rows = new Float32Array(texts.length * vocabulary.length);
  texts.forEach((t, r) => {
    for (const w of wordsOf(t)) {
      const j = index.get(w);
      if (j !== undefined) rows[r * vocabulary.length + j] = 1;
    }
  });
  return tf.tensor2d(rows, [texts.length, vocabulary.length]);
}

/** The coarse model's text encoder (keys `text_transformer.*`) with a linear classifier on its `<s>` output. */
class SentenceClassifier extends Module {
  readonly textTransformer: FiberCoarseModel['textTransformer'];
  readonly classifier: Linear;
  /** The coarse model the encoder belongs to (not a child: only the encoder trains). */
  readonly #owner: FiberCoarseModel;
  constructor(config: FiberCoarseConfig, ctx: RunContext, words: number) {
    super();
    this.#owner = new FiberCoarseModel(config, NO_HEADS, seedRng(ctx, 1));
    this.textTransformer = this.#owner.textTransformer;
    this.classifier = new Linear(config.roberta.hiddenSize, words, { rng: seedRng(ctx, 62) });
  }
  logits(ids: tf.Tensor, mask: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const h = this.textTransformer.forward(ids, mask, { pool: false }).lastHiddenState; // [B, L, H]
      return this.classifier.forward(tf.squeeze(tf.slice(h, [0, 0, 0], [-1, 1, -1]), [1]));
    });
  }
  override dispose(): void {
    this.classifier.dispose();
    this.#owner.dispose();
  }
}

interface SentenceBatch {
  ids: tf.Tensor;
  mask: tf.Tensor;
  labels: tf.Tensor;
}

const sentenceObjective: Objective<SentenceClassifier, SentenceBatch> = async (model, b, ctx) => {
  await ctx.loss('words', () => tf.losses.sigmoidCrossEntropy(b.labels, model.logits(b.ids, b.mask)));
};

/** Trains the text encoder on the world's train captions; returns copies of its weights (`text_transformer.*`). */
export async function pretrainText(ctx: RunContext, config: FiberCoarseConfig): Promise<Map<string, tf.Tensor>> {
  const { preset, world, tokenizer } = ctx;
  const s = preset.text;
  const vocabulary = wordVocabulary(world, 500);
  const model = new SentenceClassifier(config, ctx, vocabulary.length);
  const optimizer = new AdamW([{ params: model.namedParameters(), lr: s.lr, weightDecay: 0.01 }], {
    betas: [0.9, 0.98],
    eps: 1e-8,
    variant: 'transformers',
  });
  const trainer = new Trainer<SentenceClassifier, SentenceBatch>({
    model,
    objective: sentenceObjective,
    optimizer,
    schedule: coarseSchedule({ maxSteps: s.steps, warmupSteps: 0.1, lr: s.lr }),
  });
  const data = seedRng(ctx, 63);
  try {
    await trainStage(ctx, {
      name: 'text pre-training (<s> bag of words)',
      trainer,
      steps: s.steps,
      batch: () => {
        const texts = worldTexts(world, 'train', sampleIndices(world.size('train'), s.batchSize, data), data);
        const text = encodeTexts(tokenizer, texts, preset.model.maxTextLen);
        return { ids: text.ids, mask: text.mask, labels: bagOfWords(texts, vocabulary) };
      },
    });
    return snapshotState(model, 'text_transformer.');
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

// Unimodal text pre-training: the stand-in, on the built-in world, for the pre-trained RoBERTa FIBER
// starts from. FIBER's ITC and its fused heads read the text `<s>` token (through the `_itc` and
// fused poolers); from scratch that token's output is almost the same for every sentence (cosine
// ~0.99) and no coarse objective makes it gather the sentence within the budget (MLM never reads it;
// ITC then collapses both sides, see apps/bench/README.md). So the `<s>` output of the text encoder
// learns to say which attribute words a caption mentions (multi-label BCE); the classifier is
// dropped and the encoder's weights (`text_transformer.*`) seed the coarse model.
import type { FiberCoarseConfig } from '@fiber-vl/fusion';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { Linear, Module, tf } from '@fiber-vl/tensor-core';
import { AdamW, COLOURS, SHAPES, TEXTURES, type Objective, Trainer, coarseSchedule } from '@fiber-vl/trainer';
import { type RunContext, seedRng, trainStage } from './context.js';
import { captionPairs, encodeTexts, sampleIndices } from './data.js';
import { NO_HEADS } from './coarse-model.js';

/** The words whose presence the `<s>` output predicts (a plural counts as its word). */
export const ATTRIBUTE_WORDS: readonly string[] = [
  ...SHAPES,
  ...COLOURS,
  ...TEXTURES,
  'small',
  'large',
  'big',
  'one',
  'two',
  'three',
  'four',
  'left',
  'right',
  'above',
  'below',
];

/** [n, ATTRIBUTE_WORDS.length] multi-hot of the attribute words each text mentions. */
export function attributeWords(texts: string[]): tf.Tensor2D {
  const rows = texts.map((t) => {
    const tokens = new Set(t.toLowerCase().split(/[^a-z]+/));
    return ATTRIBUTE_WORDS.map((w) => (tokens.has(w) || tokens.has(`${w}s`) || tokens.has(`${w}es`) ? 1 : 0));
  });
  return tf.tensor2d(rows, [texts.length, ATTRIBUTE_WORDS.length]);
}

/** The coarse model's text encoder (keys `text_transformer.*`) with a linear classifier on its `<s>` output. */
class SentenceClassifier extends Module {
  readonly textTransformer: FiberCoarseModel['textTransformer'];
  readonly classifier: Linear;
  /** The coarse model the encoder belongs to (not a child: only the encoder trains). */
  readonly #owner: FiberCoarseModel;
  constructor(config: FiberCoarseConfig, ctx: RunContext) {
    super();
    this.#owner = new FiberCoarseModel(config, NO_HEADS, seedRng(ctx, 1));
    this.textTransformer = this.#owner.textTransformer;
    this.classifier = new Linear(config.roberta.hiddenSize, ATTRIBUTE_WORDS.length, { rng: seedRng(ctx, 62) });
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
  await ctx.loss('attribute words', () => tf.losses.sigmoidCrossEntropy(b.labels, model.logits(b.ids, b.mask)));
};

/** Trains the text encoder on the world's train captions; returns copies of its weights (`text_transformer.*`). */
export async function pretrainText(ctx: RunContext, config: FiberCoarseConfig): Promise<Map<string, tf.Tensor>> {
  const { preset, world, tokenizer } = ctx;
  const s = preset.text;
  const model = new SentenceClassifier(config, ctx);
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
      name: 'text pre-training (<s> attribute words)',
      trainer,
      steps: s.steps,
      batch: () => {
        const pairs = captionPairs(world, 'train', sampleIndices(world.size('train'), s.batchSize, data), data);
        const text = encodeTexts(tokenizer, pairs.texts, preset.model.maxTextLen);
        return { ids: text.ids, mask: text.mask, labels: attributeWords(pairs.texts) };
      },
    });
    return new Map(
      model
        .namedParameters()
        .filter(([n]) => n.startsWith('text_transformer.'))
        .map(([n, p]) => [n, tf.keep(tf.clone(p.value))]),
    );
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

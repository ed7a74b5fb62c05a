// The coarse FIBER of the main job: its config from the preset and tokenizer, coarse pre-training
// (ITC with the queue + ITM on hard negatives + MLM) on the world's captions, and task models that
// start from the pre-trained weights.
import { fiberConfig, type FiberCoarseConfig } from '@fiber-vl/fusion';
import { FiberCoarseModel, type CoarseHeadsSelection } from '@fiber-vl/heads-coarse';
import type { ByteLevelBpeTokenizer } from '@fiber-vl/roberta';
import type { Generator, tf } from '@fiber-vl/tensor-core';
import {
  AdamW,
  ItcQueue,
  type ItcQueueOptions,
  type Objective,
  Trainer,
  coarsePretrainObjective,
  coarseSchedule,
  fiberCoarseParamGroups,
} from '@fiber-vl/trainer';
import { captionPairs, coarsePixels, encodeTexts, sampleIndices } from './data.js';
import { type RunContext, seedRng, snapshotState, trainStage } from './context.js';
import type { RunPreset, StageSettings } from './presets.js';

/** A tiny FIBER (Swin 16-wide, 4 text layers, fusion in the top 3 blocks) sized by the preset; no dropout. */
export function runModelConfig(preset: RunPreset, vocabSize: number): FiberCoarseConfig {
  const { imageSize, maxTextLen, hiddenSize } = preset.model;
  return fiberConfig('tiny', {
    imageSize,
    maxTextLen,
    hiddenSize,
    swin: { dropPathRate: 0 },
    // the added layers (transforms, poolers, fusion blocks, heads) keep PyTorch's default init
    // rather than FIBER's N(0, 0.02), which at width 64 is 3.6x smaller: measured in a full run, the
    // VQA and caption fine-tunes then need twice the steps and REC fell under its margin
    // (apps/bench/MEASUREMENTS.md, "FIBER's initialisation, measured")
    initializerRange: null,
    roberta: {
      vocabSize,
      hiddenSize,
      intermediateSize: 2 * hiddenSize,
      maxPositionEmbeddings: maxTextLen + 10,
      hiddenDropoutProb: 0,
      attentionProbsDropoutProb: 0,
    },
  });
}

export const SPECIAL_IDS = { bos: 0, pad: 1, eos: 2 } as const;

export function maskId(tokenizer: ByteLevelBpeTokenizer): number {
  const id = tokenizer.id('<mask>');
  if (!(id >= 0)) throw new Error('the tokenizer has no <mask> token');
  return id;
}

/** The ITC queue, or none for a size of 0 (in-batch ITC: coarsePretrainObjective without a queue). */
export function optionalItcQueue(options: ItcQueueOptions): ItcQueue | undefined {
  return options.size === 0 ? undefined : new ItcQueue(options);
}

/** transformers' AdamW over FIBER's coarse groups, warm-up 10% then linear decay. */
export function coarseTrainer<B>(
  model: FiberCoarseModel,
  objective: Objective<FiberCoarseModel, B>,
  s: StageSettings,
  rngs: Record<string, Generator>,
): Trainer<FiberCoarseModel, B> {
  const optimizer = new AdamW(
    fiberCoarseParamGroups(model.namedParameters(), {
      lr: s.lr,
      weightDecay: 0.01,
      lrMultHead: s.lrMultHead,
    }),
    {
      betas: [0.9, 0.98],
      eps: 1e-8,
      variant: 'transformers',
    },
  );
  return new Trainer({
    model,
    objective,
    optimizer,
    rngs,
    schedule: coarseSchedule({ maxSteps: s.steps, warmupSteps: 0.1, lr: s.lr }),
  });
}

/**
 * Coarse pre-training, starting from `init` (the unimodal pre-training's Swin and text-encoder weights) when given;
 * returns the pre-trained model (ITC, ITM, MLM heads) and a snapshot of its weights.
 */
export async function pretrainCoarse(
  ctx: RunContext,
  config: FiberCoarseConfig,
  init?: Map<string, tf.Tensor>,
): Promise<{ model: FiberCoarseModel; snapshot: Map<string, tf.Tensor> }> {
  const { preset, world, tokenizer } = ctx;
  const rngs = { model: seedRng(ctx, 1), negatives: seedRng(ctx, 2), mlm: seedRng(ctx, 3) };
  const model = new FiberCoarseModel(config, 'pretrain', rngs.model);
  if (init) model.loadStateDict(init, { strict: false });
  const queue = optionalItcQueue({
    hiddenSize: config.hiddenSize,
    size: preset.model.queueSize,
    imageSize: preset.model.imageSize,
    maxTextLen: preset.model.maxTextLen,
    rng: seedRng(ctx, 4),
  });
  const objective = coarsePretrainObjective({
    queue,
    collator: { vocabSize: tokenizer.vocabSize, maskId: maskId(tokenizer), specialIds: Object.values(SPECIAL_IDS) },
  });
  const trainer = coarseTrainer(model, objective, preset.coarse, rngs);
  const data = seedRng(ctx, 5);
  try {
    await trainStage(ctx, {
      name: 'coarse pre-training',
      trainer,
      steps: preset.coarse.steps,
      batch: () => {
        const idx = sampleIndices(world.size('train'), preset.coarse.batchSize, data);
        const pairs = captionPairs(world, 'train', idx, data);
        const text = encodeTexts(tokenizer, pairs.texts, preset.model.maxTextLen);
        return {
          pixels: coarsePixels(world, 'train', idx, preset.model.imageSize),
          textIds: text.ids,
          textMasks: text.mask,
        };
      },
    });
    return { model, snapshot: snapshotState(model) };
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    trainer.optimizer.dispose();
    queue?.dispose();
  }
}

/** A coarse model with `heads`, its backbone (and any head it shares) loaded from the snapshot. */
export function taskModel(
  config: FiberCoarseConfig,
  heads: CoarseHeadsSelection,
  snapshot: Map<string, tf.Tensor> | undefined,
  rng: Generator,
): FiberCoarseModel {
  const model = new FiberCoarseModel(config, heads, rng);
  if (snapshot) {
    const names = new Set(model.stateDict().keys());
    model.loadStateDict(new Map([...snapshot].filter(([k]) => names.has(k))), { strict: false });
  }
  return model;
}

export const NO_HEADS: CoarseHeadsSelection = {
  itc: false,
  itm: false,
  mlm: false,
  vqaLabels: 0,
  nlvr2: false,
  caption: false,
};

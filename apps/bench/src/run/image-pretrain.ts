// Unimodal image pre-training: the stand-in, on the built-in world, for the ImageNet-pretrained Swin
// FIBER starts from (fiber-spec §2.1: the backbones are never trained from scratch). The coarse
// model's Swin and a temporary cosine classifier learn the attributes present in each scene (shapes,
// colours, textures, sizes, object count) with a multi-label BCE; the classifier is dropped and the
// Swin's weights (`vit_model.*`) seed every model that follows. Without it the tiny Swin learns
// nothing general within the budget: a contrastive loss from scratch collapses both encoders' pooled
// features onto one direction (the ITC loss then sits at log(B + Q)).
import type { FiberCoarseConfig } from '@fiber-vl/fusion';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { Linear, Module, l2Normalize, tf } from '@fiber-vl/tensor-core';
import { AdamW, COLOURS, SHAPES, SIZES, TEXTURES, type Objective, Trainer, coarseSchedule } from '@fiber-vl/trainer';
import type { Split, World } from '@fiber-vl/trainer';
import { type RunContext, seedRng, snapshotState, trainStage } from './context.js';
import { coarsePixels, sampleIndices } from './data.js';
import { NO_HEADS } from './coarse-model.js';

/** Largest object count with a label of its own ("4 or more" above it). */
const MAX_COUNT = 4;
export const ATTRIBUTE_LABELS =
  SHAPES.length + COLOURS.length + TEXTURES.length + SIZES.length + MAX_COUNT + COLOURS.length * SHAPES.length;

/**
 * Multi-hot attributes of scenes: [n, ATTRIBUTE_LABELS] (shape, colour, texture, size present;
 * object count one-hot; colour-shape pairs present, so that the features bind a colour to its shape).
 */
export function attributeLabels(world: World, split: Split, indices: number[]): tf.Tensor2D {
  const colour = SHAPES.length;
  const texture = colour + COLOURS.length;
  const size = texture + TEXTURES.length;
  const count = size + SIZES.length;
  const pair = count + MAX_COUNT;
  const rows = indices.map((i) => {
    const v = new Array<number>(ATTRIBUTE_LABELS).fill(0);
    const objects = world.sample(split, i).scene.objects;
    for (const o of objects) {
      v[SHAPES.indexOf(o.shape)] = 1;
      v[colour + COLOURS.indexOf(o.colour)] = 1;
      v[texture + TEXTURES.indexOf(o.texture)] = 1;
      v[size + SIZES.indexOf(o.size)] = 1;
      v[pair + COLOURS.indexOf(o.colour) * SHAPES.length + SHAPES.indexOf(o.shape)] = 1;
    }
    v[count + Math.min(objects.length, MAX_COUNT) - 1] = 1;
    return v;
  });
  return tf.tensor2d(rows, [indices.length, ATTRIBUTE_LABELS]);
}

/** Logit scale of the cosine classifier (measured best of 8, 16, 24). */
const COSINE_SCALE = 8;

/**
 * The coarse model's Swin (so its keys are the coarse model's `vit_model.*`) with a cosine
 * classifier on its mean-pooled, normed output: logit = 8 cos(w_k, feature) + b_k. With a plain
 * linear classifier the pooled features of all scenes end up with cosine 0.99 to each other (the
 * classifier reads a small difference on a large common part), and the coarse ITC, which compares
 * directions, cannot tell the images apart; with the cosine classifier they are at 0.4-0.7, and
 * the held-out attribute BCE is lower too (0.340 vs 0.372 at 300 steps, measured).
 */
class AttributeClassifier extends Module {
  readonly vitModel: FiberCoarseModel['vitModel'];
  readonly classifier: Linear;
  /** The coarse model the Swin belongs to (not a child: only the Swin trains). */
  readonly #owner: FiberCoarseModel;
  constructor(config: FiberCoarseConfig, ctx: RunContext) {
    super();
    this.#owner = new FiberCoarseModel(config, NO_HEADS, seedRng(ctx, 1));
    this.vitModel = this.#owner.vitModel;
    const { embedDim, depths } = config.swin;
    this.classifier = new Linear(embedDim * 2 ** (depths.length - 1), ATTRIBUTE_LABELS, { rng: seedRng(ctx, 60) });
  }
  logits(pixels: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const out = this.vitModel.forward(pixels);
      if (!out.lastHiddenState) throw new Error('image pre-training: the Swin gave no final norm output');
      const pooled = l2Normalize(tf.mean(out.lastHiddenState, 1));
      const weight = l2Normalize(this.classifier.weight.value);
      return tf.add(tf.mul(tf.matMul(pooled, weight, false, true), COSINE_SCALE), this.classifier.bias!.value);
    });
  }
  override dispose(): void {
    this.classifier.dispose();
    this.#owner.dispose();
  }
}

interface AttributeBatch {
  pixels: tf.Tensor;
  labels: tf.Tensor;
}

const attributeObjective: Objective<AttributeClassifier, AttributeBatch> = async (model, b, ctx) => {
  await ctx.loss('attributes', () => tf.losses.sigmoidCrossEntropy(b.labels, model.logits(b.pixels)));
};

/**
 * Trains the Swin on the world's train scenes; returns copies of its weights under the coarse
 * model's keys (`vit_model.*`; the caller disposes them).
 */
export async function pretrainImage(ctx: RunContext, config: FiberCoarseConfig): Promise<Map<string, tf.Tensor>> {
  const { preset, world } = ctx;
  const s = preset.image;
  const model = new AttributeClassifier(config, ctx);
  const optimizer = new AdamW([{ params: model.namedParameters(), lr: s.lr, weightDecay: 0.05 }], {
    betas: [0.9, 0.999],
    variant: 'torch',
  });
  const trainer = new Trainer<AttributeClassifier, AttributeBatch>({
    model,
    objective: attributeObjective,
    optimizer,
    schedule: coarseSchedule({ maxSteps: s.steps, warmupSteps: 0.1, lr: s.lr }),
  });
  const data = seedRng(ctx, 61);
  try {
    await trainStage(ctx, {
      name: 'image pre-training (scene attributes)',
      trainer,
      steps: s.steps,
      batch: () => {
        const idx = sampleIndices(world.size('train'), s.batchSize, data);
        return {
          pixels: coarsePixels(world, 'train', idx, preset.model.imageSize),
          labels: attributeLabels(world, 'train', idx),
        };
      },
    });
    const heldOut = tf.tidy(() => {
      const idx = Array.from({ length: Math.min(128, world.size('val')) }, (_, i) => i);
      const labels = attributeLabels(world, 'val', idx);
      const bce = tf.losses.sigmoidCrossEntropy(
        labels,
        model.logits(coarsePixels(world, 'val', idx, preset.model.imageSize)),
      );
      // the prior: every label predicted at its train frequency
      const p = tf.clipByValue(
        tf.mean(attributeLabels(world, 'train', sampleIndices(world.size('train'), 512, seedRng(ctx, 64))), 0),
        1e-4,
        1 - 1e-4,
      );
      const prior = tf.neg(tf.mean(tf.add(tf.mul(labels, tf.log(p)), tf.mul(tf.sub(1, labels), tf.log(tf.sub(1, p))))));
      return [bce.dataSync()[0], prior.dataSync()[0]];
    });
    ctx.log(
      `[seed ${ctx.seed}] image pre-training: held-out attribute BCE ${heldOut[0].toFixed(3)} (prior ${heldOut[1].toFixed(3)})`,
    );
    return snapshotState(model, 'vit_model.');
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

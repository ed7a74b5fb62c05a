// Linear probes of the image backbone: which object attributes the Swin's features carry at each
// object's centre (the centre of its visible box) in the outputs of the stages that feed the fine
// model's P3 and P4 (stride 8 and 16; here the coarse model's Swin on its square input, image
// only). A softmax regression per attribute is fitted on train scenes and scored on test scenes.
// The run probes the Swin after the image pre-training (the stand-in for ImageNet) and after the
// coarse stage: detection prompts name shapes, so a backbone whose features do not tell the shapes
// apart caps what the fine stage can learn (apps/bench/MEASUREMENTS.md, "A Swin blind to shape").
import type { FiberCoarseConfig } from '@fiber-vl/fusion';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { stageResolutions } from '@fiber-vl/swin';
import { tf } from '@fiber-vl/tensor-core';
import { COLOURS, SHAPES, SIZES, type Split, TEXTURES, type World } from '@fiber-vl/trainer';
import { NO_HEADS } from './coarse-model.js';
import { chunks, type RunContext, seedRng } from './context.js';
import { concatF32 } from '../eval/tasks/common.js';
import { scenePixels, visibleObjectCells } from './data.js';
import { PROBE_ATTRIBUTE_IDS as PROBE_ATTRIBUTES } from './schema.js';

export type ProbeAttribute = (typeof PROBE_ATTRIBUTES)[number];
const CLASSES: Record<ProbeAttribute, readonly string[]> = {
  shape: SHAPES,
  colour: COLOURS,
  texture: TEXTURES,
  size: SIZES,
};

/** Swin stages probed: their last block output has stride 4 * 2^stage (8 and 16). */
const PROBE_STAGES = [1, 2];
/** Train scenes the probes are fitted on (at most). */
const PROBE_TRAIN_SCENES = 800;

export interface ProbeResult {
  /** The weights probed, e.g. "image pre-training". */
  model: string;
  stride: number;
  attribute: ProbeAttribute;
  /** Test accuracy of the probe. */
  accuracy: number;
  /** The better of a uniform guess and always answering the train split's most frequent class. */
  chance: number;
}

interface ObjectFeatures {
  /** Per probed stage: [objects, C] features at the objects' centre cells. */
  features: Float32Array[];
  widths: number[];
  /** Per attribute: the class index of each object. */
  labels: Record<ProbeAttribute, number[]>;
}

/**
 * Features of the visible objects (less than half hidden) of the first `n` scenes of `split`, at the
 * cell that holds the centre of each object's visible box.
 */
function objectFeatures(swin: FiberCoarseModel['vitModel'], world: World, split: Split, n: number): ObjectFeatures {
  const imageSize = swin.config.imageSize;
  const grids = stageResolutions(swin.config);
  const parts: Float32Array[][] = PROBE_STAGES.map(() => []);
  const widths = PROBE_STAGES.map(() => 0);
  const labels = Object.fromEntries(PROBE_ATTRIBUTES.map((a) => [a, [] as number[]])) as ObjectFeatures['labels'];
  for (const [start, end] of chunks(n, 32)) {
    const scenes = Array.from({ length: end - start }, (_, i) => world.scene(split, start + i));
    const { objects, rows } = visibleObjectCells(
      scenes,
      PROBE_STAGES.map((stage) => grids[stage]),
    );
    for (const o of objects) for (const a of PROBE_ATTRIBUTES) labels[a].push(CLASSES[a].indexOf(o[a]));
    const gathered = tf.tidy(() => {
      const out = swin.forward(scenePixels(scenes, imageSize), { collect: true });
      return PROBE_STAGES.map((stage, k) => {
        const cells = out.blocks?.[stage].at(-1);
        if (!cells) throw new Error(`probe: the Swin gave no block output for stage ${stage}`);
        widths[k] = cells.shape[2] ?? 0;
        return tf.gather(tf.reshape(cells, [-1, widths[k]]), tf.tensor1d(rows[k], 'int32'));
      });
    });
    gathered.forEach((t, k) => parts[k].push(t.dataSync() as Float32Array));
    tf.dispose(gathered);
  }
  return { features: parts.map(concatF32), widths, labels };
}

/** Full-batch softmax regression on standardised features (Adam, L2 1e-3); test accuracy. */
function fitProbe(
  train: { x: Float32Array; y: number[] },
  test: { x: Float32Array; y: number[] },
  width: number,
  classes: number,
): number {
  const weight = tf.tidy(() => tf.variable(tf.zeros([width, classes])));
  const bias = tf.tidy(() => tf.variable(tf.zeros([classes])));
  const optimizer = tf.train.adam(0.05);
  const held: tf.Tensor[] = [];
  try {
    const [xTrain, yTrain, mean, sd] = tf.tidy(() => {
      const x = tf.tensor2d(train.x, [train.y.length, width]);
      const { mean, variance } = tf.moments(x, 0);
      const sd = tf.sqrt(tf.add(variance, 1e-6));
      return [tf.div(tf.sub(x, mean), sd), tf.oneHot(tf.tensor1d(train.y, 'int32'), classes), mean, sd];
    });
    held.push(xTrain, yTrain, mean, sd);
    for (let i = 0; i < 200; i++) {
      optimizer.minimize(
        () =>
          tf.add(
            tf.losses.softmaxCrossEntropy(yTrain, tf.add(tf.matMul(xTrain, weight), bias)),
            tf.mul(1e-3, tf.sum(tf.square(weight))),
          ) as tf.Scalar,
        false,
        [weight, bias],
      );
    }
    const predicted = tf.tidy(() => {
      const x = tf.div(tf.sub(tf.tensor2d(test.x, [test.y.length, width]), mean), sd);
      return tf.argMax(tf.add(tf.matMul(x, weight), bias), 1);
    });
    held.push(predicted);
    const p = predicted.dataSync();
    return test.y.filter((y, i) => p[i] === y).length / Math.max(1, test.y.length);
  } finally {
    optimizer.dispose();
    tf.dispose([weight, bias, ...held]);
  }
}

/**
 * The better of a uniform guess (1 / classes) and always answering the train split's most frequent
 * class (held-out compositions can make that class rare in test).
 */
function chanceAccuracy(train: number[], test: number[], classes: number): number {
  const counts = new Map<number, number>();
  for (const y of train) counts.set(y, (counts.get(y) ?? 0) + 1);
  const top = [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0];
  return Math.max(1 / classes, test.filter((y) => y === top).length / Math.max(1, test.length));
}

/**
 * Probes the Swin weights (`vit_model.*`) of `state` on every attribute at strides 8 and 16:
 * fitted on the first train scenes, scored on the first `evalScenes` test scenes.
 */
export function probeBackbone(
  ctx: RunContext,
  config: FiberCoarseConfig,
  state: Map<string, tf.Tensor>,
  model: string,
): ProbeResult[] {
  const { world, preset } = ctx;
  const holder = new FiberCoarseModel(config, NO_HEADS, seedRng(ctx, 71)); // every Swin weight is loaded below
  try {
    const { missingKeys } = holder.loadStateDict(new Map([...state].filter(([k]) => k.startsWith('vit_model.'))), {
      strict: false,
    });
    const missing = missingKeys.filter((k) => k.startsWith('vit_model.'));
    if (missing.length)
      throw new Error(
        `probe (${model}): the weights have no ${missing.slice(0, 3).join(', ')} (${missing.length} Swin tensors)`,
      );
    holder.eval();
    const train = objectFeatures(holder.vitModel, world, 'train', Math.min(world.size('train'), PROBE_TRAIN_SCENES));
    const test = objectFeatures(holder.vitModel, world, 'test', Math.min(world.size('test'), preset.evalScenes));
    const results = PROBE_STAGES.flatMap((stage, k) =>
      PROBE_ATTRIBUTES.map((attribute) => ({
        model,
        stride: holder.vitModel.config.patchSize * 2 ** stage,
        attribute,
        accuracy: fitProbe(
          { x: train.features[k], y: train.labels[attribute] },
          { x: test.features[k], y: test.labels[attribute] },
          train.widths[k],
          CLASSES[attribute].length,
        ),
        chance: chanceAccuracy(train.labels[attribute], test.labels[attribute], CLASSES[attribute].length),
      })),
    );
    ctx.log(
      `[seed ${ctx.seed}] backbone probe after ${model}: ${results.map((r) => `${r.attribute}@${r.stride} ${r.accuracy.toFixed(2)} (${r.chance.toFixed(2)})`).join(', ')}`,
    );
    return results;
  } finally {
    holder.dispose();
  }
}

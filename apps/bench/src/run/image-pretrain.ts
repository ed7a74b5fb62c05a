// Unimodal image pre-training: the stand-in, on the built-in world, for the ImageNet-pretrained Swin
// FIBER starts from (fiber-spec §2.1: the backbones are never trained from scratch). The coarse
// model's Swin and three temporary heads learn (1) the attributes present in each scene (shapes,
// colours, textures, sizes, object count) with a multi-label BCE through a cosine classifier,
// (2) what is at a cell of the stage outputs at stride 8 and 16: the shape of each visible object at
// the cell of its centre, and the background kind at one object-free cell per scene, and (3) the
// background kind at every cell of the final grid (stride 32; it trains the last stage only), at
// a low weight. The heads are dropped and the Swin's weights (`vit_model.*`) seed every model that
// follows. Without it the tiny Swin learns nothing general within the budget: a contrastive loss
// from scratch collapses both encoders' pooled features onto one direction (the ITC loss then sits
// at log(B + Q)).
//
// Why the object term, and only for shape (measured on seed 0, linear probes of probe.ts): with the
// scene BCE alone the Swin's features at the object centres read colour (0.96) but not shape (0.15,
// chance 0.17), and the detection classes are shapes. A windowed transformer this small learns shape
// slowly where a CNN is fast (the same centre-cell task in PyTorch after 600 steps: a 4-layer CNN
// 0.91, the reference Swin 0.35), so it gets the most direct signal: each object's shape where the
// fine model reads it, from a pool of 40k scenes (no over-fitting to the 3k train scenes), at a high
// lr for 1800 steps: the stride-16 probe reads shape at 0.70 (0.58 after 1200; 0.61-0.62 since the
// cells include the background cells below, which share the term's mean). Adding the objects'
// colour to this term undoes it (shape 0.20-0.22 after 1200 steps; colour, the easier signal,
// takes over).
//
// Why the background cells: the captions name the background ("on a noisy background"), and with the
// background kind among the scene attributes alone the Swin did not learn it (a probe of its pooled
// stages read it for 38-50% of the test images, chance 33%, where two pixel statistics give 96.5%)
// and the captions named it at chance. Classified at an object-free cell, it is learned: on seed 0
// the captions name the right background for 60% of the test images (35% before).
//
// Why the final grid's background too: the captioner reads the image through the final grid (the
// tokens the fused text layers cross-attend to), and the stride-8 and stride-16 cells did not carry
// the background all the way there: seed 1's captions named it for 42% of the test images. The
// term trains only the merging into the last stage, the last stage and the final norm (the finer
// stages feed the fine model, and a final-grid term through every stage lowered REC and VQA). See
// FINAL_BACKGROUND_WEIGHT.
import type { FiberCoarseConfig } from '@fiber-vl/fusion';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { Linear, Module, ModuleList, detach, l2Normalize, tf } from '@fiber-vl/tensor-core';
import { type SwinOutput, type SwinState, stageResolutions } from '@fiber-vl/swin';
import {
  AdamW,
  BACKGROUNDS,
  COLOURS,
  SHAPES,
  SIZES,
  TEXTURES,
  type Objective,
  type Scene,
  Trainer,
  World,
  coarseSchedule,
} from '@fiber-vl/trainer';
import { type RunContext, seedRng, snapshotState, trainStage } from './context.js';
import { objectFreeCells, sampleIndices, scenePixels, visibleObjectCells } from './data.js';
import { NO_HEADS } from './coarse-model.js';

/** Largest object count with a label of its own ("4 or more" above it). */
const MAX_COUNT = 4;
export const ATTRIBUTE_LABELS =
  SHAPES.length + COLOURS.length + TEXTURES.length + SIZES.length + MAX_COUNT + COLOURS.length * SHAPES.length;

/**
 * Multi-hot attributes of scenes: [n, ATTRIBUTE_LABELS] (shape, colour, texture, size present;
 * object count one-hot; colour-shape pairs present, so that the features bind a colour to its shape).
 */
export function attributeLabels(scenes: readonly Scene[]): tf.Tensor2D {
  const colour = SHAPES.length;
  const texture = colour + COLOURS.length;
  const size = texture + TEXTURES.length;
  const count = size + SIZES.length;
  const pair = count + MAX_COUNT;
  const rows = scenes.map(({ objects }) => {
    const v = new Array<number>(ATTRIBUTE_LABELS).fill(0);
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
  return tf.tensor2d(rows, [scenes.length, ATTRIBUTE_LABELS]);
}

/**
 * Swin stages whose last block output (stride 8 and 16: what feeds the fine model's P3 and P4)
 * names what is at a cell: an object's shape at its centre, the background kind at a free cell.
 */
const CELL_STAGES = [1, 2];

/** What a cell is classified as: an object's shape (at its centre), or the background kind (at an object-free cell). */
const CELL_CLASSES = SHAPES.length + BACKGROUNDS.length;

/**
 * Weight of the final grid's background term (its gradient stopped at the output of the stage
 * before the last). Full runs, both seeds: with it, METEOR 0.336 and REC 0.457 clear their margins
 * (0.324 and 0.461 without); through every stage at the same weight, METEOR 0.338 but REC 0.451,
 * under its margin, and VQA 0.380 (0.409 without); at 0.3 through every stage (chain up to the
 * caption fine-tune) the easy background took over the final features (ITC i2t R@1 0.06 / 0.08
 * against 0.13 / 0.13). 0.05 was chosen with the gradient through every stage and not swept with it
 * stopped. apps/bench/MEASUREMENTS.md (*What changed, measured*) has the rest.
 */
const FINAL_BACKGROUND_WEIGHT = 0.05;

/** Logit scale of the cosine classifier (measured best of 8, 16, 24). */
const COSINE_SCALE = 8;

/**
 * The coarse model's Swin (so its keys are the coarse model's `vit_model.*`) with the heads of the
 * image pre-training:
 * - a cosine classifier of the scene attributes on its mean-pooled, normed output: logit =
 *   8 cos(w_k, feature) + b_k. With a plain linear classifier the pooled features of all scenes
 *   end up with cosine 0.99 to each other (the classifier reads a small difference on a large
 *   common part), and the coarse ITC, which compares directions, cannot tell the images apart;
 *   with the cosine classifier they are at 0.4-0.7, and the held-out attribute BCE is lower too
 *   (0.340 vs 0.372 at 300 steps, measured);
 * - per CELL_STAGES entry, a linear classifier of what is at a cell of the stage's output: the
 *   shape at an object's centre cell, the background kind at an object-free cell;
 * - a linear classifier of the background kind at every cell of the final, normed output (the
 *   tokens that are pooled for the attributes).
 */
export class AttributeClassifier extends Module {
  readonly vitModel: FiberCoarseModel['vitModel'];
  readonly classifier: Linear;
  /** Per CELL_STAGES entry: the classifier of a cell (SHAPES, then BACKGROUNDS). */
  readonly cellClass: ModuleList<Linear>;
  /** The background kind (BACKGROUNDS) at a cell of the final, normed output. */
  readonly cellBackground: Linear;
  /** The coarse model the Swin belongs to (not a child: only the Swin trains). */
  readonly #owner: FiberCoarseModel;
  constructor(config: FiberCoarseConfig, ctx: Pick<RunContext, 'seed'>) {
    super();
    const { embedDim, depths } = config.swin;
    const deepest = Math.max(...CELL_STAGES);
    if (deepest >= depths.length)
      throw new RangeError(
        `image pre-training: cell stage ${deepest} needs a Swin of more than ${depths.length} stages`,
      );
    this.#owner = new FiberCoarseModel(config, NO_HEADS, seedRng(ctx, 1));
    this.vitModel = this.#owner.vitModel;
    this.classifier = new Linear(embedDim * 2 ** (depths.length - 1), ATTRIBUTE_LABELS, { rng: seedRng(ctx, 60) });
    this.cellClass = new ModuleList(
      CELL_STAGES.map((stage) => new Linear(embedDim * 2 ** stage, CELL_CLASSES, { rng: seedRng(ctx, 65 + stage) })),
    );
    this.cellBackground = new Linear(embedDim * 2 ** (depths.length - 1), BACKGROUNDS.length, {
      rng: seedRng(ctx, 70),
    });
  }
  /**
   * The scene-attribute logits [B, ATTRIBUTE_LABELS], per CELL_STAGES entry the logits
   * [cells, CELL_CLASSES] of the cells in `cells` (cellTargets), and the background logits
   * [B * g * g, BACKGROUNDS.length] of every cell of the final g x g grid.
   */
  outputs(
    pixels: tf.Tensor,
    cells: tf.Tensor2D,
  ): { attributes: tf.Tensor; cells: tf.Tensor[]; backgrounds: tf.Tensor2D } {
    return tf.tidy(() => {
      const out = this.vitModel.forward(pixels, { collect: true });
      if (!out.lastHiddenState) throw new Error('image pre-training: the Swin gave no final norm output');
      const rows = tf.unstack(cells);
      const cellLogits = CELL_STAGES.map((stage, k) => {
        const stageOut = out.blocks?.[stage].at(-1);
        if (!stageOut) throw new Error(`image pre-training: the Swin gave no output for stage ${stage}`);
        const flat = tf.reshape(stageOut, [-1, stageOut.shape[stageOut.shape.length - 1]]);
        return this.cellClass.at(k).forward(tf.gather(flat, rows[k]));
      });
      const tokens = this.#finalTokensFromDetachedInput(out);
      const backgrounds = this.cellBackground.forward(tf.reshape(tokens, [-1, tokens.shape[tokens.shape.length - 1]]));
      return {
        attributes: this.#classify(out.lastHiddenState),
        cells: cellLogits,
        backgrounds: backgrounds as tf.Tensor2D,
      };
    });
  }
  /**
   * The scene attributes' BCE, plus the cells' cross-entropy at every CELL_STAGES entry, plus
   * FINAL_BACKGROUND_WEIGHT x the final grid's background cross-entropy.
   */
  loss(b: AttributeBatch): tf.Scalar {
    return tf.tidy(() => {
      const { attributes, cells, backgrounds } = this.outputs(b.pixels, b.cells);
      // a batch without a cell (not seen in practice) trains the attributes only
      const terms = b.classes.shape[0] ? cells.map((logits) => tf.losses.softmaxCrossEntropy(b.classes, logits)) : [];
      const background = tf.mul(FINAL_BACKGROUND_WEIGHT, tf.losses.softmaxCrossEntropy(b.backgrounds, backgrounds));
      return tf.addN([tf.losses.sigmoidCrossEntropy(b.labels, attributes), ...terms, background]) as tf.Scalar;
    });
  }
  /**
   * The final, normed tokens again, from the detached output of the stage before the last: the
   * background term trains only the merging into the last stage, the last stage and the final
   * norm, not the stride-8 and stride-16 features that the fine model and the probes read. The
   * same tokens as the forward's own as long as those layers draw nothing at random (the run's
   * Swin has no dropout and no drop path).
   */
  #finalTokensFromDetachedInput(out: SwinOutput): tf.Tensor {
    const swin = this.vitModel;
    const last = swin.config.depths.length - 1;
    const input = out.blocks?.[last - 1].at(-1);
    if (!input) throw new Error(`image pre-training: the Swin gave no output for stage ${last - 1}`);
    const side = stageResolutions(swin.config)[last - 1];
    let state: SwinState = { hidden: detach(input), grid: [side, side] };
    for (const s of swin.steps)
      if (s.stage === last || (s.stage === last - 1 && s.kind === 'stageEnd')) state = swin.step(s, state);
    return swin.finalNorm(state);
  }
  #classify(lastHiddenState: tf.Tensor): tf.Tensor {
    const pooled = l2Normalize(tf.mean(lastHiddenState, 1));
    const weight = l2Normalize(this.classifier.weight.value);
    return tf.add(tf.mul(tf.matMul(pooled, weight, false, true), COSINE_SCALE), this.classifier.bias!.value);
  }
  override dispose(): void {
    this.classifier.dispose();
    this.cellClass.dispose();
    this.cellBackground.dispose();
    this.#owner.dispose();
  }
}

interface CellTargets {
  /** [CELL_STAGES.length, cells]: the row of each cell among the stage's [B * g * g] cells. */
  cells: tf.Tensor2D;
  /** [cells, CELL_CLASSES] one-hot: an object's shape, or SHAPES.length + the background kind. */
  classes: tf.Tensor2D;
  /** [B * g * g, BACKGROUNDS.length] one-hot: the scene's background kind at each cell of the final g x g grid. */
  backgrounds: tf.Tensor2D;
}

interface AttributeBatch extends CellTargets {
  pixels: tf.Tensor;
  labels: tf.Tensor;
}

/**
 * The cells of a batch of `scenes` in the Swin's stage outputs that the image pre-training
 * classifies: the centre of each visible object's box (less than half hidden, as in the probe),
 * labelled with its shape, then per scene one cell of the coarsest grid that no object touches
 * (hidden ones included; at the finer grid, a cell inside it), labelled with the background kind;
 * and every cell of the final grid, labelled with its scene's background kind.
 */
export function cellTargets(scenes: readonly Scene[], config: FiberCoarseConfig): CellTargets {
  const grids = stageResolutions(config.swin);
  const stageGrids = CELL_STAGES.map((stage) => grids[stage]);
  const { objects, rows } = visibleObjectCells(scenes, stageGrids);
  const free = objectFreeCells(scenes, stageGrids);
  const cells = rows.map((r, k) => [...r, ...free.rows[k]]);
  const classes = [
    ...objects.map((o) => SHAPES.indexOf(o.shape)),
    ...free.scenes.map((b) => SHAPES.length + BACKGROUNDS.indexOf(scenes[b].background.kind)),
  ];
  const finalCells = grids[grids.length - 1] ** 2;
  const backgrounds = scenes.flatMap((scene) =>
    new Array<number>(finalCells).fill(BACKGROUNDS.indexOf(scene.background.kind)),
  );
  return {
    cells: tf.tensor2d(cells, [CELL_STAGES.length, classes.length], 'int32'),
    classes: tf.tidy(() => tf.oneHot(tf.tensor1d(classes, 'int32'), CELL_CLASSES) as tf.Tensor2D),
    backgrounds: tf.tidy(() => tf.oneHot(tf.tensor1d(backgrounds, 'int32'), BACKGROUNDS.length) as tf.Tensor2D),
  };
}

const attributeObjective: Objective<AttributeClassifier, AttributeBatch> = async (model, b, ctx) => {
  await ctx.loss('attributes + cells', () => model.loss(b));
};

/**
 * Trains the Swin on `preset.imageScenes` scenes of the world's train distribution (its train split,
 * extended); returns copies of its weights under the coarse model's keys (`vit_model.*`; the caller
 * disposes them).
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
  // the scenes of the stand-in for ImageNet: the world's train split, extended (scene i of a split
  // depends only on the world's seed and i, so the first ones are the later stages' train scenes)
  const pool = new World({ ...world.config, splits: { ...world.config.splits, train: preset.imageScenes } });
  try {
    await trainStage(ctx, {
      name: 'image pre-training (scene attributes, object shapes, backgrounds)',
      trainer,
      steps: s.steps,
      batch: () => {
        // each scene laid out once for its pixels, its labels and its object cells
        const scenes = sampleIndices(pool.size('train'), s.batchSize, data).map((i) => pool.scene('train', i));
        return {
          pixels: scenePixels(scenes, preset.model.imageSize),
          labels: attributeLabels(scenes),
          ...cellTargets(scenes, config),
        };
      },
    });
    const heldOut = tf.tidy(() => {
      const scenes = Array.from({ length: Math.min(128, world.size('val')) }, (_, i) => world.scene('val', i));
      const labels = attributeLabels(scenes);
      const targets = cellTargets(scenes, config);
      const out = model.outputs(scenePixels(scenes, preset.model.imageSize), targets.cells);
      const bce = tf.losses.sigmoidCrossEntropy(labels, out.attributes);
      // the prior: every label predicted at its train frequency
      const p = tf.clipByValue(
        tf.mean(
          attributeLabels(
            sampleIndices(world.size('train'), 512, seedRng(ctx, 64)).map((i) => world.scene('train', i)),
          ),
          0,
        ),
        1e-4,
        1 - 1e-4,
      );
      const prior = tf.neg(tf.mean(tf.add(tf.mul(labels, tf.log(p)), tf.mul(tf.sub(1, labels), tf.log(tf.sub(1, p))))));
      const truth = tf.argMax(targets.classes, 1);
      const hits = out.cells.map((logits) => tf.equal(tf.argMax(logits, 1), truth));
      const finalHits = tf.equal(tf.argMax(out.backgrounds, 1), tf.argMax(targets.backgrounds, 1));
      return {
        finalBackground: tf.mean(tf.cast(finalHits, 'float32')).dataSync()[0],
        bce: bce.dataSync()[0],
        prior: prior.dataSync()[0],
        truth: [...truth.dataSync()],
        hits: hits.map((h) => [...h.dataSync()]),
      };
    });
    // accuracy over the object cells (their shape) and over the background cells (its kind)
    const isObject = (c: number) => c < SHAPES.length;
    const share = (hits: number[], objects: boolean) => {
      const at = heldOut.truth.flatMap((c, i) => (isObject(c) === objects ? [i] : []));
      return at.length ? at.filter((i) => hits[i]).length / at.length : Number.NaN;
    };
    const per = (objects: boolean) =>
      CELL_STAGES.map(
        (stage, k) => `${share(heldOut.hits[k], objects).toFixed(2)} at stride ${config.swin.patchSize * 2 ** stage}`,
      ).join(', ');
    ctx.log(
      `[seed ${ctx.seed}] image pre-training: held-out attribute BCE ${heldOut.bce.toFixed(3)} (prior ${heldOut.prior.toFixed(3)}), ` +
        `object shapes ${per(true)} (chance ${(1 / SHAPES.length).toFixed(2)}), ` +
        `background kind ${per(false)} and ${heldOut.finalBackground.toFixed(2)} over the final grid ` +
        `(chance ${(1 / BACKGROUNDS.length).toFixed(2)})`,
    );
    return snapshotState(model, 'vit_model.');
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

// Ablation (b): fusion in the backbone vs the same backbones without fusion blocks plus a late-fusion
// head of equal width and about as many parameters (late-fusion.ts). Both start from the unimodal
// pre-training's weights and train with the same data, steps and lr groups (FIBER's coarse groups),
// on VQA + ITM jointly (the sum of the two losses), then
// compared on VQA accuracy and ITM retrieval (text -> image R@1 over a gallery), with their
// parameters, FLOPs and time per forward.
import type { FiberCoarseConfig, FusedOutput } from '@fiber-vl/fusion';
import { type ITMHead, vqaLoss } from '@fiber-vl/heads-coarse';
import { type Generator, type Module, type Sequential, crossEntropy, disposeOutput, tf } from '@fiber-vl/tensor-core';
import {
  AdamW,
  FIBER_HEAD_NAMES,
  type Objective,
  type ParamGroup,
  Trainer,
  coarseSchedule,
  fiberCoarseParamGroups,
} from '@fiber-vl/trainer';
import { retrievalRecall } from '@fiber-vl/eval-metrics';
import { coarsePixels, encodeTexts, vqaExamples } from './data.js';
import { NO_HEADS, taskModel } from './coarse-model.js';
import { predictVqa, vqaScore, vqaTrainBatch } from './coarse-tasks.js';
import { type EvalSplit, type RunContext, chunks, scenesOf, seedRng, timedStage, trainStage } from './context.js';
import {
  LATE_BACKBONE_PREFIXES,
  LateFusionModel,
  countFlops,
  fiberFusionParameters,
  matchedLateFusionDepth,
} from './late-fusion.js';
import type { StageSettings } from './presets.js';
import type { Cost } from './report.js';

/** What both sides of the ablation have: a fused pass and the same two heads on its pooled features. */
export interface FusionModel extends Module {
  fused(pixels: tf.Tensor, inputIds: tf.Tensor, attentionMask: tf.Tensor): FusedOutput;
  vqaClassifier?: Sequential;
  itmScore?: ITMHead;
}

interface JointBatch {
  pixels: tf.Tensor;
  textIds: tf.Tensor;
  textMasks: tf.Tensor;
  targets: tf.Tensor;
  /** Images for ITM: the pair's own (label 1) or another scene's (label 0). */
  itmPixels: tf.Tensor;
  itmIds: tf.Tensor;
  itmMasks: tf.Tensor;
  itmLabels: tf.Tensor;
}

function headsOf(model: FusionModel): { vqa: Sequential; itm: ITMHead } {
  if (!model.vqaClassifier || !model.itmScore) throw new Error('fusion ablation: the model needs VQA and ITM heads');
  return { vqa: model.vqaClassifier, itm: model.itmScore };
}

function jointObjective(): Objective<FusionModel, JointBatch> {
  return async (model, b, ctx) => {
    const { vqa, itm } = headsOf(model);
    await ctx.loss('vqa', () =>
      tf.tidy(() => vqaLoss(vqa.forward(model.fused(b.pixels, b.textIds, b.textMasks).clsFeats), b.targets)),
    );
    await ctx.loss('itm', () =>
      tf.tidy(() => crossEntropy(itm.forward(model.fused(b.itmPixels, b.itmIds, b.itmMasks).clsFeats), b.itmLabels)),
    );
  };
}

/** Half the pairs matched, half with another scene's image, per batch. */
function jointBatch(ctx: RunContext, rng: Generator): JointBatch {
  const { world, tokenizer, preset } = ctx;
  const B = preset.fusionAblation.batchSize;
  const v = vqaTrainBatch(ctx, B, rng);
  const idx = Array.from({ length: B }, () => rng.nextInt(world.size('train')));
  const labels = idx.map((_, k) => (k % 2 === 0 ? 1 : 0));
  const imageOf = idx.map((i, k) =>
    labels[k] ? i : (i + 1 + rng.nextInt(world.size('train') - 1)) % world.size('train'),
  );
  const texts = idx.map((i) => {
    const caps = world.sample('train', i).captions;
    return caps[rng.nextInt(caps.length)].text;
  });
  const t = encodeTexts(tokenizer, texts, preset.model.maxTextLen);
  return {
    ...v,
    itmPixels: coarsePixels(world, 'train', imageOf, preset.model.imageSize),
    itmIds: t.ids,
    itmMasks: t.mask,
    itmLabels: tf.tensor1d(labels, 'int32'),
  };
}

/** ITM retrieval over the first `itmGallery` scenes of `split` (one caption each): R@1 both ways. */
async function itmRetrieval(
  ctx: RunContext,
  model: FusionModel,
  split: EvalSplit,
): Promise<{ t2i: number; i2t: number }> {
  const { world, tokenizer, preset } = ctx;
  const G = scenesOf(ctx, split, preset.itmGallery);
  const range = Array.from({ length: G }, (_, i) => i);
  const pixels = coarsePixels(world, split, range, preset.model.imageSize);
  const text = encodeTexts(
    tokenizer,
    range.map((i) => world.sample(split, i).captions[0].text),
    preset.model.maxTextLen,
  );
  const { itm } = headsOf(model);
  const scores = new Float32Array(G * G);
  try {
    for (const [a, b] of chunks(G * G, 64)) {
      const s = tf.tidy(() => {
        const ii = tf.tensor1d(
          Array.from({ length: b - a }, (_, k) => Math.floor((a + k) / G)),
          'int32',
        );
        const jj = tf.tensor1d(
          Array.from({ length: b - a }, (_, k) => (a + k) % G),
          'int32',
        );
        const logits = itm.forward(
          model.fused(tf.gather(pixels, ii), tf.gather(text.ids, jj), tf.gather(text.mask, jj)).clsFeats,
        );
        return tf.sub(tf.slice(logits, [0, 1], [-1, 1]), tf.slice(logits, [0, 0], [-1, 1]));
      });
      scores.set(await s.data(), a);
      s.dispose();
    }
  } finally {
    tf.dispose([pixels, text.ids, text.mask]);
  }
  const r = retrievalRecall({ rows: G, cols: G, data: scores }, range);
  return { t2i: r.t2i['R@1'] / 100, i2t: r.i2t['R@1'] / 100 };
}

/** Parameters, FLOPs and the median time of a batch-1 fused pass. */
async function costOf(ctx: RunContext, model: FusionModel, fusionParameters: number, split: EvalSplit): Promise<Cost> {
  const pixels = coarsePixels(ctx.world, split, [0], ctx.preset.model.imageSize);
  const text = encodeTexts(ctx.tokenizer, [ctx.world.sample(split, 0).captions[0].text], ctx.preset.model.maxTextLen);
  try {
    const run = () => model.fused(pixels, text.ids, text.mask);
    const flops = await countFlops(() => {
      const o = run();
      return [o.textFeats, o.imageFeats, o.clsFeats, o.text, o.image];
    });
    disposeOutput(run()); // warm-up
    const times: number[] = [];
    for (let k = 0; k < 5; k++) {
      const t0 = performance.now();
      const out = run();
      await out.clsFeats.data();
      times.push(performance.now() - t0);
      disposeOutput(out);
    }
    times.sort((a, b) => a - b);
    return { parameters: model.numParameters(), fusionParameters, gflops: flops / 1e9, ms: times[2] };
  } finally {
    tf.dispose([pixels, text.ids, text.mask]);
  }
}

export interface FusionSide {
  vqa: number;
  itmR1: number;
  cost: Cost;
}

/**
 * FIBER's coarse groups (fiber_utils.set_schedule) for either side: the backbones at the base lr,
 * the heads at lrMultHead, the fusion at 5x (FIBER's cross-modal multiplier; on the late side
 * everything that is neither a backbone nor a head: its projections, co-attention layers, norm and
 * poolers, which stand where FIBER's fusion blocks and cross-modal poolers are), weight decay off
 * for biases and norms.
 */
export function ablationParamGroups(model: FusionModel, s: StageSettings): ParamGroup[] {
  return fiberCoarseParamGroups(model.namedParameters(), {
    lr: s.lr,
    weightDecay: 0.01,
    lrMultHead: s.lrMultHead,
    ...(model instanceof LateFusionModel && {
      crossModal: (name: string) =>
        !LATE_BACKBONE_PREFIXES.some((b) => name.startsWith(b)) && !FIBER_HEAD_NAMES.some((h) => name.includes(h)),
    }),
  });
}

async function trainSide(
  ctx: RunContext,
  name: string,
  model: FusionModel,
  fusionParameters: number,
  split: EvalSplit,
): Promise<FusionSide> {
  const s = ctx.preset.fusionAblation;
  const optimizer = new AdamW(ablationParamGroups(model, s), {
    betas: [0.9, 0.98],
    variant: 'transformers',
  });
  const trainer = new Trainer<FusionModel, JointBatch>({
    model,
    objective: jointObjective(),
    optimizer,
    schedule: coarseSchedule({ maxSteps: s.steps, warmupSteps: 0.1, lr: s.lr }),
  });
  const data = seedRng(ctx, 50); // both sides see the same batches
  try {
    await trainStage(ctx, { name, trainer, steps: s.steps, batch: () => jointBatch(ctx, data) });
    model.eval();
    return await timedStage(ctx, `${name} eval${split === 'test' ? '' : ` (${split})`}`, async () => {
      const { vqa } = headsOf(model);
      const examples = vqaExamples(
        ctx.world,
        split,
        Array.from({ length: scenesOf(ctx, split, ctx.preset.evalScenes) }, (_, i) => i),
      );
      const predictions = await predictVqa(ctx, examples, (p, i, m) =>
        tf.tidy(() => vqa.forward(model.fused(p, i, m).clsFeats)),
      );
      const itm = await itmRetrieval(ctx, model, split);
      return {
        vqa: vqaScore(examples, predictions),
        itmR1: itm.t2i,
        cost: await costOf(ctx, model, fusionParameters, split),
      };
    });
  } finally {
    optimizer.dispose();
  }
}

/**
 * Both sides of ablation (b), trained from the same seed, each from the unimodal pre-training's
 * weights when `init` is given; evaluated on the test scenes, or on val to choose settings.
 */
export async function fusionAblation(
  ctx: RunContext,
  config: FiberCoarseConfig,
  init?: Map<string, tf.Tensor>,
  split: EvalSplit = 'test',
): Promise<{ fiber: FusionSide; late: FusionSide; depth: number }> {
  const labels = ctx.world.answerVocabulary.length;
  const fiber = taskModel(config, { ...NO_HEADS, itm: true, vqaLabels: labels }, init, seedRng(ctx, 51));
  const fiberFusion = fiberFusionParameters(fiber);
  const depth = matchedLateFusionDepth(config, fiberFusion);
  let fiberSide: FusionSide;
  try {
    fiberSide = await trainSide(ctx, 'ablation: fusion in the backbone', fiber, fiberFusion, split);
  } finally {
    fiber.dispose();
  }
  const late = new LateFusionModel(config, { depth, vqaLabels: labels, itm: true, rng: seedRng(ctx, 51) });
  try {
    if (init) {
      const names = new Set(late.stateDict().keys());
      late.loadStateDict(new Map([...init].filter(([k]) => names.has(k))), { strict: false });
    }
    const lateSide = await trainSide(
      ctx,
      `ablation: late fusion (${depth} layers)`,
      late,
      late.fusionParameters(),
      split,
    );
    return { fiber: fiberSide, late: lateSide, depth };
  } finally {
    late.dispose();
  }
}

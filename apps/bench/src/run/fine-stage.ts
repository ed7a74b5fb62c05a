// The fine-grained stage: a fine FIBER (fused Swin + RoBERTa, FPN, VLDyHead) trained with the ATSS
// grounding losses on the world's boxes (detection prompts; boxes of the seen classes, and the
// held-out classes the captions name as image-level labels without a box), from the coarse
// weights or from scratch (ablation a), then evaluated on the test split: REC accuracy (IoU >= 0.5),
// phrase grounding R@1/5, detection AP / AP50 (COCOeval) on the seen and the held-out classes.
import type { FiberCoarseConfig } from '@fiber-vl/fusion';
import {
  type FiberFineModel,
  FiberFinePipeline,
  alignFineStateDict,
  createFiberFineModel,
  type Detection,
} from '@fiber-vl/heads-fine';
import {
  type CocoDetection,
  type CocoEvalResult,
  type CocoGroundTruth,
  type RecSample,
  cocoEvaluate,
  recAccuracy,
} from '@fiber-vl/eval-metrics';
import type { Generator, tf } from '@fiber-vl/tensor-core';
import {
  AdamW,
  type FineGroundingBatch,
  Trainer,
  cocoGroundTruth,
  coarseSchedule,
  fineGroundingObjective,
  iou,
  randomDetectionBaseline,
  randomLabelDetectionBaseline,
} from '@fiber-vl/trainer';
import { type FineExample, detectionExamples, fineBatch } from './data.js';
import { recordClassScores } from './class-probe.js';
import type { TaskResult } from './report.js';
import { type EvalSplit, type RunContext, scenesOf, seedRng, timedStage, trainStage } from './context.js';

/** Anchors a quarter of FIBER's (32 px at stride 8): the world's objects are 14-40 px at the fine input size. */
const ANCHOR_SIZES = [32, 64, 128, 256, 512];

export function createFineModel(coarse: FiberCoarseConfig, rng: Generator): FiberFineModel {
  return createFiberFineModel(
    'tiny',
    {
      swin: {
        dropPathRate: 0,
        embedDim: coarse.swin.embedDim,
        depths: coarse.swin.depths,
        numHeads: coarse.swin.numHeads,
      },
      roberta: coarse.roberta,
      numFuseBlock: coarse.numFuseBlock,
      initializerRange: coarse.initializerRange,
      // FIBER freezes the patch embedding and stage 0 of its ImageNet-trained Swin here; this Swin
      // learns on the world's scenes only, and frozen it was no better (seed 0 only, 300 steps: REC
      // 0.371, grounding R@1 0.500, AP50 0.134, against 0.402, 0.534, 0.143 trained; ~1 s.e. gaps)
      frozenStages: -1,
      anchors: { sizes: ANCHOR_SIZES },
      // FIBER's FPN DropBlock (0.3, block 3) regularises 800 px maps over 800k steps; on these
      // 8-16 px maps in 300 steps it costs (both seeds, with -> without: REC 0.427 -> 0.454,
      // grounding R@1 0.567 -> 0.610, AP50 seen 0.269 -> 0.394, held-out 0.083 -> 0.094)
      fpn: { dropBlock: null },
    },
    rng,
  );
}

/** Loads the coarse backbone weights the way the official loader does; returns how many tensors it took. */
export function loadCoarseIntoFine(model: FiberFineModel, snapshot: Map<string, tf.Tensor>): number {
  const shapes = new Map([...model.stateDict()].map(([k, t]) => [k, { shape: t.shape }]));
  const aligned = alignFineStateDict(shapes, snapshot);
  model.loadStateDict(aligned.matched, { strict: false });
  return aligned.matched.size;
}

/** The head's outputs, trained at `lrMultOutputs` x the stage's lr (see StageSettings.lrMultOutputs). */
const BOX_OUTPUTS = /^rpn\.head\.(bbox_pred|centerness|scales)\./;
const TOKEN_ALIGNMENT = /^rpn\.head\.(dot_product_projection_text\.|bias_lang$|bias0$|log_scale$)/;

/** The classes in their world order; detection prompts always list every class (seen and held out). */
const classNames = (ctx: RunContext) => ctx.world.classes.map((c) => c.name);

/**
 * One training batch: detection prompts, each with every seen-class box of a train scene. With the
 * preset's `imageLabelWeight` the prompt lists every class and the held-out classes that the scene's
 * captions name are its image-level labels (heads-fine's `FineTarget.imageLabels`); without, it lists
 * the seen classes only ("circle. square. triangle. cross."). Measured on seed 0's coarse model (300 steps,
 * two fine seeds, scratch probes): the best box on a seen-class test object carries the right
 * one of the four names 24% of the time (chance 25%) with the captions' phrases and the referring
 * expressions in the batches as well (a third each, FIBER's GoldG next to Objects365), 31% with
 * two thirds detection prompts, 51-59% with detection prompts alone, and REC and phrase grounding
 * (never trained on) come out higher too. See apps/bench/MEASUREMENTS.md, "What changed, measured".
 */
function fineTrainExamples(ctx: RunContext, maxQueryLen: number, rng: Generator): FineExample[] {
  const { world, tokenizer, preset } = ctx;
  const seen = world.classes.filter((c) => !c.heldOut).map((c) => c.name);
  const heldOut = world.classes.filter((c) => c.heldOut).map((c) => c.name);
  // with image-level labels the prompt lists every class (as the evaluation's does), boxes of the seen ones
  const labels = preset.fine.imageLabelWeight !== undefined;
  const prompt = labels ? classNames(ctx) : seen;
  const options = labels ? { boxed: seen, captionLabels: heldOut } : {};
  const out: FineExample[] = [];
  for (let tries = 0; out.length < preset.fine.batchSize; tries++) {
    if (tries > 100 * preset.fine.batchSize)
      throw new Error(`fine stage: no train scene with an object of a seen class (${seen.join(', ') || 'none'})`);
    const scene = [rng.nextInt(world.size('train'))];
    out.push(...detectionExamples(world, 'train', scene, tokenizer, maxQueryLen, prompt, options));
  }
  return out;
}

/** Trains a fine model (from `snapshot` when given, else from scratch) with the preset's fine settings. */
export async function trainFine(
  ctx: RunContext,
  coarse: FiberCoarseConfig,
  snapshot: Map<string, tf.Tensor> | undefined,
  name: string,
): Promise<FiberFineModel> {
  const s = ctx.preset.fine;
  const model = createFineModel(coarse, seedRng(ctx, 40));
  if (snapshot)
    ctx.log(
      `[seed ${ctx.seed}] ${name}: ${loadCoarseIntoFine(model, snapshot)} backbone tensors loaded (official key alignment)`,
    );
  const maxQueryLen = model.config.backbone.maxQueryLen;
  const params = model.namedParameters().filter(([, p]) => p.requiresGrad);
  const box = (name: string) => BOX_OUTPUTS.test(name);
  const align = (name: string) => TOKEN_ALIGNMENT.test(name);
  const boxParams = params.filter(([n]) => box(n));
  const alignParams = params.filter(([n]) => align(n));
  if (!boxParams.some(([n]) => n.includes('bbox_pred')))
    throw new Error(`fine stage: no parameter matches ${BOX_OUTPUTS}`);
  if (!alignParams.some(([n]) => n.includes('dot_product_projection_text')))
    throw new Error(`fine stage: no parameter matches ${TOKEN_ALIGNMENT}`);
  const outputsLr = s.lr * (s.lrMultOutputs ?? 1);
  const groups = [
    { name: 'model', params: params.filter(([n]) => !box(n) && !align(n)), lr: s.lr, weightDecay: 0.01 },
    { name: 'box outputs', params: boxParams, lr: outputsLr, weightDecay: 0.01 },
    // no weight decay here (FIBER decays the projection's weight and log_scale; measured without)
    { name: 'token alignment', params: alignParams, lr: outputsLr, weightDecay: 0 },
  ];
  const optimizer = new AdamW(groups, { betas: [0.9, 0.999], variant: 'torch' });
  const trainer = new Trainer<FiberFineModel, FineGroundingBatch>({
    model,
    objective: fineGroundingObjective(
      s.imageLabelWeight === undefined ? {} : { loss: { imageLabelWeight: s.imageLabelWeight } },
    ),
    optimizer,
    schedule: coarseSchedule({ maxSteps: s.steps, warmupSteps: 0.1, lr: s.lr }),
    clipGradNorm: 1,
  });
  const data = seedRng(ctx, 41);
  try {
    await trainStage(ctx, {
      name,
      trainer,
      steps: s.steps,
      batch: () => {
        const b = fineBatch(fineTrainExamples(ctx, maxQueryLen, data), ctx.preset.fineImageSize);
        return { pixels: b.pixels, textIds: b.ids, textMasks: b.mask, targets: b.targets };
      },
    });
    model.eval();
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    optimizer.dispose();
  }
}

export interface FineOutcome {
  rec: { accuracy: number; baseline: number; n: number };
  grounding: { r1: number; r5: number; baselineR1: number; baselineR5: number; phrases: number };
  detection: {
    seen: { ap: number; ap50: number };
    heldOut: { ap: number; ap50: number };
    baseline: { seen: { ap: number; ap50: number }; heldOut: { ap: number; ap50: number } };
  };
  /**
   * Per class (world order) and evaluated scene, the best score of a detection under the class's name
   * (0 where none; all 0 without detection): [class][scene].
   */
  classScores: number[][];
  /** Per evaluated scene (first `galleryImages`): detections and the REC answer. */
  gallery: { scene: number; detections: Detection[]; expression: string; referred: Detection | null }[];
}

const toHalfOpen = (b: readonly number[]): [number, number, number, number] => [b[0], b[1], b[2] + 1, b[3] + 1];

/**
 * REC (every referring expression), phrase grounding (every phrase of every caption) and detection
 * on the first `evalScenes` scenes of the split: test in the run, val to choose settings
 * (`fiber-bench tune`). The gallery's scene numbers are the split's.
 */
export async function evaluateFine(
  ctx: RunContext,
  model: FiberFineModel,
  name: string,
  {
    detection = true,
    split = 'test',
  }: {
    detection?: boolean;
    /** The scenes: the first `evalScenes` of the split (all of val, which has fewer). */
    split?: EvalSplit;
  } = {},
): Promise<FineOutcome> {
  return timedStage(ctx, name, async () => {
    const { world, tokenizer, preset } = ctx;
    const scenes = scenesOf(ctx, split, preset.evalScenes);
    const size = preset.fineImageSize;
    const pipeline = new FiberFinePipeline(model, tokenizer, {
      minSize: size,
      maxSize: Math.round(size * 1.67),
      batchSize: 8, // a scene's captions or expressions in one forward
    });
    const recSamples: RecSample[] = [];
    let recFloor = 0;
    const ground = { r1: 0, r5: 0, f1: 0, f5: 0, n: 0 };
    const dets: CocoDetection[] = [];
    const gallery: FineOutcome['gallery'] = [];
    const names = classNames(ctx);
    const classScores = names.map(() => new Array<number>(scenes).fill(0));
    // R@5's floor: 5 random boxes per image, and never under R@1's floor (any ranking's R@5 is at
    // least its R@1). R@1's, a random pick among the scene's own objects, always hits at R@5: a
    // scene has at most 4 objects, so the own-object ranking's R@5 (1) cannot be a floor.
    const randomBoxes = new Map<number, [number, number, number, number][]>();
    for (const d of randomDetectionBaseline(world, split, { limit: scenes, perImage: 5, seed: 5 })) {
      const [x, y, w, h] = d.bbox;
      randomBoxes.set(d.image_id, [...(randomBoxes.get(d.image_id) ?? []), [x, y, x + w, y + h]]);
    }
    for (let i = 0; i < scenes; i++) {
      const s = world.fineGrained(world.sample(split, i));
      const image = world.image(split, i);
      const boxes = s.scene.objects.map((o) => o.box);
      let referred: Detection | null = null;
      let expression = '';
      const referredAll = await pipeline.referMany(
        image,
        s.expressions.map((e) => e.text),
      );
      for (const [k, e] of s.expressions.entries()) {
        const best = referredAll[k].best;
        if (!expression) [expression, referred] = [e.text, best];
        const [x0, y0, x1, y1] = e.box;
        const pred: [number, number, number, number] = best ? best.bbox : [0, 0, 0, 0];
        recSamples.push({ gtBox: [x0, y0, x1 - x0, y1 - y0], predBoxes: [pred] });
        recFloor += boxes.filter((b) => iou(b, e.box) >= 0.5).length / boxes.length;
      }
      const captions = s.captions.filter((c) => c.phrases.length);
      const groundedAll = await pipeline.groundMany(
        image,
        captions.map((c) => ({
          caption: c.text,
          phrases: c.phrases.map((p) => [[p.start, p.end] as [number, number]]),
        })),
      );
      for (const [n, c] of captions.entries()) {
        const r = groundedAll[n];
        c.phrases.forEach((p, k) => {
          const truth = p.objects.map((o) => boxes[o]);
          const hit = (d: Detection) => truth.some((t) => iou(toHalfOpen(d.box), t) >= 0.5);
          const ranked = r.phrases[k]?.detections ?? [];
          if (ranked.slice(0, 1).some(hit)) ground.r1++;
          if (ranked.slice(0, 5).some(hit)) ground.r5++;
          const hits = boxes.filter((b) => truth.some((t) => iou(b, t) >= 0.5)).length;
          ground.f1 += hits / boxes.length; // a random pick among the scene's objects
          if ((randomBoxes.get(i + 1) ?? []).some((b) => truth.some((t) => iou(b, t) >= 0.5))) ground.f5++;
          ground.n++;
        });
      }
      let found: Detection[] = [];
      if (detection) {
        found = (await pipeline.detect(image, names)).detections;
        for (const d of found)
          dets.push({ image_id: i + 1, category_id: world.classes[d.label.index].id, bbox: d.bbox, score: d.score });
        recordClassScores(classScores, i, found);
      }
      if (i < preset.galleryImages) gallery.push({ scene: i, detections: found.slice(0, 6), expression, referred });
    }
    const rec = recAccuracy(recSamples);
    const ap = (r: CocoEvalResult) => ({ ap: Math.max(0, r.stats.AP), ap50: Math.max(0, r.stats.AP50) });
    const detectionScores = (which: 'seen' | 'held-out', detections: CocoDetection[]) => {
      const gt = cocoGroundTruth(world, split, { limit: scenes, classes: which });
      const ids = new Set(gt.categories.map((c) => c.id));
      // a spread copy: an object type (unlike the interface) satisfies CocoGroundTruth's index signature
      const coco: CocoGroundTruth = { ...gt };
      return ap(
        cocoEvaluate(
          coco,
          detections.filter((d) => ids.has(d.category_id)),
        ),
      );
    };
    // AP (IoU 0.5:0.95) rewards box precision, which perfect boxes get for free: its floor is random
    // boxes. AP50 asks only for a box on the object: its floor is each object's own box under every
    // class name (what finding the objects without naming them scores).
    const boxFloor = randomDetectionBaseline(world, split, { limit: scenes });
    const nameFloor = randomLabelDetectionBaseline(world, split, { limit: scenes });
    const floor = (which: 'seen' | 'held-out') => ({
      ap: detectionScores(which, boxFloor).ap,
      ap50: detectionScores(which, nameFloor).ap50,
    });
    const zero = { ap: 0, ap50: 0 };
    return {
      rec: { accuracy: rec.accuracy, baseline: recFloor / recSamples.length, n: recSamples.length },
      grounding: {
        r1: ground.r1 / ground.n,
        r5: ground.r5 / ground.n,
        baselineR1: ground.f1 / ground.n,
        baselineR5: Math.max(ground.f5, ground.f1) / ground.n,
        phrases: ground.n,
      },
      detection: detection
        ? {
            seen: detectionScores('seen', dets),
            heldOut: detectionScores('held-out', dets),
            baseline: { seen: floor('seen'), heldOut: floor('held-out') },
          }
        : { seen: zero, heldOut: zero, baseline: { seen: zero, heldOut: zero } },
      classScores,
      gallery,
    };
  });
}

/** The run's rows of the fine stage (results.json's tasks), which `fiber-bench tune fine` ranks by too. */
export function fineTasks(
  outcome: FineOutcome,
): Pick<TaskResult, 'task' | 'metric' | 'value' | 'baseline' | 'higherIsBetter' | 'note'>[] {
  return [
    {
      task: 'rec',
      metric: 'accuracy (IoU>=0.5)',
      value: outcome.rec.accuracy,
      baseline: outcome.rec.baseline,
      higherIsBetter: true,
      note: `${outcome.rec.n} expressions of seen classes`,
    },
    {
      task: 'grounding',
      metric: 'R@1',
      value: outcome.grounding.r1,
      baseline: outcome.grounding.baselineR1,
      higherIsBetter: true,
      note: `${outcome.grounding.phrases} phrases`,
    },
    {
      task: 'grounding',
      metric: 'R@5',
      value: outcome.grounding.r5,
      baseline: outcome.grounding.baselineR5,
      higherIsBetter: true,
      note: "baseline: R@1's (any ranking's R@5 is at least its R@1), over 5 random boxes (5 random picks among a scene's 1-4 objects always hit)",
    },
    {
      task: 'detection',
      metric: 'AP (seen classes)',
      value: outcome.detection.seen.ap,
      baseline: outcome.detection.baseline.seen.ap,
      higherIsBetter: true,
      note: 'IoU 0.5:0.95; baseline: random boxes',
    },
    {
      task: 'detection',
      metric: 'AP50 (seen classes)',
      value: outcome.detection.seen.ap50,
      baseline: outcome.detection.baseline.seen.ap50,
      higherIsBetter: true,
      note: "baseline: every object's own box under every class name, random scores",
    },
    {
      task: 'detection',
      metric: 'AP (held-out classes)',
      value: outcome.detection.heldOut.ap,
      baseline: outcome.detection.baseline.heldOut.ap,
      higherIsBetter: true,
      note: 'classes never boxed in the fine stage',
    },
    {
      task: 'detection',
      metric: 'AP50 (held-out classes)',
      value: outcome.detection.heldOut.ap50,
      baseline: outcome.detection.baseline.heldOut.ap50,
      higherIsBetter: true,
    },
  ];
}

// One seed of the main job, start to end: world and tokenizer, coarse pre-training, the coarse
// fine-tunes and evaluations, the fine-grained stage from the coarse weights and from scratch, the
// fusion ablation; returns every metric with its baseline, the ablation pairs, loss curves, stage
// timings and (for the first seed) the report's gallery.
import { tf } from '@fiber-vl/tensor-core';
import type { Detection } from '@fiber-vl/heads-fine';
import {
  createWorld,
  pngDataUrl,
  randomCaptionBaseline,
  worldBaselines,
  worldTokenizer,
  type World,
} from '@fiber-vl/trainer';
import type { FiberCoarseConfig } from '@fiber-vl/fusion';
import { pretrainCoarse, runModelConfig } from './coarse-model.js';
import { pretrainImage } from './image-pretrain.js';
import { pretrainText } from './text-pretrain.js';
import {
  captionScores,
  evaluateRetrieval,
  trainRetrievalItm,
  fineTuneCaption,
  fineTuneNlvr2,
  fineTuneVqa,
  type RetrievalOutcome,
  type VqaOutcome,
} from './coarse-tasks.js';
import { type RunContext, type StageRecord, timedStage } from './context.js';
import { MemoWorld } from './memo-world.js';
import { evaluateFine, fineTasks, trainFine, type FineOutcome } from './fine-stage.js';
import { fusionAblation } from './fusion-ablation.js';
import { probeBackbone, type ProbeResult } from './probe.js';
import { probeMlm, type MlmProbeResult } from './mlm-probe.js';
import { classProbe, itcClassScores, type ClassProbeResult } from './class-probe.js';
import { vqaTypeResults, type VqaTypeResult } from './vqa-types.js';
import type { Log } from './progress.js';
import type { RunPreset } from './presets.js';
import type { Cost, GalleryItem, LossCurve } from './report.js';

export interface SeedMetric {
  task: string;
  metric: string;
  value: number;
  baseline: number;
  higherIsBetter: boolean;
  note?: string;
}

export interface SeedAblation {
  name: string;
  task: string;
  metric: string;
  with: number;
  without: number;
  cost?: { with: Cost; without: Cost };
}

export interface SeedResult {
  seed: number;
  seconds: number;
  tasks: SeedMetric[];
  ablations: SeedAblation[];
  /** Linear probes of the Swin after the image and the coarse pre-training (probe.ts). */
  probes: ProbeResult[];
  /** The coarse model's MLM on masked colour and shape words, with its own and another image (mlm-probe.ts). */
  mlmProbes: MlmProbeResult[];
  /** Each detection class's test images ranked by the coarse ITC and by the fine detector (class-probe.ts). */
  classProbes: ClassProbeResult[];
  /** VQA accuracy per question type, with each question's own image and another's (vqa-types.ts). */
  vqaTypes: VqaTypeResult[];
  losses: LossCurve[];
  stages: StageRecord[];
  gallery: GalleryItem[];
  world: Record<string, unknown>;
}

/**
 * The world of a run: the `small` layout at the preset's split sizes, deterministic by `seed`; it
 * keeps the scenes, samples and pairs it generates (MemoWorld). `fiber-bench train`'s built-in data
 * and the tests that build the run's world get the same.
 */
export function runWorld(preset: RunPreset, seed: number): World {
  const w = preset.world;
  const { config } = createWorld({
    seed,
    preset: 'small',
    splits: { train: w.train, val: w.val, test: w.test },
    nlvr2Pairs: { train: w.nlvr2Train, val: Math.min(w.val, w.nlvr2Train), test: w.nlvr2Test },
  });
  return new MemoWorld(config);
}

export interface SeedOptions {
  preset: RunPreset;
  /** Seed of the world (shared by every training seed). */
  worldSeed: number;
  /** Seed of the training run (model init, data order, masking, negatives). */
  seed: number;
  gallery: boolean;
  log: Log;
  onTrained?: RunContext['onTrained'];
}

/** One training seed's context, as every run builds it: the world of `worldSeed`, a BPE trained on its train text. */
export async function seedContext(
  preset: RunPreset,
  worldSeed: number,
  seed: number,
  log: Log,
  onTrained?: RunContext['onTrained'],
): Promise<RunContext> {
  const world = runWorld(preset, worldSeed);
  log(`[seed ${seed}] training a ${preset.vocabSize}-token byte-level BPE on the world's train text`);
  const tokenizer = await worldTokenizer(world, {
    vocabSize: preset.vocabSize,
    scenes: Math.min(500, preset.world.train),
  });
  return { world, tokenizer, preset, seed, log, curves: [], stages: [], onTrained };
}

/**
 * The unimodal pre-training: the Swin and text encoder every model of the seed starts from (FIBER
 * starts from ImageNet's Swin and RoBERTa). The caller disposes the weights.
 */
export async function pretrainUnimodal(ctx: RunContext, config: FiberCoarseConfig): Promise<Map<string, tf.Tensor>> {
  const unimodal = await pretrainImage(ctx, config);
  try {
    for (const [k, t] of await pretrainText(ctx, config)) unimodal.set(k, t);
    return unimodal;
  } catch (e) {
    tf.dispose([...unimodal.values()]);
    throw e;
  }
}

export async function runSeed({ preset, worldSeed, seed, gallery, log, onTrained }: SeedOptions): Promise<SeedResult> {
  const started = performance.now();
  const ctx = await seedContext(preset, worldSeed, seed, log, onTrained);
  const config = runModelConfig(preset, ctx.tokenizer.vocabSize);
  const unimodal = await pretrainUnimodal(ctx, config);
  try {
    return await runStages(ctx, config, unimodal, { gallery, started, worldSeed });
  } finally {
    tf.dispose([...unimodal.values()]);
  }
}

async function runStages(
  ctx: RunContext,
  config: FiberCoarseConfig,
  unimodal: Map<string, tf.Tensor>,
  { gallery, started, worldSeed }: { gallery: boolean; started: number; worldSeed: number },
): Promise<SeedResult> {
  const { preset, world, seed } = ctx;
  const tasks: SeedMetric[] = [];
  const ablations: SeedAblation[] = [];
  const evalFloors = worldBaselines(world, 'test', { limit: preset.evalScenes });
  const retrievalFloors = worldBaselines(world, 'test', { limit: preset.retrieval.images }).retrieval;
  const probe = (state: Map<string, tf.Tensor>, after: string) =>
    timedStage(ctx, `backbone probe (${after})`, async () => probeBackbone(ctx, config, state, after));
  const probes = await probe(unimodal, 'image pre-training');

  // 1. coarse pre-training, then retrieval: the coarse ITC, re-ranked by the ITM of a retrieval fine-tune
  const { model: coarse, snapshot } = await pretrainCoarse(ctx, config, unimodal);
  let retrieval: RetrievalOutcome;
  let mlmProbes: MlmProbeResult[];
  let itcClasses: number[][];
  let vqa: VqaOutcome;
  let vqaTypes: VqaTypeResult[];
  let captions: string[];
  let fine: FineOutcome;
  let classProbes: ClassProbeResult[];
  try {
    try {
      // the ITC candidates come from the coarse model, their ITM scores from its retrieval fine-tune
      const itm = await trainRetrievalItm(ctx, config, snapshot, coarse);
      try {
        retrieval = await timedStage(ctx, 'retrieval eval (ITC, ITC + ITM re-ranking)', () =>
          evaluateRetrieval(ctx, coarse, itm),
        );
        ctx.log(
          `[seed ${ctx.seed}] i2t R@1 re-ranked by the ITM score with the caption prior left in: ${retrieval.rawI2tR1.toFixed(3)}`,
        );
      } finally {
        itm.dispose();
      }
      mlmProbes = await timedStage(ctx, 'MLM probe (coarse pre-training)', () =>
        probeMlm(ctx, coarse, preset.evalScenes, 'coarse pre-training'),
      );
      itcClasses = await timedStage(ctx, 'class probe (coarse ITC)', () =>
        itcClassScores(ctx, coarse, preset.evalScenes),
      );
    } finally {
      coarse.dispose();
    }
    probes.push(...(await probe(snapshot, 'coarse pre-training')));
    const floor = { t2i: retrievalFloors.textToImage, i2t: retrievalFloors.imageToText };
    for (const [dir, label] of [
      ['t2i', 'text->image'],
      ['i2t', 'image->text'],
    ] as const) {
      for (const k of [1, 5, 10] as const) {
        for (const [scores, how] of [
          [retrieval.itc, 'ITC'],
          [retrieval.reranked, 'ITC+ITM'],
        ] as const) {
          tasks.push({
            task: 'retrieval',
            metric: `${dir} R@${k} (${how})`,
            value: scores[dir][`R@${k}`] / 100,
            baseline: floor[dir][`r${k}`],
            higherIsBetter: true,
            note: `${label}, ${preset.retrieval.images} test images x 5 captions${how === 'ITC+ITM' ? `, top-${preset.retrieval.rerankK} re-ranked by the retrieval fine-tune's ITM score less the caption's prior (its mean score over its ITC top ${preset.retrieval.rerankK} of these images)` : ''}`,
          });
        }
      }
      ablations.push({
        name: '(c) ITC+ITM re-ranking vs ITC only',
        task: 'retrieval',
        metric: `${dir} R@1`,
        with: retrieval.reranked[dir]['R@1'] / 100,
        without: retrieval.itc[dir]['R@1'] / 100,
      });
    }

    // 2. fine-grained pre-training from the coarse weights, and from scratch (ablation a)
    const fineModel = await trainFine(ctx, config, snapshot, 'fine-grained pre-training (from coarse)');
    try {
      fine = await evaluateFine(ctx, fineModel, 'fine eval (REC, grounding, detection)');
    } finally {
      fineModel.dispose();
    }
    classProbes = classProbe(ctx, preset.evalScenes, itcClasses, fine.classScores);
    tasks.push(...fineTasks(fine));
    const scratch = await trainFine(ctx, config, unimodal, 'ablation: fine-grained without coarse pre-training');
    let only: FineOutcome;
    try {
      only = await evaluateFine(ctx, scratch, 'ablation: fine-only eval');
    } finally {
      scratch.dispose();
    }
    for (const [task, metric, w, wo] of [
      ['rec', 'accuracy', fine.rec.accuracy, only.rec.accuracy],
      ['grounding', 'R@1', fine.grounding.r1, only.grounding.r1],
      ['detection', 'AP50 (seen classes)', fine.detection.seen.ap50, only.detection.seen.ap50],
    ] as const)
      ablations.push({ name: '(a) coarse -> fine vs fine only', task, metric, with: w, without: wo });

    // 3. the coarse fine-tunes
    vqa = await fineTuneVqa(ctx, config, snapshot);
    vqaTypes = vqaTypeResults(vqa.examples, vqa.predictions, vqa.otherPredictions, evalFloors.vqa.byType);
    ctx.log(
      `[seed ${seed}] VQA by type, own image / another (train majority): ${vqaTypes.map((t) => `${t.type} ${t.ownImage.toFixed(2)} / ${t.otherImage.toFixed(2)} (${t.majority.toFixed(2)})`).join(', ')}`,
    );
    tasks.push({
      task: 'vqa',
      metric: 'accuracy',
      value: vqa.accuracy,
      baseline: evalFloors.vqa.accuracy,
      higherIsBetter: true,
      note: `${vqa.examples.length} questions; baseline: per type, the better of the train majority answer and a uniform guess`,
    });
    const nlvr2 = await fineTuneNlvr2(ctx, config, snapshot);
    tasks.push({
      task: 'nlvr2',
      metric: 'accuracy',
      value: nlvr2.accuracy,
      baseline: evalFloors.nlvr2.accuracy,
      higherIsBetter: true,
      note: `${preset.evalScenes} pairs; baseline: majority label`,
    });
    const caption = await fineTuneCaption(ctx, config, snapshot);
    captions = caption.captions;
    // the floor is the better of a random train caption per image and the most frequent train caption for every image
    const randomFloor = captionScores(ctx, randomCaptionBaseline(world, 'test', { limit: preset.evalScenes }));
    const constant = majorityCaption(world);
    const constantFloor = captionScores(ctx, new Array<string>(preset.evalScenes).fill(constant));
    for (const [metric, key] of [
      ['BLEU-4', 'BLEU_4'],
      ['METEOR', 'METEOR_no_paraphrase'],
      ['ROUGE-L', 'ROUGE_L'],
      ['CIDEr-D', 'CIDEr_D'],
      ['SPICE_approx', 'SPICE_approx'],
    ] as const)
      tasks.push({
        task: 'caption',
        metric,
        value: caption.scores[key] ?? Number.NaN,
        baseline: Math.max(randomFloor[key] ?? Number.NaN, constantFloor[key] ?? Number.NaN),
        higherIsBetter: true,
        note:
          metric === 'BLEU-4'
            ? `beam ${preset.beamSize}; baseline: the better of a random train caption per image and "${constant}" for all`
            : metric === 'METEOR'
              ? 'without the paraphrase module'
              : undefined,
      });
  } finally {
    tf.dispose([...snapshot.values()]);
  }

  // 4. fusion in the backbone vs late fusion, both from the unimodal weights
  const fusion = await fusionAblation(ctx, config, unimodal);
  const cost = { with: fusion.fiber.cost, without: fusion.late.cost };
  ablations.push(
    {
      name: `(b) fusion in the backbone vs late fusion (${fusion.depth} layers)`,
      task: 'vqa',
      metric: 'accuracy',
      with: fusion.fiber.vqa,
      without: fusion.late.vqa,
      cost,
    },
    {
      name: `(b) fusion in the backbone vs late fusion (${fusion.depth} layers)`,
      task: 'retrieval',
      metric: `ITM t2i R@1 (${preset.itmGallery} images)`,
      with: fusion.fiber.itmR1,
      without: fusion.late.itmR1,
      cost,
    },
  );

  return {
    seed,
    seconds: (performance.now() - started) / 1000,
    tasks,
    ablations,
    probes,
    mlmProbes,
    classProbes,
    vqaTypes,
    losses: ctx.curves,
    stages: ctx.stages,
    gallery: gallery ? galleryItems(ctx, { retrieval, vqa, captions, fine }) : [],
    world: { seed: worldSeed, ...worldSummary(world) },
  };
}

/** The most frequent caption of the first 1000 train scenes (ties: the first in sort order). */
export function majorityCaption(world: World): string {
  const counts = new Map<string, number>();
  for (const s of world.samples('train', { end: 1000 }))
    for (const c of s.captions) counts.set(c.text, (counts.get(c.text) ?? 0) + 1);
  return [...counts].sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1))[0][0];
}

function worldSummary(world: World): Record<string, unknown> {
  const m = world.metadata();
  return {
    splits: m.config.splits,
    nlvr2Pairs: m.config.nlvr2Pairs,
    heldOutCompositions: m.heldOutCompositions.map(([c, s]) => `${c} ${s}`),
    classes: m.classes,
  };
}

function galleryItems(
  ctx: RunContext,
  r: { retrieval: RetrievalOutcome; vqa: VqaOutcome; captions: string[]; fine: FineOutcome },
): GalleryItem[] {
  const { world } = ctx;
  return r.fine.gallery.map((g) => {
    const s = world.sample('test', g.scene);
    const image = world.image('test', g.scene);
    const pred = (d: Detection, label: string) => ({
      box: [d.box[0], d.box[1], d.box[2] + 1, d.box[3] + 1],
      label,
      score: d.score,
      kind: 'prediction' as const,
    });
    const boxes = [
      ...s.scene.objects.map((o) => ({ box: [...o.box], label: o.shape, kind: 'truth' as const })),
      ...g.detections.filter((d) => d.score >= 0.2).map((d) => pred(d, d.label.name)),
      ...(g.referred ? [pred(g.referred, 'REC')] : []),
    ];
    const lines = [`caption: ${r.captions[g.scene] ?? ''}`, `reference: ${s.captions[0].text}`];
    const qs = r.vqa.examples.flatMap((q, i) => (q.scene === g.scene ? [i] : [])).slice(0, 2);
    for (const i of qs)
      lines.push(`Q: ${r.vqa.examples[i].question} A: ${r.vqa.predictions[i]} (truth: ${r.vqa.examples[i].answer})`);
    if (g.referred) lines.push(`REC "${g.expression}": box ${g.referred.score.toFixed(2)}`);
    const top = r.retrieval.top5[g.scene];
    if (top)
      lines.push(
        ...top.map(
          (j, k) =>
            `top-${k + 1} ${r.retrieval.texts[j] && world.sample('test', g.scene).captions.some((c) => c.text === r.retrieval.texts[j]) ? '✓' : '✗'} ${r.retrieval.texts[j]}`,
        ),
      );
    return { title: `test ${g.scene}`, png: pngDataUrl(image), width: image.width, height: image.height, boxes, lines };
  });
}

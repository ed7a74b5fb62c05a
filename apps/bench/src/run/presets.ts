// The sizes of the main job (`fiber-bench run --preset`): world, model, steps and batch sizes of every
// stage. `micro` is for tests (well under a minute), `small` (the default) fits the 20-minute budget
// on 2 cores with wasm, `base` is for bigger machines.

export type RunPresetName = 'micro' | 'small' | 'base';

export interface StageSettings {
  steps: number;
  batchSize: number;
  /** Base lr (FIBER's groups multiply it for the heads and the cross-modal parameters). */
  lr: number;
  /** lr multiplier of the task heads (FIBER: 5, and 50 in its VQA and NLVR2 fine-tunes; here 50 for VQA and ablation b). Default 5. */
  lrMultHead?: number;
  /**
   * Fine stage only: lr multiplier of the head's outputs: the box outputs (`bbox_pred`,
   * `centerness`, the per-level `scales`) and the token alignment (`dot_product_projection_text`,
   * `bias_lang`, `bias0`, `log_scale`). Default 1. With Adam a weight moves about lr per step, so a
   * 1x1 output conv of fan-in C moves its output about C x lr: the tiny head has C = 32 where
   * FIBER-B has 256, and the box deltas are further divided by the box coder's (10, 10, 5, 5). The
   * stage is 300 steps where FIBER's is 800k: at 1x the class tokens' projections stay alike
   * (cosine 0.97) and every object gets the same class name.
   */
  lrMultOutputs?: number;
  /**
   * Fine stage only (not in FIBER): with a weight, the training prompts list every class, held-out
   * ones included, and the held-out classes that a train scene's captions name are its image-level
   * labels (no box; heads-fine's `atssLoss` makes the best-scoring free anchor their positive at
   * this weight, Detic-style). Without, the prompts list the seen classes only, and the held-out
   * objects are background. Every preset sets 8.
   */
  imageLabelWeight?: number;
}

export interface RunPreset {
  name: RunPresetName;
  /** Scenes per split of the world (`small` world layout: 64-80 px images, 1-4 objects). */
  world: { train: number; val: number; test: number; nlvr2Train: number; nlvr2Test: number };
  /** Test scenes (and NLVR2 pairs) every task is evaluated on. */
  evalScenes: number;
  /** BPE vocabulary trained on the world's train text. */
  vocabSize: number;
  /**
   * Coarse model: square input side, text length and widths (a tiny FIBER). `queueSize` 0: ITC
   * within the batch, no queue (a queue without a momentum encoder holds features many steps
   * stale, and in a short run the loss falls by telling the batch from the queue, not images
   * from each other: measured, ITC stayed at log(B + Q) with Q 64 and learned without the queue).
   */
  model: { imageSize: number; maxTextLen: number; hiddenSize: number; queueSize: number };
  /** Fine-grained model input: shorter side of the image (the official transform, capped at 1.67x). */
  fineImageSize: number;
  /**
   * Unimodal image pre-training (scene attributes, object shapes, backgrounds): the stand-in for the
   * ImageNet-pretrained Swin that FIBER starts from; every model of the run starts from its Swin
   * weights.
   */
  image: StageSettings;
  /**
   * Train scenes the image pre-training draws from: the world's train split extended with scenes of
   * the same distribution (held-out compositions stay out), as ImageNet is more images than FIBER's
   * pre-training pairs.
   */
  imageScenes: number;
  /** Unimodal text pre-training (the `<s>` output names the words of a text): the stand-in for RoBERTa. */
  text: StageSettings;
  coarse: StageSettings;
  vqa: StageSettings;
  nlvr2: StageSettings;
  caption: StageSettings;
  fine: StageSettings;
  /** Fusion ablation: each architecture trained from the unimodal weights on VQA + ITM (FIBER's coarse lr groups). */
  fusionAblation: StageSettings;
  /**
   * The retrieval ITM fine-tune from the coarse model (ViLT / METER's rank loss, not FIBER's
   * `irtr_itm` recipe): `batchSize` captions per step, each in two groups (see `retrieval.negatives`).
   */
  retrievalItm: StageSettings;
  /**
   * Retrieval: test images (5 captions each), the ITC top-k re-ranked by ITM, and the negatives of
   * each group in the ITM fine-tune (the ITC-hardest images among 3 x batchSize drawn scenes, and
   * captions with one word swapped).
   */
  retrieval: { images: number; rerankK: number; negatives: number };
  /** ITM retrieval gallery of the fusion ablation (images = texts). */
  itmGallery: number;
  beamSize: number;
  /** Test images in the report's gallery. */
  galleryImages: number;
}

const stage = (steps: number, batchSize: number, lr: number): StageSettings => ({ steps, batchSize, lr });

export const RUN_PRESETS: Readonly<Record<RunPresetName, RunPreset>> = {
  micro: {
    name: 'micro',
    world: { train: 200, val: 20, test: 40, nlvr2Train: 100, nlvr2Test: 40 },
    evalScenes: 24,
    vocabSize: 400,
    model: { imageSize: 32, maxTextLen: 24, hiddenSize: 32, queueSize: 16 },
    fineImageSize: 64,
    image: stage(4, 8, 1e-3),
    imageScenes: 200,
    text: stage(4, 8, 5e-4),
    coarse: stage(6, 8, 1e-3),
    vqa: stage(4, 8, 1e-3),
    nlvr2: stage(4, 8, 1e-3),
    caption: stage(4, 8, 1e-3),
    fine: { ...stage(4, 4, 1e-3), imageLabelWeight: 8 },
    fusionAblation: stage(4, 8, 1e-3),
    retrievalItm: stage(4, 4, 1e-3),
    retrieval: { images: 16, rerankK: 3, negatives: 3 },
    itmGallery: 8,
    beamSize: 2,
    galleryImages: 3,
  },
  small: {
    name: 'small',
    world: { train: 3000, val: 100, test: 300, nlvr2Train: 1500, nlvr2Test: 200 },
    evalScenes: 200,
    vocabSize: 600,
    model: { imageSize: 64, maxTextLen: 24, hiddenSize: 64, queueSize: 0 },
    // objects of 14-30 px at 64 become 21-45 px at 96, where 32-px anchors fit and P3 is 12 x 12
    fineImageSize: 96,
    // measured on seed 0 (shape probe at stride 16 after the stage, chance 0.17): 1200 steps at 8e-3
    // 0.58, 1800 0.70; with the shape heads untrained (a bug since fixed) 600 steps at 2e-3 0.32,
    // 1200 at 2e-3 0.46, 600 / 1200 / 1800 at 8e-3 0.43 / 0.58 / 0.71
    image: stage(1800, 32, 8e-3),
    imageScenes: 40000,
    text: stage(600, 32, 3e-3),
    coarse: stage(200, 16, 1e-4),
    // FIBER's VQA recipe: heads at 50x the base lr (2e-5 there). Measured on seed 0 after the
    // coarse stage: 0.411 at 1e-4 x 50, 0.175 at 5e-4 or 1e-4 with heads at 5x (the backbone's
    // lr then rewrites the fused features). NLVR2 keeps 5x: 0.575 at 5e-4 x 5, 0.51 at 1e-4 x 50.
    // Steps chosen on the val split (seed 0's coarse model, 100 val scenes): 0.388 / 0.433 / 0.450 /
    // 0.447 after 200 / 300 / 400 / 500 steps.
    vqa: { ...stage(400, 24, 1e-4), lrMultHead: 50 },
    nlvr2: stage(120, 16, 5e-4),
    // measured on seed 0: at 150 steps beam search gives the best constant caption ("a single shape
    // on a gradient background") to every image, CIDEr-D 0.632; at 450 the captions count the
    // objects and name the background, 0.836 (600: 0.839). The layers below the fusion stay frozen
    // (fineTuneCaption), which makes a step ~30% faster. Chosen on val (2026-12-06, seeds 0 and 1,
    // each from its own coarse model; MEASUREMENTS.md, *Settings chosen on val*): 15 settings on 600
    // val scenes, the best re-scored on 1200: SPICE_approx 0.3153 at 900 steps frozen against
    // 0.3083 at 450 unfrozen (the setting before), higher on both seeds; CIDEr-D 1.283 against 1.232
    caption: stage(900, 24, 5e-4),
    // measured on seed 0, 60 test scenes: 150 steps, 64 px, box outputs at 1x: held-out GIoU loss
    // 0.52 (x2), REC 0.30; 300 steps, 96 px, box outputs at 50x: 0.29, REC 0.54, AP50 0.18. The
    // token alignment at 50x too (scratch probes: detection prompts, seed 0's coarse model, two
    // fine seeds, 200 test scenes): AP50 seen 0.39-0.42 against 0.19 for the earlier mix at 1x,
    // the right one of the four seen names on 51-59% of the seen-class objects (21% at 1x). A
    // 64 px input is worse (REC 0.40 against 0.45, boxes on 74% of objects against 96%).
    // Chosen on val (`fiber-bench tune fine --set steps=300,450 --set lrMultOutputs=50,100 --set
    // lr=5e-4,1e-3`, 2026-12-06, seeds 0 and 1, each from its own coarse model, the 100 val scenes):
    // 450 steps at 1e-3 with the outputs at 100x ranks first of the eight (mean margin 0.129: REC
    // +0.107, grounding R@1 +0.159, AP50 seen +0.377, held-out -0.127); the earlier 300 at 5e-4 x 50,
    // chosen on the test scenes above, ranks seventh (0.068). 450 steps is what the 20-minute budget
    // leaves room for: 150 more cost about 50 s for each of a seed's two fine models.
    // Image-level labels from the captions for the held-out classes (not in FIBER; Detic-style),
    // chosen on val the same way (`--set imageLabelWeight=4,8` and 16, 2026-12-06): 8 ranks first
    // (mean margin over the seven rows 0.290, 4: 0.271, 16: 0.265; without labels 0.203), held-out
    // AP50 0.545 (0.572 / 0.517) against 0.110 without, seen AP50 0.598 (0.567 without).
    fine: { ...stage(450, 8, 1e-3), lrMultOutputs: 100, imageLabelWeight: 8 },
    // FIBER's coarse groups with the VQA fine-tune's head multiplier, on both sides. VQA accuracy,
    // fusion in the backbone / late fusion (majority per type 0.329): 80 steps at a flat 5e-4 (the
    // earlier setting, both seeds) 0.101 / 0.117, neither learned; seed 0: 80 steps at 1e-4 x 50
    // 0.215 / 0.174, 150 0.366 / 0.232, 200 0.381 / 0.320; 150 at 2e-4 x 50 0.383 / 0.262. ITM
    // retrieval stays at chance on both sides in all of them. Those were test scenes; on val
    // (`fiber-bench tune fusion --set steps=100,150 --set lr=1e-4,2e-4,4e-4`, 2026-12-06, seeds 0
    // and 1) 150 steps at 2e-4 ranks first of the six by the two sides' mean VQA accuracy (0.310:
    // 0.352 / 0.268), and stays.
    fusionAblation: { ...stage(150, 24, 2e-4), lrMultHead: 50 },
    // Chosen on val (scratch, 2026-12-06: both seeds' coarse models, the world's val split
    // extended to 600 scenes as six galleries of 100, the ITC top 8 re-ranked; t2i R@1 seeds 0 / 1,
    // ITC alone 0.069 / 0.078, the coarse model's own ITM 0.040 / 0.048): image and swapped-caption
    // groups at 3e-4, 300 steps 0.065 / 0.054, 600 steps 0.069 / 0.071, and with the layers below
    // the fusion frozen 450 steps 0.064 / 0.065, 600 steps 0.079 / 0.072 (i2t, the caption prior
    // taken out, 0.089 / 0.087; left in 0.056 / 0.050). MEASUREMENTS.md, *Settings chosen on val*.
    retrievalItm: stage(600, 8, 3e-4),
    retrieval: { images: 100, rerankK: 8, negatives: 7 },
    itmGallery: 32,
    // the issue's beam 5; measured on seed 0 against beam 3: CIDEr-D 0.875 / 0.843, METEOR 0.319 /
    // 0.309, SPICE_approx 0.274 / 0.267, 3 s more
    beamSize: 5,
    galleryImages: 8,
  },
  base: {
    name: 'base',
    world: { train: 4000, val: 500, test: 500, nlvr2Train: 2000, nlvr2Test: 500 },
    evalScenes: 500,
    vocabSize: 1000,
    model: { imageSize: 128, maxTextLen: 32, hiddenSize: 128, queueSize: 256 },
    fineImageSize: 128,
    image: stage(3000, 64, 1e-3),
    imageScenes: 200000,
    text: stage(2000, 64, 5e-4),
    coarse: stage(3000, 32, 1e-4),
    vqa: { ...stage(2000, 32, 1e-4), lrMultHead: 50 },
    nlvr2: stage(1500, 32, 3e-4),
    caption: stage(2000, 32, 5e-4),
    // the image-level labels of small (not measured at this size)
    fine: { ...stage(2000, 8, 2e-4), lrMultOutputs: 50, imageLabelWeight: 8 },
    fusionAblation: { ...stage(1500, 32, 1e-4), lrMultHead: 50 }, // as the VQA fine-tune (not measured at this size)
    retrievalItm: stage(1000, 16, 3e-4), // not measured at this size
    retrieval: { images: 500, rerankK: 16, negatives: 15 },
    itmGallery: 100,
    beamSize: 5,
    galleryImages: 12,
  },
};

/** A preset by name, validated (a RangeError names the field). */
export function runPreset(name: string): RunPreset {
  if (!Object.hasOwn(RUN_PRESETS, name))
    throw new RangeError(`--preset: unknown preset "${name}" (expected ${Object.keys(RUN_PRESETS).join(', ')})`);
  return validateRunPreset(RUN_PRESETS[name as RunPresetName]);
}

/** Bounds past which a stage would run for days or allocate gigabytes before it fails. */
const MAX_STEPS = 10_000_000;
const MAX_BATCH = 4096;
const MAX_FINE_IMAGE_SIZE = 4096; // FIBER trains at 800-1333 px

export function validateRunPreset(p: RunPreset): RunPreset {
  const bad = (field: string, why: string): never => {
    throw new RangeError(`RunPreset(${p.name}).${field}: ${why}`);
  };
  const positiveInt = (field: string, v: number, max = Number.MAX_SAFE_INTEGER) => {
    if (!(Number.isSafeInteger(v) && v > 0 && v <= max))
      bad(field, `must be a positive integer${max < Number.MAX_SAFE_INTEGER ? ` up to ${max}` : ''}, got ${v}`);
  };
  for (const [k, v] of Object.entries(p.world)) positiveInt(`world.${k}`, v);
  for (const k of [
    'image',
    'text',
    'coarse',
    'vqa',
    'nlvr2',
    'caption',
    'fine',
    'fusionAblation',
    'retrievalItm',
  ] as const) {
    positiveInt(`${k}.steps`, p[k].steps, MAX_STEPS);
    positiveInt(`${k}.batchSize`, p[k].batchSize, MAX_BATCH);
    if (!(p[k].lr > 0 && p[k].lr < 1)) bad(`${k}.lr`, `must be in (0, 1), got ${p[k].lr}`);
    for (const m of ['lrMultHead', 'lrMultOutputs', 'imageLabelWeight'] as const) {
      const v = p[k][m];
      if (v !== undefined && !(v > 0 && Number.isFinite(v))) bad(`${k}.${m}`, `must be a positive number, got ${v}`);
    }
  }
  positiveInt('imageScenes', p.imageScenes);
  if (p.imageScenes < p.world.train) bad('imageScenes', `${p.imageScenes} is under world.train ${p.world.train}`);
  if (p.evalScenes > p.world.test) bad('evalScenes', `${p.evalScenes} exceeds world.test ${p.world.test}`);
  if (p.evalScenes > p.world.nlvr2Test)
    bad('evalScenes', `${p.evalScenes} exceeds world.nlvr2Test ${p.world.nlvr2Test}`);
  if (p.retrieval.images > p.world.test) bad('retrieval.images', `${p.retrieval.images} exceeds world.test`);
  if (p.retrieval.rerankK < 1 || p.retrieval.rerankK > p.retrieval.images)
    bad('retrieval.rerankK', `must be in [1, retrieval.images], got ${p.retrieval.rerankK}`);
  positiveInt('retrieval.negatives', p.retrieval.negatives);
  if (p.retrieval.negatives > 3 * p.retrievalItm.batchSize - 1)
    bad(
      'retrieval.negatives',
      `${p.retrieval.negatives} exceeds the other scenes of a step (3 x retrievalItm.batchSize - 1 = ${3 * p.retrievalItm.batchSize - 1})`,
    );
  if (p.itmGallery > p.world.test) bad('itmGallery', `${p.itmGallery} exceeds world.test`);
  if (p.coarse.batchSize < 2) bad('coarse.batchSize', 'ITM hard negatives need at least 2 pairs per batch');
  if (p.model.imageSize % 32 !== 0) bad('model.imageSize', `must be a multiple of 32, got ${p.model.imageSize}`);
  if (!(Number.isInteger(p.fineImageSize) && p.fineImageSize >= 32 && p.fineImageSize <= MAX_FINE_IMAGE_SIZE))
    bad('fineImageSize', `must be an integer in [32, ${MAX_FINE_IMAGE_SIZE}], got ${p.fineImageSize}`);
  return p;
}

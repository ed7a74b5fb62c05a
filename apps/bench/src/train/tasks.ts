// What each task trains: the model (coarse FIBER with the task's heads, or the fine-grained one),
// its objective from @fiber-vl/trainer, the official optimizer groups and schedule, and the
// generators its checkpoints hold.
import {
  FIBER_PRESETS,
  type FiberCoarseConfig,
  fiberConfig,
  readCheckpointStateDict,
  validateFiberConfig,
} from '@fiber-vl/fusion';
import { type CoarseHeadsSelection, FiberCoarseModel } from '@fiber-vl/heads-coarse';
import {
  type FiberFineModel,
  type FiberFineModelConfig,
  FiberFineModel as FineModel,
  fiberFineModelConfig,
  loadFiberFineCheckpoint,
  validateFiberFineModelConfig,
} from '@fiber-vl/heads-fine';
import type { RobertaConfig } from '@fiber-vl/roberta';
import { adaptSwinStateDict, type SwinConfig } from '@fiber-vl/swin';
import { Generator, type Module, tf } from '@fiber-vl/tensor-core';
import {
  AdamW,
  type CaptionBatch,
  type CoarsePretrainBatch,
  type FineGroundingBatch,
  type ItcQueue,
  type ItmBatch,
  type Nlvr2Batch,
  type FitOptions,
  type FitResult,
  type Objective,
  Trainer,
  type TrainerOptions,
  fit,
  type VqaBatch,
  captionMleObjective,
  coarsePretrainObjective,
  coarseSchedule,
  fiberCoarseParamGroups,
  fiberFineParamGroups,
  fineGroundingObjective,
  fineSchedule,
  itmObjective,
  nlvr2Objective,
  vqaObjective,
} from '@fiber-vl/trainer';
import { FINE_TASKS, type TrainTask, UsageError } from './args.js';
import { readRegularText } from './files.js';
import { totalmem } from 'node:os';
import { RUN_PRESETS } from '../run/presets.js';
import { optionalItcQueue, runModelConfig } from '../run/coarse-model.js';
import { createFineModel } from '../run/fine-stage.js';

/** One batch of any task, tagged with its kind (the tensors are disposed by fit after the step). */
export type TaskBatch =
  | ({ kind: 'pair' } & CoarsePretrainBatch & CaptionBatch)
  | ({ kind: 'itm' } & ItmBatch)
  | ({ kind: 'vqa' } & VqaBatch)
  | ({ kind: 'nlvr2' } & Nlvr2Batch)
  | ({ kind: 'fine' } & FineGroundingBatch);

export const isFineTask = (task: TrainTask) => FINE_TASKS.includes(task);

/** The model section of a JSON file: the config itself, or a run folder's config.json ({ model: ... }). */
function readModelJson(path: string): unknown {
  let json: unknown;
  const text = readRegularText(path, '--model');
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--model: cannot read ${path} as JSON: ${(e as Error).message}`);
  }
  if (json !== null && typeof json === 'object' && 'model' in json && 'task' in json) return json.model;
  return json;
}

const PRESETS = ['micro', 'tiny', 'small', 'base'];

function checkModelName(model: string): void {
  if (!PRESETS.includes(model) && !model.endsWith('.json'))
    throw new UsageError(`--model: unknown model "${model}" (expected ${PRESETS.join(', ')} or a .json config file)`);
}

/** The coarse config of `--model` for a tokenizer of `vocabSize` ids. */
export function coarseConfigOf(model: string, vocabSize: number): FiberCoarseConfig {
  checkModelName(model);
  let cfg: FiberCoarseConfig;
  if (model === 'micro') cfg = runModelConfig(RUN_PRESETS.micro, vocabSize);
  else if (model in FIBER_PRESETS) cfg = fiberConfig(model as keyof typeof FIBER_PRESETS);
  else {
    const json = readModelJson(model);
    try {
      cfg = validateFiberConfig(json as FiberCoarseConfig); // validate names the bad field
    } catch (e) {
      throw new UsageError(`--model ${model}: ${(e as Error).message}`);
    }
  }
  if (cfg.roberta.vocabSize < vocabSize)
    throw new UsageError(`--model: the text embedding has ${cfg.roberta.vocabSize} ids, the tokenizer ${vocabSize}`);
  return cfg;
}

export function fineConfigOf(model: string, vocabSize: number): FiberFineModelConfig {
  checkModelName(model);
  let cfg: FiberFineModelConfig;
  if (model === 'micro') {
    const m = createFineModel(runModelConfig(RUN_PRESETS.micro, vocabSize), new Generator(0));
    cfg = m.config;
    m.dispose();
  } else if (model in FIBER_PRESETS) cfg = fiberFineModelConfig(model as 'tiny' | 'small' | 'base');
  else {
    const json = readModelJson(model);
    try {
      cfg = validateFiberFineModelConfig(json as FiberFineModelConfig);
    } catch (e) {
      throw new UsageError(`--model ${model}: ${(e as Error).message}`);
    }
  }
  if (cfg.backbone.roberta.vocabSize < vocabSize)
    throw new UsageError(
      `--model: the text embedding has ${cfg.backbone.roberta.vocabSize} ids, the tokenizer ${vocabSize}`,
    );
  return cfg;
}

const NO_HEADS: CoarseHeadsSelection = {
  itc: false,
  itm: false,
  mlm: false,
  vqaLabels: 0,
  nlvr2: false,
  caption: false,
};

function coarseHeads(task: TrainTask, vqaLabels: number): CoarseHeadsSelection | 'pretrain' {
  if (task === 'pretrain-coarse' || task === 'retrieval-itc') return 'pretrain';
  if (task === 'retrieval-itm') return { ...NO_HEADS, itm: true };
  if (task === 'vqa') return { ...NO_HEADS, vqaLabels };
  if (task === 'nlvr2') return { ...NO_HEADS, nlvr2: true };
  return { ...NO_HEADS, mlm: true, caption: true };
}

/** Runs `inner` on batches of one kind; keeps its checkpointed state and afterStep. */
function forKind<M extends Module, K extends TaskBatch['kind']>(
  kind: K,
  inner: Objective<M, Extract<TaskBatch, { kind: K }>>,
): Objective<M, TaskBatch> {
  const isKind = (b: TaskBatch): b is Extract<TaskBatch, { kind: K }> => b.kind === kind;
  const run: Objective<M, TaskBatch> = async (model, b, ctx) => {
    if (!isKind(b)) throw new TypeError(`a ${b.kind} batch given to a ${kind} objective`);
    await inner(model, b, ctx);
  };
  if (inner.afterStep) run.afterStep = inner.afterStep.bind(inner);
  if (inner.stateful) run.stateful = inner.stateful;
  return run;
}

export interface TaskSetup {
  model: Module;
  optimizer: AdamW;
  /** The Trainer of this setup, run by `fit` with these options. */
  fit(options: FitOptions<TaskBatch>): Promise<FitResult>;
  /** Frees what the setup owns besides the model and optimizer (the ITC queue). */
  dispose(): void;
  /** Coarse: input side and text length; fine: the prompt length. */
  shape: { imageSize: number; maxTextLen: number; maxQueryLen: number };
  /** What the run's config.json says about the model. */
  config: FiberCoarseConfig | FiberFineModelConfig;
}

function setupOf<M extends Module>(
  o: TrainerOptions<M, TaskBatch>,
  rest: Pick<TaskSetup, 'dispose' | 'shape' | 'config'>,
): TaskSetup {
  const trainer = new Trainer(o);
  return { model: o.model, optimizer: o.optimizer, fit: (options) => fit(trainer, options), ...rest };
}

export interface SetupOptions {
  task: TrainTask;
  model: string;
  vocabSize: number;
  maskId: number;
  vqaLabels: number;
  steps: number;
  lr?: number;
  seed: number;
  /** ITC queue size (official 4096; capped to what the backend can hold, see the README); 0: in-batch ITC. */
  queueSize: number;
  /** The run starts from a checkpoint (--init). */
  init?: boolean;
}

const seeded = (seed: number, purpose: number) => new Generator(seed * 7919 + purpose * 104_729 + 17);

/** The ITC queue keeps `size` raw images (3 x S x S float32): refused past half this machine's memory. */
function checkQueueMemory(size: number, imageSize: number): void {
  const bytes = size * 3 * imageSize * imageSize * 4;
  const room = totalmem() / 2;
  if (bytes > room) {
    const gib = (b: number) => (b / 2 ** 30).toFixed(1);
    throw new UsageError(
      `--queue ${size}: the ITC queue keeps ${size} raw images at ${imageSize} px, ${gib(bytes)} GiB, more than half this machine's memory (${gib(room * 2)} GiB)`,
    );
  }
}

/**
 * A lower bound of a backbone's parameter count: the Swin's and RoBERTa's embeddings and weight
 * matrices (biases, norms, fusion blocks and heads left out), plus `extra`; `frozen` is the part a
 * Swin `frozenStages` freezes (the patch embedding from 0, stages 0 .. frozenStages - 2 from 2).
 */
export function minBackboneParameters(
  swin: SwinConfig,
  roberta: RobertaConfig,
  extra = 0,
  frozenStages = -1,
): { total: number; frozen: number } {
  const embedding = swin.inChannels * swin.patchSize ** 2 * swin.embedDim;
  let total = embedding;
  let frozen = frozenStages >= 0 ? embedding : 0;
  swin.depths.forEach((depth, i) => {
    const d = swin.embedDim * 2 ** i;
    let stage = depth * (4 * d * d + 2 * d * Math.floor(d * swin.mlpRatio)); // qkv + proj, fc1 + fc2
    if (i < swin.depths.length - 1) stage += 4 * d * 2 * d; // patch merging
    total += stage;
    if (i < frozenStages - 1) frozen += stage;
  });
  const h = roberta.hiddenSize;
  total += (roberta.vocabSize + roberta.maxPositionEmbeddings) * h;
  total += roberta.numHiddenLayers * (4 * h * h + 2 * h * roberta.intermediateSize);
  return { total: total + extra, frozen };
}

/**
 * Training holds four float32 copies of every trained parameter (weights, gradients, AdamW's two
 * moments) and one of a frozen one: a config whose lower bound of those already exceeds this
 * machine's memory is refused before a tensor is made (a hiddenSize of 1e6 ran 16 s into "Invalid
 * typed array length").
 */
function checkModelMemory(model: string, { total, frozen }: { total: number; frozen: number }): void {
  const bytes = (total - frozen) * 16 + frozen * 4;
  if (bytes > totalmem()) {
    const gib = (b: number) => (b / 2 ** 30).toFixed(1);
    throw new UsageError(
      `--model ${model}: at least ${total.toExponential(2)} parameters` +
        (frozen ? ` (${frozen.toExponential(2)} of them frozen, held once)` : '') +
        `; training holds 4 float32 copies of each trained one (weights, gradients, AdamW's two moments), ` +
        `${gib(bytes)} GiB, more than this machine's memory (${gib(totalmem())} GiB)`,
    );
  }
}

export function coarseSetup(o: SetupOptions): TaskSetup {
  const config = coarseConfigOf(o.model, o.vocabSize);
  const { swin, roberta, hiddenSize: H } = config;
  const imageWidth = swin.embedDim * 2 ** (swin.depths.length - 1);
  checkModelMemory(
    o.model,
    minBackboneParameters(swin, roberta, 2 * (roberta.hiddenSize + imageWidth) * H + 4 * H * H),
  );
  const rngs: Record<string, Generator> = { model: seeded(o.seed, 1) };
  const model = new FiberCoarseModel(config, coarseHeads(o.task, o.vqaLabels), rngs.model);
  const lr = o.lr ?? 1e-4;
  let queue: ItcQueue | undefined;
  let objective: Objective<FiberCoarseModel, TaskBatch>;
  if (o.task === 'pretrain-coarse' || o.task === 'retrieval-itc') {
    rngs.negatives = seeded(o.seed, 2);
    rngs.mlm = seeded(o.seed, 3);
    checkQueueMemory(o.queueSize, config.swin.imageSize);
    queue = optionalItcQueue({
      hiddenSize: config.hiddenSize,
      size: o.queueSize,
      imageSize: config.swin.imageSize,
      maxTextLen: config.maxTextLen,
      rng: seeded(o.seed, 4),
    });
    const collator = { vocabSize: o.vocabSize, maskId: o.maskId, specialIds: [0, 1, 2] };
    objective = forKind(
      'pair',
      coarsePretrainObjective(
        o.task === 'pretrain-coarse' ? { queue, collator } : { queue, weights: { itm: 0, mlm: 0 } },
      ),
    );
  } else if (o.task === 'retrieval-itm') {
    rngs.itm = seeded(o.seed, 2);
    objective = forKind('itm', itmObjective());
  } else if (o.task === 'vqa') objective = forKind('vqa', vqaObjective());
  else if (o.task === 'nlvr2') objective = forKind('nlvr2', nlvr2Objective());
  else objective = forKind('pair', captionMleObjective());
  const optimizer = new AdamW(fiberCoarseParamGroups(model.namedParameters(), { lr, weightDecay: 0.01 }), {
    betas: [0.9, 0.98],
    eps: 1e-8,
    variant: 'transformers',
  });
  return setupOf(
    { model, objective, optimizer, rngs, schedule: coarseSchedule({ maxSteps: o.steps, warmupSteps: 0.1, lr }) },
    {
      dispose: () => queue?.dispose(),
      shape: { imageSize: config.swin.imageSize, maxTextLen: config.maxTextLen, maxQueryLen: 0 },
      config,
    },
  );
}

/**
 * The Swin stages a fine run freezes, as FIBER's recipes do: its fine-grained pre-training from
 * pre-trained weights freezes the patch embedding and stage 0 (FREEZE_CONV_BODY_AT 2, the presets'
 * default); its fine-tunes (RefCOCO/+/g, COCO, LVIS) and a run from random weights train every
 * stage. A JSON config keeps its own `frozenStages`.
 */
export function fineFrozenStages(
  o: Pick<SetupOptions, 'task' | 'model' | 'init'>,
  config: FiberFineModelConfig,
): number {
  if (!(o.model in FIBER_PRESETS)) return config.backbone.frozenStages ?? -1;
  return o.task === 'pretrain-fine' && o.init ? 2 : -1;
}

export function fineSetup(o: SetupOptions): TaskSetup {
  const resolved = fineConfigOf(o.model, o.vocabSize);
  const config = { ...resolved, backbone: { ...resolved.backbone, frozenStages: fineFrozenStages(o, resolved) } };
  const { fpn, head } = config;
  const pyramid = fpn.inChannels.reduce((n, c) => n + c * fpn.outChannels + 9 * fpn.outChannels ** 2, 0);
  const tower = head.numConvs * 9 * head.channels ** 2;
  const { swin, roberta, frozenStages } = config.backbone;
  checkModelMemory(o.model, minBackboneParameters(swin, roberta, pyramid + tower, frozenStages));
  const rngs = { model: seeded(o.seed, 1) };
  const model = new FineModel(config, rngs.model);
  const lr = o.lr ?? 1e-5;
  const optimizer = new AdamW(
    fiberFineParamGroups(model.namedParameters(), { baseLr: lr, langLr: lr, weightDecay: 0.01 }),
    { variant: 'torch' },
  );
  return setupOf(
    {
      model,
      objective: forKind('fine', fineGroundingObjective<FiberFineModel>()),
      optimizer,
      // the fine-grained recipe: warm-up, then x0.1 at 67% and 89% of the steps, weight decay following
      schedule: fineSchedule({
        maxIter: o.steps,
        steps: [0.67, 0.89],
        warmupSteps: Math.min(2000, Math.ceil(o.steps / 10)),
        warmupFactor: 0.001,
        weightDecaySchedule: true,
      }),
      rngs,
      clipGradNorm: 1,
    },
    { dispose: () => {}, shape: { imageSize: 0, maxTextLen: 0, maxQueryLen: config.backbone.maxQueryLen }, config },
  );
}

/**
 * --init: the tensors of an official or project checkpoint that the model has, with the same
 * shape (a pre-training checkpoint into a fine-tune model; a coarse one into the fine-grained
 * model through heads-fine's key alignment). For the coarse model the Swin tables are adapted
 * first, the way FIBER's swin_adapt_position_encoding does when a checkpoint trained at one image
 * size is fine-tuned at another (the window follows image / 32): each relative_position_bias_table
 * resized bicubically, the checkpoint's index / mask buffers dropped. Returns how many tensors were
 * loaded, skipped and resized.
 */
export async function loadInit(
  model: Module,
  path: string,
): Promise<{ loaded: number; skipped: number; resized: number }> {
  if (model instanceof FineModel) {
    const r = await loadFiberFineCheckpoint(model, path, { strict: false });
    if (r.loaded === 0) throw new UsageError(`--init ${path}: no tensor of this checkpoint fits the model`);
    // the checkpoint's tensors left out (unexpectedKeys: matching no model tensor, or of another shape)
    return { loaded: r.loaded, skipped: r.unexpectedKeys.length, resized: 0 };
  }
  const ours = model.stateDict();
  const dict = await readCheckpointStateDict(path);
  let created: tf.Tensor[] = [];
  try {
    let source = dict;
    let resized = 0;
    if (model instanceof FiberCoarseModel) {
      const adapted = adaptSwinStateDict(model.vitModel, dict, 'vit_model.');
      created = adapted.created;
      source = adapted.dict;
      resized = adapted.resized.length;
    }
    const matched = new Map<string, tf.Tensor>();
    let skipped = 0;
    for (const [k, t] of source) {
      const mine = ours.get(k);
      if (mine && mine.shape.join() === t.shape.join()) matched.set(k, t);
      else skipped++;
    }
    if (matched.size === 0) throw new UsageError(`--init ${path}: no tensor of this checkpoint fits the model`);
    model.loadStateDict(matched, { strict: false });
    return { loaded: matched.size, skipped, resized };
  } finally {
    tf.dispose([...dict.values(), ...created]);
  }
}

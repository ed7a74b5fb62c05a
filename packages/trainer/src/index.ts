export { AdamW, fiberCoarseParamGroups, FIBER_NO_DECAY, FIBER_HEAD_NAMES, FIBER_CROSS_MODAL_NAMES, type ParamGroup, type AdamWOptions } from './optim.js';
export { polynomialDecayWithWarmup, warmupMultiStep } from './schedules.js';
export {
  fiberCoarseGroupOf,
  fiberFineGroupOf,
  fiberFineParamGroups,
  clipGradNorm,
  gradNorm,
  type AdamWState,
  type StepScales,
  type CoarseGroupOptions,
  type CoarseGroupOf,
  type FineGroupOptions,
} from './optim.js';
export {
  coarseSchedule,
  fineSchedule,
  constantSchedule,
  fineMilestones,
  weightDecayScheduleFactor,
  pyRound,
  type Schedule,
  type CoarseScheduleOptions,
  type FineScheduleOptions,
  type PolynomialDecayOptions,
  type WarmupMultiStepOptions,
  type WeightDecayScheduleOptions,
} from './schedules.js';
export { StepContext, type Objective, type Stateful, type StepContextOptions, type LossTermOutput } from './step.js';
export { ItcQueue, ITC_QUEUE_KEYS, type ItcQueueOptions, type EnqueueUndo } from './queue.js';
export {
  coarsePretrainObjective,
  itcQueueLoss,
  hardNegativeWeights,
  sampleHardNegatives,
  sampleMultinomial,
  mlmCollate,
  detach,
  type CoarsePretrainBatch,
  type CoarsePretrainOptions,
  type MlmCollatorOptions,
} from './objectives.js';
export { ModelEma } from './ema.js';
export {
  Trainer,
  fit,
  disposeCheckpoint,
  NonFiniteLossError,
  type TrainerOptions,
  type StepResult,
  type StepHooks,
  type FitOptions,
  type FitResult,
  type FitLogger,
} from './loop.js';
export {
  MemoryCheckpointStore,
  CHECKPOINT_FORMAT,
  CHECKPOINT_FILES,
  disposeLoaded,
  parseTrainerMeta,
  safetensorsChunks,
  readCheckpointTensors,
  type Checkpoint,
  type CheckpointFile,
  type CheckpointStore,
  type LoadedCheckpoint,
  type TrainerMeta,
} from './checkpoint.js';
export { positioned, isDataSource, disposeBatch, type DataSource, type DataPosition, type PositionedBatch, type BatchSource, type JsonValue } from './source.js';
export { ProgressPrinter, JsonlLogger, combineLoggers, formatProgress, formatDuration, stepRecord, type TextSink, type ProgressLine, type ProgressPrinterOptions } from './log.js';
export { vqaObjective, nlvr2Objective, captionMleObjective, itmObjective, type VqaBatch, type Nlvr2Batch, type CaptionBatch, type ItmBatch } from './finetune.js';

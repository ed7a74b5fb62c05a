export {
  AdamW,
  fiberCoarseParamGroups,
  FIBER_NO_DECAY,
  FIBER_HEAD_NAMES,
  FIBER_CROSS_MODAL_NAMES,
  type ParamGroup,
  type AdamWOptions,
} from './optim.js';
export { polynomialDecayWithWarmup, warmupMultiStep } from './schedules.js';
export * from './world/index.js';

// Data: readers of the public formats, streaming sources, deterministic loading and the official augmentations.
export type {
  DataRecord,
  RecordKind,
  CaptionRecord,
  VqaRecord,
  Nlvr2Record,
  GroundingRecord,
  DetectionRecord,
  ImageRef,
  Box,
  Span,
} from './data/records.js';
export { recordImages, recordText } from './data/records.js';
export {
  SKIP_REASONS,
  SkipStats,
  DataSkipError,
  warnSkips,
  type SkipReason,
  type Skip,
  type SkipEvent,
} from './data/skips.js';
export {
  arraySource,
  concatSources,
  mapSource,
  lazySource,
  withImages,
  type RecordSource,
  type SourceEntry,
  type Parsed,
  type LazySourceOptions,
} from './data/source.js';
export { MAX_TEXT_LENGTH, checkBoxes, checkRecordBoxes, type BoxPolicy } from './data/validate.js';
export {
  memoryImageStore,
  jsImageDecoder,
  loadImage,
  toRgb,
  type ImageStore,
  type ImageLocation,
  type FileReader,
} from './data/images.js';
export {
  indexTar,
  readTar,
  groupWebdataset,
  webdatasetKey,
  TarError,
  type TarMember,
  type TarStreamEntry,
} from './data/tar.js';
export { karpathyCaptions, type KarpathyOptions } from './data/formats/captions.js';
export {
  buildVqaVocab,
  vqaQuestions,
  vqaTargets,
  vqaScore,
  normalizeVqaWord,
  type VqaVocab,
  type VqaOptions,
  type VqaVocabOptions,
} from './data/formats/vqa.js';
export {
  textLines,
  indexLines,
  jsonlSource,
  nlvr2Record,
  genericRecord,
  type LineSource,
  type GenericJsonlOptions,
  type JsonlSourceOptions,
} from './data/formats/jsonl.js';
export {
  cocoInstances,
  mdetrGrounding,
  detectionToGrounding,
  cleanCategoryName,
  type CocoCategory,
  type CocoSource,
  type CocoInstancesOptions,
  type MdetrOptions,
} from './data/formats/coco.js';
export { webdatasetSource, tarImageStore, type TarShard } from './data/formats/webdataset.js';
export { EpochOrder, sampleGenerator, derivedGenerator, type EpochOrderOptions } from './data/order.js';
export {
  randomResizedCropParams,
  randAugment,
  coarseAugment,
  coarseResize,
  coarseNormalize,
  FIBER_RANDAUG_OPS,
  type RandAugmentOp,
  type RandAugmentOptions,
  type CoarseAugmentOptions,
} from './data/augment/coarse.js';
export {
  fineAugment,
  fineNormalize,
  toLegacyBoxes,
  FIBER_FINE_MIN_SIZES,
  type FineAugmentOptions,
} from './data/augment/fine.js';
export {
  swapLeftRight,
  cropTargets,
  flipTargets,
  scaleTargets,
  affineTargets,
  type Targets,
} from './data/augment/targets.js';
export * as pixelOps from './data/augment/ops.js';
export {
  prepareSample,
  coarseTrainTransform,
  coarseEvalTransform,
  fineTrainTransform,
  fineEvalTransform,
  type TransformSpec,
  type CoarseTransform,
  type FineTransform,
  type DecodeOnly,
  type SampleTask,
  type Sample,
  type SampleImage,
  type SampleResult,
  type SampleIO,
} from './data/pipeline.js';
export {
  DataLoader,
  InThreadExecutor,
  type SampleExecutor,
  type DataLoaderOptions,
  type DataPosition as LoaderPosition,
  type Batch,
} from './data/loader.js';
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
  type Schedule,
  type CoarseScheduleOptions,
  type FineScheduleOptions,
  type PolynomialDecayOptions,
  type WarmupMultiStepOptions,
  type WeightDecayScheduleOptions,
} from './schedules.js';
export { StepContext, type Objective, type Stateful, type StepContextOptions, type LossTermOutput } from './step.js';
export { ItcQueue, type ItcQueueOptions, type EnqueueUndo } from './queue.js';
export {
  coarsePretrainObjective,
  itcQueueLoss,
  mlmCollate,
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
  type MicroBatches,
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
export {
  positioned,
  isDataSource,
  disposeBatch,
  type DataSource,
  type DataPosition,
  type PositionedBatch,
  type BatchSource,
  type JsonValue,
} from './source.js';
export {
  ProgressPrinter,
  JsonlLogger,
  combineLoggers,
  formatProgress,
  formatDuration,
  stepRecord,
  type TextSink,
  type ProgressLine,
  type ProgressPrinterOptions,
} from './log.js';
export {
  vqaObjective,
  nlvr2Objective,
  captionMleObjective,
  itmObjective,
  itmRankObjective,
  type VqaBatch,
  type Nlvr2Batch,
  type CaptionBatch,
  type ItmBatch,
  type ItmRankBatch,
} from './finetune.js';
export {
  fineGroundingObjective,
  type FineGroundingBatch,
  type FineGroundingOptions,
  type FineHeadModel,
} from './grounding.js';

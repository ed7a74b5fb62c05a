export { AdamW, fiberCoarseParamGroups, FIBER_NO_DECAY, FIBER_HEAD_NAMES, FIBER_CROSS_MODAL_NAMES, type ParamGroup, type AdamWOptions } from './optim.js';
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
} from './data/source.js';
export { checkBoxes, checkRecordBoxes, type BoxPolicy } from './data/validate.js';
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
  type DataPosition,
  type Batch,
} from './data/loader.js';

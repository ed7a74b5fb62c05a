export {
  fiberConfig,
  fiberBaseConfig,
  validateFiberConfig,
  fusionSchedule,
  initializerStd,
  FIBER_PRESETS,
  type FiberCoarseConfig,
  type FiberConfigOptions,
  type FiberPresetName,
  type FusedPair,
} from './config.js';
export {
  FusedWindowAttention,
  FiberRobertaLayer,
  FiberCrossAttention,
  CrossAttentionOutput,
  type FusedWindowAttentionOptions,
  type FiberRobertaLayerOptions,
  type TextContext,
  type ImageContext,
} from './blocks.js';
export {
  FiberCoarseBackbone,
  runFused,
  type RunFusedOptions,
  type FusedPairs,
  type FusedOutput,
  type DualImageOutput,
  type DualTextOutput,
} from './backbone.js';
export {
  FiberFineBackbone,
  FineVisionBackbone,
  LanguageBackbone,
  RobertaFusedEncoder,
  FIBER_FINE_PRESETS,
  fiberFineConfig,
  validateFiberFineConfig,
  type FiberFineConfig,
  type FiberFineConfigOptions,
  type FiberFinePresetName,
  type FineFusionVersion,
  type FineBackboneOutput,
  type FineLanguageFeatures,
  type Neck,
} from './fine.js';
export {
  loadFiberCheckpoint,
  exportFiberCheckpoint,
  readCheckpointStateDict,
  FIBER_QUEUE_BUFFERS,
  type FiberLoadResult,
} from './checkpoint.js';
export {
  matchFiberCheckpoint,
  type FiberCheckpointMatch,
  type FiberCoarseHead,
  type FiberCoarseTask,
} from './match.js';

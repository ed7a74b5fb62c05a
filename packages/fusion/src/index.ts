export {
  fiberConfig,
  fiberBaseConfig,
  validateFiberConfig,
  fusionSchedule,
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
export { FiberCoarseBackbone, checkPairedBatch, type FusedOutput, type DualImageOutput, type DualTextOutput } from './backbone.js';
export { loadFiberCheckpoint, exportFiberCheckpoint, readCheckpointStateDict, FIBER_QUEUE_BUFFERS, type FiberLoadResult } from './checkpoint.js';

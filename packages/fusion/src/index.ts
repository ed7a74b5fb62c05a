export { fiberBaseConfig, validateFiberConfig, fusionSchedule, type FiberCoarseConfig, type FusedPair } from './config.js';
export { FusedWindowAttention, FiberRobertaLayer, FiberCrossAttention, type TextContext, type ImageContext } from './blocks.js';
export { FiberCoarseBackbone, type FusedOutput, type DualImageOutput, type DualTextOutput } from './backbone.js';
export { loadFiberCheckpoint, exportFiberCheckpoint, readCheckpointStateDict, FIBER_QUEUE_BUFFERS, type FiberLoadResult } from './checkpoint.js';

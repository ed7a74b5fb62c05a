export {
  FIBER_TASK_HEADS,
  FIBER_HEAD_SETTINGS,
  VQAV2_LABEL_SIZE,
  coarseHeadsConfig,
  type CoarseHeadsConfig,
  type CoarseHeadsSelection,
  type FiberTask,
} from './config.js';
export {
  FiberCoarseModel,
  MLMHead,
  ITMHead,
  PredictionHeadTransform,
  classifier,
  type ItmOutput,
  type MlmOutput,
  type Nlvr2Output,
} from './model.js';
export {
  captionForward,
  captionImageEmbeds,
  beamSearchCaptions,
  greedyCaptions,
  causalMask,
  type CaptionForward,
  type BeamSearchOptions,
} from './caption.js';
export {
  itcLoss,
  itmLoss,
  mlmLoss,
  vqaLoss,
  captionLoss,
  maskTokens,
  sampleHardNegatives,
  hardNegativeWeights,
  drawHardNegatives,
  vqaSoftScore,
  type MlmMaskingOptions,
} from './losses.js';
export { FiberPipeline, type PipelineOptions, type RankedItem, type RetrievalResult } from './pipeline.js';

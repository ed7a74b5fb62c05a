export { FIBER_B_HEADS, clampTemperature, type CoarseHeadsConfig } from './config.js';
export {
  FiberCoarseModel,
  MLMHead,
  ITMHead,
  PredictionHeadTransform,
  classifier,
  disposeFused,
  FIBER_TASK_HEADS,
  type CoarseHeads,
  type FiberTask,
} from './model.js';
export { captionForward, captionImageEmbeds, beamSearchCaptions, greedyCaptions, causalMask, type CaptionForward, type BeamSearchOptions } from './caption.js';
export { fiberConfigFromFixture } from './fixture-config.js';
export { runFixturePasses, type FixturePassResult } from './fixture-passes.js';
export { itcLoss, itmLoss, mlmLoss, vqaLoss, captionLoss, maskTokens, sampleHardNegatives, vqaSoftScore, type MlmMaskingOptions } from './losses.js';
export { FiberPipeline, type PipelineOptions, type RankedItem, type RetrievalResult } from './pipeline.js';

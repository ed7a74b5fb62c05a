export { FIBER_DYHEAD, hSigmoid, dyReluCoefficients, type DyHeadConfig } from './config.js';
export {
  FIBER_ANCHORS,
  cellAnchors,
  generateAnchors,
  anchorsPerLocation,
  levelSizes,
  type AnchorConfig,
} from './anchors.js';
export { BOX_CODER_WEIGHTS, BBOX_XFORM_CLIP, decodeBoxes, encodeBoxes, decodeBoxesTensor } from './box-coder.js';
export {
  boxArea,
  boxIou,
  pairIou,
  clipBoxes,
  keepLargeBoxes,
  multiLabelNms,
  keepTopScores,
} from './boxes.js';
export {
  FIBER_POSTPROCESS,
  classScores,
  detectionScores,
  postprocessImage,
  headOutputsToLevels,
  readHeadLevels,
  rescaleBoxes,
  xyxyToCoco,
  toDetections,
  groundPhrases,
  type PostprocessConfig,
  type LevelOutputs,
  type RawDetections,
  type ImageSize,
  type FineHeadOutputs,
  type Detection,
  type DetectionOptions,
  type PhraseGrounding,
  type DetectionResult,
  type GroundingResult,
} from './postprocess.js';
export {
  MAX_QUERY_LEN,
  SEPARATION_TOKENS,
  PromptError,
  cleanName,
  detectionPrompt,
  charToToken,
  spanToTokens,
  encodeGroundingPrompt,
  encodeDetectionPrompt,
  findPhraseSpans,
  phraseScores,
  type CharSpan,
  type DetectionPrompt,
  type PromptPhrase,
  type TruncationReport,
  type GroundingPrompt,
  type EncodePromptOptions,
} from './prompts.js';
export {
  FIBER_ATSS,
  atssAssign,
  atssTargets,
  centernessTargets,
  type AtssConfig,
  type AtssAssignment,
  type AtssTargets,
  type FineTarget,
} from './atss.js';
export {
  FIBER_ATSS_LOSS,
  tokenSigmoidFocalLoss,
  giouLoss,
  flattenHeadOutputs,
  atssLoss,
  type AtssLossConfig,
  type FlatHeadOutputs,
  type AtssLosses,
} from './losses.js';
export { FIBER_DROP_BLOCK, FIBER_FPN, validateDyHeadConfig, type DropBlockConfig, type FpnConfig } from './config.js';
export { FPN, LastLevelP6P7 } from './fpn.js';
export { VLDyHead, DyConv, DyReLU, Conv3x3Norm, Scale, type DyHeadOutput, type DyHeadLevelOutput } from './dyhead.js';
export {
  FiberFineModel,
  VLDyHeadModule,
  AnchorGenerator,
  createFiberFineModel,
  fiberFineModelConfig,
  validateFiberFineModelConfig,
  type FiberFineModelConfig,
  type FiberFineModelOptions,
  type FiberFineOutput,
} from './model.js';
export {
  FiberFinePipeline,
  finePixelBatch,
  type FinePipelineOptions,
  type FinePreprocessOptions,
  type FinePixelBatch,
  type ReferResult,
} from './pipeline.js';
export {
  loadFiberFineCheckpoint,
  serializeFiberFineCheckpoint,
  alignFineStateDict,
  isCoarseStateDict,
  type FineLoadResult,
  type FineAlignment,
} from './checkpoint.js';

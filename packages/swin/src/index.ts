export {
  SWIN_PRESETS,
  swinConfig,
  validateSwinConfig,
  fiberCoarseWindowSize,
  stageResolutions,
  blockWindow,
  dropPathRates,
  type SwinConfig,
  type SwinPresetName,
} from './config.js';
export {
  SwinTransformer,
  BasicLayer,
  SwinTransformerBlock,
  WindowAttention,
  PatchMerging,
  PatchEmbed,
  Mlp,
  relativePositionIndex,
  shiftWindowMask,
  type SwinOptions,
  type SwinOutput,
  type WindowContext,
} from './model.js';
export {
  pillowResize,
  fiberImageTransform,
  fiberPixelValues,
  detectionImageTransform,
  detectionSize,
  browserImageDecoder,
  PILLOW_FILTERS,
  IMAGENET_MEAN,
  IMAGENET_STD,
  DETECTION_PIXEL_MEAN,
  DETECTION_PIXEL_STD,
  type RawImage,
  type ImageDecoder,
} from './preprocess.js';
export { validateRawImage } from './preprocess.js';
export { resizeRelativePositionTable, adaptSwinStateDict, loadSwinCheckpoint } from './checkpoint.js';

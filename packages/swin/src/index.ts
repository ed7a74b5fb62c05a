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

// The procedural vision-language world: public surface.
export {
  SHAPES,
  COLOURS,
  COLOUR_RGB,
  SIZES,
  TEXTURES,
  BACKGROUNDS,
  RELATIONS,
  WORDS,
  plural,
  type Shape,
  type Colour,
  type Size,
  type Texture,
  type BackgroundKind,
  type Relation,
  type Attribute,
} from './attributes.js';
export {
  renderScene,
  type Scene,
  type SceneObject,
  type Background,
  type Clutter,
  type Box,
  type Rgb,
} from './raster.js';
export { measureObjects, type Measurement } from './scene.js';
export {
  QUESTION_TYPES,
  matchesQuery,
  relationOf,
  type ObjectQuery,
  type Phrase,
  type Caption,
  type Question,
  type QuestionType,
  type ReferringExpression,
  type Annotations,
} from './language.js';
export { NLVR2_KINDS, type Nlvr2Pair, type Nlvr2Kind } from './nlvr2.js';
export {
  World,
  createWorld,
  WORLD_DEFAULTS,
  WORLD_PRESETS,
  SPLITS,
  type Split,
  type WorldConfig,
  type WorldSample,
  type WorldMetadata,
  type Detection,
  type DetectionClass,
} from './world.js';
export {
  worldBaselines,
  randomCaptionBaseline,
  randomDetectionBaseline,
  randomLabelDetectionBaseline,
  cocoGroundTruth,
  iou,
  type WorldBaselines,
  type BaselineOptions,
  type RecallAtK,
  type CocoGroundTruthJson,
  type CocoDetectionJson,
} from './baselines.js';
export { encodePng, pngDataUrl } from './png.js';
export { worldTokenizer, worldCorpus, type WorldCorpusOptions } from './tokenizer.js';

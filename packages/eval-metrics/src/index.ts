// @fiber-vl/eval-metrics: vision-language metrics equal to the reference toolkits. This entry has
// no Node built-ins and no tensor dependency (it runs in browsers); file reading, the bundled
// Meteor data loader and the CLI live in `@fiber-vl/eval-metrics/node`.
export { MetricInputError } from './errors.js';

export { ptbTokenize, ptbTokenizeLine, ptbTokenizeLines, PTB_PUNCTUATION } from './tokenize/ptb.js';
export { bleu, bleuStats, bleuFromStats, sumBleuStats, type BleuResult, type BleuStats } from './caption/bleu.js';
export { rougeL } from './caption/rouge.js';
export { ciderD, type CiderInput } from './caption/cider.js';
export { Meteor, METEOR_DEFAULTS, type MeteorParams, type MeteorStats } from './caption/meteor/meteor.js';
export { parseMeteorResources, type MeteorResources } from './caption/meteor/resources.js';
export { meteorNormalize } from './caption/meteor/normalize.js';
export { ParaphraseTable, parseParaphraseTable } from './caption/meteor/paraphrase.js';
export {
  evaluateCaptions,
  type CaptionEvalInput,
  type CaptionEvalResult,
  type CaptionMetric,
  type ApproximateMetric,
  type CaptionScores,
  type SpiceScorer,
} from './caption/evaluate.js';

export {
  vqaAccuracy,
  type VqaInput,
  type VqaScores,
  type VqaAnnotation,
  type VqaQuestion,
  type VqaPrediction,
} from './vqa/evaluate.js';
export { normalizeVqaAnswer, processPunctuation, processDigitArticle } from './vqa/normalize.js';

export { retrievalRecall, type RetrievalScores, type DirectionScores, type SimilarityMatrix } from './retrieval.js';

export {
  CocoEval,
  cocoEvaluate,
  defaultCocoParams,
  COCO_STAT_NAMES,
  type CocoEvalParams,
  type CocoEvalResult,
  type CocoGroundTruth,
  type CocoDetection,
  type CocoStatName,
} from './detection/cocoeval.js';

export { recAccuracy, type RecOptions, type RecSample, type RecResult } from './grounding/rec.js';
export {
  Flickr30kEntitiesEvaluator,
  parseFlickr30kSentences,
  parseFlickr30kAnnotation,
  mergeBoxes,
  type Flickr30kPrediction,
  type GroundingRecall,
  type FileReader,
} from './grounding/flickr30k.js';
export { giouXyxy, iouXyxy, xywhToXyxy, type BoxXyxy, type BoxXywh } from './grounding/boxes.js';

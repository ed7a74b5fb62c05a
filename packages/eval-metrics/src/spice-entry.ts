// `@fiber-vl/eval-metrics/spice`: SPICE computed with an approximate (wink-nlp) scene-graph parser.
// A separate entry because it brings an NLP model; pass `spiceApprox` to evaluateCaptions({ spice }).
export {
  ApproxSceneGraphParser,
  spiceApprox,
  spiceScore,
  graphTuples,
  tupleCategories,
  type SceneGraph,
  type SpiceScore,
  type Tuple,
  type TupleCategory,
} from './caption/spice.js';

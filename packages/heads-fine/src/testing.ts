// `@fiber-vl/heads-fine/testing`: the fine-grained fixture harness behind `fiber-bench parity`.
// Not part of the model API.
export {
  fineFixtureKind,
  fineModelConfigFromFixture,
  fineHeadConfigFromFixture,
  runFineFixturePasses,
  type FineFixtureKind,
  type FineFixtureResult,
} from './fixture-harness.js';

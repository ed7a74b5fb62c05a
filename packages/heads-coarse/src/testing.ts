// `@fiber-vl/heads-coarse/testing`: the fixture harness behind `fiber-bench parity` (builds a model
// from a fixture folder's config.json and runs the passes its outputs name). Not part of the model API.
export { fiberConfigFromFixture } from './fixture-config.js';
export { runFixturePasses, type FixturePassResult } from './fixture-passes.js';

export { fiberBaseConfig, validateFiberConfig, fusionSchedule, type FiberCoarseConfig, type FusedPair } from './config.js';

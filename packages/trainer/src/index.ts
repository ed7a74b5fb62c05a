export { AdamW, fiberCoarseParamGroups, FIBER_NO_DECAY, FIBER_HEAD_NAMES, FIBER_CROSS_MODAL_NAMES, type ParamGroup, type AdamWOptions } from './optim.js';
export { polynomialDecayWithWarmup, warmupMultiStep } from './schedules.js';
export * from './world/index.js';

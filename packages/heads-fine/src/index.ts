export { FIBER_DYHEAD, hSigmoid, dyReluCoefficients, type DyHeadConfig } from './config.js';
export { FIBER_FPN, validateDyHeadConfig, type FpnConfig } from './config.js';
export { FPN, LastLevelP6P7 } from './fpn.js';
export { VLDyHead, DyConv, DyReLU, Conv3x3Norm, Scale, type DyHeadOutput, type DyHeadLevelOutput } from './dyhead.js';

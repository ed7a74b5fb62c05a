export { FIBER_DYHEAD, hSigmoid, dyReluCoefficients, type DyHeadConfig } from './config.js';

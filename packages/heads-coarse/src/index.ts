export { FIBER_B_HEADS, clampTemperature, type CoarseHeadsConfig } from './config.js';

export { ROBERTA_BASE, robertaConfig, createPositionIds, extendedAttentionMask, type RobertaConfig } from './config.js';

/** GLIP-style VLDyHead of the fine-grained FIBER model (fiber-spec §3.3). */
export interface DyHeadConfig {
  /** FPN / head channels. */
  channels: number;
  /** DyConv blocks in the tower. */
  numConvs: number;
  /** FPN levels the head runs on. */
  numLevels: number;
  /** GroupNorm groups after each deformable conv. */
  groupNormGroups: number;
  groupNormEps: number;
  /** DyReLU squeeze width (channels / 4). */
  dyReluHidden: number;
}

export const FIBER_DYHEAD: Readonly<DyHeadConfig> = Object.freeze({
  channels: 256,
  numConvs: 6,
  numLevels: 5,
  groupNormGroups: 16,
  groupNormEps: 1e-5,
  dyReluHidden: 64,
});

/**
 * h_sigmoid of the DyHead: ReLU6(x + 3) / 6.
 */
export function hSigmoid(x: number): number {
  return Math.min(6, Math.max(0, x + 3)) / 6;
}

/** DyReLU's coefficient transform: a1 = (a1 - 0.5) * 2 + 1, a2 = (a2 - 0.5) * 2, b = b - 0.5. */
export function dyReluCoefficients(a1: number, b1: number, a2: number, b2: number): [number, number, number, number] {
  return [(a1 - 0.5) * 2 + 1, b1 - 0.5, (a2 - 0.5) * 2, b2 - 0.5];
}

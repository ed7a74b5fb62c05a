/** Sizes of FIBER's coarse-grained heads (fiber-spec §2.1). */
export interface CoarseHeadsConfig {
  /** Cross-modal width H. */
  hiddenSize: number;
  /** Swin last-stage width (image tokens before `cross_modal_image_transform`). */
  imageEmbedSize: number;
  /** Text width. */
  textEmbedSize: number;
  vocabSize: number;
  /** VQAv2 answer vocabulary. */
  vqaLabelSize: number;
  /** MLM head LayerNorm eps (BertConfig default, not RoBERTa's 1e-5). */
  mlmLayerNormEps: number;
  /** ITC temperature: initial value and the clamp applied before every ITC step. */
  itcTemperature: { init: number; min: number; max: number };
}

export const FIBER_B_HEADS: Readonly<CoarseHeadsConfig> = Object.freeze({
  hiddenSize: 768,
  imageEmbedSize: 1024,
  textEmbedSize: 768,
  vocabSize: 50265,
  vqaLabelSize: 3129,
  mlmLayerNormEps: 1e-12,
  itcTemperature: Object.freeze({ init: 0.07, min: 0.001, max: 1.0 }),
});

/** The official clamp of the learnable ITC temperature. */
export function clampTemperature(t: number, cfg: Pick<CoarseHeadsConfig, 'itcTemperature'> = FIBER_B_HEADS): number {
  return Math.min(cfg.itcTemperature.max, Math.max(cfg.itcTemperature.min, t));
}

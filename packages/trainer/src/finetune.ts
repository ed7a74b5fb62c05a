// The coarse downstream fine-tune objectives of objectives.py, as objectives for the Trainer:
//   VQA       compute_vqa: BCE-with-logits (mean) x #answers on soft scores;
//   NLVR2     compute_nlvr2: two fused passes (image 0, image 1) with the same text, CE on 2 classes;
//   caption   compute_caption_mle: the causal decoder, labels = ids shifted left, <pad> ignored;
//   ITM       compute_itm (retrieval ITM fine-tune): half the pairs keep their image, the others get
//             the data's "false" image, labels shuffled; CE on itm_score;
//   ITC       retrieval ITC is coarsePretrainObjective with the ITM and MLM weights at 0.
// Written from the official code; unlike the pre-training step they have no fixture of the
// official code to be checked against.
import { crossEntropy, tf } from '@fiber-vl/tensor-core';
import {
  captionForward,
  captionImageEmbeds,
  captionLoss,
  vqaLoss,
  type FiberCoarseModel,
} from '@fiber-vl/heads-coarse';
import type { Objective } from './step.js';

export interface VqaBatch {
  pixels: tf.Tensor;
  textIds: tf.Tensor;
  textMasks: tf.Tensor;
  /** [B, answers] soft scores (min(1, 0.3 x annotators), see vqaSoftScore). */
  targets: tf.Tensor;
}

export function vqaObjective(): Objective<FiberCoarseModel, VqaBatch> {
  return async (model, b, ctx) => {
    await ctx.loss('vqa', () => vqaLoss(model.vqa(b.pixels, b.textIds, b.textMasks), b.targets));
  };
}

export interface Nlvr2Batch {
  pixels0: tf.Tensor;
  pixels1: tf.Tensor;
  textIds: tf.Tensor;
  textMasks: tf.Tensor;
  /** [B] int32 labels (1 = true). */
  labels: tf.Tensor;
}

export function nlvr2Objective(): Objective<FiberCoarseModel, Nlvr2Batch> {
  return async (model, b, ctx) => {
    await ctx.loss('nlvr2', () =>
      crossEntropy(model.nlvr2(b.pixels0, b.pixels1, b.textIds, b.textMasks).logits, b.labels),
    );
  };
}

export interface CaptionBatch {
  pixels: tf.Tensor;
  /** [B, L] int32 ids starting with <s>, padded with <pad>. */
  textIds: tf.Tensor;
  textMasks: tf.Tensor;
}

export function captionMleObjective({ padId = 1 }: { padId?: number } = {}): Objective<FiberCoarseModel, CaptionBatch> {
  return async (model, b, ctx) => {
    await ctx.loss('caption_mle', () => {
      const image = captionImageEmbeds(model, b.pixels);
      return captionLoss(captionForward(model, image, b.textIds, b.textMasks).logits, b.textIds, padId);
    });
  };
}

export interface ItmBatch {
  pixels: tf.Tensor;
  /** [B, 3, S, S] the data's random "false" image per pair (draw_false_image = 1). */
  falsePixels: tf.Tensor;
  textIds: tf.Tensor;
  textMasks: tf.Tensor;
}

/** compute_itm: B // 2 positives and the rest negatives, in an order drawn from ctx.rng(rngName) ('itm'). */
export function itmObjective({ rngName = 'itm' }: { rngName?: string } = {}): Objective<FiberCoarseModel, ItmBatch> {
  return async (model, b, ctx) => {
    const B = b.pixels.shape[0];
    const pos = Math.floor(B / 2);
    const order = ctx.rng(rngName).permutation(B);
    const ordered = [...Array.from({ length: pos }, () => 1), ...Array.from({ length: B - pos }, () => 0)];
    const labels = order.map((i) => ordered[i]);
    await ctx.loss('itm', () => {
      const keep = tf.reshape(tf.tensor1d(labels, 'bool'), [B, 1, 1, 1]);
      const images = tf.where(keep, b.pixels, b.falsePixels);
      const logits = model.itm(images, b.textIds, b.textMasks).logits;
      return crossEntropy(logits, tf.tensor1d(labels, 'int32'));
    });
  };
}

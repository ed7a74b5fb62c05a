// The coarse downstream fine-tune objectives of objectives.py, as objectives for the Trainer:
//   VQA       compute_vqa: BCE-with-logits (mean) x #answers on soft scores;
//   NLVR2     compute_nlvr2: two fused passes (image 0, image 1) with the same text, CE on 2 classes;
//   caption   compute_caption_mle: the causal decoder, labels = ids shifted left, <pad> ignored;
//   ITM       compute_itm (retrieval ITM fine-tune): half the pairs keep their image, the others get
//             the data's "false" image, labels shuffled; CE on itm_score;
//   ITC       retrieval ITC is coarsePretrainObjective with the ITM and MLM weights at 0.
//   ITM rank  compute_irtr of ViLT / METER (FIBER's ancestors): groups of pairs, the true pair
//             first; CE over each group's ITM "match" logits.
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
import { syncRankAlias } from './objectives.js';
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
  const objective: Objective<FiberCoarseModel, ItmBatch> = async (model, b, ctx) => {
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
  // rank_output (what retrieval scores by) follows the trained match row
  objective.afterStep = syncRankAlias;
  return objective;
}

export interface ItmRankBatch {
  /** [I, 3, S, S] the images the groups draw from. */
  pixels: tf.Tensor;
  /** [T, L] int32 ids of the texts the groups draw from, and their masks. */
  textIds: tf.Tensor;
  textMasks: tf.Tensor;
  /**
   * Groups of (image row, text row) pairs, all of one size (at least 2); the first pair of each
   * group is the true one, the others its negatives. Build each group around one text (other images
   * for it) or one image (other texts): that is what makes the loss train the pairing alone (not
   * checked).
   */
  groups: (readonly [image: number, text: number])[][];
}

/**
 * The retrieval rank loss of ViLT and METER (`compute_irtr`, from which FIBER's code descends):
 * every group's pairs go through one fused pass (the layers below the fusion once per image and
 * text), and the loss is the cross-entropy of the group's
 * ITM "match" logits (`itm_score` row 1) with the true pair as the class; a term `itm_rank`.
 * When a group shares its text (or its image), what that side contributes alone cancels in the
 * softmax and only how the image and the text go together is trained. ViLT trains `rank_output`
 * itself; here it stays FIBER's alias of that row, re-synced after each step (`itm_score` row 0
 * gets a zero gradient, so only weight decay moves it).
 */
export function itmRankObjective(): Objective<FiberCoarseModel, ItmRankBatch> {
  const objective: Objective<FiberCoarseModel, ItmRankBatch> = async (model, b, ctx) => {
    const itm = model.itmScore;
    if (!itm) throw new Error('itmRankObjective: the model has no ITM head (build it with itm: true)');
    const n = checkRankGroups(b);
    const pairs = b.groups.flat();
    await ctx.loss('itm_rank', () => {
      // the layers below the fusion run once per image and text, not once per pair
      const f = model.fused(b.pixels, b.textIds, b.textMasks, {
        image: pairs.map(([i]) => i),
        text: pairs.map(([, t]) => t),
      });
      const logits = itm.forward(f.clsFeats);
      const match = tf.reshape(tf.slice(logits, [0, 1], [-1, 1]), [b.groups.length, n]);
      return crossEntropy(match, tf.zeros([b.groups.length], 'int32'));
    });
  };
  objective.afterStep = syncRankAlias;
  return objective;
}

/** The groups' common size; a RangeError that names the field, group or pair otherwise. */
function checkRankGroups(b: ItmRankBatch): number {
  const I = b.pixels.shape[0];
  const T = b.textIds.shape[0];
  if (!b.groups.length) throw new RangeError('ITM rank batch: groups is empty');
  if (b.textMasks.shape.join() !== b.textIds.shape.join())
    throw new RangeError(
      `ITM rank batch: textMasks has shape [${b.textMasks.shape}] where textIds has [${b.textIds.shape}]`,
    );
  const n = b.groups[0].length;
  b.groups.forEach((group, g) => {
    if (group.length < 2)
      throw new RangeError(`ITM rank batch: groups[${g}] has ${group.length} pair(s); a group needs at least 2`);
    if (group.length !== n)
      throw new RangeError(`ITM rank batch: groups[${g}] has ${group.length} pairs where groups[0] has ${n}`);
    group.forEach(([i, t], k) => {
      if (!(Number.isInteger(i) && i >= 0 && i < I))
        throw new RangeError(`ITM rank batch: groups[${g}][${k}] image ${i} outside the ${I} rows of pixels`);
      if (!(Number.isInteger(t) && t >= 0 && t < T))
        throw new RangeError(`ITM rank batch: groups[${g}][${k}] text ${t} outside the ${T} rows of textIds`);
    });
  });
  return n;
}

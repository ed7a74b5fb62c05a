// The fine-grained pre-training / grounding / detection objective (GLIP-style, FIBER §3.3): one
// forward of the fine model, its VLDyHead outputs flattened over the FPN levels, and the ATSS loss
// of heads-fine: token sigmoid focal loss on the dot-product logits against the positive map
// (classification by token alignment), GIoU box regression weighted by the centerness targets, and
// the centerness BCE. Phrase grounding, referring expressions (a one-phrase prompt) and detection
// (the class names as the prompt) are the same loss with different prompts and positive maps.
import { tf, type Module } from '@fiber-vl/tensor-core';
import {
  type AnchorConfig,
  type AtssLossConfig,
  type FineTarget,
  atssLoss,
  flattenHeadOutputs,
  generateAnchors,
} from '@fiber-vl/heads-fine';
import type { Objective } from './step.js';

export interface FineGroundingBatch {
  /** [B, 3, H, W] fine-normalised pixels, padded to a common size (a multiple of 32). */
  pixels: tf.Tensor;
  /** [B, T] int32 prompt ids, padded to the model's maxQueryLen. */
  textIds: tf.Tensor;
  /** [B, T] prompt attention mask. */
  textMasks: tf.Tensor;
  /** Per image: GT boxes [G, 4] (xyxy in `pixels` coordinates) and the positive map [G, T] over the prompt tokens. */
  targets: FineTarget[];
}

/** What the objective needs of a fine model: FiberFineModel has it. */
export interface FineHeadModel extends Module {
  readonly config: { readonly anchors: AnchorConfig };
  forward(
    pixels: tf.Tensor,
    inputIds: tf.Tensor,
    attentionMask: tf.Tensor,
  ): {
    head: {
      levels: readonly { bboxReg: tf.Tensor; centerness: tf.Tensor; dotProductLogits: tf.Tensor }[];
    };
  };
}

export interface FineGroundingOptions {
  /** Loss term name in logs (default 'atss'). */
  name?: string;
  /** Overrides of heads-fine's FIBER_ATSS_LOSS (focal alpha / gamma, REG_LOSS_WEIGHT, ATSS top-k, ...). */
  loss?: Partial<AtssLossConfig>;
}

/**
 * The ATSS grounding loss of one batch as one loss term (the weighted total: token focal +
 * REG_LOSS_WEIGHT x GIoU + centerness; the class-logit term has weight 0 in FIBER). With
 * `ctx.observing`, the parts are observed as `<name>.dot_product_token`, `.reg`, `.centerness`
 * (the model outputs and `numPositives` are not kept).
 */
export function fineGroundingObjective<M extends FineHeadModel>({
  name = 'atss',
  loss: config = {},
}: FineGroundingOptions = {}): Objective<M, FineGroundingBatch> {
  return async (model, b, ctx) => {
    const B = b.pixels.shape[0];
    if (b.targets.length !== B || b.textIds.shape[0] !== B || b.textMasks.shape.join() !== b.textIds.shape.join())
      throw new RangeError(
        `fineGroundingObjective: pixels [${b.pixels.shape.join(', ')}], text ids [${b.textIds.shape.join(', ')}], ` +
          `text masks [${b.textMasks.shape.join(', ')}] and ${b.targets.length} targets do not describe one batch`,
      );
    await ctx.loss(name, () =>
      tf.tidy(() => {
        const levels = model.forward(b.pixels, b.textIds, b.textMasks).head.levels;
        // the anchors of one image, shared by the batch: [H_l, W_l] from each level's bbox_reg [B, 4, H_l, W_l]
        const anchors = generateAnchors(
          levels.map((l) => [l.bboxReg.shape[2], l.bboxReg.shape[3]] as [number, number]),
          model.config.anchors,
        );
        const flat = flattenHeadOutputs({
          bboxReg: levels.map((l) => l.bboxReg),
          centerness: levels.map((l) => l.centerness),
          dotProductLogits: levels.map((l) => l.dotProductLogits),
        });
        const out = atssLoss(flat, anchors, b.targets, b.textMasks, config);
        if (ctx.observing) {
          ctx.observe(`${name}.dot_product_token`, out.dotProductToken);
          ctx.observe(`${name}.reg`, out.reg);
          ctx.observe(`${name}.centerness`, out.centerness);
        }
        return out.total;
      }),
    );
  };
}

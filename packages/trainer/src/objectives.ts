// Coarse FIBER pre-training (task_pretrain_mlm_itm_itc, each loss weight 1), step for step as the
// official objectives.py / fiber_module.py run it (fiber-spec §2.2):
//   MLM  fused pass on the collator's masked ids, CE with -100 ignored (left out for a batch with
//        no masked token, where the official CE is NaN);
//   ITC  temp clamped in place to [min, max], then image_cls @ [txt.detach(); text_queue] / temp and
//        symmetrically (never-filled queue columns included), targets on the in-batch diagonal;
//   negatives  softmax of the first B + queue_total similarity columns, diagonal zeroed, + 1e-9,
//        one text per image and one image per text, drawn from the batch and the input queue;
//   enqueue  the batch's detached features and raw inputs go into the ring buffer;
//   ITM  fused pass on [(img, txt) 1; (img, neg txt) 0; (neg img, txt) 0], CE.
import { crossEntropy, detach, matmul, tf, type Generator } from '@fiber-vl/tensor-core';
import { drawHardNegatives, hardNegativeWeights, maskTokens, type FiberCoarseModel } from '@fiber-vl/heads-coarse';
import type { ItcQueue } from './queue.js';
import type { Objective, StepContext } from './step.js';

/**
 * The afterStep of every objective that trains `itm_score`: `rank_output` is FIBER's alias of its
 * row 1 (a view in PyTorch, its own parameter here), so it is copied again after each update.
 */
export function syncRankAlias(model: FiberCoarseModel): void {
  if (model.itmScore && model.rankOutput) model.syncRankOutput();
}

/** One coarse pre-training batch. Tensors are owned by the caller (the trainer disposes them after the step). */
export interface CoarsePretrainBatch {
  /** [B, 3, S, S] normalised pixels. */
  pixels: tf.Tensor;
  /** [B, L] int32 token ids, padded with <pad>. */
  textIds: tf.Tensor;
  /** [B, L] int32 attention mask. */
  textMasks: tf.Tensor;
  /** [B, L] the MLM collator's ids and labels (-100 where not masked); drawn in the step when absent. */
  textIdsMlm?: tf.Tensor;
  textLabelsMlm?: tf.Tensor;
  /**
   * Given hard negatives instead of drawing them: per image a text and per text an image, as
   * indices into cat(batch, input queue rows [0, queue_total)). For reproducing a run of the
   * official code (its torch.multinomial draws).
   */
  negTextIdx?: number[];
  negImageIdx?: number[];
}

/** DataCollatorForLanguageModeling settings (roberta-base: mask 50264, specials <s> <pad> </s> = 0 1 2). */
export interface MlmCollatorOptions {
  vocabSize: number;
  maskId: number;
  specialIds: number[];
  /** 0.15. */
  probability?: number;
}

/**
 * The MLM collator: each non-special token is picked with probability 0.15; of the picked, 80%
 * become <mask>, 10% a random token, 10% stay. Labels are -100 where nothing was picked.
 * ids [B, L] int32 -> { ids, labels } [B, L] int32.
 */
export async function mlmCollate(
  ids: tf.Tensor,
  options: MlmCollatorOptions,
  rng: Generator,
): Promise<{ ids: tf.Tensor; labels: tf.Tensor }> {
  const rows = (await ids.array()) as number[][];
  const { inputIds, labels } = maskTokens(rows, { ...options, rng });
  return {
    ids: tf.tensor2d(inputIds, ids.shape as [number, number], 'int32'),
    labels: tf.tensor2d(labels, ids.shape as [number, number], 'int32'),
  };
}

/**
 * ITC with the queue: sim_i2t = img @ [txt^T.detach(), text_queue] / temp, sim_t2i = txt @
 * [img^T.detach(), image_queue] / temp, loss = (CE_i2t + CE_t2i) / 2 with the in-batch diagonal
 * as targets. imageCls / textCls [B, H] normalised, queues [H, Q] (the official buffers' layout;
 * heads-coarse's `itcLoss` takes them as [Q, H]), temp a scalar. Without queues the similarities
 * are the in-batch [B, B] ones.
 */
export function itcQueueLoss(
  imageCls: tf.Tensor,
  textCls: tf.Tensor,
  temp: tf.Tensor,
  imageQueue?: tf.Tensor,
  textQueue?: tf.Tensor,
): { loss: tf.Tensor; simI2t: tf.Tensor; simT2i: tf.Tensor } {
  if (!imageQueue !== !textQueue) throw new RangeError('itcQueueLoss: give both queues or neither');
  return tf.tidy(() => {
    const B = imageCls.shape[0];
    const withQueue = (batch: tf.Tensor, queue?: tf.Tensor) => {
      const own = detach(tf.transpose(batch));
      return queue ? tf.concat([own, queue], 1) : own;
    };
    const textAll = withQueue(textCls, textQueue); // [H, B + Q]
    const imageAll = withQueue(imageCls, imageQueue);
    const simI2t = tf.div(matmul(imageCls, textAll), temp); // [B, B + Q]
    const simT2i = tf.div(matmul(textCls, imageAll), temp);
    const targets = tf.range(0, B, 1, 'int32');
    const loss = tf.div(tf.add(crossEntropy(simI2t, targets), crossEntropy(simT2i, targets)), 2);
    return { loss, simI2t, simT2i };
  });
}

/**
 * The hard-negative weights of a step (heads-coarse's `hardNegativeWeights`) over the similarity
 * columns that hold features: the batch and the filled part of the queue, min(B + queueTotal,
 * columns) of them. [B, B + Q] -> [B, n].
 */
export function filledHardNegativeWeights(sim: tf.Tensor, queueTotal: number): tf.Tensor {
  return tf.tidy(() => {
    const [B, C] = sim.shape;
    return hardNegativeWeights(tf.slice(sim, [0, 0], [B, Math.min(B + queueTotal, C)]));
  });
}

export interface CoarsePretrainOptions {
  /**
   * The ITC queue (feature and raw-input ring buffers), as the official recipe has it. Left out,
   * ITC contrasts within the batch only and the ITM negatives come from the batch (CLIP-style):
   * for small runs, where a queue without a momentum encoder holds features that are stale by
   * many steps and the loss can fall just by telling the current batch from the queue.
   */
  queue?: ItcQueue;
  /** Loss weights (official: 1 each); 0 leaves a term out. */
  weights?: { itc?: number; itm?: number; mlm?: number };
  /** The MLM collator, used when a batch carries no textIdsMlm (draws from ctx.rng(mlmRng)). */
  collator?: MlmCollatorOptions;
  /** Names of the generators for the collator and the hard negatives ('mlm', 'negatives'). */
  mlmRng?: string;
  negativesRng?: string;
}

/**
 * The coarse pre-training objective (ITC + ITM with hard negatives + MLM). The queue is part of
 * the objective's checkpointed state (`stateful.itc_queue`); after every applied optimizer step
 * rank_output is re-synced to itm_score.fc row 1, which the official model aliases.
 */
export function coarsePretrainObjective({
  queue,
  weights = {},
  collator,
  mlmRng = 'mlm',
  negativesRng = 'negatives',
}: CoarsePretrainOptions = {}): Objective<FiberCoarseModel, CoarsePretrainBatch> {
  const w = { itc: weights.itc ?? 1, itm: weights.itm ?? 1, mlm: weights.mlm ?? 1 };
  if (w.itm && !w.itc)
    throw new RangeError(
      'coarsePretrainObjective: ITM with hard negatives needs ITC (the negatives come from its similarities)',
    );
  const objective = (async (model: FiberCoarseModel, batch: CoarsePretrainBatch, ctx: StepContext) => {
    const { pixels, textIds, textMasks } = batch;
    const B = pixels.shape[0];
    if (textIds.shape[0] !== B || textMasks.shape.join() !== textIds.shape.join()) {
      throw new RangeError(
        `coarse batch: pixels [${pixels.shape}], textIds [${textIds.shape}] and textMasks [${textMasks.shape}] do not pair up`,
      );
    }
    if (w.mlm) await mlmTerm(model, batch, ctx, w.mlm, collator, mlmRng);
    if (!w.itc) return;
    const temp = model.temp;
    if (!temp)
      throw new Error('coarsePretrainObjective: the model has no ITC temperature (build it with the pretrain heads)');
    const { min, max } = model.heads.itcTemperature;
    tf.tidy(() => temp.value.assign(tf.clipByValue(temp.value, min, max))); // in place, outside the graph
    const itc = await ctx.loss(
      'itc',
      () => {
        const img = model.encodeImage(pixels);
        const txt = model.encodeText(textIds, textMasks);
        const r = itcQueueLoss(img.imageCls, txt.textCls, temp.value, queue?.imageFeats, queue?.textFeats);
        ctx.observe('itc.image_feat', img.imageCls);
        ctx.observe('itc.text_feat', txt.textCls);
        ctx.observe('itc.sim_i2t', r.simI2t);
        ctx.observe('itc.sim_t2i', r.simT2i);
        return {
          loss: r.loss,
          keep: { imageCls: img.imageCls, textCls: txt.textCls, simI2t: r.simI2t, simT2i: r.simT2i },
        };
      },
      { weight: w.itc },
    );
    const { imageCls, textCls, simI2t, simT2i } = itc.keep;
    // a non-finite ITC loss skips the step (the trainer's guard): no negatives are drawn from its
    // similarities, which drawHardNegatives would refuse, and no ITM term is run
    if (!Number.isFinite(itc.value)) {
      tf.dispose([imageCls, textCls, simI2t, simT2i]);
      return;
    }
    let neg: NegativeInputs | undefined;
    try {
      if (w.itm) {
        const wI2t = filledHardNegativeWeights(simI2t, queue?.total ?? 0);
        const wT2i = filledHardNegativeWeights(simT2i, queue?.total ?? 0);
        ctx.observe('itc.weights_i2t', wI2t);
        ctx.observe('itc.weights_t2i', wT2i);
        let picks: { negImageIdx: number[]; negTextIdx: number[] };
        try {
          picks =
            batch.negImageIdx && batch.negTextIdx
              ? givenNegatives(batch, B, wI2t.shape[1] as number)
              : await drawHardNegatives(wI2t, wT2i, ctx.rng(negativesRng)).then((d) => ({
                  negImageIdx: d.negImageForText,
                  negTextIdx: d.negTextForImage,
                }));
        } finally {
          tf.dispose([wI2t, wT2i]);
        }
        neg = negativeInputs(queue, batch, picks);
      }
      if (queue) {
        const undo = await queue.enqueue(imageCls, textCls, pixels, textIds, textMasks);
        ctx.onSkip(undo);
        ctx.onCommit(() => undo.commit());
      }
    } catch (e) {
      if (neg) tf.dispose(neg.owned);
      throw e;
    } finally {
      tf.dispose([imageCls, textCls, simI2t, simT2i]);
    }
    if (!neg) return;
    const n = neg;
    try {
      await ctx.loss(
        'itm',
        () => {
          // pairs by index: the layers below the fusion run once per image and text, not per pair
          const rows = Array.from({ length: B }, (_, i) => i);
          const f = model.fused(n.pixels, n.ids, n.mask, {
            image: [...rows, ...rows, ...n.negImage],
            text: [...rows, ...n.negText, ...rows],
          });
          const logits = model.itmScore!.forward(f.clsFeats);
          ctx.observe('itm.logits', logits);
          const labels = tf.tensor1d(
            Array.from({ length: 3 * B }, (_, i) => (i < B ? 1 : 0)),
            'int32',
          );
          return crossEntropy(logits, labels);
        },
        { weight: w.itm },
      );
    } finally {
      tf.dispose(n.owned);
    }
  }) as Objective<FiberCoarseModel, CoarsePretrainBatch>;
  objective.afterStep = syncRankAlias;
  if (queue) objective.stateful = { itc_queue: queue };
  return objective;
}

async function mlmTerm(
  model: FiberCoarseModel,
  batch: CoarsePretrainBatch,
  ctx: StepContext,
  weight: number,
  collator: MlmCollatorOptions | undefined,
  rngName: string,
): Promise<void> {
  if (!model.mlmScore) throw new Error('coarsePretrainObjective: the model has no MLM head');
  let drawn: { ids: tf.Tensor; labels: tf.Tensor } | undefined;
  if (!batch.textIdsMlm || !batch.textLabelsMlm) {
    if (!collator)
      throw new Error(
        'coarse batch: textIdsMlm / textLabelsMlm missing (run the MLM collator in the data pipeline, or pass `collator` to coarsePretrainObjective)',
      );
    drawn = await mlmCollate(batch.textIds, collator, ctx.rng(rngName));
  }
  const ids = drawn?.ids ?? batch.textIdsMlm!;
  const labels = drawn?.labels ?? batch.textLabelsMlm!;
  try {
    // nothing masked (short texts, small batches): the official CE would be 0/0 = NaN; leave the term out
    if (!(await labels.data()).some((l) => l !== -100)) return;
    await ctx.loss(
      'mlm',
      () => {
        const f = model.fused(batch.pixels, ids, batch.textMasks);
        const logits = model.mlmHead(f);
        ctx.observe('mlm.logits', logits);
        return crossEntropy(logits, labels, { ignoreIndex: -100 });
      },
      { weight },
    );
  } finally {
    if (drawn) tf.dispose([drawn.ids, drawn.labels]);
  }
}

function givenNegatives(
  batch: CoarsePretrainBatch,
  B: number,
  n: number,
): { negImageIdx: number[]; negTextIdx: number[] } {
  const check = (what: string, idx: number[]) => {
    if (idx.length !== B) throw new RangeError(`coarse batch: ${what} has ${idx.length} entries for a batch of ${B}`);
    idx.forEach((i) => {
      if (!(Number.isInteger(i) && i >= 0 && i < n))
        throw new RangeError(`coarse batch: ${what} index ${i} outside the ${n} candidates (batch + filled queue)`);
    });
    return idx;
  };
  return { negImageIdx: check('negImageIdx', batch.negImageIdx!), negTextIdx: check('negTextIdx', batch.negTextIdx!) };
}

interface NegativeInputs {
  pixels: tf.Tensor;
  ids: tf.Tensor;
  mask: tf.Tensor;
  negImage: number[];
  negText: number[];
  /** The tensors made here (the caller frees them); the batch's are not among them. */
  owned: tf.Tensor[];
}

/**
 * The ITM inputs: the batch rows, then the queue rows the negatives name (an index >= B is queue
 * row index - B), and each negative's row in them. Without a queue these are the batch tensors.
 */
function negativeInputs(
  queue: ItcQueue | undefined,
  batch: CoarsePretrainBatch,
  { negImageIdx, negTextIdx }: { negImageIdx: number[]; negTextIdx: number[] },
): NegativeInputs {
  const { pixels, textIds, textMasks } = batch;
  if (!queue) return { pixels, ids: textIds, mask: textMasks, negImage: negImageIdx, negText: negTextIdx, owned: [] };
  const B = pixels.shape[0];
  // queued rows go after the batch, one per pick, in the order of the picks
  const place = (idx: number[]) => {
    let k = B;
    return idx.map((i) => (i < B ? i : k++));
  };
  const queued = (idx: number[]) => idx.filter((i) => i >= B).map((i) => i - B);
  const qi = queue.gatherImages(queued(negImageIdx));
  try {
    const qt = queue.gatherTexts(queued(negTextIdx));
    try {
      const out = tf.tidy(() => ({
        pixels: tf.concat([pixels, qi], 0),
        ids: tf.concat([textIds, qt.ids], 0),
        mask: tf.concat([textMasks, qt.mask], 0),
      }));
      return {
        ...out,
        negImage: place(negImageIdx),
        negText: place(negTextIdx),
        owned: [out.pixels, out.ids, out.mask],
      };
    } finally {
      tf.dispose([qt.ids, qt.mask]);
    }
  } finally {
    qi.dispose();
  }
}

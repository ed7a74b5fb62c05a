// The downstream fine-tune objectives: each adds its named term, its value is the official loss of
// the model's outputs, and its gradient reaches the head it trains (and nothing it should not).
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator, initBackend, tf } from '@fiber-vl/tensor-core';
import { fiberConfig } from '@fiber-vl/fusion';
import { FiberCoarseModel, captionForward, captionImageEmbeds, captionLoss, vqaLoss } from '@fiber-vl/heads-coarse';
import { captionMleObjective, itmObjective, nlvr2Objective, vqaObjective } from './finetune.js';
import { StepContext } from './step.js';

let model: FiberCoarseModel;
const g = new Generator(4);
const B = 4;
let pixels: tf.Tensor, other: tf.Tensor, ids: tf.Tensor, mask: tf.Tensor;

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
  const cfg = fiberConfig('tiny', {
    imageSize: 32,
    maxTextLen: 8,
    hiddenSize: 32,
    swin: { dropPathRate: 0 },
    roberta: {
      vocabSize: 64,
      hiddenSize: 32,
      intermediateSize: 64,
      maxPositionEmbeddings: 12,
      hiddenDropoutProb: 0,
      attentionProbsDropoutProb: 0,
    },
  });
  model = new FiberCoarseModel(
    cfg,
    { itc: true, itm: true, mlm: true, vqaLabels: 5, nlvr2: true, caption: true },
    new Generator(1),
  ).train();
  pixels = g.normal([B, 3, 32, 32]);
  other = g.normal([B, 3, 32, 32]);
  ids = tf.tensor2d(
    Array.from({ length: B }, () => [0, 5, 9, 7, 2, 1, 1, 1]),
    [B, 8],
    'int32',
  );
  mask = tf.tensor2d(
    Array.from({ length: B }, () => [1, 1, 1, 1, 1, 0, 0, 0]),
    [B, 8],
    'int32',
  );
});

const ctxFor = () => new StepContext({ params: model.namedParameters(), rngs: { itm: new Generator(9) } });
const gradNames = (ctx: StepContext) => [...ctx.grads.keys()];

describe('fine-tune objectives', () => {
  it('VQA: BCE x answers on the soft scores; gradients reach vqa_classifier, not the other heads', async () => {
    const targets = tf.tensor2d(Array.from({ length: B }, (_, i) => [0.3, 0, i % 2 ? 1 : 0.6, 0, 0]));
    const ctx = ctxFor();
    await vqaObjective()(model, { pixels, textIds: ids, textMasks: mask, targets }, ctx);
    const direct = tf.tidy(() => vqaLoss(model.vqa(pixels, ids, mask), targets));
    expect(ctx.losses.vqa).toBeCloseTo((await direct.data())[0], 5);
    expect(gradNames(ctx)).toContain('vqa_classifier.3.weight');
    expect(gradNames(ctx).some((n) => /itm_score|nlvr2|mlm_score|_itc/.test(n))).toBe(false);
    ctx.dispose();
    tf.dispose([targets, direct]);
  });

  it('NLVR2: CE on the two fused passes', async () => {
    const labels = tf.tensor1d([1, 0, 0, 1], 'int32');
    const ctx = ctxFor();
    await nlvr2Objective()(model, { pixels0: pixels, pixels1: other, textIds: ids, textMasks: mask, labels }, ctx);
    expect(Number.isFinite(ctx.losses.nlvr2)).toBe(true);
    expect(gradNames(ctx)).toContain('nlvr2_classifier.0.weight');
    ctx.dispose();
    labels.dispose();
  });

  it('caption MLE: next-token CE with <pad> ignored, through the captioning adapters', async () => {
    const ctx = ctxFor();
    await captionMleObjective()(model, { pixels, textIds: ids, textMasks: mask }, ctx);
    const direct = tf.tidy(() =>
      captionLoss(captionForward(model, captionImageEmbeds(model, pixels), ids, mask).logits, ids),
    );
    expect(ctx.losses.caption_mle).toBeCloseTo((await direct.data())[0], 5);
    expect(gradNames(ctx).filter((n) => n.startsWith('cross_modal_att_layers.')).length).toBeGreaterThan(0);
    ctx.dispose();
    direct.dispose();
  });

  it('ITM: B // 2 pairs keep their image, the rest take the false one, in a drawn order', async () => {
    const ctx = ctxFor();
    await itmObjective()(model, { pixels, falsePixels: other, textIds: ids, textMasks: mask }, ctx);
    const order = new Generator(9).permutation(B);
    const labels = order.map((i) => (i < 2 ? 1 : 0));
    expect(labels.filter((l) => l === 1)).toHaveLength(2);
    const direct = tf.tidy(() => {
      const images = tf.stack(
        labels.map((l, i) => tf.slice(l ? pixels : other, [i, 0, 0, 0], [1, 3, 32, 32]).reshape([3, 32, 32])),
      );
      return tf.losses.softmaxCrossEntropy(
        tf.oneHot(tf.tensor1d(labels, 'int32'), 2),
        model.itm(images, ids, mask).logits,
      );
    });
    expect(ctx.losses.itm).toBeCloseTo((await direct.data())[0], 5);
    expect(gradNames(ctx)).toContain('itm_score.fc.weight');
    expect(gradNames(ctx)).not.toContain('rank_output.weight');
    ctx.dispose();
    direct.dispose();
  });
});

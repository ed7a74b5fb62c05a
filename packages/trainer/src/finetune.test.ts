// The downstream fine-tune objectives: each adds its named term, its value is the official loss of
// the model's outputs, and its gradient reaches the head it trains (and nothing it should not).
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator, expectNoTensorGrowth, initBackend, tf } from '@fiber-vl/tensor-core';
import { fiberConfig } from '@fiber-vl/fusion';
import { FiberCoarseModel, captionForward, captionImageEmbeds, captionLoss, vqaLoss } from '@fiber-vl/heads-coarse';
import { captionMleObjective, itmObjective, itmRankObjective, nlvr2Objective, vqaObjective } from './finetune.js';
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

/** After the objective's step, rank_output is itm_score.fc row 1 again (weight and bias); the weights are restored. */
async function expectRankSynced(objective: { afterStep?: (m: FiberCoarseModel) => void }): Promise<void> {
  const fc = model.itmScore!.fc;
  const saved = [fc.weight.value, fc.bias!.value].map((v) => tf.clone(v));
  tf.tidy(() => {
    fc.weight.value.assign(tf.add(fc.weight.value, 0.5));
    fc.bias!.value.assign(tf.add(fc.bias!.value, 0.25));
  });
  objective.afterStep!(model);
  const [w, bias, r, rb] = await Promise.all(
    [fc.weight, fc.bias!, model.rankOutput!.weight, model.rankOutput!.bias!].map((p) => p.value.data()),
  );
  const H2 = fc.inFeatures;
  expect(Array.from(r)).toEqual(Array.from(w.subarray(H2, 2 * H2)));
  expect(Array.from(rb)).toEqual([bias[1]]);
  fc.weight.value.assign(saved[0]);
  fc.bias!.value.assign(saved[1]);
  tf.dispose(saved);
  model.syncRankOutput();
}

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

  it('ITM: B // 2 pairs keep their image, the rest take the false one, in a drawn order; rank_output follows the match row', async () => {
    const ctx = ctxFor();
    const objective = itmObjective();
    await objective(model, { pixels, falsePixels: other, textIds: ids, textMasks: mask }, ctx);
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
    // rank_output, which retrieval scores by, follows the trained match row
    await expectRankSynced(objective);
  });
  it('ITM rank: CE over each group of match logits, the true pair first; rank_output re-synced after the step', async () => {
    // two image groups (a text against three images) and one text group (an image against three texts)
    const texts = tf.tensor2d(
      [
        [0, 5, 9, 7, 2, 1, 1, 1],
        [0, 6, 3, 2, 1, 1, 1, 1],
        [0, 8, 8, 4, 11, 2, 1, 1],
      ],
      [3, 8],
      'int32',
    );
    const masks = tf.tensor2d(
      [
        [1, 1, 1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 1, 0, 0],
      ],
      [3, 8],
      'int32',
    );
    const groups: [number, number][][] = [
      [
        [0, 0],
        [1, 0],
        [2, 0],
      ],
      [
        [3, 1],
        [0, 1],
        [1, 1],
      ],
      [
        [2, 2],
        [2, 0],
        [2, 1],
      ],
      [
        [1, 2],
        [3, 2],
        [0, 2],
      ],
    ];
    const batch = { pixels, textIds: texts, textMasks: masks, groups };
    const ctx = ctxFor();
    const objective = itmRankObjective();
    await objective(model, batch, ctx);
    // by hand: each pair's match logit alone, then log-softmax within its group
    const direct: number[] = [];
    for (const group of groups) {
      const z: number[] = [];
      for (const [i, t] of group) {
        const l = tf.tidy(
          () => model.itm(tf.slice(pixels, [i], [1]), tf.slice(texts, [t], [1]), tf.slice(masks, [t], [1])).logits,
        );
        z.push((await l.data())[1]);
        l.dispose();
      }
      const m = Math.max(...z);
      direct.push(m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0)) - z[0]);
    }
    expect(ctx.losses.itm_rank).toBeCloseTo(direct.reduce((s, v) => s + v, 0) / direct.length, 4);
    expect(gradNames(ctx)).toContain('itm_score.fc.weight');
    expect(gradNames(ctx)).not.toContain('rank_output.weight');
    ctx.dispose();
    await expectRankSynced(objective);
    // repeated terms do not grow the tensor count
    await expectNoTensorGrowth(async () => {
      const c = ctxFor();
      await objective(model, batch, c);
      c.dispose();
    });
    // groups of different sizes, a group of one, rows out of range: errors that name the group
    const bad = async (g: [number, number][][]) => {
      const c = ctxFor();
      try {
        await objective(model, { ...batch, groups: g }, c);
      } finally {
        c.dispose();
      }
    };
    await expect(bad([])).rejects.toThrow('groups is empty');
    await expect(bad([groups[0], groups[1].slice(0, 2)])).rejects.toThrow(
      'groups[1] has 2 pairs where groups[0] has 3',
    );
    await expect(bad([[[0, 0]]])).rejects.toThrow('groups[0] has 1 pair(s); a group needs at least 2');
    const c2 = ctxFor();
    const short = tf.slice(masks, [0], [2]);
    await expect(objective(model, { ...batch, textMasks: short }, c2)).rejects.toThrow(
      'textMasks has shape [2,8] where textIds has [3,8]',
    );
    c2.dispose();
    short.dispose();
    await expect(
      bad([
        [
          [0, 0],
          [4, 0],
        ],
      ]),
    ).rejects.toThrow('groups[0][1] image 4 outside the 4 rows of pixels');
    await expect(
      bad([
        [
          [0, 3],
          [1, 0],
        ],
      ]),
    ).rejects.toThrow('groups[0][0] text 3 outside the 3 rows of textIds');
    const noItm = new FiberCoarseModel(model.config, { ...model.heads, itm: false }, new Generator(2));
    const c = ctxFor();
    await expect(objective(noItm, batch, c)).rejects.toThrow('itmRankObjective: the model has no ITM head');
    c.dispose();
    noItm.dispose();
    tf.dispose([texts, masks]);
  });
});

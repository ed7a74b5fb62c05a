import { beforeAll, describe, expect, it } from 'vitest';
import { Generator, tf, l2Normalize } from '@fiber-vl/tensor-core';
import { gradCheck, testBackends, useBackend } from '@fiber-vl/tensor-core/testing';
import {
  captionLoss,
  itcLoss,
  itmLoss,
  maskTokens,
  mlmLoss,
  sampleHardNegatives,
  vqaLoss,
  vqaSoftScore,
} from './losses.js';

const { names } = await testBackends();
const rng = new Generator(11);

describe.each(names.filter((n) => n !== 'webgpu'))('FIBER losses on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('ITC equals the hand-computed symmetric cross-entropy and has correct gradients (with a queue)', async () => {
    const img = l2Normalize(rng.normal([3, 4]));
    const txt = l2Normalize(rng.normal([3, 4]));
    const [I, T] = [(await img.array()) as number[][], (await txt.array()) as number[][]];
    const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i], 0);
    let ref = 0;
    for (let i = 0; i < 3; i++) {
      const ri = T.map((t) => dot(I[i], t) / 0.07);
      const rt = I.map((m) => dot(T[i], m) / 0.07);
      const lse = (r: number[]) => Math.log(r.reduce((s, v) => s + Math.exp(v), 0));
      ref += (lse(ri) - ri[i] + (lse(rt) - rt[i])) / 2 / 3;
    }
    expect((await itcLoss(img, txt, 0.07).data())[0]).toBeCloseTo(ref, 4);
    const queue = l2Normalize(rng.normal([5, 4]));
    const r = await gradCheck((a, b) => itcLoss(a, b, 0.5, { imageQueue: queue, textQueue: queue }), [img, txt], {
      eps: 1e-2,
    });
    expect(r.ok).toBe(true);
    // shapes that do not pair are named here (crossEntropy's message, or tf's oneHot for B = 0)
    const before = tf.memory().numTensors;
    expect(() => itcLoss(img, l2Normalize(rng.normal([2, 4])), 0.07)).toThrow(
      'itcLoss: textCls is [2, 4], expected [3, 4] as imageCls [3, 4]',
    );
    expect(() => itcLoss(tf.zeros([0, 4]), tf.zeros([0, 4]), 0.07)).toThrow('expected [B >= 1, hidden]');
    expect(() => itcLoss(img, txt, 0.07, { imageQueue: tf.zeros([5, 3]) })).toThrow(
      'imageQueue is [5, 3], expected [Q, 4]',
    );
    expect(tf.memory().numTensors - before).toBe(5); // the inputs made above
  });

  it('ITM, MLM, VQA and caption losses: values and finite-difference gradients', async () => {
    const logits2 = rng.normal([4, 2]);
    expect((await gradCheck((x) => itmLoss(x, tf.tensor1d([1, 0, 0, 1], 'int32')), [logits2])).ok).toBe(true);
    const mlm = rng.normal([2, 3, 7]);
    expect(
      (
        await gradCheck(
          (x) =>
            mlmLoss(
              x,
              tf.tensor2d(
                [
                  [-100, 3, -100],
                  [6, -100, 0],
                ],
                [2, 3],
                'int32',
              ),
            ),
          [mlm],
        )
      ).ok,
    ).toBe(true);
    const vqa = rng.normal([2, 5]);
    const targets = tf.tensor2d([
      [0, 0.3, 1, 0, 0.6],
      [0.9, 0, 0, 0, 0],
    ]);
    expect((await gradCheck((x) => vqaLoss(x, targets), [vqa])).ok).toBe(true);
    expect([1, 2, 3, 4].map(vqaSoftScore)).toEqual([0.3, 0.6, 0.8999999999999999, 1]);
    const cap = rng.normal([1, 4, 6]);
    expect((await gradCheck((x) => captionLoss(x, tf.tensor2d([[0, 4, 2, 1]], [1, 4], 'int32')), [cap])).ok).toBe(true);
    // caption labels: position t predicts t+1, pads ignored -> positions 0 and 1 only
    const manual = mlmLoss(cap, tf.tensor2d([[4, 2, -100, -100]], [1, 4], 'int32'));
    expect((await captionLoss(cap, tf.tensor2d([[0, 4, 2, 1]], [1, 4], 'int32')).data())[0]).toBeCloseTo(
      (await manual.data())[0],
      6,
    );
  });
});

describe('sampling', () => {
  beforeAll(() => useBackend('cpu'));
  it('hard negatives never pick the positive and follow the similarities', async () => {
    const sim = tf.tensor2d([
      [9, 8, -9],
      [0, 9, 0],
      [-9, 8, 9],
    ]);
    const picks: number[][] = [];
    for (let s = 0; s < 200; s++) picks.push((await sampleHardNegatives(sim, sim, new Generator(s))).negTextForImage);
    expect(picks.every((p) => p.every((j, i) => j !== i))).toBe(true);
    expect(picks.filter((p) => p[0] === 1).length).toBeGreaterThan(190); // image 0: text 1 is far more similar than text 2
  });
  it('hard negatives name non-finite similarities and shapes that are not [B, B]', async () => {
    const before = tf.memory().numTensors;
    const nan = tf.tensor2d([
      [1, Number.NaN],
      [0, 1],
    ]);
    const ok = tf.tensor2d([
      [1, 0],
      [0, 1],
    ]);
    const wide = tf.tensor2d([[1, 0, 0]]);
    // NaN used to pick index 0: the positive of row 0
    const rng = new Generator(1);
    const state = rng.getState();
    await expect(sampleHardNegatives(nan, ok, rng)).rejects.toThrow('simI2t row 0 is not finite');
    await expect(sampleHardNegatives(ok, nan, rng)).rejects.toThrow('simT2i row 0 is not finite');
    expect(rng.getState()).toEqual(state); // nothing drawn
    await expect(sampleHardNegatives(ok, wide)).rejects.toThrow('simT2i must be [B, B] with B = 2');
    tf.dispose([nan, ok, wide]);
    expect(tf.memory().numTensors).toBe(before);
  });
  it('MLM masking names a bad probability, vocabSize or maskId', () => {
    const base = { vocabSize: 50, maskId: 49, specialIds: [0] };
    // NaN selected every token
    expect(() => maskTokens([[5, 6]], { ...base, probability: Number.NaN })).toThrow(
      'maskTokens: probability must be in [0, 1], got NaN',
    );
    expect(() => maskTokens([[5, 6]], { ...base, vocabSize: 0 })).toThrow(/vocabSize must be a positive integer/);
    expect(() => maskTokens([[5, 6]], { ...base, maskId: 50 })).toThrow('maskId must be a token id in [0, 50), got 50');
    expect(maskTokens([[5, 6]], { ...base, probability: 1, rng: new Generator(0) }).labels).toEqual([[5, 6]]);
  });
  it('MLM masking: 15% of non-special tokens, 80/10/10, labels -100 elsewhere', () => {
    const ids = Array.from({ length: 200 }, () => [0, ...Array.from({ length: 48 }, (_, i) => 5 + (i % 20)), 2]);
    const { inputIds, labels } = maskTokens(ids, {
      vocabSize: 50,
      maskId: 49,
      specialIds: [0, 1, 2],
      rng: new Generator(3),
    });
    const selected = labels.flat().filter((l) => l !== -100).length;
    expect(selected / (200 * 48)).toBeGreaterThan(0.13);
    expect(selected / (200 * 48)).toBeLessThan(0.17);
    const masked = inputIds.flat().filter((t) => t === 49).length;
    expect(masked / selected).toBeGreaterThan(0.75);
    expect(masked / selected).toBeLessThan(0.85);
    expect(labels.every((r) => r[0] === -100 && r[49] === -100)).toBe(true);
  });
});

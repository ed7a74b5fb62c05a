import { beforeAll, describe, expect, it } from 'vitest';
import { Generator, tf, l2Normalize } from '@fiber-vl/tensor-core';
import { gradCheck, maxAbsDiff, testBackends, useBackend } from '@fiber-vl/tensor-core/testing';
import {
  captionLoss,
  itcLoss,
  itmLoss,
  maskTokens,
  mlmLoss,
  sampleHardNegatives,
  hardNegativeWeights,
  drawHardNegatives,
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
    // gradients as compute_itc's: each side's keys are detached, so the image features learn from
    // CE_i2t only and the text features from CE_t2i only: dL/dq_i = sum_j (p_ij - [i = j]) k_j / (2 B t)
    const queue = l2Normalize(rng.normal([5, 4]));
    const Q = (await queue.array()) as number[][];
    const expected = (queries: number[][], keys: number[][], t: number) =>
      queries.map((q, i) => {
        const logits = keys.map((k) => dot(q, k) / t);
        const m = Math.max(...logits);
        const e = logits.map((v) => Math.exp(v - m));
        const z = e.reduce((a, b) => a + b, 0);
        return q.map(
          (_, d) => keys.reduce((acc, k, j) => acc + (e[j] / z - (i === j ? 1 : 0)) * k[d], 0) / (2 * 3 * t),
        );
      });
    const [gImg, gTxt] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      itcLoss(a, b, 0.5, { imageQueue: queue, textQueue: queue }),
    )([img, txt]);
    expect(maxAbsDiff(await gImg.data(), expected(I, [...T, ...Q], 0.5).flat())).toBeLessThan(1e-5);
    expect(maxAbsDiff(await gTxt.data(), expected(T, [...I, ...Q], 0.5).flat())).toBeLessThan(1e-5);
    tf.dispose([gImg, gTxt]);
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
    // targets of another shape would broadcast into a wrong loss: refused
    for (const bad of [tf.zeros([2, 1]), tf.zeros([5]), tf.zeros([3, 5])]) {
      expect(() => vqaLoss(vqa, bad)).toThrow(
        `vqaLoss: logits [2, 5] and targets [${bad.shape.join(', ')}] must both be [B, answers]`,
      );
      bad.dispose();
    }
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
  it('hard negatives are drawn as compute_itc draws them: texts first, softmax with the positive zeroed, + 1e-9, queue columns', async () => {
    const simI2t = rng.normal([3, 5], 0, 2); // 3 in-batch columns, then 2 queue columns
    const simT2i = rng.normal([3, 5], 0, 2);
    const rows = async (sim: tf.Tensor) =>
      ((await tf.softmax(sim).array()) as number[][]).map((r, i) => r.map((w, j) => (j === i ? 0 : w) + 1e-9));
    const [wI2t, wT2i] = [await rows(simI2t), await rows(simT2i)];
    // torch.multinomial's one draw per row, from an independent copy of the generator
    const pick = (r: Generator, w: number[]) => {
      let u = r.nextDouble() * w.reduce((a, b) => a + b, 0);
      return w.findIndex((v) => (u -= v) < 0);
    };
    const counts = [0, 0, 0, 0, 0];
    for (let s = 0; s < 50; s++) {
      const ref = new Generator(s);
      const negImageForText = wT2i.map((w) => pick(ref, w));
      const negTextForImage = wI2t.map((w) => pick(ref, w));
      const got = await sampleHardNegatives(simI2t, simT2i, new Generator(s));
      expect(got).toEqual({ negTextForImage, negImageForText });
      for (const j of [...negTextForImage, ...negImageForText]) counts[j]++;
    }
    expect(counts[3] + counts[4]).toBeGreaterThan(0); // the queue columns are candidates
    tf.dispose([simI2t, simT2i]);
  });
  it('hard negatives name non-finite similarities and shapes that are not [B, N >= B]', async () => {
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
    await expect(sampleHardNegatives(ok, wide)).rejects.toThrow(
      'sampleHardNegatives: simT2i must be [B, N] with N >= B (in-batch columns, then queue columns), as simI2t [2, 2]; got [1, 3]',
    );
    const tall = tf.transpose(wide); // fewer columns than rows
    await expect(sampleHardNegatives(tall, tall)).rejects.toThrow('got [3, 1]');
    tf.dispose([nan, ok, wide, tall]);
    expect(tf.memory().numTensors).toBe(before);
  });
  it('sampleHardNegatives is drawHardNegatives on hardNegativeWeights; both name bad weights and draw nothing', async () => {
    const before = tf.memory().numTensors;
    const simI2t = rng.normal([4, 7], 0, 2);
    const simT2i = rng.normal([4, 7], 0, 2);
    const wI2t = hardNegativeWeights(simI2t);
    const wT2i = hardNegativeWeights(simT2i);
    const w = (await wI2t.array()) as number[][];
    w.forEach((row, i) => {
      expect(row[i]).toBe(0); // the positive
      expect(row.reduce((a, b) => a + b, 0)).toBeLessThan(1);
    });
    for (let s = 0; s < 10; s++)
      expect(await drawHardNegatives(wI2t, wT2i, new Generator(s))).toEqual(
        await sampleHardNegatives(simI2t, simT2i, new Generator(s)),
      );
    const g = new Generator(2);
    const state = g.getState();
    const negative = tf.tensor2d([
      [0, -0.5],
      [1, 0],
    ]);
    await expect(drawHardNegatives(wI2t, negative, g)).rejects.toThrow(
      'drawHardNegatives: weightsT2i must be [B, N] with N >= B (in-batch columns, then queue columns), as weightsI2t [4, 7]; got [2, 2]',
    );
    await expect(drawHardNegatives(negative, negative, g)).rejects.toThrow(
      'drawHardNegatives: weightsI2t row 0 is not finite and non-negative',
    );
    expect(g.getState()).toEqual(state);
    const tall = tf.transpose(simI2t);
    expect(() => hardNegativeWeights(tall)).toThrow(
      'hardNegativeWeights: sim must be [B, N] with N >= B (in-batch columns, then queue columns); got [7, 4]',
    );
    tf.dispose([simI2t, simT2i, wI2t, wT2i, negative, tall]);
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

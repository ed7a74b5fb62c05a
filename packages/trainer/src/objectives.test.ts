// The coarse objective without a queue (in-batch ITC, negatives from the batch): the loss against a
// plain computation, and a full ITC + ITM + MLM step of a tiny model that keeps nothing across steps.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fiberConfig } from '@fiber-vl/fusion';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { Generator, l2Normalize, tf } from '@fiber-vl/tensor-core';
import { expectNoTensorGrowth, heavyTestBackends, testBackends, useBackend } from '@fiber-vl/tensor-core/testing';
import { Trainer } from './loop.js';
import { coarsePretrainObjective, itcQueueLoss } from './objectives.js';
import { AdamW, fiberCoarseParamGroups } from './optim.js';
import { ItcQueue } from './queue.js';

const { names } = await testBackends();
const model2d = (t: tf.Tensor) => t.arraySync() as number[][];
const heavy = await heavyTestBackends('coarse step without a queue');

/** (CE_i2t + CE_t2i) / 2 over the in-batch similarities, in plain numbers. */
function inBatchItc(img: number[][], txt: number[][], temp: number): number {
  const B = img.length;
  const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0);
  const ce = (q: number[][], k: number[][]) => {
    let total = 0;
    for (let i = 0; i < B; i++) {
      const logits = k.map((kj) => dot(q[i], kj) / temp);
      const m = Math.max(...logits);
      const lse = m + Math.log(logits.reduce((s, l) => s + Math.exp(l - m), 0));
      total += lse - logits[i];
    }
    return total / B;
  };
  return (ce(img, txt) + ce(txt, img)) / 2;
}

describe.each(names)('coarse objective without a queue (%s)', (backend) => {
  beforeAll(() => useBackend(backend));

  it('itcQueueLoss without queues is the in-batch contrastive loss, [B, B] similarities', async () => {
    const rng = new Generator(7);
    const img = l2Normalize(rng.normal([5, 8]));
    const txt = l2Normalize(rng.normal([5, 8]));
    const temp = tf.scalar(0.07);
    const r = itcQueueLoss(img, txt, temp);
    expect(r.simI2t.shape).toEqual([5, 5]);
    expect(r.simT2i.shape).toEqual([5, 5]);
    const want = inBatchItc((await img.array()) as number[][], (await txt.array()) as number[][], 0.07);
    expect((await r.loss.data())[0]).toBeCloseTo(want, 4);
    tf.dispose([img, txt, temp, r.loss, r.simI2t, r.simT2i]);
  });

  it('itcQueueLoss refuses one queue without the other', () => {
    const x = tf.ones([2, 4]);
    const q = tf.ones([4, 3]);
    const temp = tf.scalar(0.07);
    expect(() => itcQueueLoss(x, x, temp, q)).toThrow(/both queues or neither/);
    tf.dispose([x, q, temp]);
  });
});

describe.each(heavy)('a coarse step without a queue, tiny model (%s)', (backend) => {
  beforeAll(() => useBackend(backend));
  const [S, L, H, B] = [32, 12, 32, 4];
  const config = fiberConfig('tiny', {
    imageSize: S,
    maxTextLen: L,
    hiddenSize: H,
    swin: { dropPathRate: 0 },
    roberta: {
      vocabSize: 40,
      hiddenSize: H,
      intermediateSize: 2 * H,
      maxPositionEmbeddings: L + 10,
      hiddenDropoutProb: 0,
      attentionProbsDropoutProb: 0,
    },
  });
  let model: FiberCoarseModel;
  let optimizer: AdamW;
  beforeAll(() => {
    model = new FiberCoarseModel(config, 'pretrain', new Generator(1));
    optimizer = new AdamW(fiberCoarseParamGroups(model.namedParameters(), { lr: 1e-4 }), { variant: 'transformers' });
  });
  afterAll(() => {
    optimizer.dispose();
    model.dispose();
  });

  const batch = (seed: number) => {
    const rng = new Generator(seed);
    const ids = Array.from({ length: B }, () => [0, ...Array.from({ length: L - 2 }, () => 3 + rng.nextInt(36)), 2]);
    return {
      pixels: rng.normal([B, 3, S, S]),
      textIds: tf.tensor2d(ids, [B, L], 'int32'),
      textMasks: tf.ones([B, L], 'int32'),
    };
  };

  it('runs ITC, ITM on in-batch negatives and MLM, has no checkpointed state, and keeps no tensors', async () => {
    const objective = coarsePretrainObjective({
      collator: { vocabSize: 40, maskId: 39, specialIds: [0, 1, 2] },
    });
    expect(objective.stateful).toBeUndefined();
    const trainer = new Trainer({
      model,
      objective,
      optimizer,
      rngs: { negatives: new Generator(2), mlm: new Generator(3) },
    });
    const step = async (seed: number) => {
      const b = batch(seed);
      try {
        return await trainer.trainStep([b]);
      } finally {
        tf.dispose(Object.values(b));
      }
    };
    let seed = 10;
    const first = await step(seed++);
    for (const k of ['itc', 'itm', 'mlm']) expect(Number.isFinite(first.losses[k]), k).toBe(true);
    await expectNoTensorGrowth(() => step(seed++), { warmup: 0, label: 'coarse step without a queue' });
  }, 120_000);

  it('a batch with NaN pixels is a skipped step (non-finite ITC), not an error from the negatives draw', async () => {
    const trainer = new Trainer({
      model,
      objective: coarsePretrainObjective({ collator: { vocabSize: 40, maskId: 39, specialIds: [0, 1, 2] } }),
      optimizer,
      rngs: { negatives: new Generator(2), mlm: new Generator(3) },
    });
    const b = batch(20);
    const bad = { ...b, pixels: tf.fill(b.pixels.shape, Number.NaN) };
    const before = tf.memory().numTensors;
    try {
      const r = await trainer.trainStep([bad]);
      expect(r.skipped).toBe(true);
      expect(r.reason).toMatch(/non-finite loss .*itc=NaN/);
      expect(r.losses.itm).toBeUndefined();
      expect(trainer.step).toBe(1);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      tf.dispose([...Object.values(b), bad.pixels]);
    }
  }, 60_000);

  it('draws the ITM negatives as compute_itc: a sampled step equals a step given an independent draw', async () => {
    const b = batch(30);
    // the similarities of the step (dropout is off, and the optimizer steps after the losses)
    const ref = new FiberCoarseModel(config, 'pretrain', new Generator(1));
    const [img, txt, temp] = tf.tidy(() => [
      model2d(ref.encodeImage(b.pixels).imageCls),
      model2d(ref.encodeText(b.textIds, b.textMasks).textCls),
      ref.temp!.value.dataSync()[0],
    ]) as [number[][], number[][], number];
    ref.dispose();
    // softmax rows with the positive zeroed, + 1e-9, one torch.multinomial draw each, images first
    const dot = (a: number[], c: number[]) => a.reduce((t, x, i) => t + Math.fround(x * c[i]), 0);
    const weights = (q: number[][], k: number[][]) =>
      q.map((qi, i) => {
        const logits = k.map((kj) => dot(qi, kj) / temp);
        const m = Math.max(...logits);
        const e = logits.map((l) => Math.exp(l - m));
        const z = e.reduce((x, y) => x + y, 0);
        return e.map((v, j) => (j === i ? 0 : v / z) + 1e-9);
      });
    const rng = new Generator(2);
    const draw = (rows: number[][]) =>
      rows.map((w) => {
        let u = rng.nextDouble() * w.reduce((x, y) => x + y, 0);
        return w.findIndex((v) => (u -= v) < 0);
      });
    const negImageIdx = draw(weights(txt, img));
    const negTextIdx = draw(weights(img, txt));
    const step = async (given?: { negImageIdx: number[]; negTextIdx: number[] }) => {
      const m = new FiberCoarseModel(config, 'pretrain', new Generator(1));
      const opt = new AdamW(fiberCoarseParamGroups(m.namedParameters(), { lr: 1e-4 }), { variant: 'transformers' });
      const objective = coarsePretrainObjective({ collator: { vocabSize: 40, maskId: 39, specialIds: [0, 1, 2] } });
      const trainer = new Trainer({
        model: m,
        objective,
        optimizer: opt,
        rngs: { negatives: new Generator(2), mlm: new Generator(3) },
      });
      // the ITM logits of every pair [3B, 2]: matched, (image, negative text), (negative image, text);
      // the loss alone is near log 2 at this init and can hide which pairs were scored
      let logits: number[][] = [];
      try {
        await trainer.trainStep([{ ...b, ...given }], {
          observer: (name, t) => {
            if (name === 'itm.logits') logits = t.arraySync() as number[][];
            t.dispose();
          },
        });
        return logits;
      } finally {
        opt.dispose();
        m.dispose();
      }
    };
    const sampled = await step();
    expect(sampled).toHaveLength(3 * B);
    expect(await step({ negImageIdx, negTextIdx })).toEqual(sampled);
    // another draw scores other pairs: the comparison can tell
    const other = negImageIdx.map((j, i) => ((j + 1) % B === i ? (j + 2) % B : (j + 1) % B));
    expect(await step({ negImageIdx: other, negTextIdx })).not.toEqual(sampled);
    tf.dispose(Object.values(b));
  }, 120_000);

  it('a queue of the same objective still enters the state (unchanged official path)', () => {
    const queue = new ItcQueue({ hiddenSize: H, size: B, imageSize: S, maxTextLen: L });
    try {
      expect(coarsePretrainObjective({ queue }).stateful).toEqual({ itc_queue: queue });
    } finally {
      queue.dispose();
    }
  });
});

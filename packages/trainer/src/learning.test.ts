// A real learning check (not a timing): tiny models trained on the built-in world with the trainer's
// objectives lower each loss clearly. The mean of the last 20 steps must fall below a fraction of
// the mean of the first 20: coarse pre-training (ITC, ITM on hard negatives, MLM) and the
// fine-grained stage (the ATSS grounding loss on referring expressions).
import { beforeAll, describe, expect, it } from 'vitest';
import { fiberConfig } from '@fiber-vl/fusion';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { createFiberFineModel, encodeGroundingPrompt, finePixelBatch } from '@fiber-vl/heads-fine';
import { fiberPixelValues } from '@fiber-vl/swin';
import { Generator, tf } from '@fiber-vl/tensor-core';
import { heavyTestBackends, useBackend } from '@fiber-vl/tensor-core/testing';
import { fineGroundingObjective, type FineGroundingBatch } from './grounding.js';
import { Trainer } from './loop.js';
import { coarsePretrainObjective } from './objectives.js';
import { AdamW, fiberCoarseParamGroups } from './optim.js';
import { coarseSchedule } from './schedules.js';
import { createWorld } from './world/world.js';
import { worldTokenizer } from './world/tokenizer.js';

// Whether a model learns does not depend on the backend (every backend's gradients are checked
// against the official ones in train-step.test.ts and grounding.test.ts): one backend, the fastest
// that starts (wasm), or all of them with FIBER_TEST_LEARNING=all.
const heavy = await heavyTestBackends('trainer learning checks');
const backends = process.env.FIBER_TEST_LEARNING === 'all' || !heavy.includes('wasm') ? heavy : ['wasm' as const];
const SCENES = 48; // a small pool the tiny models can fit in a few hundred steps
const world = createWorld({
  seed: 0,
  preset: 'small',
  splits: { train: SCENES, val: 4, test: 4 },
  nlvr2Pairs: { train: 4, val: 4, test: 4 },
});
const tokenizer = worldTokenizer(world, { vocabSize: 300, scenes: SCENES });

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** Mean of the first and of the last 20 values of each loss term. */
function firstLast(history: Record<string, number>[], term: string) {
  const v = history.map((h) => h[term]).filter((x) => x !== undefined);
  return { first: mean(v.slice(0, 20)), last: mean(v.slice(-20)), n: v.length };
}

describe.each(backends)('learning on the built-in world (%s)', (backend) => {
  beforeAll(() => useBackend(backend));

  // On a pool of 4 scenes, one batch's worth: every step shows the same 4 images (in a new order)
  // with captions drawn afresh, so the model must tell its images and their captions apart, with no
  // queue (in-batch ITC, as the bench's small preset). Measured on wasm, means of the first / last
  // 20 of 160 steps: ITC 1.42 -> 0.18, ITM 0.653 -> 0.223, MLM 5.38 -> 3.44 (a pool of 8: ITC 2.09 ->
  // 0.30, ITM 0.651 -> 0.418, MLM 5.16 -> 3.47).
  // What does not learn yet (apps/bench/MEASUREMENTS.md: *A stale queue* and *Parallel image
  // features*; ITM under "Still open"): on 16 or 48 scenes
  // drawn 8 at a time, ITC and ITM stay at their priors from scratch (ITC 2.16 -> 2.09 = log 8, ITM
  // 0.652 -> 0.635 in 240 steps), with a queue of 16 ITC falls only to log(B + Q) (every feature
  // at cosine 1; FIBER's queue has no momentum encoder, so the queued features are stale), and
  // pooled Swin features from scratch are nearly parallel. The bench's main job learns ITC from
  // pre-trained towers, but its ITM sits at the prior too.
  it('coarse pre-training lowers ITC, ITM and MLM on one batch of scenes', async () => {
    const POOL = 4;
    const steps = 160;
    const [S, L] = [32, 24];
    const config = fiberConfig('tiny', {
      imageSize: S,
      maxTextLen: L,
      hiddenSize: 32,
      // PyTorch's default init for the added layers, as the bench's tiny model: with FIBER's N(0, 0.02)
      // at width 32 (4.5x smaller) the product of three small layers (transform, pooler, itm_score)
      // scales the ITM logit's gradient down, and ITM fell only from 0.663 to 0.621 in 160 steps
      initializerRange: null,
      swin: { dropPathRate: 0 },
      roberta: {
        vocabSize: tokenizer.vocabSize,
        hiddenSize: 32,
        intermediateSize: 64,
        maxPositionEmbeddings: L + 10,
        hiddenDropoutProb: 0,
        attentionProbsDropoutProb: 0,
      },
    });
    const rngs = { model: new Generator(1), negatives: new Generator(2), mlm: new Generator(3) };
    const model = new FiberCoarseModel(config, 'pretrain', rngs.model);
    const lr = 1e-3;
    const optimizer = new AdamW(fiberCoarseParamGroups(model.namedParameters(), { lr, weightDecay: 0.01 }), {
      betas: [0.9, 0.98],
      variant: 'transformers',
    });
    const trainer = new Trainer({
      model,
      objective: coarsePretrainObjective({
        collator: { vocabSize: tokenizer.vocabSize, maskId: tokenizer.id('<mask>'), specialIds: [0, 1, 2] },
      }),
      optimizer,
      rngs,
      schedule: coarseSchedule({ maxSteps: steps, warmupSteps: 0.1, lr }),
    });
    const data = new Generator(5);
    const history: Record<string, number>[] = [];
    for (let step = 0; step < steps; step++) {
      const idx = data.permutation(POOL);
      const texts = idx.map((i) => {
        const c = world.sample('train', i).captions;
        return c[data.nextInt(c.length)].text;
      });
      const enc = tokenizer.encodeBatch(texts, { maxLength: L, padding: 'max_length' });
      const batch = {
        pixels: fiberPixelValues(
          idx.map((i) => world.image('train', i)),
          S,
        ),
        textIds: tf.tensor2d(
          enc.map((e) => e.ids),
          undefined,
          'int32',
        ),
        textMasks: tf.tensor2d(
          enc.map((e) => e.attentionMask),
          undefined,
          'int32',
        ),
      };
      try {
        history.push((await trainer.trainStep([batch])).losses);
      } finally {
        tf.dispose([batch.pixels, batch.textIds, batch.textMasks]);
      }
    }
    optimizer.dispose();
    model.dispose();
    const report = Object.fromEntries(['itc', 'itm', 'mlm'].map((t) => [t, firstLast(history, t)]));
    console.log(`[learning ${backend}] coarse: ${JSON.stringify(report)}`);
    expect(report.itc.last).toBeLessThan(0.3 * report.itc.first);
    expect(report.itm.last).toBeLessThan(0.6 * report.itm.first);
    expect(report.mlm.last).toBeLessThan(0.8 * report.mlm.first);
  }, 600_000);

  it('the fine-grained stage lowers the ATSS grounding loss', async () => {
    // 60 steps: measured on wasm, mean of the first / last 20 steps 13.11 -> 6.87 (160 steps: 11.03 -> 3.35)
    const steps = 60;
    const B = 2;
    const model = createFiberFineModel(
      'tiny',
      {
        swin: { embedDim: 16, depths: [1, 1, 1, 1], numHeads: [1, 1, 2, 2], dropPathRate: 0 },
        roberta: {
          vocabSize: tokenizer.vocabSize,
          hiddenSize: 32,
          numHiddenLayers: 2,
          numAttentionHeads: 2,
          intermediateSize: 64,
          hiddenDropoutProb: 0,
          attentionProbsDropoutProb: 0,
        },
        numFuseBlock: 1,
        maxQueryLen: 24,
        fpn: { outChannels: 32 },
        head: { channels: 32, numConvs: 2, groupNormGroups: 8, dyReluHidden: 8, maxQueryLen: 24 },
        anchors: { sizes: [32, 64, 128, 256, 512] },
      },
      new Generator(3),
    );
    const maxQueryLen = model.config.backbone.maxQueryLen;
    const lr = 1e-3;
    const params = model.namedParameters().filter(([, p]) => p.requiresGrad);
    const optimizer = new AdamW([{ params, lr, weightDecay: 0.01 }], { variant: 'torch' });
    const trainer = new Trainer({
      model,
      objective: fineGroundingObjective(),
      optimizer,
      clipGradNorm: 1,
      schedule: coarseSchedule({ maxSteps: steps, warmupSteps: 0.1, lr }),
    });
    // referring expressions: one box each, the whole expression its phrase
    const examples = Array.from({ length: SCENES }, (_, i) => world.fineGrained(world.sample('train', i)))
      .map((s, i) => ({ i, e: s.expressions[0] }))
      .filter((x) => x.e !== undefined);
    const data = new Generator(6);
    const history: Record<string, number>[] = [];
    for (let step = 0; step < steps; step++) {
      const picked = data
        .permutation(examples.length)
        .slice(0, B)
        .map((k) => examples[k]);
      const images = picked.map((p) => world.image('train', p.i));
      const { pixels, sizes } = finePixelBatch(images, { minSize: 64, maxSize: 107 });
      const prompts = picked.map((p) =>
        encodeGroundingPrompt(tokenizer, p.e.text, [[[0, p.e.text.length]]], { maxQueryLen }),
      );
      const batch: FineGroundingBatch = {
        pixels,
        textIds: tf.tensor2d(
          prompts.map((p) => p.inputIds),
          undefined,
          'int32',
        ),
        textMasks: tf.tensor2d(
          prompts.map((p) => p.attentionMask),
          undefined,
          'int32',
        ),
        targets: picked.map((p, b) => {
          const [x1, y1, x2, y2] = p.e.box; // half-open world box -> the last pixel, scaled to the input
          const sx = sizes[b].width / images[b].width;
          const sy = sizes[b].height / images[b].height;
          const positiveMap = new Float32Array(maxQueryLen);
          for (const t of prompts[b].phrases[0].tokens) positiveMap[t] = 1;
          return { boxes: [x1 * sx, y1 * sy, (x2 - 1) * sx, (y2 - 1) * sy], positiveMap };
        }),
      };
      try {
        history.push((await trainer.trainStep([batch])).losses);
      } finally {
        tf.dispose([batch.pixels, batch.textIds, batch.textMasks]);
      }
    }
    optimizer.dispose();
    model.dispose();
    const atss = firstLast(history, 'atss');
    console.log(`[learning ${backend}] fine: ${JSON.stringify(atss)}`);
    expect(atss.n).toBe(steps);
    expect(atss.last).toBeLessThan(0.6 * atss.first);
  }, 600_000);
});

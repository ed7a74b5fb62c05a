// A real learning check of the fine-grained model: a tiny FIBER fine model, trained for a few dozen
// steps (20) with the official ATSS grounding loss on a synthetic image with one box, lowers its loss
// clearly and its best box for the phrase moves onto the ground truth.
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator, tf } from '@fiber-vl/tensor-core';
import { useBackend } from '@fiber-vl/tensor-core/testing';
import { ByteLevelBpeTokenizer, mergesToText, trainByteLevelBpe } from '@fiber-vl/roberta';
import { generateAnchors } from './anchors.js';
import { pairIou } from './boxes.js';
import { atssLoss, flattenHeadOutputs } from './losses.js';
import { createFiberFineModel } from './model.js';
import { FiberFinePipeline, finePixelBatch } from './pipeline.js';
import { encodeGroundingPrompt } from './prompts.js';

const bpe = trainByteLevelBpe(['a red square on a grey background', 'the red square'], {
  vocabSize: 300,
  minFrequency: 1,
});
const tokenizer = ByteLevelBpeTokenizer.fromVocabAndMerges(bpe.vocab, mergesToText(bpe.merges));

/** A grey 128x128 image with a red square at [x1, y1, x2, y2] (inclusive pixel corners). */
function scene(box: [number, number, number, number]) {
  const [W, H] = [128, 128];
  const data = new Uint8Array(W * H * 3).fill(110);
  for (let y = box[1]; y <= box[3]; y++)
    for (let x = box[0]; x <= box[2]; x++) data.set([220, 30, 30], (y * W + x) * 3);
  return { width: W, height: H, channels: 3 as const, data };
}

describe('fine-grained training on synthetic boxes', () => {
  beforeAll(() => useBackend('wasm').catch(() => useBackend('cpu')));

  it('the ATSS loss falls and the best box moves onto the ground truth', async () => {
    const model = createFiberFineModel(
      'tiny',
      {
        roberta: { vocabSize: tokenizer.vocabSize, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0 },
        swin: { dropPathRate: 0 },
      },
      new Generator(7),
    );
    const gt: [number, number, number, number] = [40, 52, 87, 99];
    const image = scene(gt);
    const caption = 'a red square on a grey background';
    const prompt = encodeGroundingPrompt(tokenizer, caption, [[[2, 12]]], {
      maxQueryLen: model.config.backbone.maxQueryLen,
    });
    const { pixels } = finePixelBatch([image], { minSize: 128, maxSize: 128 });
    const ids = tf.tensor2d([prompt.inputIds], undefined, 'int32');
    const mask = tf.tensor2d([prompt.attentionMask], undefined, 'int32');
    const positiveMap = Array.from({ length: prompt.maxQueryLen }, (_, t) =>
      prompt.labelToTokens[0].includes(t) ? 1 : 0,
    );
    const target = { boxes: gt, positiveMap };
    const fiber = new FiberFinePipeline(model, tokenizer, { minSize: 128, maxSize: 128 });
    const bestIou = async () => {
      const r = await fiber.refer(image, 'the red square');
      return r.best ? pairIou(r.best.box, 0, gt, 0) : 0;
    };
    const lossOf = () => {
      const out = model.forward(pixels, ids, mask);
      const levels = out.head.levels;
      const anchors = generateAnchors(
        levels.map((l) => [l.bboxReg.shape[2], l.bboxReg.shape[3]] as [number, number]),
        model.config.anchors,
      );
      const flat = flattenHeadOutputs({
        bboxReg: levels.map((l) => l.bboxReg),
        centerness: levels.map((l) => l.centerness),
        dotProductLogits: levels.map((l) => l.dotProductLogits),
      });
      return atssLoss(flat, anchors, [target], mask).total as tf.Scalar;
    };
    const iouBefore = await bestIou();
    const optimizer = tf.train.adam(2e-3);
    const losses: number[] = [];
    model.train();
    for (let step = 0; step < 20; step++) {
      const loss = optimizer.minimize(
        () => lossOf(),
        true,
        model
          .parameters()
          .filter((p) => p.requiresGrad)
          .map((p) => p.value),
      );
      losses.push((await loss!.data())[0]);
      loss!.dispose();
    }
    model.eval();
    const iouAfter = await bestIou();
    const first = (losses[0] + losses[1]) / 2;
    const last = (losses[18] + losses[19]) / 2;
    expect(last).toBeLessThan(0.5 * first);
    expect(iouAfter).toBeGreaterThan(Math.max(0.5, iouBefore + 0.2));
    optimizer.dispose();
    tf.dispose([pixels, ids, mask]);
    model.dispose();
  }, 600_000);
});

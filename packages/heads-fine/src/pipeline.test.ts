// The fine-grained task API on a tiny randomly initialised model: detect / ground / refer return
// typed results in original pixels for images of any size and aspect, prompts are checked, and
// repeated calls leak nothing.
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator, disposeOutput, tf } from '@fiber-vl/tensor-core';
import { expectNoTensorGrowth, useBackend } from '@fiber-vl/tensor-core/testing';
import { ByteLevelBpeTokenizer, mergesToText, trainByteLevelBpe } from '@fiber-vl/roberta';
import type { RawImage } from '@fiber-vl/swin';
import { createFiberFineModel } from './model.js';
import { FiberFinePipeline, finePixelBatch } from './pipeline.js';
import { postprocessImage, readHeadLevels, toDetections } from './postprocess.js';
import { PromptError, encodeDetectionPrompt } from './prompts.js';

const corpus = ['a red circle left of the blue square', 'person. dog. traffic light. cat', 'the small green triangle'];
const bpe = trainByteLevelBpe(corpus, { vocabSize: 300, minFrequency: 1 });
const tokenizer = ByteLevelBpeTokenizer.fromVocabAndMerges(bpe.vocab, mergesToText(bpe.merges));

function image(width: number, height: number, seed = 1): RawImage {
  const rng = new Generator(seed);
  return { width, height, channels: 3, data: Uint8Array.from({ length: width * height * 3 }, () => rng.nextInt(256)) };
}

describe('FiberFinePipeline', () => {
  let fiber: FiberFinePipeline;
  beforeAll(async () => {
    await useBackend('cpu');
    const model = createFiberFineModel('tiny', { roberta: { vocabSize: tokenizer.vocabSize } }, new Generator(3));
    fiber = new FiberFinePipeline(model, tokenizer, { minSize: 64, maxSize: 128 });
  });

  it('pre-processes to the official sizes and pads batches to a multiple of 32', () => {
    const b = finePixelBatch([image(100, 50), image(40, 90)], { minSize: 64, maxSize: 128 });
    // 100x50: shorter side 50 -> 64; 40x90: 64 would make the longer side 144 > 128, so 128 * 40 / 90 -> 57
    expect(b.sizes).toEqual([
      { width: 128, height: 64 },
      { width: 57, height: 128 },
    ]);
    expect(b.pixels.shape).toEqual([2, 3, 128, 128]);
    b.pixels.dispose();
    // 0: padded to the largest image only (to_image_list); other values were a bare RangeError
    const unpadded = finePixelBatch([image(100, 50), image(40, 90)], {
      minSize: 64,
      maxSize: 128,
      sizeDivisibility: 0,
    });
    expect(unpadded.pixels.shape).toEqual([2, 3, 128, 128]);
    unpadded.pixels.dispose();
    const one = finePixelBatch([image(100, 50)], { minSize: 64, maxSize: 128, sizeDivisibility: 0 });
    expect(one.pixels.shape).toEqual([1, 3, 64, 128]);
    one.pixels.dispose();
    for (const bad of [-32, 1.5, Number.NaN])
      expect(() => finePixelBatch([image(100, 50)], { sizeDivisibility: bad })).toThrow(
        `finePixelBatch: sizeDivisibility must be an integer >= 0, got ${bad}`,
      );
  });

  it('detect: COCO-style detections in original pixels, labels from the class list', async () => {
    const img = image(200, 30); // a very wide image
    const r = await fiber.detect(img, ['person', 'dog', 'traffic_light'], { preNmsThresh: 0 });
    expect(r.detections.length).toBeGreaterThan(0);
    expect(r.truncation.truncated).toBe(false);
    for (const d of r.detections) {
      expect(['person', 'dog', 'traffic light']).toContain(d.label.name);
      expect(d.box[0]).toBeGreaterThanOrEqual(0);
      expect(d.box[2]).toBeLessThanOrEqual(200);
      expect(d.box[3]).toBeLessThanOrEqual(30);
      expect(d.bbox[2]).toBeCloseTo(d.box[2] - d.box[0] + 1, 4);
    }
    expect(r.detections.map((d) => d.score)).toEqual([...r.detections.map((d) => d.score)].sort((a, b) => b - a));
  });

  it('detect by hand (prompt, pixels, forward, readHeadLevels, postprocessImage) gives what detect gives', async () => {
    const img = image(120, 80, 5);
    const names = ['person', 'dog', 'cat'];
    const expected = await fiber.detect(img, names, { preNmsThresh: 0 });
    const before = tf.memory().numTensors;
    const model = fiber.model;
    const prompt = encodeDetectionPrompt(tokenizer, names, { maxQueryLen: model.config.backbone.maxQueryLen });
    const batch = finePixelBatch([img], { minSize: 64, maxSize: 128 });
    const ids = tf.tensor2d([prompt.inputIds], undefined, 'int32');
    const mask = tf.tensor2d([prompt.attentionMask], undefined, 'int32');
    const out = model.forward(batch.pixels, ids, mask);
    const perImage = await readHeadLevels(out.head, model.config.anchors);
    expect(perImage).toHaveLength(1);
    expect(perImage[0]).toHaveLength(out.head.levels.length);
    const raw = postprocessImage(perImage[0], prompt.labelToTokens, batch.sizes[0], {
      ...model.config.postprocess,
      preNmsThresh: 0,
    });
    const detections = toDetections(raw, prompt.names, { inputSize: batch.sizes[0], originalSize: img });
    disposeOutput([out, ids, mask, batch.pixels]);
    expect(tf.memory().numTensors).toBe(before);
    expect(detections.length).toBeGreaterThan(0);
    expect(detections).toEqual(expected.detections);
  });

  it('ground and refer: ranked boxes per phrase, one best box per expression', async () => {
    const img = image(60, 90, 2);
    const g = await fiber.ground(img, 'a red circle left of the blue square', ['red circle', 'blue square'], {
      topK: 3,
    });
    expect(g.phrases.map((p) => p.phrase)).toEqual(['red circle', 'blue square']);
    for (const p of g.phrases) expect(p.detections.length).toBeLessThanOrEqual(3);
    const r = await fiber.refer(img, '  the small green triangle ');
    expect(r.best).not.toBeNull();
    expect(r.best!.label.name).toBe('the small green triangle');
  });

  it('groundMany and referMany batch the prompts of one image and give what one call at a time gives', async () => {
    const img = image(70, 50, 4);
    const expressions = ['the small green triangle', 'a red circle', 'the blue square', 'dog'];
    const batched = new FiberFinePipeline(fiber.model, tokenizer, { minSize: 64, maxSize: 128, batchSize: 3 });
    const many = await batched.referMany(img, expressions);
    expect(many).toHaveLength(4);
    for (const [i, e] of expressions.entries()) {
      const one = await fiber.refer(img, e);
      expect(many[i].best!.label.name).toBe(e);
      expect(many[i].candidates.length).toBe(one.candidates.length);
      many[i].candidates.forEach((c, k) => {
        expect(c.score).toBeCloseTo(one.candidates[k].score, 5);
        c.box.forEach((v, j) => expect(v).toBeCloseTo(one.candidates[k].box[j], 3));
      });
    }
    const captions = [
      { caption: 'a red circle left of the blue square', phrases: ['red circle', 'blue square'] },
      { caption: 'the small green triangle', phrases: [[[4, 9]] as [number, number][]] },
    ];
    const grounded = await batched.groundMany(img, captions, { topK: 3 });
    expect(grounded.map((g) => g.phrases.map((p) => p.phrase))).toEqual([['red circle', 'blue square'], ['small']]);
    for (const [i, c] of captions.entries()) {
      const one = await fiber.ground(img, c.caption, c.phrases, { topK: 3 });
      grounded[i].phrases.forEach((p, k) => {
        expect(p.detections.length).toBe(one.phrases[k].detections.length);
        p.detections.forEach((d, j) => {
          expect(d.score).toBeCloseTo(one.phrases[k].detections[j].score, 5);
          d.box.forEach((v, n) => expect(v).toBeCloseTo(one.phrases[k].detections[j].box[n], 3));
        });
      });
    }
    expect(await batched.referMany(img, [])).toEqual([]);
    expect(await batched.groundMany(img, [])).toEqual([]);
    await expect(batched.referMany(img, ['a dog', ' '])).rejects.toThrow(/expressions\[1\]/);
    await expect(batched.groundMany(img, [captions[0], { caption: 'a dog', phrases: [] }])).rejects.toThrow(
      /captions\[1\]\.phrases/,
    );
    expect(() => new FiberFinePipeline(fiber.model, tokenizer, { batchSize: 0 })).toThrow(/batchSize/);
    await expect(batched.groundMany(img, [captions[0], { caption: 'a dog', phrases: ['cat'] }])).rejects.toThrow(
      /captions\[1\]\.phrases\[0\]: "cat" does not occur in the caption/,
    );
    await expectNoTensorGrowth(() => batched.referMany(img, expressions), { label: 'referMany' });
    await expectNoTensorGrowth(() => batched.groundMany(img, captions), { label: 'groundMany' });
  });

  it('rejects empty prompts and images, and says what a long prompt lost', async () => {
    const img = image(32, 32);
    await expect(fiber.detect(img, [])).rejects.toThrow(PromptError);
    await expect(fiber.refer(img, '   ')).rejects.toThrow(/expression/);
    await expect(fiber.ground(img, 'a dog', ['cat'])).rejects.toThrow(/"cat" does not occur in the caption/);
    await expect(fiber.detect({ width: 0, height: 5, channels: 3, data: new Uint8Array(0) }, ['dog'])).rejects.toThrow(
      /positive width and height/,
    );
    const many = Array.from({ length: 40 }, (_, i) => `class number ${i}`);
    const r = await fiber.detect(img, many);
    expect(r.truncation.truncated).toBe(true);
    expect(r.truncation.message).toMatch(/class/);
  });

  it('refuses a model in training mode and bad post-processing options before the forward, leaking nothing', async () => {
    const img = image(32, 32);
    const before = tf.memory().numTensors;
    fiber.model.train();
    try {
      await expect(fiber.detect(img, ['dog'])).rejects.toThrow(
        'FiberFinePipeline: the model is in training mode (drop-path and dropout would run): call model.eval() first',
      );
    } finally {
      fiber.model.eval();
    }
    // the pipeline's own messages: postprocessImage, after the forward, used to be the first to see them
    await expect(fiber.detect(img, ['dog'], { nmsThresh: Number.NaN })).rejects.toThrow(
      'FiberFinePipeline: postprocess.nmsThresh must be a finite number, got NaN',
    );
    await expect(fiber.ground(img, 'a dog', ['dog'], { topK: 0 })).rejects.toThrow(
      'FiberFinePipeline: topK must be an integer >= 1, got 0',
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it('repeated detect and ground calls do not grow the tensor count', async () => {
    const img = image(48, 40, 5);
    await expectNoTensorGrowth(() => fiber.detect(img, ['dog', 'cat']), { label: 'detect' });
    await expectNoTensorGrowth(() => fiber.ground(img, 'a dog and a cat', ['dog', 'cat']), { label: 'ground' });
    expect(tf.memory().numTensors).toBeGreaterThan(0);
  });
});

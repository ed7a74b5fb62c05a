// The task-level API on the official tiny model (set B weights) with a tiny byte-level tokenizer
// whose ids fit the model's 300-token vocabulary.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ByteLevelBpeTokenizer } from '@fiber-vl/roberta';
import type { RawImage } from '@fiber-vl/swin';
import { loadSafetensors, tf } from '@fiber-vl/tensor-core';
import { useBackend } from '@fiber-vl/tensor-core/testing';
import { fiberConfigFromFixture } from './fixture-config.js';
import { FiberCoarseModel } from './model.js';
import { FiberPipeline } from './pipeline.js';

const root = join(__dirname, '../../../fixtures/fiber/set-b');

function tinyTokenizer(): ByteLevelBpeTokenizer {
  let n = 0;
  const chars = [...Array(256).keys()].map((b) =>
    (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174
      ? String.fromCodePoint(b)
      : String.fromCodePoint(256 + n++),
  );
  const vocab: Record<string, number> = { '<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3 };
  chars.forEach((c, i) => (vocab[c] = 4 + i));
  const merges: [string, string][] = [
    ['Ġ', 'a'],
    ['c', 'a'],
    ['ca', 't'],
    ['Ġ', 'cat'],
    ['d', 'o'],
    ['do', 'g'],
    ['Ġ', 'dog'],
  ];
  merges.forEach(([a, b], i) => (vocab[a + b] = 260 + i));
  vocab['<mask>'] = 299;
  return ByteLevelBpeTokenizer.fromTokenizerJson({
    model: { type: 'BPE', vocab, merges: merges.map((m) => m.join(' ')) },
  });
}

const image = (seed: number, w = 150, h = 120): RawImage => ({
  width: w,
  height: h,
  channels: 3,
  data: Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 7 + seed * 31) % 256),
});

describe('FiberPipeline (task-level API)', () => {
  let pipe: FiberPipeline;
  beforeAll(async () => {
    await useBackend('wasm');
    const { config, heads } = fiberConfigFromFixture(JSON.parse(readFileSync(join(root, 'config.json'), 'utf8')));
    const model = new FiberCoarseModel(config, heads);
    const dict = await loadSafetensors(join(root, 'model.safetensors'));
    model.loadStateDict(dict);
    tf.dispose([...dict.values()]);
    pipe = new FiberPipeline(model, tinyTokenizer(), {
      answers: ['yes', 'no', '2', 'red', 'dog', 'cat', 'blue', '1', 'table', 'none'],
    });
  });

  it('vqa returns an answer of the vocabulary and sorted scores', async () => {
    const r = await pipe.vqa(image(1), 'is there a cat?', { topK: 3 });
    expect(r.scores).toHaveLength(3);
    expect(r.answer).toBe(r.scores[0].answer);
    expect(r.scores[0].score).toBeGreaterThanOrEqual(r.scores[1].score);
    expect(pipe.options.answers).toContain(r.answer);
  });

  it('refuses to run a model switched to training mode after it was built (dropout would run)', async () => {
    pipe.model.train();
    try {
      const message = 'FiberPipeline: the model is in training mode (dropout would run): call model.eval() first';
      await expect(pipe.vqa(image(1), 'is there a cat?')).rejects.toThrow(message);
      await expect(pipe.caption(image(1))).rejects.toThrow(message);
    } finally {
      pipe.model.eval();
    }
    expect((await pipe.vqa(image(1), 'is there a cat?')).scores.length).toBeGreaterThan(0);
  });

  it('caption decodes the beam-search tokens', async () => {
    const r = await pipe.caption(image(2));
    expect(r.tokens).toHaveLength(15);
    expect(typeof r.caption).toBe('string');
  });

  it('caption streams the best beam after each step; the last partial is the caption', async () => {
    const partials: string[] = [];
    const r = await pipe.caption(image(2), { onPartial: (c) => void partials.push(c) });
    expect(partials.length).toBeGreaterThan(0);
    expect(partials.length).toBeLessThanOrEqual(15);
    expect(partials.at(-1)).toBe(r.caption);
  });

  it('itm gives a probability and the rank score equal to the model on the same inputs', async () => {
    const r = await pipe.itm(image(3), 'a dog');
    expect(r.matchProbability).toBeGreaterThanOrEqual(0);
    expect(r.matchProbability).toBeLessThanOrEqual(1);
    const ret = await pipe.retrieve([image(3)], ['a dog'], { mode: 'itm' });
    expect(ret.scores[0]).toBeCloseTo(r.rankScore, 5);
  });

  it('retrieve ranks by ITC, by exhaustive ITM, and re-ranks the ITC top-k by ITM', async () => {
    const imgs = [image(4), image(5), image(6)];
    const texts = ['a cat', 'a dog', 'a red table', 'two cats'];
    const itc = await pipe.retrieve(imgs, texts, { k: 2 });
    expect(itc.scores).toHaveLength(12);
    expect(itc.imageToText[0]).toHaveLength(2);
    expect(itc.imageToText[0][0].score).toBeCloseTo(Math.max(...Array.from(itc.scores.slice(0, 4))), 6);
    const itm = await pipe.retrieve(imgs, texts, { mode: 'itm', k: 4 });
    const both = await pipe.retrieve(imgs, texts, { mode: 'itc+itm', rerank: 2, k: 2 });
    // the re-ranked lists hold ITC's top-2 candidates, ordered by their ITM scores
    both.imageToText.forEach((list, i) => {
      expect(list.map((x) => x.index).sort()).toEqual(itc.imageToText[i].map((x) => x.index).sort());
      list.forEach((x) => expect(x.score).toBeCloseTo(itm.scores[i * 4 + x.index], 5));
    });
    // counts that are no counts, and an unknown mode (it ran ITC), are named before any work
    const before = tf.memory().numTensors;
    const bad: [Record<string, unknown>, string][] = [
      [{ k: -1 }, 'retrieve: k must be an integer >= 1, got -1'],
      [{ rerank: Number.NaN }, 'retrieve: rerank must be an integer >= 1, got NaN'],
      [{ mode: 'itx' }, "retrieve: mode must be 'itc', 'itm' or 'itc+itm', got itx"],
    ];
    for (const [opts, message] of bad)
      await expect(pipe.retrieve(imgs, texts, opts as Parameters<typeof pipe.retrieve>[2])).rejects.toThrow(
        `FiberPipeline.${message}`,
      );
    await expect(pipe.vqa(image(1), 'what?', { topK: 0 })).rejects.toThrow(
      'FiberPipeline.vqa: topK must be an integer >= 1, got 0',
    );
    expect(tf.memory().numTensors).toBe(before);
  });
});

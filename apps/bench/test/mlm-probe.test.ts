// The MLM probe of the coarse model's fusion: it masks every single-token colour and shape word of
// the test captions, and with the gates closed (FIBER's start: the text encoder cannot see the
// image) its two readings, with the caption's own image and with another's, are the same.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { Generator, initBackend, tf } from '@fiber-vl/tensor-core';
import { COLOURS, SHAPES, worldTokenizer } from '@fiber-vl/trainer';
import { runModelConfig } from '../src/run/coarse-model.js';
import type { RunContext } from '../src/run/context.js';
import { probeMlm } from '../src/run/mlm-probe.js';
import { RUN_PRESETS } from '../src/run/presets.js';
import { runWorld } from '../src/run/seed.js';

const preset = RUN_PRESETS.micro;
const SCENES = 8;
let ctx: RunContext;
let model: FiberCoarseModel;

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
  const world = runWorld(preset, 0);
  const tokenizer = await worldTokenizer(world, { vocabSize: preset.vocabSize, scenes: preset.world.train });
  ctx = { world, tokenizer, preset, seed: 0, log: () => {}, curves: [], stages: [] };
  model = new FiberCoarseModel(runModelConfig(preset, tokenizer.vocabSize), 'pretrain', new Generator(0));
});
afterAll(() => model?.dispose());

const oneTokenIds = (words: readonly string[]) =>
  words.flatMap((w) => {
    const ids = ctx.tokenizer.encode(` ${w}`, { addSpecialTokens: false }).ids;
    return ids.length === 1 ? ids : [];
  });
const tokens = (split: 'train' | 'test', scene: number) =>
  ctx.world
    .sample(split, scene)
    .captions.flatMap((c) => ctx.tokenizer.encode(c.text, { maxLength: preset.model.maxTextLen }).ids);

/** The probed words of the first SCENES test scenes, counted directly: their candidate index, in caption order. */
function probedWords(words: readonly string[]): number[] {
  const ids = oneTokenIds(words);
  const out: number[] = [];
  for (let i = 0; i < SCENES; i++) for (const id of tokens('test', i)) if (ids.includes(id)) out.push(ids.indexOf(id));
  return out;
}

/** The better of 1 / candidates and the test share of the train captions' most frequent candidate. */
function chanceOf(words: readonly string[]): number {
  const ids = oneTokenIds(words);
  const counts = ids.map(() => 0);
  for (let i = 0; i < Math.min(1000, ctx.world.size('train')); i++)
    for (const id of tokens('train', i)) if (ids.includes(id)) counts[ids.indexOf(id)]++;
  const top = counts.indexOf(Math.max(...counts));
  const probed = probedWords(words);
  return Math.max(1 / ids.length, probed.filter((k) => k === top).length / probed.length);
}

describe('probeMlm', () => {
  it('probes every colour and shape word; with the gates closed the other image changes nothing', async () => {
    const before = tf.memory().numTensors;
    const r = await probeMlm(ctx, model, SCENES, 'fresh');
    expect(tf.memory().numTensors).toBe(before);
    expect(r.map((p) => [p.model, p.attribute, p.words])).toEqual([
      ['fresh', 'shape', probedWords(SHAPES).length],
      ['fresh', 'colour', probedWords(COLOURS).length],
    ]);
    for (const p of r) {
      expect(p.words).toBeGreaterThan(0);
      expect(p.otherImage).toBe(p.ownImage);
      expect(p.chance).toBeCloseTo(chanceOf(p.attribute === 'shape' ? SHAPES : COLOURS), 12);
    }
    expect(model.training).toBe(true); // restored
  });

  it("takes the chance from the train captions' most frequent word", async () => {
    // every caption, train and test, starts "a <w> ..." for a one-token colour word w: the most frequent one
    const w = COLOURS.find((c) => ctx.tokenizer.encode(` ${c}`, { addSpecialTokens: false }).ids.length === 1)!;
    const k = oneTokenIds(COLOURS).indexOf(ctx.tokenizer.encode(` ${w}`, { addSpecialTokens: false }).ids[0]);
    const sample = ctx.world.sample.bind(ctx.world);
    const spy = vi.spyOn(ctx.world, 'sample').mockImplementation((split, i) => {
      const s = sample(split, i);
      return { ...s, captions: s.captions.map((c) => ({ ...c, text: `a ${w} ${c.text}` })) };
    });
    try {
      const colour = (await probeMlm(ctx, model, SCENES, 'skewed'))[1];
      expect(colour.chance).toBeCloseTo(probedWords(COLOURS).filter((i) => i === k).length / colour.words, 12);
      expect(colour.chance).toBeGreaterThan(1 / oneTokenIds(COLOURS).length);
    } finally {
      spy.mockRestore();
    }
  });

  it("reads each word's answer at its masked position", async () => {
    // a stand-in MLM that, at <mask> only, scores each attribute's last one-token word highest:
    // the probe then scores exactly the probed words that are that last word
    const mask = ctx.tokenizer.id('<mask>');
    const last = [oneTokenIds(SHAPES).at(-1)!, oneTokenIds(COLOURS).at(-1)!];
    const V = ctx.tokenizer.vocabSize;
    const spy = vi.spyOn(model, 'mlm').mockImplementation((_pixels, ids) => {
      const rows = ids.arraySync() as number[][];
      const logits = tf.buffer([rows.length, rows[0].length, V]);
      rows.forEach((row, b) =>
        row.forEach((id, t) => {
          if (id === mask) for (const w of last) logits.set(1, b, t, w);
        }),
      );
      return { logits: logits.toTensor(), textFeats: tf.zeros([rows.length, rows[0].length, 1]) };
    });
    let r: Awaited<ReturnType<typeof probeMlm>>;
    try {
      r = await probeMlm(ctx, model, SCENES, 'stand-in MLM');
    } finally {
      spy.mockRestore();
    }
    for (const [p, words] of [
      [r[0], SHAPES],
      [r[1], COLOURS],
    ] as const) {
      const probed = probedWords(words);
      const K = oneTokenIds(words).length;
      const share = (k: number) => probed.filter((i) => i === k).length / probed.length;
      expect(share(K - 1)).not.toBe(share(0)); // a wrong row (all zeros: the first word) would differ
      expect(p.ownImage).toBeCloseTo(share(K - 1), 12);
      expect(p.otherImage).toBeCloseTo(share(K - 1), 12);
    }
  });

  it('reads the image once the text gates are wide open', async () => {
    const gates = model.namedParameters().filter(([n]) => /alpha_t2i$/.test(n));
    expect(gates.length).toBeGreaterThan(0);
    const saved = gates.map(([, p]) => tf.clone(p.value));
    try {
      for (const [, p] of gates) p.value.assign(tf.fill(p.value.shape, 5));
      const r = await probeMlm(ctx, model, SCENES, 'open');
      expect(r.some((p) => p.otherImage !== p.ownImage)).toBe(true);
    } finally {
      gates.forEach(([, p], k) => p.value.assign(saved[k]));
      tf.dispose(saved);
    }
  });

  it('leaves no tensor behind and restores the mode when the model fails', async () => {
    const spy = vi.spyOn(model, 'mlm').mockImplementation(() => {
      tf.zeros([2, 2]); // a tensor made before the failure, inside the probe's tidy
      throw new Error('mlm failed');
    });
    const before = tf.memory().numTensors;
    try {
      await expect(probeMlm(ctx, model, SCENES, 'x')).rejects.toThrow('mlm failed');
    } finally {
      spy.mockRestore();
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(model.training).toBe(true);
  });

  it('names a gallery it cannot pair', async () => {
    await expect(probeMlm(ctx, model, 1, 'x')).rejects.toThrow(/needs 2 to 40 test scenes, got 1/);
    await expect(probeMlm(ctx, model, 41, 'x')).rejects.toThrow(/needs 2 to 40 test scenes, got 41/);
  });
});

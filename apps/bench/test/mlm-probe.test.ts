// The MLM probe of the coarse model's fusion: it masks every single-token colour and shape word of
// the test captions, and with the gates closed (FIBER's start: the text encoder cannot see the
// image) its two readings, with the caption's own image and with another's, are the same.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

/** The probed words counted directly: caption tokens that are a one-token colour or shape word. */
function countWords(words: readonly string[]): number {
  const ids = new Set(
    words
      .map((w) => ctx.tokenizer.encode(` ${w}`, { addSpecialTokens: false }).ids)
      .flatMap((t) => (t.length === 1 ? t : [])),
  );
  let n = 0;
  for (let i = 0; i < SCENES; i++)
    for (const c of ctx.world.sample('test', i).captions)
      n += ctx.tokenizer.encode(c.text, { maxLength: preset.model.maxTextLen }).ids.filter((id) => ids.has(id)).length;
  return n;
}

describe('probeMlm', () => {
  it('probes every colour and shape word; with the gates closed the other image changes nothing', async () => {
    const before = tf.memory().numTensors;
    const r = await probeMlm(ctx, model, SCENES, 'fresh');
    expect(tf.memory().numTensors).toBe(before);
    expect(r.map((p) => [p.model, p.attribute, p.words])).toEqual([
      ['fresh', 'shape', countWords(SHAPES)],
      ['fresh', 'colour', countWords(COLOURS)],
    ]);
    for (const p of r) {
      expect(p.words).toBeGreaterThan(0);
      expect(p.otherImage).toBe(p.ownImage);
      expect(p.chance).toBeGreaterThanOrEqual(1 / (p.attribute === 'shape' ? SHAPES.length : COLOURS.length));
      expect(p.chance).toBeLessThanOrEqual(1);
    }
    expect(model.training).toBe(true); // restored
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

  it('names a gallery too small to pair', async () => {
    await expect(probeMlm(ctx, model, 1, 'x')).rejects.toThrow(/at least 2 test scenes, got 1/);
  });
});

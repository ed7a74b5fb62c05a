// The class probe: average precision of ranked images, the expected AP of a random ranking, the coarse
// model's ITC scores of every class prompt against every evaluated test image, and the probe itself.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { Generator, initBackend, tf } from '@fiber-vl/tensor-core';
import { worldTokenizer } from '@fiber-vl/trainer';
import { averagePrecision, classProbe, classPrompt, itcClassScores, randomRankingAp } from '../src/run/class-probe.js';
import { runModelConfig } from '../src/run/coarse-model.js';
import type { RunContext } from '../src/run/context.js';
import { coarsePixels, encodeTexts } from '../src/run/data.js';
import { RUN_PRESETS } from '../src/run/presets.js';
import { runWorld } from '../src/run/seed.js';

/** Every permutation of 0..n-1. */
function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  return permutations(n - 1).flatMap((p) =>
    Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)]),
  );
}

describe('averagePrecision', () => {
  it('is the mean precision at the positives, ties in index order', () => {
    expect(averagePrecision([0.9, 0.8, 0.7, 0.6], [true, false, true, false])).toBeCloseTo((1 + 2 / 3) / 2, 12);
    expect(averagePrecision([0.1, 0.9, 0.5], [true, true, true])).toBe(1);
    expect(averagePrecision([0.5, 0.5, 0.5], [false, false, true])).toBeCloseTo(1 / 3, 12);
  });

  it('names what is wrong', () => {
    expect(() => averagePrecision([1, 2], [true])).toThrow('average precision: 2 scores for 1 labels');
    expect(() => averagePrecision([1, 2], [false, false])).toThrow('no positive among the ranked items');
  });
});

describe('randomRankingAp', () => {
  it('is the mean AP over every ranking', () => {
    for (let n = 1; n <= 6; n++)
      for (let m = 1; m <= n; m++) {
        const positives = Array.from({ length: n }, (_, i) => i < m);
        const all = permutations(n).map((p) => averagePrecision(p, positives));
        expect(randomRankingAp(n, m), `${m} of ${n}`).toBeCloseTo(all.reduce((a, b) => a + b, 0) / all.length, 12);
      }
  });

  it('is a little above the prevalence on the run scale, and refuses impossible counts', () => {
    expect(randomRankingAp(200, 60)).toBeGreaterThan(0.3);
    expect(randomRankingAp(200, 60)).toBeLessThan(0.32);
    expect(() => randomRankingAp(5, 0)).toThrow('needs 1 <= positives <= items, got 0 of 5');
    expect(() => randomRankingAp(5, 6)).toThrow('got 6 of 5');
  });
});

describe('class probe on a fresh coarse model', () => {
  const preset = RUN_PRESETS.micro;
  const SCENES = 10;
  let ctx: RunContext;
  let model: FiberCoarseModel;
  const lines: string[] = [];
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    const world = runWorld(preset, 0);
    const tokenizer = await worldTokenizer(world, { vocabSize: preset.vocabSize, scenes: preset.world.train });
    ctx = { world, tokenizer, preset, seed: 0, log: (m) => lines.push(m), curves: [], stages: [] };
    model = new FiberCoarseModel(runModelConfig(preset, tokenizer.vocabSize), 'pretrain', new Generator(0));
  });
  afterAll(() => model?.dispose());

  it("scores every class prompt against every image with the model's ITC features, and leaks nothing", async () => {
    const before = tf.memory().numTensors;
    const scores = await itcClassScores(ctx, model, SCENES);
    expect(tf.memory().numTensors).toBe(before);
    expect(model.training).toBe(true); // restored
    expect(scores).toHaveLength(ctx.world.classes.length);
    // the same similarities computed directly, for the last image and each prompt
    model.eval();
    const direct = tf.tidy(() => {
      const t = encodeTexts(
        ctx.tokenizer,
        ctx.world.classes.map((c) => classPrompt(c.name)),
        preset.model.maxTextLen,
      );
      const img = model.encodeImage(coarsePixels(ctx.world, 'test', [SCENES - 1], preset.model.imageSize)).imageCls;
      return tf.matMul(model.encodeText(t.ids, t.mask).textCls, img, false, true).arraySync() as number[][];
    });
    model.train();
    direct.forEach(([s], k) => {
      expect(scores[k]).toHaveLength(SCENES);
      expect(scores[k][SCENES - 1]).toBeCloseTo(s, 5);
    });
  });

  it('gives AP 1 to a ranking by the truth, the chance of a random one, and names bad score shapes', () => {
    const shows = (k: number, i: number) =>
      ctx.world.sample('test', i).detections.some((d) => d.name === ctx.world.classes[k].name);
    const truth = ctx.world.classes.map((_, k) => Array.from({ length: SCENES }, (_, i) => (shows(k, i) ? 1 : 0)));
    const flat = truth.map((row) => row.map(() => 0));
    const r = classProbe(ctx, SCENES, truth, flat);
    expect(r.length).toBeGreaterThan(0);
    for (const c of r) {
      const k = ctx.world.classes.findIndex((x) => x.name === c.class);
      expect(c.heldOut).toBe(ctx.world.classes[k].heldOut);
      expect(c.images).toBe(truth[k].filter(Boolean).length);
      expect(c.coarseItc).toBe(1);
      expect(c.chance).toBeCloseTo(randomRankingAp(SCENES, c.images), 12);
    }
    // every class shown somewhere is probed, the others left out
    expect(r.map((c) => c.class)).toEqual(
      ctx.world.classes.filter((_, k) => truth[k].some(Boolean)).map((c) => c.name),
    );
    expect(lines.at(-1)).toMatch(/^\[seed 0\] class probe, AP of the images showing each class by coarse ITC/);
    expect(() => classProbe(ctx, SCENES, truth, flat.slice(1))).toThrow(
      `class probe: fine detector scores must be ${ctx.world.classes.length} classes x ${SCENES} images`,
    );
    expect(() => classProbe(ctx, SCENES + 1, truth, flat)).toThrow('class probe: coarse ITC scores must be');
  });
});

// The class probe: average precision of ranked images, the expected AP of a random ranking, the coarse
// model's ITC scores of every class prompt against every evaluated test image, and the probe itself.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { Generator, initBackend, tf } from '@fiber-vl/tensor-core';
import { worldTokenizer } from '@fiber-vl/trainer';
import {
  averagePrecision,
  classProbe,
  classPrompt,
  itcClassScores,
  randomRankingAp,
  recordClassScores,
} from '../src/run/class-probe.js';
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

/** AP of the positives in the order given (no ties). */
function orderedAp(order: number[], positives: boolean[]): number {
  let hits = 0;
  let sum = 0;
  order.forEach((i, rank) => {
    if (positives[i]) sum += ++hits / (rank + 1);
  });
  return sum / hits;
}

describe('averagePrecision', () => {
  it('is the mean precision at the positives', () => {
    expect(averagePrecision([0.9, 0.8, 0.7, 0.6], [true, false, true, false])).toBeCloseTo((1 + 2 / 3) / 2, 12);
    expect(averagePrecision([0.1, 0.9, 0.5], [true, true, true])).toBe(1);
  });

  it('counts a group of ties as the mean over its orders', () => {
    const rng = new Generator(7);
    for (let trial = 0; trial < 60; trial++) {
      const n = 2 + (trial % 5);
      const scores = Array.from({ length: n }, () => rng.nextInt(3));
      const positives = Array.from({ length: n }, (_, i) => i === 0 || rng.nextInt(2) === 1);
      // every order that ranks higher scores first, equally likely
      const orders = permutations(n).filter((p) => p.every((i, k) => k === 0 || scores[p[k - 1]] >= scores[i]));
      const mean = orders.reduce((a, p) => a + orderedAp(p, positives), 0) / orders.length;
      expect(averagePrecision(scores, positives), `${scores} / ${positives}`).toBeCloseTo(mean, 12);
    }
    // scores all equal: a random ranking
    expect(averagePrecision([0, 0, 0, 0, 0], [false, true, false, true, false])).toBeCloseTo(randomRankingAp(5, 2), 12);
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
    const scores = await itcClassScores(ctx, model, SCENES, 4); // images in chunks of 4: 0-3, 4-7, 8-9
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
      const img = model.encodeImage(
        coarsePixels(ctx.world, 'test', [3, 4, SCENES - 1], preset.model.imageSize),
      ).imageCls;
      return tf.matMul(model.encodeText(t.ids, t.mask).textCls, img, false, true).arraySync() as number[][];
    });
    model.train();
    direct.forEach(([a, b, c], k) => {
      expect(scores[k]).toHaveLength(SCENES);
      expect([scores[k][3], scores[k][4], scores[k][SCENES - 1]].map((v) => v.toFixed(5))).toEqual(
        [a, b, c].map((v) => v.toFixed(5)),
      );
    });
  });

  it("gives AP 1 to a ranking by the truth, a random ranking's to scores all equal, and names bad score shapes", () => {
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
      expect(c.fineDetector).toBeCloseTo(c.chance, 12);
      // the scenes whose only object is of the class: named by the truth's scores, by none from a row of zeros
      const single = Array.from({ length: SCENES }, (_, i) => ctx.world.sample('test', i).detections).filter(
        (ds) => ds.length === 1 && ds[0].name === c.class,
      ).length;
      expect(c.singleObject).toEqual(single ? { images: single, coarseItc: 1, fineDetector: 0 } : null);
      expect(c.chance).toBeCloseTo(randomRankingAp(SCENES, c.images), 12);
      // ranked by the number of objects each scene has
      const objects = Array.from({ length: SCENES }, (_, i) => ctx.world.sample('test', i).scene.objects.length);
      expect(c.objectCount).toBeCloseTo(
        averagePrecision(
          objects,
          truth[k].map((v) => v === 1),
        ),
        12,
      );
    }
    expect(r.some((c) => c.singleObject !== null)).toBe(true);
    // every class shown somewhere is probed, the others left out
    expect(r.map((c) => c.class)).toEqual(
      ctx.world.classes.filter((_, k) => truth[k].some(Boolean)).map((c) => c.name),
    );
    expect(lines.at(-1)).toMatch(/^\[seed 0\] class probe, AP of the images showing each class by coarse ITC/);
    const classes = ctx.world.classes.length;
    expect(() => classProbe(ctx, SCENES, truth, flat.slice(1))).toThrow(
      `class probe: fine detector scores must be ${classes} classes x ${SCENES} images, got ${classes - 1} classes`,
    );
    expect(() => classProbe(ctx, SCENES + 1, truth, flat)).toThrow(
      `class probe: coarse ITC scores must be ${classes} classes x ${SCENES + 1} images, got ${classes} classes (class 0: ${SCENES} images)`,
    );
  });
});

describe('recordClassScores', () => {
  it("keeps each class's best detection score per scene", () => {
    const scores = [
      [0, 0],
      [0, 0],
      [0, 0],
    ];
    recordClassScores(scores, 1, [
      { label: { index: 2 }, score: 0.3 },
      { label: { index: 0 }, score: 0.2 },
      { label: { index: 2 }, score: 0.7 },
      { label: { index: 2 }, score: 0.5 },
    ]);
    recordClassScores(scores, 0, [{ label: { index: 1 }, score: 0.9 }]);
    expect(scores).toEqual([
      [0, 0.2],
      [0.9, 0],
      [0, 0.7],
    ]);
    expect(() => recordClassScores(scores, 2, [{ label: { index: 0 }, score: 1 }])).toThrow(
      'class scores: no slot for class 0 of 3, scene 2',
    );
    expect(() => recordClassScores(scores, 0, [{ label: { index: 3 }, score: 1 }])).toThrow('no slot for class 3 of 3');
  });
});

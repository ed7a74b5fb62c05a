// The fine stage's evaluation on either split: the run evaluates on test, `fiber-bench tune` on val;
// each reads the scenes of its own split (an untrained micro model: the counts, not the values).
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator, initBackend, tf } from '@fiber-vl/tensor-core';
import { runModelConfig } from '../src/run/coarse-model.js';
import type { RunContext } from '../src/run/context.js';
import { createFineModel, evaluateFine } from '../src/run/fine-stage.js';
import { RUN_PRESETS } from '../src/run/presets.js';
import { seedContext } from '../src/run/seed.js';

let ctx: RunContext;
beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
  ctx = await seedContext(RUN_PRESETS.micro, 0, 0, () => {});
}, 60_000);

describe('evaluateFine', () => {
  it.each(['val', 'test'] as const)(
    'on %s: the first evalScenes scenes of the split (all of val, which has fewer)',
    async (split) => {
      const { world, preset } = ctx;
      const scenes = Math.min(preset.evalScenes, world.size(split));
      expect(scenes).toBe(split === 'val' ? 20 : 24);
      const model = createFineModel(runModelConfig(preset, ctx.tokenizer.vocabSize), new Generator(3));
      model.eval();
      const before = tf.memory().numTensors;
      try {
        const r = await evaluateFine(ctx, model, `eval ${split}`, { split });
        let expressions = 0;
        for (let i = 0; i < scenes; i++) expressions += world.fineGrained(world.sample(split, i)).expressions.length;
        expect(r.rec.n).toBe(expressions);
        expect(r.classScores.map((c) => c.length)).toEqual(world.classes.map(() => scenes));
        expect(tf.memory().numTensors).toBe(before);
      } finally {
        model.dispose();
      }
    },
    120_000,
  );
});

// Models in the form `fiber-bench run` writes them (its DIR/models folder), made in a few seconds
// for the demo test: the micro preset's world, tokenizer and model sizes, untrained weights, written
// by the run's own exporter (apps/bench/src/run/export-models.ts). `fiber-bench run` itself takes
// most of a minute even at --preset micro; apps/bench/test/run.test.ts checks the files it writes.
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { Generator, initBackend, type Module } from '@fiber-vl/tensor-core';
import { worldTokenizer } from '@fiber-vl/trainer';
import { NO_HEADS, runModelConfig } from '../../bench/src/run/coarse-model.js';
import { EXPORTED_STAGES, modelExporter } from '../../bench/src/run/export-models.js';
import { createFineModel } from '../../bench/src/run/fine-stage.js';
import { RUN_PRESETS } from '../../bench/src/run/presets.js';
import { runWorld } from '../../bench/src/run/seed.js';
import type { RunContext } from '../../bench/src/run/context.js';

export async function writeBenchModels(dir: string): Promise<void> {
  await initBackend({ backend: 'cpu' });
  const preset = RUN_PRESETS.micro;
  const world = runWorld(preset, 0);
  const tokenizer = worldTokenizer(world, { vocabSize: preset.vocabSize, scenes: 100 });
  const ctx: RunContext = { world, tokenizer, preset, seed: 0, log: () => {}, curves: [], stages: [] };
  const config = runModelConfig(preset, tokenizer.vocabSize);
  const rng = new Generator(0);
  const models: Record<string, () => Module> = {
    'coarse pre-training': () => new FiberCoarseModel(config, 'pretrain', rng),
    'fine-grained pre-training (from coarse)': () => createFineModel(config, rng),
    'vqa fine-tune': () => new FiberCoarseModel(config, { ...NO_HEADS, vqaLabels: world.answerVocabulary.length }, rng),
    'caption fine-tune': () => new FiberCoarseModel(config, { ...NO_HEADS, mlm: true, caption: true }, rng),
  };
  const exporter = modelExporter(dir);
  for (const stage of Object.keys(EXPORTED_STAGES)) {
    const make = models[stage];
    if (!make) throw new Error(`bench-models.ts: no model for the exported stage "${stage}"`);
    const model = make();
    try {
      await exporter(ctx, stage, model);
    } finally {
      model.dispose();
    }
  }
}

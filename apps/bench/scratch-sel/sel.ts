// scratch (not committed): fine-stage settings on the val split, seed 0's coarse model of the run
import { writeFileSync } from 'node:fs';
import { initBackend, loadSafetensors, tf } from '@fiber-vl/tensor-core';
import { worldTokenizer } from '@fiber-vl/trainer';
import { runModelConfig } from '../src/run/coarse-model.js';
import type { RunContext } from '../src/run/context.js';
import { evaluateFine, trainFine } from '../src/run/fine-stage.js';
import { RUN_PRESETS } from '../src/run/presets.js';
import { runWorld } from '../src/run/seed.js';

const [steps, size, mult, fineSeed, splits, lrArg] = process.argv.slice(2);
const lr = lrArg ? Number(lrArg) : RUN_PRESETS.small.fine.lr;
await initBackend({ backend: 'wasm', threads: 1 });
const base = RUN_PRESETS.small;
const preset = {
  ...base,
  fine: { ...base.fine, steps: Number(steps), lrMultOutputs: Number(mult), lr },
  fineImageSize: Number(size),
};
const world = runWorld(preset, 0);
const tokenizer = await worldTokenizer(world, {
  vocabSize: preset.vocabSize,
  scenes: Math.min(500, preset.world.train),
});
const ctx: RunContext = {
  world,
  tokenizer,
  preset,
  seed: Number(fineSeed),
  log: (m: string) => process.stderr.write(`${m}\n`),
  curves: [],
  stages: [],
};
const config = runModelConfig(preset, tokenizer.vocabSize);
const snapshot = await loadSafetensors('/tmp/freshb/bench-results/models/coarse-pretrain.safetensors');
const model = await trainFine(ctx, config, snapshot, 'fine');
tf.dispose([...snapshot.values()]);
const out: Record<string, unknown> = {
  steps: Number(steps),
  size: Number(size),
  mult: Number(mult),
  fineSeed: Number(fineSeed),
};
for (const split of splits.split(',') as ('val' | 'test')[]) {
  const r = await evaluateFine(ctx, model, `eval ${split}`, { split });
  out[split] = { rec: r.rec, grounding: r.grounding, detection: r.detection };
}
const tag = lrArg ? `${steps}-${size}-${mult}-${fineSeed}-lr${lrArg}` : `${steps}-${size}-${mult}-${fineSeed}`;
writeFileSync(`/tmp/sel/${tag}.json`, JSON.stringify(out));
console.log(tag, JSON.stringify(out));

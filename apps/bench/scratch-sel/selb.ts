// scratch (not committed): ablation (b) settings on the val split, from seed 0's unimodal weights
import { existsSync, writeFileSync } from 'node:fs';
import { initBackend, loadSafetensors, saveSafetensors, type tf } from '@fiber-vl/tensor-core';
import { worldTokenizer } from '@fiber-vl/trainer';
import { runModelConfig } from '../src/run/coarse-model.js';
import type { RunContext } from '../src/run/context.js';
import { fusionAblation } from '../src/run/fusion-ablation.js';
import { pretrainImage } from '../src/run/image-pretrain.js';
import { pretrainText } from '../src/run/text-pretrain.js';
import { RUN_PRESETS } from '../src/run/presets.js';
import { runWorld } from '../src/run/seed.js';

const [steps, lr, trainSeed, split] = process.argv.slice(2);
await initBackend({ backend: 'wasm', threads: 1 });
const base = RUN_PRESETS.small;
const preset = { ...base, fusionAblation: { ...base.fusionAblation, steps: Number(steps), lr: Number(lr) } };
const world = runWorld(preset, 0);
const tokenizer = await worldTokenizer(world, {
  vocabSize: preset.vocabSize,
  scenes: Math.min(500, preset.world.train),
});
const log = (m: string) => process.stderr.write(`${m}\n`);
const config = runModelConfig(preset, tokenizer.vocabSize);
const cache = '/tmp/sel/unimodal-0.safetensors';
let unimodal: Map<string, tf.Tensor>;
if (existsSync(cache)) unimodal = await loadSafetensors(cache);
else {
  const ctx0: RunContext = { world, tokenizer, preset, seed: 0, log, curves: [], stages: [] };
  unimodal = await pretrainImage(ctx0, config);
  for (const [k, t] of await pretrainText(ctx0, config)) unimodal.set(k, t);
  await saveSafetensors(cache, unimodal);
}
if (steps === '0') process.exit(0);
const ctx: RunContext = { world, tokenizer, preset, seed: Number(trainSeed), log, curves: [], stages: [] };
const r = await fusionAblation(ctx, config, unimodal, split as 'val' | 'test');
const out = {
  steps: Number(steps),
  lr: Number(lr),
  trainSeed: Number(trainSeed),
  split,
  fiber: { vqa: r.fiber.vqa, itm: r.fiber.itmR1 },
  late: { vqa: r.late.vqa, itm: r.late.itmR1 },
};
writeFileSync(`/tmp/sel/b-${steps}-${lr}-${trainSeed}-${split}.json`, JSON.stringify(out));
console.log(JSON.stringify(out));

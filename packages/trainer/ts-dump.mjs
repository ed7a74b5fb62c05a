import { readFileSync } from 'node:fs';
import { initBackend, loadSafetensors, saveSafetensors, SafetensorsFile } from '@fiber-vl/tensor-core';
import { runCoarseTrainStepFixture } from '@fiber-vl/trainer/testing';
const dir = process.argv[2];
await initBackend({ backend: 'wasm' });
const config = JSON.parse(readFileSync(`${dir}/config.json`, 'utf8'));
const out = await SafetensorsFile.open(`${dir}/outputs.safetensors`);
const run = await runCoarseTrainStepFixture(config, await loadSafetensors(`${dir}/model.safetensors`), await loadSafetensors(`${dir}/inputs.safetensors`), new Set(out.keys().filter(k => k.startsWith('grad.') || k.startsWith('step1.'))));
await saveSafetensors(process.argv[3], run.tensors);

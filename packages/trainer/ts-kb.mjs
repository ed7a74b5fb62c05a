import { readFileSync } from 'node:fs';
import { initBackend, loadSafetensors, SafetensorsFile } from '@fiber-vl/tensor-core';
import { runCoarseTrainStepFixture } from '@fiber-vl/trainer/testing';
const dir = process.argv[2];
await initBackend({ backend: process.argv[3] ?? 'wasm' });
const config = JSON.parse(readFileSync(`${dir}/config.json`, 'utf8'));
const out = await SafetensorsFile.open(`${dir}/outputs.safetensors`);
const run = await runCoarseTrainStepFixture(config, await loadSafetensors(`${dir}/model.safetensors`), await loadSafetensors(`${dir}/inputs.safetensors`), new Set(out.keys()));
const key = process.argv[4] ?? 'text_transformer.encoder.layer.8.crossattention_t2i.self.key.bias'; await initBackend({ backend: process.argv[3] ?? 'wasm' });
const ref = (await out.readRaw(`grad.${key}`)).data;
console.log('ref g1', Array.from(ref).map(v => v.toExponential(1)).join(' '));
for (let k = 0; k < 3; k++) console.log(`ours g${k+1}`, Array.from(run.grads[k].get(key)).map(v => v.toExponential(1)).join(' '));
for (let k = 1; k <= 3; k++) { const e = (await out.readRaw(`param_after_step${k}.${key}`)).data; const g = await run.tensors.get(`param_after_step${k}.${key}`).data(); console.log('p diff', k, Array.from(e).map((v, i) => (g[i]-v).toExponential(1)).join(' ')); }
console.log(run.groups.get(key));
const { compareTrainStepTensor } = await import('@fiber-vl/trainer/testing');
const refG = new Map(); for (const k of out.keys()) if (k.startsWith('grad.')) refG.set(k.slice(5), (await out.readRaw(k)).data);
for (const k of [1,2,3]) {
  const n = `param_after_step${k}.${key}`;
  const r = compareTrainStepTensor(n, await run.tensors.get(n).data(), Array.from((await out.readRaw(n)).data), run, (x) => refG.get(x));
  console.log(k, r);
}
const p0 = run.initial.get(key); const e2 = (await out.readRaw(`param_after_step2.${key}`)).data; const got2 = await run.tensors.get(`param_after_step2.${key}`).data();
const g1r = refG.get(key);
function rep(p, gs, lr=0.0014, wd=0, b1=0.9, b2=0.98, eps=1e-8){let m=0,v=0,t=0;for(const g of gs){t++;m=b1*m+(1-b1)*g;v=b2*v+(1-b2)*g*g;p-=(lr*Math.sqrt(1-b2**t)/(1-b1**t))*(m/(Math.sqrt(v)+eps));p-=lr*wd*p;}return p;}
for (let i=0;i<16;i++){ const g1=run.grads[0].get(key)[i], g2=run.grads[1].get(key)[i]; console.log(i, 'got-exp', (got2[i]-e2[i]).toExponential(2), 'mine64-got', (rep(p0[i],[g1,g2])-got2[i]).toExponential(2), 'ref-replay(g1ref,g2)-exp', (rep(p0[i],[g1r[i],g2])-e2[i]).toExponential(2)); }

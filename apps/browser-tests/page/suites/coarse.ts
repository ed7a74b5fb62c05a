// The coarse FIBER model on a public fixture set (fixtures/fiber/set-a, set-b) in the browser:
// architecture from config.json, weights and inputs read from Blobs, every pass the folder has
// outputs for run by the shared harness (runFixturePasses), every tensor it computes compared.
import { FIBER_QUEUE_BUFFERS } from '@fiber-vl/fusion';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { fiberConfigFromFixture, runFixturePasses } from '@fiber-vl/heads-coarse/testing';
import { adaptSwinStateDict } from '@fiber-vl/swin';
import { tf, type BackendName, type SafetensorsFile } from '@fiber-vl/tensor-core';
import { compareExact, compareTensor } from '../check.js';
import { fetchJson, openRemoteSafetensors, useBackend } from '../fixtures.js';
import type { Check, SuiteParams } from '../protocol.js';

const SETS: Record<string, string[]> = {
  'set-a': ['outputs.safetensors', 'intermediates.safetensors'],
  'set-b': ['outputs.safetensors'],
};

/**
 * params: backend, set ('set-a' | 'set-b'), and optionally `only` / `skip`, comma-separated name
 * prefixes to compute / not to compute (`only: 'fused.'`: one fused pass and its heads, on a slow backend).
 */
export async function coarseSuite(params: SuiteParams): Promise<{ checks: Check[]; info: Record<string, unknown> }> {
  const set = String(params.set);
  const files = SETS[set];
  if (!files) throw new Error(`coarse: unknown set "${set}" (expected ${Object.keys(SETS).join(', ')})`);
  const backend = await useBackend(params.backend as BackendName);
  const dir = `/fixtures/fiber/${set}/`;
  const prefixes = (p: SuiteParams[string]) =>
    String(p ?? '')
      .split(',')
      .filter(Boolean);
  const [only, skip] = [prefixes(params.only), prefixes(params.skip)];
  const t0 = performance.now();
  const { config, heads } = fiberConfigFromFixture(await fetchJson(`${dir}config.json`));
  const model = new FiberCoarseModel(config, heads);
  // what loadFiberCheckpoint(model, path) does in Node, from a Blob (the recipe of fusion's README)
  const weights = await openRemoteSafetensors(`${dir}model.safetensors`);
  const dict = await weights.readAll((k) => !FIBER_QUEUE_BUFFERS.includes(k));
  const adapted = adaptSwinStateDict(model.vitModel, dict, 'vit_model.');
  model.loadStateDict(adapted.dict);
  tf.dispose([...adapted.created, ...dict.values()]);
  model.eval();
  const inputs = await (await openRemoteSafetensors(`${dir}inputs.safetensors`)).readAll(
    (k) => !k.startsWith('raw_image'),
  );
  const expected: SafetensorsFile[] = await Promise.all(files.map((f) => openRemoteSafetensors(`${dir}${f}`)));
  const loadMs = performance.now() - t0;
  const wanted = new Set(
    expected
      .flatMap((f) => f.keys())
      .filter((n) => (!only.length || only.some((o) => n.startsWith(o))) && !skip.some((s) => n.startsWith(s))),
  );
  const t1 = performance.now();
  const result = await runFixturePasses(model, inputs, wanted);
  const runMs = performance.now() - t1;
  const checks: Check[] = [];
  for (const name of [...wanted].sort()) {
    const file = expected.find((f) => f.tensors.has(name))!;
    const ours = result.tensors.get(name);
    const exact = result.exact.get(name);
    if (ours) checks.push(await compareTensor(name, ours, await file.readRaw(name)));
    else if (exact) checks.push(compareExact(name, exact, await file.readRaw(name)));
  }
  tf.dispose([...inputs.values(), ...result.tensors.values()]);
  model.dispose();
  const notComputed = [...wanted].filter((n) => !checks.some((c) => c.name === n));
  return {
    checks,
    info: {
      backend: backend.name,
      adapter: backend.adapter,
      threads: backend.threads,
      loadMs,
      runMs,
      notComputed: notComputed.length,
      only,
      skip,
      tensorsAfter: tf.memory().numTensors,
    },
  };
}

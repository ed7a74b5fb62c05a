// The fine-grained FIBER model against the official code in the browser, through the package's own
// fixture harness (`runFineFixturePasses`, what `fiber-bench parity` and the Node tests run):
// - `fine-a` (fixtures/fiber/fine-a, set A tiny_fine): images + prompts -> FiberFineModel (fused
//   Swin + RoBERTa, FPN, VLDyHead, anchors, box decoding); every output and intermediate.
// - `tiny_fine_head` (fixtures/fiber-fine/tiny_fine_head, set B): VLDyHead alone on given P3-P7.
// Tolerance as the package tests: max |diff| <= 1e-4 * max(1, max |reference|).
import { runFineFixturePasses } from '@fiber-vl/heads-fine/testing';
import { tf, type BackendName, type SafetensorsFile } from '@fiber-vl/tensor-core';
import { compareTensor } from '../check.js';
import { fetchJson, openRemoteSafetensors, useBackend } from '../fixtures.js';
import type { Check, SuiteParams } from '../protocol.js';

const FIXTURES: Record<string, { dir: string; expected: string[] }> = {
  'fine-a': { dir: '/fixtures/fiber/fine-a/', expected: ['outputs.safetensors', 'intermediates.safetensors'] },
  tiny_fine_head: { dir: '/fixtures/fiber-fine/tiny_fine_head/', expected: ['outputs.safetensors'] },
};

/** params: backend, fixture ('fine-a' | 'tiny_fine_head'). */
export async function fineSuite(params: SuiteParams): Promise<{ checks: Check[]; info: Record<string, unknown> }> {
  const fixture = FIXTURES[String(params.fixture)];
  if (!fixture)
    throw new Error(`fine: unknown fixture "${params.fixture}" (expected ${Object.keys(FIXTURES).join(', ')})`);
  const backend = await useBackend(params.backend as BackendName);
  const { dir } = fixture;
  const t0 = performance.now();
  const config = await fetchJson(`${dir}config.json`);
  const weights = await (await openRemoteSafetensors(`${dir}model.safetensors`)).readAll();
  const inputs = await (await openRemoteSafetensors(`${dir}inputs.safetensors`)).readAll(
    (k) => !k.startsWith('raw_image'),
  );
  const expected: SafetensorsFile[] = await Promise.all(
    fixture.expected.map((f) => openRemoteSafetensors(`${dir}${f}`)),
  );
  const loadMs = performance.now() - t0;
  const wanted = new Set(expected.flatMap((f) => f.keys()));
  const t1 = performance.now();
  const { tensors, uncomputable } = await runFineFixturePasses(config, weights, inputs, wanted);
  const checks: Check[] = [];
  for (const [name, ours] of tensors) {
    const file = expected.find((f) => f.tensors.has(name))!;
    checks.push(await compareTensor(name, ours, await file.readRaw(name), { relative: true }));
  }
  const runMs = performance.now() - t1;
  for (const name of uncomputable)
    checks.push({ name, maxAbsError: Infinity, tolerance: 1e-4, ok: false, detail: 'not computed' });
  tf.dispose([...tensors.values(), ...weights.values(), ...inputs.values()]);
  return {
    checks,
    info: {
      backend: backend.name,
      adapter: backend.adapter,
      threads: backend.threads,
      loadMs,
      runMs,
      tensorsAfter: tf.memory().numTensors,
    },
  };
}

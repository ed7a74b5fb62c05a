// The VLDyHead against the official fine-grained code, every backend: set B `tiny_fine_head` (the
// head alone, on random P3-P7). The whole model (set A `tiny_fine`) is checked in model.test.ts.
// Tolerance: |diff| <= 1e-4 * max(1, max |ref|).
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '@fiber-vl/tensor-core';
import { testBackends, useBackend } from '@fiber-vl/tensor-core/testing';
import { VLDyHead } from './dyhead.js';
import { openFixture, relativeError, tinyFineHeadConfig } from './parity-fixtures.js';

const { names, skipped } = await testBackends();
for (const s of skipped)
  describe.skip(`fine head parity on ${s.backend} (skipped: ${s.reason})`, () => it('unavailable', () => {}));
const LEVELS = [0, 1, 2, 3, 4];

/** Compares each [name, ours] with the reference of that name; returns the errors by name. */
async function compare(pairs: [string, tf.Tensor][], ref: { readTensor(name: string): Promise<tf.Tensor> }) {
  const errors: Record<string, { rel: number; abs: number }> = {};
  for (const [name, ours] of pairs) {
    const r = await ref.readTensor(name);
    errors[name] = await relativeError(ours, r);
    r.dispose();
  }
  if (process.env.FIBER_PARITY_REPORT) {
    const worst = Object.entries(errors).sort((a, b) => b[1].abs - a[1].abs)[0];
    process.stderr.write(
      `[parity] ${tf.getBackend()}: ${pairs.length} tensors, max abs ${worst[1].abs.toExponential(2)} (${worst[0]})\n`,
    );
  }
  return errors;
}

function expectWithin(errors: Record<string, { rel: number }>) {
  const bad = Object.entries(errors).filter(([, e]) => !(e.rel <= 1e-4));
  expect(bad.map(([k, e]) => `${k}: ${e.rel}`)).toEqual([]);
}

describe.each(names)('fine head parity on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  // SwiftShader compiles a shader per op shape: about a minute per case on webgpu, on a loaded CI machine more.
  it('set B tiny_fine_head: every DyConv output per level, cls_logits, bbox_reg, centerness, dot_product_logits', {
    timeout: 600_000,
  }, async () => {
    const config = tinyFineHeadConfig();
    const head = new VLDyHead(config).eval();
    const model = await openFixture('tiny_fine_head', 'model.safetensors');
    const weights = await model.readAll();
    await model.close();
    head.loadStateDict(weights);
    tf.dispose([...weights.values()]);
    const inputs = await openFixture('tiny_fine_head', 'inputs.safetensors');
    const features = await Promise.all(LEVELS.map((l) => inputs.readTensor(`fpn.${l}`)));
    const embedded = await inputs.readTensor('lang.embedded');
    await inputs.close();
    const out = head.forward(features, embedded, { allTowers: true });
    const pairs: [string, tf.Tensor][] = out.levels.flatMap((o, l) => [
      ...o.towers.map((t, k): [string, tf.Tensor] => [`act.dyhead_tower.${k}.level${l}`, t]),
      [`cls_logits.${l}`, o.clsLogits],
      [`bbox_reg.${l}`, o.bboxReg],
      [`centerness.${l}`, o.centerness],
      [`dot_product_logits.${l}`, o.dotProductLogits],
    ]);
    expect(pairs).toHaveLength(5 * (config.numConvs + 4));
    const expected = await openFixture('tiny_fine_head', 'outputs.safetensors');
    expectWithin(await compare(pairs, expected));
    await expected.close();
    tf.dispose([...features, embedded, ...pairs.map(([, t]) => t)]);
    head.dispose();
  });
});

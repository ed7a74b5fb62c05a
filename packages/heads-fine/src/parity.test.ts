// FPN and VLDyHead against the official fine-grained code on both fixture sets, every backend:
// set B `tiny_fine_head` (the head alone, on random P3-P7) and set A `tiny_fine` (FPN on the Swin
// stage outputs, then the head on the FPN). Tolerance: |diff| <= 1e-4 * max(1, max |ref|).
import { beforeAll, describe, expect, it } from 'vitest';
import { layerNorm, tf } from '@fiber-vl/tensor-core';
import { testBackends, useBackend } from '@fiber-vl/tensor-core/testing';
import { FPN } from './fpn.js';
import { VLDyHead } from './dyhead.js';
import { openFixture, readPrefixed, relativeError, tinyFineConfig, tinyFineHeadConfig } from './parity-fixtures.js';

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
  it(
    'set B tiny_fine_head: every DyConv output per level, cls_logits, bbox_reg, centerness, dot_product_logits',
    { timeout: 600_000 },
    async () => {
      const config = tinyFineHeadConfig();
      const head = new VLDyHead(config).eval();
      const weights = await (await openFixture('tiny_fine_head', 'model.safetensors')).readAll();
      head.loadStateDict(weights);
      tf.dispose([...weights.values()]);
      const inputs = await openFixture('tiny_fine_head', 'inputs.safetensors');
      const features = await Promise.all(LEVELS.map((l) => inputs.readTensor(`fpn.${l}`)));
      const embedded = await inputs.readTensor('lang.embedded');
      const out = head.forward(features, embedded, { allTowers: true });
      const pairs: [string, tf.Tensor][] = out.levels.flatMap((o, l) => [
        ...o.towers.map((t, k): [string, tf.Tensor] => [`act.dyhead_tower.${k}.level${l}`, t]),
        [`cls_logits.${l}`, o.clsLogits],
        [`bbox_reg.${l}`, o.bboxReg],
        [`centerness.${l}`, o.centerness],
        [`dot_product_logits.${l}`, o.dotProductLogits],
      ]);
      expect(pairs).toHaveLength(5 * (config.numConvs + 4));
      expectWithin(await compare(pairs, await openFixture('tiny_fine_head', 'outputs.safetensors')));
      tf.dispose([...features, embedded, ...pairs.map(([, t]) => t)]);
      head.dispose();
    },
  );

  it(
    'set A tiny_fine: FPN P3-P7 from the Swin stage outputs, then every head output and tower',
    { timeout: 600_000 },
    async () => {
      const { head: headConfig, fpn: fpnConfig, grids } = tinyFineConfig();
      const model = await openFixture('tiny_fine', 'model.safetensors');
      const fpn = new FPN(fpnConfig).eval();
      const head = new VLDyHead(headConfig).eval();
      const [fpnWeights, headWeights, norms] = await Promise.all([
        readPrefixed(model, 'fusion_backbone.backbone.fpn.'),
        readPrefixed(model, 'rpn.head.'),
        readPrefixed(model, 'fusion_backbone.backbone.body.norm'),
      ]);
      fpn.loadStateDict(fpnWeights);
      head.loadStateDict(headWeights);
      // C3-C5 = body.norm{1,2,3}(last block of Swin stages 1-3), tokens [B, H*W, C] -> NCHW
      const inter = await openFixture('tiny_fine', 'intermediates.safetensors');
      const stageOut = ['img.stage1.block1', 'img.stage2.block17', 'img.stage3.block1'];
      const c = await Promise.all(
        stageOut.map(async (name, i) => {
          const tokens = await inter.readTensor(name);
          const [b, , ch] = tokens.shape;
          const [h, w] = grids[i];
          const normed = layerNorm(tokens, norms.get(`${i + 1}.weight`), norms.get(`${i + 1}.bias`), 1e-5);
          const nchw = tf.transpose(tf.reshape(normed, [b, h, w, ch]), [0, 3, 1, 2]);
          tf.dispose([tokens, normed]);
          return nchw;
        }),
      );
      const outputs = await openFixture('tiny_fine', 'outputs.safetensors');
      const p = fpn.forward(c);
      const embedded = await outputs.readTensor('lang.embedded');
      const out = head.forward(p, embedded, { allTowers: true });
      const level = (l: number) => `P${l + 3}`;
      const outPairs: [string, tf.Tensor][] = [
        ...p.map((t, l): [string, tf.Tensor] => [`fpn.${level(l)}`, t]),
        ...out.levels.flatMap((o, l): [string, tf.Tensor][] => [
          [`head.cls_logits.${level(l)}`, o.clsLogits],
          [`head.bbox_reg.${level(l)}`, o.bboxReg],
          [`head.centerness.${level(l)}`, o.centerness],
          [`head.dot_product_logits.${level(l)}`, o.dotProductLogits],
        ]),
      ];
      const towerPairs = out.levels.flatMap((o, l) =>
        o.towers.map((t, k): [string, tf.Tensor] => [`head.tower${k}.${level(l)}`, t]),
      );
      expect(outPairs).toHaveLength(25);
      expect(towerPairs).toHaveLength(5 * headConfig.numConvs);
      expectWithin({ ...(await compare(outPairs, outputs)), ...(await compare(towerPairs, inter)) });
      tf.dispose([...c, ...p, embedded, ...outPairs.map(([, t]) => t), ...towerPairs.map(([, t]) => t)]);
      tf.dispose([...fpnWeights.values(), ...headWeights.values(), ...norms.values()]);
      fpn.dispose();
      head.dispose();
    },
  );
});

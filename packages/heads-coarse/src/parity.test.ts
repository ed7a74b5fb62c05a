// The FIBER coarse model against the official code on both public fixture sets: fused pass, dual
// encoder (ITC), ITM, VQA, NLVR2 and MLM, every output within 1e-4, on every backend.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile, loadSafetensors, tf, disposeOutput } from '@fiber-vl/tensor-core';
import {
  expectNoTensorGrowth,
  heavyTestBackends,
  maxAbsErrors,
  testBackends,
  useBackend,
} from '@fiber-vl/tensor-core/testing';
import { FiberCoarseModel } from './model.js';
import { beamSearchCaptions, captionForward, captionImageEmbeds } from './caption.js';
import { fiberConfigFromFixture } from './fixture-config.js';

const root = join(__dirname, '../../../fixtures/fiber');
await testBackends();
// On a software WebGPU adapter (CI) the whole-model parity runs in the browser tests (set A, the
// fused pass and heads, in Chromium's WebGPU) and here only with FIBER_TEST_WEBGPU=full.
const names = await heavyTestBackends('coarse model parity');

async function load(dir: string) {
  const { config, heads } = fiberConfigFromFixture(JSON.parse(readFileSync(join(root, dir, 'config.json'), 'utf8')));
  const model = new FiberCoarseModel(config, heads);
  const dict = await loadSafetensors(join(root, dir, 'model.safetensors'));
  model.loadStateDict(dict);
  tf.dispose([...dict.values()]);
  return model.eval();
}

/** Teacher-forced captioning outputs (infer_caption + mlm_score). */
function caption(m: FiberCoarseModel, pixels: tf.Tensor, ids: tf.Tensor, mask: tf.Tensor): Record<string, tf.Tensor> {
  const image = captionImageEmbeds(m, pixels);
  const c = captionForward(m, image, ids, mask);
  return { 'caption.image_embeds': image, 'caption.text_feats': c.textFeats, 'caption.logits': c.logits };
}

type Case = {
  dir: string;
  out: string;
  run: (m: FiberCoarseModel, x: Record<string, tf.Tensor>) => Record<string, tf.Tensor>;
};
const SETS: Case[] = [
  {
    dir: 'set-a',
    out: 'outputs.safetensors',
    run: (m, x) => {
      const f = m.fused(x.image, x.input_ids, x.attention_mask);
      const itm = m.itm(x.image, x.input_ids, x.attention_mask);
      const img = m.encodeImage(x.image);
      const txt = m.encodeText(x.input_ids, x.attention_mask);
      const nl = m.nlvr2(x.image, x.nlvr2_image_1, x.input_ids, x.attention_mask);
      return {
        'fused.text_feats': f.textFeats,
        'fused.image_feats': f.imageFeats,
        'fused.cls_feats': f.clsFeats,
        'fused.itm_logits': itm.logits,
        'fused.rank_score': tf.reshape(itm.rankScore, [-1, 1]),
        'fused.vqa_logits': m.vqa(x.image, x.input_ids, x.attention_mask),
        'fused.mlm_logits': m.mlm(x.image, x.input_ids, x.attention_mask).logits,
        'dual.image_feats': img.imageFeats,
        'dual.image_cls': img.imageCls,
        'dual.text_feats': txt.textFeats,
        'dual.text_cls': txt.textCls,
        'dual.itc_logits_i2t': m.itcLogits(img.imageCls, txt.textCls),
        'dual.itc_logits_t2i': tf.transpose(m.itcLogits(img.imageCls, txt.textCls)),
        'nlvr2.cls_feats': nl.clsFeats,
        'nlvr2.logits': nl.logits,
        ...caption(m, x.image, x.input_ids, x.attention_mask),
      };
    },
  },
  {
    dir: 'set-b',
    out: 'outputs.safetensors',
    run: (m, x) => {
      const f = m.fused(x.pixel_values, x.input_ids, x.attention_mask);
      const itm = m.itm(x.pixel_values, x.input_ids, x.attention_mask);
      const rolled = m.itm(x.itm_rolled_pixel_values, x.input_ids, x.attention_mask);
      const img = m.encodeImage(x.pixel_values);
      const txt = m.encodeText(x.input_ids, x.attention_mask);
      const nl = m.nlvr2(x.pixel_values, x.nlvr2_image_1, x.input_ids, x.attention_mask);
      const mlm = m.mlm(x.pixel_values, x.mlm_input_ids, x.attention_mask);
      return {
        'fused.text_feats': f.textFeats,
        'fused.image_feats': f.imageFeats,
        'fused.cls_feats': f.clsFeats,
        'itm.logits': itm.logits,
        'itm.rank_score': itm.rankScore,
        'itm.logits_rolled_images': rolled.logits,
        'vqa.logits': m.vqa(x.pixel_values, x.input_ids, x.attention_mask),
        'nlvr2.cls_feats': nl.clsFeats,
        'nlvr2.logits': nl.logits,
        'mlm.text_feats': mlm.textFeats,
        'mlm.logits': mlm.logits,
        'itc.image_feats': img.imageFeats,
        'itc.image_cls': img.imageCls,
        'itc.text_feats': txt.textFeats,
        'itc.text_cls': txt.textCls,
        'itc.sim_i2t': m.itcLogits(img.imageCls, txt.textCls),
        'itc.temp': tf.reshape(m.temp!.value, [1]),
        ...caption(m, x.pixel_values, x.input_ids, x.attention_mask),
      };
    },
  },
];

describe.each(names)('FIBER coarse model parity on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it.each(SETS)(
    '$dir: fused, dual (ITC), ITM, VQA, NLVR2, MLM and teacher-forced caption outputs within 1e-4',
    async (set) => {
      const model = await load(set.dir);
      const inputs = await loadSafetensors(
        join(root, set.dir, 'inputs.safetensors'),
        (k) => !k.startsWith('raw_image'),
      );
      const x = Object.fromEntries(inputs);
      const ours = set.run(model, x);
      const expected = await SafetensorsFile.open(join(root, set.dir, set.out));
      const errors = await maxAbsErrors(Object.entries(ours), expected);
      expect(Object.entries(errors).filter(([, e]) => !(e <= 1e-4))).toEqual([]);
      await expected.close();
      tf.dispose([...Object.values(ours), ...inputs.values()]);
      model.dispose();
    },
    600_000, // SwiftShader WebGPU runs every shader on the CPU: minutes on 2 cores
  );

  it('set-b: beam-5 caption tokens are identical to the official caption_test_step', async () => {
    const model = await load('set-b');
    const inputs = await loadSafetensors(join(root, 'set-b', 'inputs.safetensors'), (k) => k === 'pixel_values');
    const expected = await loadSafetensors(
      join(root, 'set-b', 'outputs.safetensors'),
      (k) => k === 'caption.beam5_ids',
    );
    const steps: number[][][] = [];
    const ids = await beamSearchCaptions(model, inputs.get('pixel_values')!, {
      beamSize: 5,
      maxLength: 16,
      onStep: (best, step) => {
        expect(best.every((row) => row.length === step + 1)).toBe(true);
        steps.push(best);
      },
    });
    expect(ids).toEqual(await expected.get('caption.beam5_ids')!.array());
    // the last onStep holds each image's result (</s> and <s> not yet <pad>, the rest of the row <pad>)
    const toPad = (t: number) => (t === 0 || t === 2 ? 1 : t);
    steps.at(-1)!.forEach((best, b) => expect([...best.map(toPad), ...ids[b].slice(best.length)]).toEqual(ids[b]));
    expect(ids.every((row, b) => row.slice(steps.at(-1)![b].length).every((t) => t === 1))).toBe(true);
    tf.dispose([...inputs.values(), ...expected.values()]);
    model.dispose();
  });

  it('repeated fused passes do not grow the tensor count', async () => {
    const model = await load('set-b');
    const inputs = await loadSafetensors(join(root, 'set-b', 'inputs.safetensors'), (k) =>
      ['pixel_values', 'input_ids', 'attention_mask'].includes(k),
    );
    await expectNoTensorGrowth(
      () =>
        disposeOutput(
          model.fused(inputs.get('pixel_values')!, inputs.get('input_ids')!, inputs.get('attention_mask')!),
        ),
      { label: 'fused forward' },
    );
    tf.dispose([...inputs.values()]);
    model.dispose();
  });
});

// The whole fine-grained model (fused Swin + RoBERTa, FPN, VLDyHead, anchors and box decoding)
// against the official GeneralizedVLRCNN on set A `tiny_fine` (a 96x128 input: padded windows, odd
// map sizes, the DCN offset reinterpretation on every level), on every backend, through the same
// config-driven harness as `fiber-bench parity`: every output and intermediate of the folder.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile, disposeOutput, loadSafetensors, tf } from '@fiber-vl/tensor-core';
import { expectNoTensorGrowth, heavyTestBackends, useBackend } from '@fiber-vl/tensor-core/testing';
import { fineModelConfigFromFixture, runFineFixturePasses } from './fixture-harness.js';
import {
  type FiberFineModel,
  createFiberFineModel,
  fiberFineModelConfig,
  validateFiberFineModelConfig,
} from './model.js';
import { relativeError } from './parity-fixtures.js';

const dir = join(__dirname, '../../../fixtures/fiber/fine-a');
const config = () => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
// the fine-grained backbone alone runs on every backend (fusion); the whole model on software WebGPU
// runs in the browser tests (fine-a in Chromium's WebGPU) and here with FIBER_TEST_WEBGPU=full
const names = await heavyTestBackends('FiberFineModel parity');

describe('FiberFineModel config', () => {
  it('follows the backbone (FPN widths, text width, query length) and names a bad field', () => {
    const c = fiberFineModelConfig('tiny');
    expect(c.fpn.inChannels).toEqual([32, 64, 128]);
    expect([c.head.langDim, c.head.maxQueryLen, c.head.channels]).toEqual([64, 32, c.fpn.outChannels]);
    expect(() => fiberFineModelConfig('tiny', { head: { langDim: 10 } })).toThrow(
      'FiberFineModelConfig.head.langDim: 10 must equal the text width 64',
    );
    expect(() => fiberFineModelConfig('tiny', { anchors: { aspectRatios: [0.5, 1, 2] } })).toThrow(
      /one anchor per location/,
    );
    // a JSON config: a missing section, an anchor or post-processing setting of the wrong kind
    const json = (over: Record<string, unknown>) =>
      JSON.parse(JSON.stringify({ ...c, ...over }).replace('"INF"', '1e999'));
    expect(() => validateFiberFineModelConfig(json({ anchors: undefined }))).toThrow(
      'FiberFineModelConfig.anchors: expected an object, got undefined',
    );
    expect(() => validateFiberFineModelConfig(json({ anchors: { ...c.anchors, octave: 'INF' } }))).toThrow(
      'FiberFineModelConfig.anchors.octave: must be a positive number, got Infinity',
    );
    expect(() =>
      validateFiberFineModelConfig(json({ anchors: { ...c.anchors, sizes: [64, -1, 256, 512, 1024] } })),
    ).toThrow('FiberFineModelConfig.anchors.sizes: must list positive numbers, got [64,-1,256,512,1024]');
    expect(() =>
      validateFiberFineModelConfig(json({ postprocess: { ...c.postprocess, scoreAggregation: 'sum' } })),
    ).toThrow('FiberFineModelConfig.postprocess.scoreAggregation: must be "mean" or "max", got "sum"');
    expect(() => validateFiberFineModelConfig(json({ postprocess: { ...c.postprocess, preNmsTopN: 0 } }))).toThrow(
      'FiberFineModelConfig.postprocess.preNmsTopN: must be a positive integer, got 0',
    );
    expect(() => validateFiberFineModelConfig(json({ fpn: { outChannels: c.fpn.outChannels } }))).toThrow(
      'FiberFineModelConfig.fpn.inChannels: must list the 3 Swin stage widths, got nothing',
    );
    expect(() => validateFiberFineModelConfig(json({ head: { ...c.head, priorProb: '0.01' } }))).toThrow(
      'DyHeadConfig.priorProb must be in (0, 1), got 0.01',
    );
    const f = fineModelConfigFromFixture(config());
    expect([f.backbone.swin.windowSize, f.backbone.maxQueryLen, f.head.channels, f.head.numConvs]).toEqual([
      4, 16, 24, 3,
    ]);
  });
});

describe.each(names)('FiberFineModel parity with the official code on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('tiny_fine: every output and intermediate within 1e-4 * max(1, |ref|)', { timeout: 900_000 }, async () => {
    const files = await Promise.all(
      ['inputs', 'outputs', 'intermediates'].map((f) => SafetensorsFile.open(join(dir, `${f}.safetensors`))),
    );
    const [inputsFile, outputs, inter] = files;
    const inputs = await inputsFile.readAll();
    const weights = await loadSafetensors(join(dir, 'model.safetensors'));
    const expected = new Map<string, SafetensorsFile>();
    for (const f of [outputs, inter]) for (const k of f.keys()) expected.set(k, f);
    const { tensors, uncomputable } = await runFineFixturePasses(config(), weights, inputs, new Set(expected.keys()));
    expect(uncomputable).toEqual([]);
    const bad: string[] = [];
    for (const [name, ours] of tensors) {
      const ref = await expected.get(name)!.readTensor(name);
      const e = await relativeError(ours, ref);
      if (!(e.rel <= 1e-4)) bad.push(`${name}: ${e.rel}`);
      ref.dispose();
    }
    expect(bad).toEqual([]);
    expect(tensors.size).toBe(56 + 38);
    disposeOutput([tensors, inputs, weights]);
    await Promise.all(files.map((f) => f.close()));
  });
});

describe('FiberFineModel', () => {
  beforeAll(() => useBackend('cpu'));

  it('checks the prompt length and leaks nothing over repeated forwards', async () => {
    const model: FiberFineModel = createFiberFineModel('tiny', { roberta: { vocabSize: 60 } }).eval();
    const px = tf.randomNormal([1, 3, 64, 96]);
    const ids = tf.tensor2d([[0, 11, 25, 2, ...new Array(28).fill(1)]], undefined, 'int32');
    const mask = tf.cast(tf.notEqual(ids, 1), 'int32');
    expect(() => model.forward(px, tf.zeros([1, 5], 'int32'), tf.ones([1, 5], 'int32'))).toThrow(
      'FiberFineModel: inputIds must be [B, 32] (prompts padded to MAX_QUERY_LEN), got [1, 5]',
    );
    const out = model.forward(px, ids, mask);
    expect(out.head.levels.map((l) => l.dotProductLogits.shape)).toEqual([
      [1, 96, 32],
      [1, 24, 32],
      [1, 6, 32],
      [1, 2, 32],
      [1, 1, 32],
    ]);
    disposeOutput(out);
    await expectNoTensorGrowth(() => model.forward(px, ids, mask), { label: 'fine model forward' });
    tf.dispose([px, ids, mask]);
    model.dispose();
  });
});

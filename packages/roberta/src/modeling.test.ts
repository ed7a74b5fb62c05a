// Parity of RoBERTa with the official FIBER code (text-only pass: 12 plain layers, each with its
// output LayerNorm) on both public fixture sets and every backend.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile, loadSafetensors, tf, disposeOutput } from '@fiber-vl/tensor-core';
import { expectNoTensorGrowth, maxAbsErrors, testBackends, useBackend } from '@fiber-vl/tensor-core/testing';
import { RobertaLayer, RobertaModel } from './modeling.js';
import { robertaConfigFromHf, type RobertaConfig } from './config.js';

const fixtures = join(__dirname, '../../../fixtures/fiber');
const { names } = await testBackends();

function configOf(dir: string): RobertaConfig {
  return robertaConfigFromHf(JSON.parse(readFileSync(join(fixtures, dir, 'config.json'), 'utf8')).roberta);
}

async function load(dir: string) {
  const model = new RobertaModel(configOf(dir));
  // the text backbone of the full FIBER checkpoint, without its fusion parameters
  const dict = await loadSafetensors(
    join(fixtures, dir, 'model.safetensors'),
    (k) => k.startsWith('text_transformer.') && !k.includes('t2i'),
  );
  model.loadStateDict(new Map([...dict].map(([k, v]) => [k.replace(/^text_transformer\./, ''), v])));
  tf.dispose([...dict.values()]);
  return model.eval();
}

const SETS = [
  {
    dir: 'set-a',
    expected: 'intermediates.safetensors',
    key: (w: string) => `dual_text.txt.${w}`,
    layer: (i: number) => `layer${i}`,
  },
  {
    dir: 'set-b',
    expected: 'outputs.safetensors',
    key: (w: string) => `act.itc.text.${w}`,
    layer: (i: number) => `layer.${i}`,
  },
];

describe.each(names)('RoBERTa parity with the official FIBER code on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it.each(SETS)('$dir: embeddings and every layer within 1e-4', async (set) => {
    const model = await load(set.dir);
    const inputs = await SafetensorsFile.open(join(fixtures, set.dir, 'inputs.safetensors'));
    const expected = await SafetensorsFile.open(join(fixtures, set.dir, set.expected));
    const ids = await inputs.readTensor('input_ids');
    const mask = await inputs.readTensor('attention_mask');
    const out = model.forward(ids, mask, { collect: true });
    const checks: [string, tf.Tensor][] = [
      ['embeddings', out.embeddings!],
      ...out.hiddenStates!.map((h, i) => [set.layer(i), h] as [string, tf.Tensor]),
    ];
    const errors = await maxAbsErrors(
      checks.map(([name, t]) => [set.key(name), t]),
      expected,
    );
    expect(Object.entries(errors).filter(([, e]) => !(e <= 1e-4))).toEqual([]);
    expect(Object.keys(errors)).toHaveLength(13);
    await Promise.all([inputs.close(), expected.close()]);
    disposeOutput([ids, mask, out]);
    model.dispose();
  });

  it('repeated forward passes do not grow the tensor count', async () => {
    const model = await load('set-a');
    const ids = tf.tensor2d([[0, 5, 6, 7, 2, 1]], undefined, 'int32');
    await expectNoTensorGrowth(() => model.forward(ids), { label: 'roberta forward' });
    ids.dispose();
    model.dispose();
  });

  it('building and disposing a model leaves no tensor behind', () => {
    const before = tf.memory().numTensors;
    new RobertaModel(configOf('set-a')).dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('names a layers list of the wrong length before building anything', () => {
    const config = configOf('set-a');
    const layer = new RobertaLayer(config);
    const before = tf.memory().numTensors;
    expect(() => new RobertaModel(config, { layers: [layer] })).toThrow(
      `RobertaModel: layers has 1 entries for numHiddenLayers ${config.numHiddenLayers}`,
    );
    expect(tf.memory().numTensors).toBe(before);
    layer.dispose();
  });
});

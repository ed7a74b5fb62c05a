// Parity of the Swin backbone with the official FIBER code (dual-encoder image pass) on both
// public fixture sets, on every backend: every block, every PatchMerging and the final norm.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile, loadSafetensors, tf, StateDictError, disposeOutput } from '@fiber-vl/tensor-core';
import { expectNoTensorGrowth, maxAbsErrors, testBackends, useBackend } from '@fiber-vl/tensor-core/testing';
import { SwinTransformer } from './model.js';
import { fiberCoarseWindowSize, swinConfig, type SwinConfig } from './config.js';

const fixtures = join(__dirname, '../../../fixtures/fiber');
const { names } = await testBackends();

/** The tiny Swin of a fixture config (both sets describe it under "swin"). */
function configOf(dir: string): SwinConfig {
  const c = JSON.parse(readFileSync(join(fixtures, dir, 'config.json'), 'utf8')).swin;
  const imageSize = c.img_size;
  return swinConfig('swin_base_patch4_window12_384', {
    imageSize,
    embedDim: c.embed_dim,
    depths: c.depths,
    numHeads: c.num_heads,
    windowSize: fiberCoarseWindowSize(imageSize),
  });
}

async function load(dir: string) {
  const model = new SwinTransformer(configOf(dir));
  // the image backbone of the full FIBER checkpoint, without its fusion parameters
  const dict = await loadSafetensors(
    join(fixtures, dir, 'model.safetensors'),
    (k) => k.startsWith('vit_model.') && !k.includes('i2t'),
  );
  const stripped = new Map([...dict].map(([k, v]) => [k.replace(/^vit_model\./, ''), v]));
  model.loadStateDict(stripped);
  tf.dispose([...dict.values()]);
  model.eval();
  return model;
}

const SETS = [
  {
    dir: 'set-a',
    pixels: 'image',
    expected: 'intermediates.safetensors',
    key: (what: string) => `dual_image.img.${what}`,
    names: {
      patch: 'patch_embed',
      block: (i: number, j: number) => `stage${i}.block${j}`,
      down: (i: number) => `stage${i}.downsample`,
      norm: 'final_norm',
    },
  },
  {
    dir: 'set-b',
    pixels: 'pixel_values',
    expected: 'outputs.safetensors',
    key: (what: string) => `act.itc.vit.${what}`,
    names: {
      patch: 'patch_embed',
      block: (i: number, j: number) => `layers.${i}.blocks.${j}`,
      down: (i: number) => `layers.${i}.downsample`,
      norm: 'norm',
    },
  },
];

describe.each(names)('Swin parity with the official FIBER code on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it.each(SETS)('$dir: every block, PatchMerging and the final norm within 1e-4', async (set) => {
    const model = await load(set.dir);
    const inputs = await SafetensorsFile.open(join(fixtures, set.dir, 'inputs.safetensors'));
    const expected = await SafetensorsFile.open(join(fixtures, set.dir, set.expected));
    const pixels = await inputs.readTensor(set.pixels);
    const out = model.forward(pixels, { collect: true });
    const checks: [string, tf.Tensor][] = [[set.names.patch, out.patchEmbed!]];
    out.blocks!.forEach((blocks, i) => blocks.forEach((b, j) => checks.push([set.names.block(i, j), b])));
    out.stages.slice(0, -1).forEach((s, i) => checks.push([set.names.down(i), s]));
    checks.push([set.names.norm, out.lastHiddenState!]);
    const errors = await maxAbsErrors(
      checks.map(([name, t]) => [set.key(name), t]),
      expected,
    );
    expect(Object.entries(errors).filter(([, e]) => !(e <= 1e-4))).toEqual([]);
    expect(Object.keys(errors).length).toBeGreaterThan(25);
    disposeOutput(out);
    await Promise.all([inputs.close(), expected.close()]);
    pixels.dispose();
    model.dispose();
  });

  it('repeated forward passes do not grow the tensor count', async () => {
    const model = await load('set-a');
    const x = tf.randomNormal([1, 3, 128, 128]);
    await expectNoTensorGrowth(() => model.forward(x), { label: 'swin forward' });
    x.dispose();
    model.dispose();
  });
});

describe('Swin checkpoint loading', () => {
  beforeAll(() => useBackend('cpu'));
  it('names a wrong shape (both shapes), and missing / unexpected keys', async () => {
    const model = new SwinTransformer(configOf('set-a'));
    const dict = model.stateDict();
    const bad = new Map(dict);
    const wrong = tf.zeros([3, 3]);
    bad.set('layers.2.blocks.14.attn.qkv.weight', wrong);
    expect(() => model.loadStateDict(bad)).toThrow(
      /layers\.2\.blocks\.14\.attn\.qkv\.weight: model has float32\[192, 64\], checkpoint has float32\[3, 3\]/,
    );
    const partial = new Map(dict);
    partial.delete('norm.weight');
    partial.set('head.weight', wrong);
    expect(() => model.loadStateDict(partial)).toThrow(StateDictError);
    expect(model.loadStateDict(partial, { strict: false })).toEqual({
      missingKeys: ['norm.weight'],
      unexpectedKeys: ['head.weight'],
    });
    wrong.dispose();
    model.dispose();
  });
});

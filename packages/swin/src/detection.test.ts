// The detection variant (fixed window, padding to whole windows, any input size) against the
// official fine-grained FIBER Swin on a 96x128 input (set A tiny_fine): every block up to the first
// fused one, where the text has not yet entered.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile, loadSafetensors, tf, disposeOutput } from '@fiber-vl/tensor-core';
import { maxAbsErrors, testBackends, useBackend } from '@fiber-vl/tensor-core/testing';
import { SwinTransformer } from './model.js';
import { swinConfig } from './config.js';

const dir = join(__dirname, '../test/fixtures/set-a-fine');
const { names } = await testBackends();

describe.each(names)('Swin detection variant on %s', (backend) => {
  beforeAll(() => useBackend(backend));
  it('96x128 input (padded windows, odd map sizes): patch embed, stages 0-1, stage-2 blocks 0-13 within 1e-4', async () => {
    const model = new SwinTransformer(
      swinConfig('swin_base_patch4_window12_384', {
        imageSize: 128,
        embedDim: 16,
        numHeads: [2, 4, 8, 16],
        windowSize: 4,
      }),
      { variant: 'detection' },
    );
    const dict = await loadSafetensors(join(dir, 'model.safetensors'));
    const r = model.loadStateDict(
      new Map([...dict].map(([k, v]) => [k.replace('fusion_backbone.backbone.body.', ''), v])),
      { strict: false },
    );
    tf.dispose([...dict.values()]);
    expect(r.unexpectedKeys).toEqual([]);
    expect(
      r.missingKeys.every((k) => /^(layers\.2\.blocks\.(1[4-7])|layers\.2\.downsample|layers\.3|norm\d)/.test(k)),
    ).toBe(true);
    const inputs = await SafetensorsFile.open(join(dir, 'inputs.safetensors'));
    const expected = await SafetensorsFile.open(join(dir, 'expected.safetensors'));
    const images = await inputs.readTensor('images');
    const out = model.eval().forward(images, { collect: true });
    const checks: [string, tf.Tensor][] = [
      [
        'img.patch_embed',
        tf.reshape(tf.transpose(tf.reshape(out.patchEmbed!, [2, 24, 32, 16]), [0, 3, 1, 2]), [2, 16, 24, 32]),
      ],
    ];
    out.blocks!.slice(0, 2).forEach((bs, i) => bs.forEach((b, j) => checks.push([`img.stage${i}.block${j}`, b])));
    out.blocks![2].slice(0, 14).forEach((b, j) => checks.push([`img.stage2.block${j}`, b]));
    checks.push(['img.stage0.downsample', out.stages[0]], ['img.stage1.downsample', out.stages[1]]);
    const errors = await maxAbsErrors(checks, expected);
    expect(Object.entries(errors).filter(([, e]) => !(e <= 1e-4))).toEqual([]);
    expect(checks).toHaveLength(21);
    expect(out.features!.map((f) => f.shape)).toEqual([
      [2, 16, 24, 32],
      [2, 32, 12, 16],
      [2, 64, 6, 8],
      [2, 128, 3, 4],
    ]);
    await Promise.all([inputs.close(), expected.close()]);
    disposeOutput([images, out, checks]);
    model.dispose();
  });
});

/** A small detection Swin for the option tests (4 stages, 6 blocks). */
const config = swinConfig('swin_base_patch4_window12_384', {
  imageSize: 64,
  embedDim: 8,
  depths: [1, 1, 2, 1],
  numHeads: [1, 1, 2, 2],
  windowSize: 4,
});

describe('Swin frozenStages (the official _freeze_stages)', () => {
  beforeAll(() => useBackend('cpu'));
  const frozenOf = (frozenStages: number) => {
    const model = new SwinTransformer(config, { variant: 'detection', frozenStages }).train();
    const stages = new Set<string>();
    for (const [k, p] of model.namedParameters())
      if (p.requiresGrad === false)
        stages.add(
          k
            .split('.')
            .slice(0, k.startsWith('layers.') ? 2 : 1)
            .join('.'),
        );
    const evalModules = model.namedModules().filter(([, m]) => !m.training).length;
    model.dispose();
    return { frozen: [...stages], evalModules };
  };

  it('-1 freezes nothing, 0 and 1 the patch embedding, 2 also stage 0, 3 stages 0-1', () => {
    expect(frozenOf(-1)).toEqual({ frozen: [], evalModules: 0 });
    expect(frozenOf(0).frozen).toEqual(['patch_embed']);
    expect(frozenOf(1).frozen).toEqual(['patch_embed']);
    expect(frozenOf(2).frozen).toEqual(['patch_embed', 'layers.0']);
    expect(frozenOf(3).frozen).toEqual(['patch_embed', 'layers.0', 'layers.1']);
    // frozen modules stay in eval mode when the model trains (patch embedding, pos_drop, stage 0)
    expect(frozenOf(2).evalModules).toBeGreaterThan(frozenOf(0).evalModules);
  });

  it('names a value out of range', () => {
    expect(() => new SwinTransformer(config, { variant: 'detection', frozenStages: 6 })).toThrow(
      /frozenStages must be an integer in \[-1, 5\], got 6/,
    );
  });
});

describe('SwinTransformer options', () => {
  beforeAll(() => useBackend('cpu'));

  it('names a bad variant or outIndices before building anything', () => {
    const before = tf.memory().numTensors;
    for (const outIndices of [[1, 1], [4], [-1], [1.5], []])
      expect(() => new SwinTransformer(config, { variant: 'detection', outIndices })).toThrow(
        `outIndices must list distinct stages in [0, 3], got ${JSON.stringify(outIndices)}`,
      );
    expect(() => new SwinTransformer(config, { outIndices: [1, 2] })).toThrow(/detection variant only/);
    // @ts-expect-error not a variant
    expect(() => new SwinTransformer(config, { variant: 'segmentation' })).toThrow(
      /variant must be "classification" or "detection", got segmentation/,
    );
    expect(tf.memory().numTensors).toBe(before);
    const model = new SwinTransformer(config, { variant: 'detection', outIndices: [3, 1] });
    expect([...model.stateDict().keys()].filter((k) => k.startsWith('norm')).sort()).toEqual([
      'norm1.bias',
      'norm1.weight',
      'norm3.bias',
      'norm3.weight',
    ]);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('an attentionFactory that throws leaves no tensor behind', () => {
    const before = tf.memory().numTensors;
    expect(
      () =>
        new SwinTransformer(config, {
          attentionFactory: (stage) => {
            if (stage === 2) throw new Error('no attention for stage 2');
            return undefined;
          },
        }),
    ).toThrow('no attention for stage 2');
    expect(tf.memory().numTensors).toBe(before);
  });
});

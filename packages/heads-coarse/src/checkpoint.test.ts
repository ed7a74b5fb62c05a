// Official checkpoints in and out: safetensors / Lightning .ckpt import (queue buffers dropped,
// relative-position tables resized to another resolution) and export in the official key layout.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile, tf, disposeOutput } from '@fiber-vl/tensor-core';
import { useBackend } from '@fiber-vl/tensor-core/testing';
import { exportFiberCheckpoint, loadFiberCheckpoint } from '@fiber-vl/fusion';
import { fiberConfigFromFixture } from './fixture-config.js';
import { FiberCoarseModel } from './model.js';

const root = join(__dirname, '../../../fixtures/fiber');
const fixtureConfig = () => fiberConfigFromFixture(JSON.parse(readFileSync(join(root, 'set-b/config.json'), 'utf8')));

describe('FIBER checkpoint import / export', () => {
  beforeAll(() => useBackend('cpu'));

  it('loads a 128-px checkpoint into a 160-px model: tables resized, everything else strict', async () => {
    const { config, heads } = fixtureConfig();
    const at160 = { ...config, swin: { ...config.swin, imageSize: 160, windowSize: 5 } };
    const model = new FiberCoarseModel(at160, heads);
    const r = await loadFiberCheckpoint(model, join(root, 'set-b/model.safetensors'));
    expect(r.resized.length).toBe(24); // every block's table: (2*4-1)^2 -> (2*5-1)^2 rows
    expect(r.missingKeys).toEqual([]);
    const f = model
      .eval()
      .fused(
        tf.randomNormal([1, 3, 160, 160]),
        tf.tensor2d([[0, 5, 6, 2]], undefined, 'int32'),
        tf.tensor2d([[1, 1, 1, 1]], undefined, 'int32'),
      );
    expect(f.clsFeats.shape).toEqual([1, 64]);
    disposeOutput(f);
    model.dispose();
  });

  it('exports the official key layout, and the export loads back identically', async () => {
    const { config, heads } = fixtureConfig();
    const model = new FiberCoarseModel(config, heads);
    await loadFiberCheckpoint(model, join(root, 'set-b/model.safetensors'));
    const path = join(mkdtempSync(join(tmpdir(), 'fiber-export-')), 'export.safetensors');
    await exportFiberCheckpoint(model, path);
    const exported = await SafetensorsFile.open(path);
    const original = await SafetensorsFile.open(join(root, 'set-b/model.safetensors'));
    expect(exported.keys().sort()).toEqual(original.keys().sort());
    const key = 'vit_model.layers.2.blocks.15.attn.qkv_text_i2t.weight';
    expect(Array.from((await exported.readRaw(key)).data as Float32Array)).toEqual(
      Array.from((await original.readRaw(key)).data as Float32Array),
    );
    expect((await exported.readRaw('vit_model.layers.0.blocks.0.attn.relative_position_index')).dtype).toBe('I32');
    const again = new FiberCoarseModel(config, heads);
    await loadFiberCheckpoint(again, path);
    expect(Array.from(again.temp!.value.dataSync())).toEqual(Array.from(model.temp!.value.dataSync()));
    await Promise.all([exported.close(), original.close()]);
    model.dispose();
    again.dispose();
  });

  it('reads a Lightning .ckpt written by torch.save (partial state dict, strict off)', async () => {
    const { config, heads } = fixtureConfig();
    const model = new FiberCoarseModel({ ...config, hiddenSize: 3 }, heads); // itm_score.fc is [2, 6] in the tiny .ckpt
    const r = await loadFiberCheckpoint(model, join(__dirname, '../../../fixtures/torch/lightning.ckpt'), {
      strict: false,
    });
    expect(r.unexpectedKeys).toEqual([]);
    expect(r.missingKeys).not.toContain('itm_score.fc.weight');
    expect(model.rankOutput!.weight.shape).toEqual([1, 6]);
    model.dispose();
  });
});

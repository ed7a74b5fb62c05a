// --init across image sizes: the coarse model's Swin window follows image / 32, so a checkpoint
// trained at one size has relative_position_bias_tables of another shape; they are resized the
// way FIBER's swin_adapt_position_encoding does instead of being skipped.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportFiberCheckpoint } from '@fiber-vl/fusion';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { SwinTransformer, resizeRelativePositionTable, swinConfig } from '@fiber-vl/swin';
import { robertaConfig } from '@fiber-vl/roberta';
import { Generator, initBackend, tf } from '@fiber-vl/tensor-core';
import { maxAbsDiff } from '@fiber-vl/tensor-core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runModelConfig } from '../run/coarse-model.js';
import { RUN_PRESETS } from '../run/presets.js';
import { fiberFineModelConfig } from '@fiber-vl/heads-fine';
import { fineConfigOf, fineFrozenStages, loadInit, minBackboneParameters } from './tasks.js';

const micro = RUN_PRESETS.micro;
const configAt = (imageSize: number) => runModelConfig({ ...micro, model: { ...micro.model, imageSize } }, 400);
const TABLE = 'vit_model.layers.0.blocks.0.attn.relative_position_bias_table';

describe('loadInit', () => {
  let dir: string;
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    dir = mkdtempSync(join(tmpdir(), 'fiber-init-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('resizes the Swin position tables of a checkpoint trained at another image size', async () => {
    const small = new FiberCoarseModel(configAt(64), 'vqa', new Generator(1)); // window 2: 3 x 3 tables
    const big = new FiberCoarseModel(configAt(128), 'vqa', new Generator(2)); // window 4: 7 x 7 tables
    try {
      const path = join(dir, 'small.safetensors');
      await exportFiberCheckpoint(small, path);
      const before = tf.memory().numTensors;
      const r = await loadInit(big, path);
      expect(tf.memory().numTensors).toBe(before);
      const tables = [...small.stateDict().keys()].filter((k) => k.endsWith('relative_position_bias_table'));
      expect(tables.length).toBeGreaterThan(0);
      expect(r.resized).toBe(tables.length);
      // every tensor fits once the tables are resized; the index / mask buffers are the model's own
      expect(r.skipped).toBe(0);
      const want = resizeRelativePositionTable(small.stateDict().get(TABLE)!, 7);
      const got = big.stateDict().get(TABLE)!;
      expect(got.shape).toEqual([49, want.shape[1]]);
      expect(maxAbsDiff(await got.data(), await want.data())).toBe(0);
      want.dispose();
      // a tensor of the same shape in both is taken as it is
      const k = 'vit_model.patch_embed.proj.weight';
      expect(maxAbsDiff(await big.stateDict().get(k)!.data(), await small.stateDict().get(k)!.data())).toBe(0);
    } finally {
      small.dispose();
      big.dispose();
    }
  });

  it('leaves the tables alone (and says so) when the sizes agree', async () => {
    const a = new FiberCoarseModel(configAt(64), 'vqa', new Generator(3));
    const b = new FiberCoarseModel(configAt(64), 'vqa', new Generator(4));
    try {
      const path = join(dir, 'same.safetensors');
      await exportFiberCheckpoint(a, path);
      const r = await loadInit(b, path);
      expect(r).toEqual({ loaded: a.stateDict().size, skipped: 0, resized: 0 });
      expect(maxAbsDiff(await b.stateDict().get(TABLE)!.data(), await a.stateDict().get(TABLE)!.data())).toBe(0);
    } finally {
      a.dispose();
      b.dispose();
    }
  });
});

describe("fineFrozenStages: the Swin stages a fine run freezes, as in FIBER's recipes", () => {
  const tiny = fiberFineModelConfig('tiny');
  it('freezes the patch embedding and stage 0 for pre-training from --init only', () => {
    expect(tiny.backbone.frozenStages).toBe(2);
    expect(fineFrozenStages({ task: 'pretrain-fine', model: 'tiny', init: true }, tiny)).toBe(2);
    expect(fineFrozenStages({ task: 'pretrain-fine', model: 'tiny', init: false }, tiny)).toBe(-1);
    expect(fineFrozenStages({ task: 'refcoco', model: 'base', init: true }, tiny)).toBe(-1);
    expect(fineFrozenStages({ task: 'detection', model: 'small', init: true }, tiny)).toBe(-1);
  });
  it("keeps a JSON config's own value, and micro (the main job's model) trains every stage", () => {
    const json = { ...tiny, backbone: { ...tiny.backbone, frozenStages: 3 } };
    expect(fineFrozenStages({ task: 'refcoco', model: 'run/config.json', init: true }, json)).toBe(3);
    const { frozenStages: _, ...old } = tiny.backbone;
    expect(fineFrozenStages({ task: 'pretrain-fine', model: 'old.json', init: true }, { ...tiny, backbone: old })).toBe(
      -1,
    );
    expect(fineFrozenStages({ task: 'pretrain-fine', model: 'micro', init: true }, fineConfigOf('micro', 400))).toBe(
      -1,
    );
  });
});

describe('minBackboneParameters: the bound the memory check of --model uses', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });
  it('stays under the Swin parameters a model holds, frozen ones (held once, not four times) apart', () => {
    const swin = swinConfig('swin_tiny_patch4_window7_224', {
      embedDim: 16,
      depths: [2, 2, 2, 2],
      numHeads: [1, 2, 2, 4],
    });
    // a one-unit text encoder, whose share of the bound is (3 + 4) x 1 embeddings + 1 x (4 + 2) weights
    const unit = { vocabSize: 3, maxPositionEmbeddings: 4, hiddenSize: 1, numAttentionHeads: 1 };
    const oneUnitText = robertaConfig({ ...unit, intermediateSize: 1, numHiddenLayers: 1 });
    for (const frozenStages of [-1, 0, 2, 3, 5]) {
      const model = new SwinTransformer(swin, { frozenStages, rng: new Generator(0) });
      const sizes = model.namedParameters().map(([, p]) => [p.value.size, p.requiresGrad ? 0 : p.value.size]);
      const [total, frozen] = sizes.reduce(([a, b], [c, d]) => [a + c, b + d], [0, 0]);
      const bound = minBackboneParameters(swin, oneUnitText, -13, frozenStages);
      expect(bound.total, `frozenStages ${frozenStages}`).toBeLessThanOrEqual(total);
      expect(bound.total).toBeGreaterThan(0.85 * total);
      expect(bound.frozen, `frozenStages ${frozenStages}`).toBeLessThanOrEqual(frozen);
      expect(bound.frozen).toBeGreaterThanOrEqual(0.85 * frozen);
      model.dispose();
    }
  });
});

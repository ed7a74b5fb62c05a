// The fine-grained backbone against the official FusionSwinTransformer (set A tiny_fine: a 96x128
// input, so stages are padded to whole windows, v2 fusion) on every backend: patch embedding, every
// block and PatchMerging, every text layer, the aggregated language features, and the stage outputs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile, disposeOutput, loadSafetensors, tf } from '@fiber-vl/tensor-core';
import { expectNoTensorGrowth, maxAbsErrors, testBackends, useBackend } from '@fiber-vl/tensor-core/testing';
import { robertaConfigFromHf } from '@fiber-vl/roberta';
import { swinConfig } from '@fiber-vl/swin';
import { FiberFineBackbone, fiberFineConfig, type FiberFineConfig } from './fine.js';

const dir = join(__dirname, '../../../fixtures/fiber/fine-a');
const { names } = await testBackends();

function configOf(): FiberFineConfig {
  const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  return fiberFineConfig('base', {
    swin: swinConfig('swin_base_patch4_window12_384', {
      embedDim: c.swin.embed_dim,
      depths: c.swin.depths,
      numHeads: c.swin.num_heads,
      windowSize: c.swin.window_size,
      patchSize: c.swin.patch_size,
    }),
    roberta: robertaConfigFromHf(c.roberta),
    maxQueryLen: c.max_query_len,
  });
}

async function load() {
  const model = new FiberFineBackbone(configOf());
  const dict = await loadSafetensors(
    join(dir, 'model.safetensors'),
    (k) => k.startsWith('fusion_backbone.') && !k.startsWith('fusion_backbone.backbone.fpn.'),
  );
  model.loadStateDict(new Map([...dict].map(([k, v]) => [k.slice('fusion_backbone.'.length), v])));
  tf.dispose([...dict.values()]);
  return model.eval();
}

describe('fine-grained backbone config', () => {
  it('FIBER-B: window 12, drop-path 0.4, MAX_QUERY_LEN 256; validation names the field', () => {
    const c = fiberFineConfig();
    expect([c.swin.windowSize, c.swin.dropPathRate, c.maxQueryLen, c.version, c.numFuseBlock]).toEqual([
      12,
      0.4,
      256,
      'v2',
      6,
    ]);
    expect(() => fiberFineConfig('tiny', { maxQueryLen: 100 })).toThrow(
      'FiberFineConfig.maxQueryLen: 100 must be an integer in [3, 32] (<s>, a token and </s> at least)',
    );
    // 2 built a model no prompt fits (every detect then failed in the prompt encoder)
    expect(() => fiberFineConfig('tiny', { maxQueryLen: 2 })).toThrow(
      'FiberFineConfig.maxQueryLen: 2 must be an integer in [3, 32]',
    );
    // @ts-expect-error an inherited name is no preset
    expect(() => fiberFineConfig('hasOwnProperty')).toThrow(/unknown preset "hasOwnProperty"/);
    // @ts-expect-error not a version
    expect(() => fiberFineConfig('tiny', { version: 'v4' })).toThrow(/FiberFineConfig.version: "v4" is not v2 or v3/);
    expect(() => fiberFineConfig('tiny', { frozenStages: 1.5 })).toThrow(
      'FiberFineConfig.frozenStages: 1.5 must be an integer in [-1, 5]',
    );
  });

  it("freezes the Swin's patch embedding and stage 0 as FIBER's pre-training does (FREEZE_CONV_BODY_AT 2), or nothing at -1", () => {
    expect(fiberFineConfig().frozenStages).toBe(2);
    const frozenKeys = (frozenStages?: number) => {
      const config = fiberFineConfig('tiny', { frozenStages });
      const model = new FiberFineBackbone(frozenStages === undefined ? { ...config, frozenStages: undefined } : config);
      const keys = model
        .train()
        .namedParameters()
        .filter(([, p]) => !p.requiresGrad)
        .map(([k]) => k);
      model.dispose();
      return keys;
    };
    const all = new FiberFineBackbone(fiberFineConfig('tiny', { frozenStages: -1 }));
    const stem = all
      .namedParameters()
      .map(([k]) => k)
      .filter((k) => /^backbone\.body\.(patch_embed|layers\.0)\./.test(k));
    all.dispose();
    expect(stem).toContain('backbone.body.layers.0.downsample.reduction.weight');
    expect(frozenKeys(2)).toEqual(stem);
    expect(frozenKeys(-1)).toEqual([]);
    // a config saved before the field existed freezes nothing
    expect(frozenKeys(undefined)).toEqual([]);
  });

  it.each([
    [undefined, 0.02],
    [0.05, 0.05],
    [null, null],
  ] as const)(
    "starts its fusion layers as FIBER's fine-grained code does: Swin ones at PyTorch's default, crossattention at N(0, std) (initializerRange %s)",
    async (initializerRange, std) => {
      const model = new FiberFineBackbone(
        fiberFineConfig('tiny', { frozenStages: -1, ...(initializerRange === undefined ? {} : { initializerRange }) }),
      );
      const pooled: Record<'swin' | 'text', number[]> = { swin: [], text: [] };
      let swinBiasNonZero = false;
      for (const [name, p] of model.namedParameters()) {
        const side = /\.(qkv_text_i2t|qkv_i2t|proj_i2t)\./.test(name)
          ? 'swin'
          : /\.crossattention_t2i\./.test(name)
            ? 'text'
            : undefined;
        if (!side) continue;
        const v = Array.from((await p.value.data()) as Float32Array);
        if (name.endsWith('.weight')) pooled[side].push(...v);
        else if (side === 'text' && std !== null) expect(new Set(v), name).toEqual(new Set([0]));
        else swinBiasNonZero ||= v.some((x) => x !== 0);
      }
      const sd = (xs: number[]) => Math.sqrt(xs.reduce((a, b) => a + b * b, 0) / xs.length);
      expect(pooled.swin.length).toBeGreaterThan(1000);
      expect(pooled.text.length).toBeGreaterThan(1000);
      expect(sd(pooled.swin)).toBeGreaterThan(0.04); // kaiming-uniform at these widths: 0.05-0.14
      expect(swinBiasNonZero).toBe(true);
      if (std === null) {
        expect(sd(pooled.text)).toBeGreaterThan(0.04); // PyTorch's default Linear init
      } else {
        expect(sd(pooled.text)).toBeGreaterThan(std * 0.975);
        expect(sd(pooled.text)).toBeLessThan(std * 1.025);
      }
      model.dispose();
    },
  );
});

describe.each(names)('fine-grained backbone parity with the official code on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('tiny_fine: patch embed, every block and merge, every text layer, language features, stage outputs within 1e-4', async () => {
    const model = await load();
    const inputs = await SafetensorsFile.open(join(dir, 'inputs.safetensors'));
    const inter = await SafetensorsFile.open(join(dir, 'intermediates.safetensors'));
    const outputs = await SafetensorsFile.open(join(dir, 'outputs.safetensors'));
    const [images, ids, mask] = await Promise.all(
      ['images', 'input_ids', 'attention_mask'].map((n) => inputs.readTensor(n)),
    );
    const acts: [string, tf.Tensor][] = [];
    const { runFused } = await import('./backbone.js');
    const out = tf.tidy(() => {
      const r = runFused(model.swin, model.roberta, model.schedule, images, ids, mask, {
        observe: (step, state) => {
          const t = tf.keep(tf.clone(state.hidden));
          if (step.kind === 'embed') {
            const [B, , C] = t.shape;
            const [H, W] = 'grid' in state ? state.grid : [0, 0];
            acts.push(['img.patch_embed', tf.keep(tf.transpose(tf.reshape(t, [B, H, W, C]), [0, 3, 1, 2]))]);
            t.dispose();
          } else if (step.kind === 'text') acts.push([step.layer < 0 ? 'txt.embeddings' : `txt.layer${step.layer}`, t]);
          else if (step.kind === 'block') acts.push([`img.stage${step.stage}.block${step.block}`, t]);
          else if (step.stage < 3) acts.push([`img.stage${step.stage}.downsample`, t]);
          else t.dispose();
        },
      });
      return r.text.hidden;
    });
    const full = model.forward(images, ids, mask);
    const errors = {
      ...(await maxAbsErrors(acts, inter)),
      ...(await maxAbsErrors(
        [
          ['lang.hidden', full.language.hidden],
          ['lang.embedded', full.language.embedded],
          ['lang.aggregate', full.language.aggregate],
        ],
        outputs,
      )),
    };
    expect(Object.entries(errors).filter(([, e]) => !(e <= 1e-4))).toEqual([]);
    // every backbone intermediate of the fixture (its head.tower* ones are the head's, checked in heads-fine)
    expect(Object.keys(errors)).toHaveLength(44);
    expect(full.stages.map((s) => s.shape)).toEqual([
      [2, 32, 12, 16],
      [2, 64, 6, 8],
      [2, 128, 3, 4],
    ]);
    disposeOutput([out, full, acts, images, ids, mask]);
    await Promise.all([inputs.close(), inter.close(), outputs.close()]);
    model.dispose();
  }, 600_000); // SwiftShader WebGPU is a CPU emulation: minutes on a busy 2-core machine

  it('repeated forward passes do not grow the tensor count', async () => {
    const model = await load();
    const px = tf.randomNormal([1, 3, 64, 96]);
    const ids = tf.tensor2d([[0, 11, 25, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]], undefined, 'int32');
    const mask = tf.cast(tf.notEqual(ids, 1), 'int32');
    await expectNoTensorGrowth(() => model.forward(px, ids, mask), { label: 'fine backbone forward' });
    tf.dispose([px, ids, mask]);
    model.dispose();
  });
});

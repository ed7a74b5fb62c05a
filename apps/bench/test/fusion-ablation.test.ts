// Ablation (b)'s optimizer groups: both sides get FIBER's coarse groups (backbones at the base lr,
// heads at lrMultHead, fusion at 5x), the late-fusion head standing where FIBER's fusion blocks and
// cross-modal poolers are; every trainable parameter in exactly one group.
import { beforeAll, describe, expect, it } from 'vitest';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { Generator, initBackend } from '@fiber-vl/tensor-core';
import { fiberCoarseParamGroups } from '@fiber-vl/trainer';
import { NO_HEADS, runModelConfig } from '../src/run/coarse-model.js';
import { ablationParamGroups } from '../src/run/fusion-ablation.js';
import { LateFusionModel } from '../src/run/late-fusion.js';
import { RUN_PRESETS } from '../src/run/presets.js';

const config = runModelConfig(RUN_PRESETS.micro, 64);
const settings = { steps: 1, batchSize: 2, lr: 2e-4, lrMultHead: 50 };

function lrOf(groups: ReturnType<typeof ablationParamGroups>): Map<string, number> {
  const out = new Map<string, number>();
  for (const g of groups)
    for (const [name] of g.params) {
      expect(out.has(name), `${name} in two groups`).toBe(false);
      out.set(name, g.lr!);
    }
  return out;
}

beforeAll(() => initBackend({ backend: 'cpu' }));

describe('ablation (b) optimizer groups', () => {
  it('gives the FIBER side FIBER coarse groups with the stage head multiplier', () => {
    const model = new FiberCoarseModel(config, { ...NO_HEADS, itm: true, vqaLabels: 5 }, new Generator(0));
    try {
      const got = ablationParamGroups(model, settings);
      const want = fiberCoarseParamGroups(model.namedParameters(), { lr: 2e-4, weightDecay: 0.01, lrMultHead: 50 });
      expect(got.map((g) => [g.name, g.lr, g.weightDecay, g.params.map(([n]) => n)])).toEqual(
        want.map((g) => [g.name, g.lr, g.weightDecay, g.params.map(([n]) => n)]),
      );
      const lr = lrOf(got);
      expect(lr.size).toBe(model.namedParameters().filter(([, p]) => p.requiresGrad).length);
      expect(lr.get('itm_score.fc.weight')).toBeCloseTo(1e-2, 12);
      expect([...lr].find(([n]) => n.includes('crossattention_t2i'))?.[1]).toBeCloseTo(1e-3, 12);
    } finally {
      model.dispose();
    }
  });

  it('puts the late-fusion head at 5x, its task heads at lrMultHead and the backbones at the base lr', () => {
    const model = new LateFusionModel(config, { depth: 1, vqaLabels: 5, itm: true, rng: new Generator(0) });
    try {
      const groups = ablationParamGroups(model, settings);
      const lr = lrOf(groups);
      const trainable = model.namedParameters().filter(([, p]) => p.requiresGrad);
      expect(lr.size).toBe(trainable.length);
      for (const [name] of trainable) {
        const want = /^(vqa_classifier|itm_score)\./.test(name)
          ? 1e-2
          : /^(vit_model|text_transformer)\./.test(name)
            ? 2e-4
            : 1e-3;
        expect(lr.get(name), name).toBeCloseTo(want, 12);
      }
      // the late-fusion head: every part of it at 5x
      for (const p of ['image_projection', 'modality_embeddings', 'fusion_layers', 'fusion_norm', 'text_pooler']) {
        const name = [...lr.keys()].find((n) => n.startsWith(`${p}.`));
        expect(name, p).toBeDefined();
        expect(lr.get(name!), p).toBeCloseTo(1e-3, 12);
      }
      const noDecay = groups.filter((g) => g.weightDecay === 0).flatMap((g) => g.params.map(([n]) => n));
      expect(noDecay.length).toBeGreaterThan(0);
      expect(
        noDecay.every((n) => /bias|norm|LayerNorm/i.test(n)),
        noDecay.join(),
      ).toBe(true);
    } finally {
      model.dispose();
    }
  });
});

describe('the late-fusion model', () => {
  it('starts its added layers at N(0, initializerRange), zero biases, unit norms; its backbones as with null', () => {
    const build = (initializerRange: number | null) =>
      new LateFusionModel(
        { ...config, initializerRange },
        { depth: 1, vqaLabels: 5, itm: true, rng: new Generator(0) },
      );
    const fiber = build(0.02);
    const torch = build(null);
    try {
      const a = fiber.stateDict();
      const b = torch.stateDict();
      const added = (k: string) => !k.startsWith('vit_model.') && !k.startsWith('text_transformer.');
      const std = (state: typeof a) => {
        const v = [...state]
          .filter(([k, t]) => added(k) && k.endsWith('.weight') && t.rank === 2)
          .flatMap(([, t]) => Array.from(t.dataSync()));
        const mean = v.reduce((s, x) => s + x, 0) / v.length;
        return Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length);
      };
      expect(std(a)).toBeGreaterThan(0.019);
      expect(std(a)).toBeLessThan(0.021);
      expect(std(b)).toBeGreaterThan(0.05); // PyTorch's default at fan-in 32-128
      for (const [k, t] of a) {
        const v = Array.from(t.dataSync());
        if (!added(k)) expect(v, k).toEqual(Array.from(b.get(k)!.dataSync()));
        else if (k.endsWith('.bias'))
          expect(
            v.every((x) => x === 0),
            k,
          ).toBe(true);
        else if (t.rank === 1)
          expect(
            v.every((x) => x === 1),
            k,
          ).toBe(true); // LayerNorm weights
      }
    } finally {
      fiber.dispose();
      torch.dispose();
    }
  });
});

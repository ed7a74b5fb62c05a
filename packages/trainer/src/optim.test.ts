import { beforeAll, describe, expect, it } from 'vitest';
import { Parameter, initBackend, tf } from '@fiber-vl/tensor-core';
import { expectNoTensorGrowth } from '@fiber-vl/tensor-core/testing';
import { AdamW, fiberCoarseParamGroups } from './optim.js';
import { polynomialDecayWithWarmup, warmupMultiStep } from './schedules.js';

beforeAll(() => initBackend({ backend: 'cpu' }));

function run(variant: 'torch' | 'transformers') {
  const p = new Parameter(tf.tensor1d([0.5, -1.0, 2.0]));
  const opt = new AdamW([{ params: [['w', p]], lr: 0.1, weightDecay: 0.01 }], { betas: [0.9, 0.98], eps: 1e-8, variant });
  const k = tf.tensor1d([1, 2, 3]);
  for (let i = 0; i < 3; i++) {
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(tf.square(p.value), k)) as tf.Scalar, [p.value]);
    opt.step(new Map([['w', grads[p.value.name]]]));
    tf.dispose([value, grads]);
  }
  return { p, opt };
}

describe('AdamW', () => {
  it('matches torch.optim.AdamW (torch 1.13, 3 steps)', () => {
    const { p } = run('torch');
    const got = Array.from(p.value.dataSync());
    [0.203313932, -0.698720038, 1.69485128].forEach((v, i) => expect(got[i]).toBeCloseTo(v, 6));
  });

  it('matches the transformers.AdamW update rule', () => {
    const { p } = run('transformers');
    // float64 transcription of transformers 4.6 AdamW.step for the same problem
    const w = [0.5, -1.0, 2.0];
    const m = [0, 0, 0];
    const v = [0, 0, 0];
    for (let t = 1; t <= 3; t++) {
      for (let i = 0; i < 3; i++) {
        const g = 2 * (i + 1) * w[i];
        m[i] = 0.9 * m[i] + 0.1 * g;
        v[i] = 0.98 * v[i] + 0.02 * g * g;
        const stepSize = (0.1 * Math.sqrt(1 - 0.98 ** t)) / (1 - 0.9 ** t);
        w[i] -= (stepSize * m[i]) / (Math.sqrt(v[i]) + 1e-8);
        w[i] -= 0.1 * 0.01 * w[i];
      }
    }
    const got = Array.from(p.value.dataSync());
    w.forEach((x, i) => expect(got[i]).toBeCloseTo(x, 5));
  });

  it('does not grow the tensor count step after step', async () => {
    const p = new Parameter(tf.ones([4]));
    const opt = new AdamW([{ params: [['w', p]], lr: 0.01, weightDecay: 0.1 }]);
    await expectNoTensorGrowth(() => {
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(p.value)) as tf.Scalar, [p.value]);
      opt.step(new Map([['w', grads[p.value.name]]]));
      tf.dispose([value, grads]);
    });
    opt.dispose();
  });

  it('dispose() frees every tensor the optimiser created', () => {
    const p = new Parameter(tf.ones([4]));
    const before = tf.memory().numTensors;
    const opt = new AdamW([{ params: [['w', p]], lr: 0.01, weightDecay: 0.1 }]);
    const g = tf.fill([4], 0.5);
    opt.step(new Map([['w', g]]));
    opt.dispose();
    g.dispose();
    expect(tf.memory().numTensors).toBe(before);
    p.value.dispose();
  });

  it('groups FIBER parameters by substring exactly as fiber_utils does', () => {
    const names = [
      'text_transformer.encoder.layer.0.attention.self.query.weight',
      'text_transformer.encoder.layer.0.attention.self.query.bias',
      'vit_model.layers.2.blocks.14.attn.relative_position_bias_table',
      'vit_model.layers.2.blocks.14.attn.norm_i2t_i.weight',
      'vit_model.layers.2.blocks.14.norm1.weight',
      'itm_score.fc.weight',
      'cross_modal_text_transform.weight',
    ];
    const params = names.map((n) => [n, new Parameter(tf.zeros([1]))] as [string, Parameter]);
    const groups = fiberCoarseParamGroups(params, { lr: 1e-5 });
    const where = (n: string) => groups.find((g) => g.params.some(([k]) => k === n))!;
    expect(where(names[0])).toMatchObject({ lr: 1e-5, weightDecay: 0.01 });
    expect(where(names[1])).toMatchObject({ lr: 1e-5, weightDecay: 0 });
    expect(where(names[2]).weightDecay).toBe(0); // "bias" substring of relative_position_bias_table
    expect(where(names[3])).toMatchObject({ lr: 5e-5, weightDecay: 0.01 }); // i2t -> cross-modal; not a norm.weight match
    expect(where(names[4]).weightDecay).toBe(0);
    expect(where(names[5]).lr).toBeCloseTo(5e-5, 15);
    expect(where(names[6]).lr).toBeCloseTo(5e-5, 15);
    expect(() => new AdamW([{ params: [params[0]], lr: 1, weightDecay: 0 }, { params: [params[0]], lr: 1, weightDecay: 0 }])).toThrow(/in more than one group/);
  });
});

describe('schedules', () => {
  it('warm-up then linear decay to 0', () => {
    const s = { warmupSteps: 10, totalSteps: 100 };
    expect(polynomialDecayWithWarmup(0, s)).toBe(0);
    expect(polynomialDecayWithWarmup(5, s)).toBe(0.5);
    expect(polynomialDecayWithWarmup(10, s)).toBe(1);
    expect(polynomialDecayWithWarmup(55, s)).toBe(0.5);
    expect(polynomialDecayWithWarmup(100, s)).toBe(0);
  });
  it('warm-up multi-step as maskrcnn_benchmark', () => {
    const s = { milestones: [536000, 712000], warmupSteps: 2000, warmupFactor: 0.001 };
    expect(warmupMultiStep(0, s)).toBe(0.001);
    expect(warmupMultiStep(1000, s)).toBeCloseTo(0.5005, 12);
    expect(warmupMultiStep(600000, s)).toBeCloseTo(0.1, 12);
    expect(warmupMultiStep(800000, s)).toBeCloseTo(0.01, 12);
  });
});

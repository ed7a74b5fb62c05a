import { beforeAll, describe, expect, it } from 'vitest';
import { Parameter, initBackend, tf } from '@fiber-vl/tensor-core';
import { expectNoTensorGrowth } from '@fiber-vl/tensor-core/testing';
import { AdamW, clipGradNorm, fiberCoarseParamGroups } from './optim.js';
import {
  coarseSchedule,
  fineMilestones,
  fineSchedule,
  polynomialDecayWithWarmup,
  pyRound,
  warmupMultiStep,
  weightDecayScheduleFactor,
} from './schedules.js';
import { ModelEma } from './ema.js';
import { Linear } from '@fiber-vl/tensor-core';

beforeAll(() => initBackend({ backend: 'cpu' }));

function run(variant: 'torch' | 'transformers') {
  const p = new Parameter(tf.tensor1d([0.5, -1.0, 2.0]));
  const opt = new AdamW([{ params: [['w', p]], lr: 0.1, weightDecay: 0.01 }], {
    betas: [0.9, 0.98],
    eps: 1e-8,
    variant,
  });
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
    expect(
      () =>
        new AdamW([
          { params: [params[0]], lr: 1, weightDecay: 0 },
          { params: [params[0]], lr: 1, weightDecay: 0 },
        ]),
    ).toThrow(/in more than one group/);
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

/** transformers' AdamW in float64 for one element (per-parameter step count). */
function replay(p: number, grads: (number | undefined)[], lr: number, wd: number, b1 = 0.9, b2 = 0.98, eps = 1e-8) {
  let [m, v, t] = [0, 0, 0];
  for (const g of grads) {
    if (g === undefined) continue;
    t++;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    p -= ((lr * Math.sqrt(1 - b2 ** t)) / (1 - b1 ** t)) * (m / (Math.sqrt(v) + eps));
    p -= lr * wd * p;
  }
  return p;
}

describe('AdamW state', () => {
  it('keeps a step count per parameter and leaves a parameter without a gradient untouched (no decay either)', async () => {
    const a = new Parameter(tf.tensor1d([0.5]));
    const b = new Parameter(tf.tensor1d([-2]));
    const opt = new AdamW(
      [
        {
          params: [
            ['a', a],
            ['b', b],
          ],
          lr: 0.1,
          weightDecay: 0.1,
        },
      ],
      { betas: [0.9, 0.98], variant: 'transformers' },
    );
    const g = (v: number) => tf.tensor1d([v]);
    const steps: [number | undefined, number | undefined][] = [
      [1, undefined],
      [0.5, 2],
      [undefined, -1],
    ];
    for (const [ga, gb] of steps) {
      const m = new Map<string, tf.Tensor>();
      if (ga !== undefined) m.set('a', g(ga));
      if (gb !== undefined) m.set('b', g(gb));
      opt.step(m);
      tf.dispose([...m.values()]);
      if (gb === undefined && ga !== undefined) expect((await b.value.data())[0]).toBe(-2);
    }
    expect((await a.value.data())[0]).toBeCloseTo(
      replay(
        0.5,
        steps.map((s) => s[0]),
        0.1,
        0.1,
      ),
      6,
    );
    expect((await b.value.data())[0]).toBeCloseTo(
      replay(
        -2,
        steps.map((s) => s[1]),
        0.1,
        0.1,
      ),
      6,
    );
    expect(opt.getState().steps).toEqual({ a: 2, b: 2 });
    opt.dispose();
    tf.dispose([a.value, b.value]);
  });

  it('getState / setState continues bit for bit', async () => {
    const run = async (split: boolean) => {
      const p = new Parameter(tf.tensor1d([0.3, -0.7, 1.1]));
      let opt = new AdamW([{ params: [['w', p]], lr: 0.05, weightDecay: 0.01 }], { variant: 'torch' });
      for (let i = 0; i < 4; i++) {
        if (split && i === 2) {
          const s = opt.getState();
          const copy = {
            tensors: new Map([...s.tensors].map(([k, t]) => [k, tf.clone(t)])),
            steps: { ...s.steps },
            calls: s.calls,
          };
          opt.dispose();
          opt = new AdamW([{ params: [['w', p]], lr: 0.05, weightDecay: 0.01 }], { variant: 'torch' });
          opt.setState(copy);
          tf.dispose([...copy.tensors.values()]);
        }
        const { value, grads } = tf.variableGrads(
          () => tf.sum(tf.mul(tf.square(p.value), tf.tensor1d([1, 2, 3]))) as tf.Scalar,
          [p.value],
        );
        opt.step(new Map([['w', grads[p.value.name]]]));
        tf.dispose([value, grads]);
      }
      const out = Array.from(await p.value.data());
      opt.dispose();
      p.value.dispose();
      return out;
    };
    expect(await run(true)).toEqual(await run(false));
  });

  it('setState names a parameter the optimizer does not have', () => {
    const p = new Parameter(tf.tensor1d([1]));
    const opt = new AdamW([{ params: [['w', p]], lr: 0.1, weightDecay: 0 }]);
    expect(() => opt.setState({ tensors: new Map(), steps: { other: 1 }, calls: 1 })).toThrow(
      /"other", which is in no group/,
    );
    p.value.dispose();
  });
});

describe('clipGradNorm (torch.nn.utils.clip_grad_norm_)', () => {
  it('scales by max / (norm + 1e-6) when the norm is larger, and returns the norm before clipping', async () => {
    const grads = new Map<string, tf.Tensor>([
      ['a', tf.tensor1d([3, 0])],
      ['b', tf.tensor2d([[0, 4]])],
    ]);
    const norm = await clipGradNorm(grads, 1);
    expect(norm).toBeCloseTo(5, 6);
    const c = 1 / (5 + 1e-6);
    expect(Array.from(await grads.get('a')!.data())[0]).toBeCloseTo(3 * c, 7);
    expect(Array.from(await grads.get('b')!.data())[1]).toBeCloseTo(4 * c, 7);
    expect(await clipGradNorm(grads, 10)).toBeCloseTo(1, 5); // below the limit: unchanged
    expect(Array.from(await grads.get('a')!.data())[0]).toBeCloseTo(3 * c, 7);
    grads.set('n', tf.tensor1d([NaN]));
    expect(await clipGradNorm(grads, 1)).toBeNaN();
    tf.dispose([...grads.values()]);
  });
});

describe('official schedules', () => {
  it('coarse: transformers polynomial decay with warm-up (warmup_steps 0.1 = 10% of max_steps), same float expression', () => {
    const s = coarseSchedule({ maxSteps: 100_000, warmupSteps: 0.1, lr: 1e-5 });
    expect(s.lr(0)).toBe(0);
    expect(s.lr(5_000)).toBe(0.5);
    expect(s.lr(10_000)).toBe(1);
    const step = 37_123;
    const pct = 1 - (step - 10_000) / 90_000;
    expect(s.lr(step)).toBe((1e-5 * pct) / 1e-5); // ((lr_init - lr_end) * pct ** 1 + lr_end) / lr_init
    expect(s.lr(100_001)).toBe(0);
    expect(s.weightDecay(50_000)).toBe(1);
    expect(coarseSchedule({ maxSteps: 1000, warmupSteps: 50, lr: 1 }).lr(25)).toBe(0.5); // an integer is a step count
    // a warm-up over every step ends at lr_end (transformers divides by zero there; this gave NaN)
    const whole = coarseSchedule({ maxSteps: 10, warmupSteps: 10, lr: 1e-4 });
    expect([whole.lr(5), whole.lr(10), whole.lr(11)]).toEqual([0.5, 0, 0]);
    expect(polynomialDecayWithWarmup(10, { warmupSteps: 10, totalSteps: 10, lrEndRatio: 0.1 })).toBe(0.1);
  });

  it('fine: WarmupMultiStepLR with SOLVER.STEPS fractions and the weight-decay schedule', () => {
    expect(fineMilestones([0.67, 0.89], 800_000)).toEqual([536_000, 712_000]);
    expect([pyRound(2.5), pyRound(3.5), pyRound(-2.5), pyRound(2.4)]).toEqual([2, 4, -2, 2]);
    const s = fineSchedule({
      maxIter: 800_000,
      steps: [0.67, 0.89],
      warmupSteps: 2000,
      warmupFactor: 0.001,
      weightDecaySchedule: true,
    });
    expect(s.lr(0)).toBe(0.001);
    expect(s.lr(2000)).toBe(1);
    expect(s.lr(535_999)).toBe(1);
    expect(s.lr(536_000)).toBeCloseTo(0.1, 15);
    // weight decay drops once last_epoch >= 0.667 x next milestone (357512, 474904), checked after each step
    const t1 = Math.ceil(536_000 * 0.667);
    expect(s.weightDecay(t1 - 1)).toBe(1);
    expect(s.weightDecay(t1)).toBeCloseTo(0.1, 15);
    expect(s.weightDecay(Math.ceil(712_000 * 0.667))).toBeCloseTo(0.01, 15);
    expect(weightDecayScheduleFactor(10, { milestones: [3, 3], ratio: 1 })).toBeCloseTo(0.01, 15);
    expect(weightDecayScheduleFactor(3, { milestones: [3, 3], ratio: 1 })).toBeCloseTo(0.1, 15); // one drop per iteration
    expect(
      warmupMultiStep(10, { milestones: [], warmupSteps: 100, warmupFactor: 1 / 3, warmupMethod: 'constant' }),
    ).toBeCloseTo(1 / 3, 15);
    expect(() => warmupMultiStep(0, { milestones: [5, 3] })).toThrow(/increasing/);
  });
});

describe('ModelEma', () => {
  it('ema = ema * decay + (1 - decay) * model after each update; loads back', async () => {
    const m = new Linear(2, 1);
    tf.tidy(() => {
      m.weight.value.assign(tf.tensor2d([[1, 2]]));
      m.bias!.value.assign(tf.tensor1d([0]));
    });
    const ema = new ModelEma(m, 0.9);
    m.weight.value.assign(tf.tensor2d([[3, 4]]));
    ema.update(m);
    expect(Array.from(await ema.stateDict().get('weight')!.data())).toEqual(
      [Math.fround(0.9 + 0.3), Math.fround(1.8 + 0.4)].map((v) => Math.fround(v)),
    );
    const copy = new Map([...ema.stateDict()].map(([k, t]) => [k, tf.clone(t)]));
    const other = new ModelEma(m, 0.9);
    other.loadStateDict(copy);
    expect(Array.from(await other.stateDict().get('weight')!.data())).toEqual(
      Array.from(await ema.stateDict().get('weight')!.data()),
    );
    ema.dispose();
    other.dispose();
    m.dispose();
    tf.dispose([...copy.values()]);
  });
});

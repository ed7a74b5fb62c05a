// Coarse FIBER pre-training against the official code: two steps of ITC (queue) + ITM (hard
// negatives) + MLM with transformers' AdamW and the official groups, from the repository's copy of
// ../shared/fixtures/fiber/train-step/tiny_coarse_step (fixtures/train-step/README.md says what
// was kept). Losses, logits, features, similarities, sampling weights, gradients, parameters after
// each step and the queues, to the fixture README's tolerances, on every backend.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Parameter, SafetensorsFile, loadSafetensors, tf } from '@fiber-vl/tensor-core';
import { heavyTestBackends, useBackend } from '@fiber-vl/tensor-core/testing';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { fiberConfigFromFixture } from '@fiber-vl/heads-coarse/testing';
import { AdamW, fiberCoarseParamGroups } from './optim.js';
import { filledHardNegativeWeights } from './objectives.js';
import { compareTrainStepTensor, runCoarseTrainStepFixture, type TrainStepRun } from './testing.js';

const fixtures = join(__dirname, '../../../fixtures/train-step');
const dir = join(fixtures, 'tiny_coarse_step');
const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
const names = await heavyTestBackends('coarse pre-training step parity');

let expected: SafetensorsFile;
const refGrads = new Map<string, Float32Array>();
beforeAll(async () => {
  expected = await SafetensorsFile.open(join(dir, 'outputs.safetensors'));
  for (const k of expected.keys())
    if (k.startsWith('grad.')) refGrads.set(k.slice(5), (await expected.readRaw(k)).data as Float32Array);
});
afterAll(() => expected.close());

async function compareAll(run: TrainStepRun, expected: SafetensorsFile, refGrads: Map<string, Float32Array>) {
  const failed: string[] = [];
  let explained = 0;
  let paramElements = 0;
  for (const name of expected.keys()) {
    const got = run.tensors.get(name);
    if (!got) {
      failed.push(`${name}: not computed`);
      continue;
    }
    const raw = await expected.readRaw(name);
    if (got.shape.join() !== raw.shape.join()) {
      failed.push(`${name}: shape [${got.shape}] vs [${raw.shape}]`);
      continue;
    }
    const r = compareTrainStepTensor(
      name,
      await got.data(),
      Array.from(raw.data as ArrayLike<number | bigint>, Number),
      run,
      (k) => refGrads.get(k),
    );
    explained += r.noiseExplained;
    if (name.startsWith('param_after_step')) paramElements += got.size;
    if (!r.ok) failed.push(`${name}: max abs error ${r.maxAbsError}`);
  }
  return { failed, explained, paramElements };
}

describe.each(names)('coarse pre-training step vs the official code (%s)', (backend) => {
  it(
    'two steps: losses, logits, sims, weights, every gradient, parameters and queues within tolerance',
    async () => {
      await useBackend(backend);
      const model = await loadSafetensors(join(dir, 'model.safetensors'));
      const inputs = await loadSafetensors(join(dir, 'inputs.safetensors'));
      const before = tf.memory().numTensors;
      const run = await runCoarseTrainStepFixture(config, model, inputs, new Set(expected.keys()));
      try {
        expect(run.steps).toBe(2);
        const { failed, explained, paramElements } = await compareAll(run, expected, refGrads);
        expect(failed).toEqual([]);
        // AdamW amplifies the float32 gradient noise of few elements (key biases, whose exact
        // gradient is 0, and cancelled weights): a larger share would mean a real difference
        expect(explained / paramElements).toBeLessThan(0.005);
        // the official step leaves the gradient-less parameters untouched, even by weight decay
        for (const key of config.train_step.params_without_grad as string[]) {
          const name = `param_after_step2.${key}`;
          if (!expected.tensors.has(name)) continue;
          const init = model.get(key)!;
          expect(Array.from(await run.tensors.get(name)!.data())).toEqual(Array.from(await init.data()));
        }
      } finally {
        tf.dispose([...run.tensors.values(), ...model.values(), ...inputs.values()]);
      }
      // nothing left behind but what building the model itself leaks today (one tensor:
      // RobertaEmbeddings' position_ids range in @fiber-vl/roberta)
      const probe = tf.memory().numTensors;
      const fx = fiberConfigFromFixture(config);
      new FiberCoarseModel(fx.config, fx.heads).dispose();
      const constructionLeak = tf.memory().numTensors - probe;
      expect(constructionLeak).toBeLessThanOrEqual(1);
      expect(probe).toBe(before - model.size - inputs.size + constructionLeak);
    },
    backend === 'cpu' ? 900_000 : 400_000,
  );
});

// Another folder in the same format (scripts/fixtures/make_train_step_fixture.py: this project's
// PyTorch transcription of the official step, which reproduces tiny_coarse_step): other sizes, seed,
// batch 3, queue 4 filled with 3 (the first step wraps, queue_total passes Q), three steps, lr
// multipliers 3 and 7. The harness takes everything from the folder.
describe.each(names)('another train-step folder, no code changes (%s)', (backend) => {
  it('three steps of a differently sized model within tolerance', async () => {
    await useBackend(backend);
    const d = join(fixtures, 'variant_seed5');
    const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
    expect(cfg.train_step).toMatchObject({
      batch: 3,
      queue_size: 4,
      queue_filled_before: 3,
      steps: 3,
      lr_mult_head: 3,
      lr_mult_cross_modal: 7,
    });
    const exp = await SafetensorsFile.open(join(d, 'outputs.safetensors'));
    const grads = new Map<string, Float32Array>();
    for (const k of exp.keys())
      if (k.startsWith('grad.')) grads.set(k.slice(5), (await exp.readRaw(k)).data as Float32Array);
    const model = await loadSafetensors(join(d, 'model.safetensors'));
    const inputs = await loadSafetensors(join(d, 'inputs.safetensors'));
    const run = await runCoarseTrainStepFixture(cfg, model, inputs, new Set(exp.keys()));
    try {
      expect(run.steps).toBe(3);
      const { failed, explained, paramElements } = await compareAll(run, exp, grads);
      expect(failed).toEqual([]);
      // this subset holds the tensors up to 2 KiB: mostly biases, a large share of them key biases
      expect(explained / paramElements).toBeLessThan(0.03);
      expect(Array.from(await run.tensors.get('queue_after_step3.queue_total')!.data())).toEqual([12]);
    } finally {
      tf.dispose([...run.tensors.values(), ...model.values(), ...inputs.values()]);
      await exp.close();
    }
  }, 400_000);
});

describe('AdamW with the official groups on the official step-1 gradients', () => {
  it('gives the official parameters after step 1 (no gradient noise involved: strict tolerance)', async () => {
    await useBackend('cpu');
    const initial = await loadSafetensors(join(dir, 'model.safetensors'));
    const named: [string, Parameter][] = [];
    for (const k of expected.keys()) {
      if (!k.startsWith('param_after_step1.')) continue;
      const key = k.slice('param_after_step1.'.length);
      named.push([key, new Parameter(tf.clone(initial.get(key)!))]);
    }
    const ts = config.train_step;
    const opt = new AdamW(
      fiberCoarseParamGroups(named, {
        lr: ts.lr,
        weightDecay: ts.weight_decay,
        lrMultHead: ts.lr_mult_head,
        lrMultCrossModal: ts.lr_mult_cross_modal,
      }),
      {
        betas: ts.betas,
        eps: ts.eps,
        variant: 'transformers',
      },
    );
    const grads = new Map<string, tf.Tensor>();
    for (const [key, g] of refGrads) grads.set(key, tf.tensor(g, named.find(([n]) => n === key)![1].shape));
    opt.step(grads);
    let worst = 0;
    for (const [key, p] of named) {
      const ref = (await expected.readRaw(`param_after_step1.${key}`)).data as Float32Array;
      const got = await p.value.data();
      for (let i = 0; i < ref.length; i++) {
        const d = Math.abs(got[i] - ref[i]);
        expect(d, `${key}[${i}]`).toBeLessThanOrEqual(Math.max(1e-6, 1e-6 * Math.abs(ref[i])));
        worst = Math.max(worst, d);
      }
    }
    expect(worst).toBeLessThan(1e-6);
    opt.dispose();
    tf.dispose([...grads.values(), ...initial.values(), ...named.map(([, p]) => p.value)]);
  });

  it('fails when the optimizer differs (lr multiplier of the heads 6 instead of 5)', async () => {
    await useBackend('cpu');
    const initial = await loadSafetensors(join(dir, 'model.safetensors'));
    const key = 'itm_score.fc.weight';
    const p = new Parameter(tf.clone(initial.get(key)!));
    const opt = new AdamW(fiberCoarseParamGroups([[key, p]], { lr: config.train_step.lr, lrMultHead: 6 }), {
      betas: [0.9, 0.98],
      eps: 1e-8,
      variant: 'transformers',
    });
    const g = tf.tensor(refGrads.get(key)!, p.shape);
    opt.step(new Map([[key, g]]));
    const ref = (await expected.readRaw(`param_after_step1.${key}`)).data as Float32Array;
    const run = {
      groups: new Map([[key, { lr: config.train_step.lr * 6, weightDecay: 0.01 }]]),
      initial: new Map([[key, (await initial.get(key)!.data()) as Float32Array]]),
      grads: [new Map([[key, refGrads.get(key)!]])],
      betas: [0.9, 0.98],
      eps: 1e-8,
      steps: 1,
      tensors: new Map(),
    } satisfies TrainStepRun;
    const r = compareTrainStepTensor(`param_after_step1.${key}`, await p.value.data(), ref, run, (k) =>
      refGrads.get(k),
    );
    expect(r.ok).toBe(false);
    opt.dispose();
    tf.dispose([g, p.value, ...initial.values()]);
  });
});

describe('hard-negative sampling', () => {
  it('weights: softmax over batch + filled queue with the diagonal zeroed, as the official step 2', async () => {
    await useBackend('cpu');
    for (const step of [1, 2]) {
      for (const dirn of ['i2t', 't2i']) {
        const sim = tf.tensor((await expected.readRaw(`step${step}.itc.sim_${dirn}`)).data as Float32Array, [3, 9]);
        const ref = await expected.readRaw(`step${step}.itc.weights_${dirn}`);
        const total = ref.shape[1] - 3; // queue_total before the step
        const w = filledHardNegativeWeights(sim, total);
        expect(w.shape).toEqual(ref.shape);
        const got = await w.data();
        (ref.data as Float32Array).forEach((v, i) => expect(Math.abs(got[i] - v)).toBeLessThan(1e-6));
        tf.dispose([sim, w]);
      }
    }
  });
});

// The loop: guards (non-finite loss or gradient -> skipped and logged; N in a row -> a clear error
// with the last good checkpoint intact), gradient accumulation, a flat tensor count across real
// FIBER steps, and in-process checkpoint / resume.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator, Linear, tf } from '@fiber-vl/tensor-core';
import { expectNoTensorGrowth, heavyTestBackends, testBackends, useBackend } from '@fiber-vl/tensor-core/testing';
import { AdamW, fiberFineParamGroups } from './optim.js';
import { ModelEma } from './ema.js';
import { fineSchedule } from './schedules.js';
import { MemoryCheckpointStore, disposeLoaded } from './checkpoint.js';
import { NonFiniteLossError, Trainer, fit, type StepResult } from './loop.js';
import { FileCheckpointStore } from './node.js';
import { StepContext, type Objective } from './step.js';
import { tinyCoarseSetup } from './testing.js';

const { names } = await testBackends();
const heavy = await heavyTestBackends('tiny FIBER training step memory check');

/** Batches are { x [n, 2], y [n, 1], poison?: 'loss' | 'grad' }. */
interface ToyBatch {
  x: tf.Tensor;
  y: tf.Tensor;
  poison?: 'loss' | 'grad';
}
const toyObjective: Objective<Linear, ToyBatch> = async (model, batch, ctx) => {
  await ctx.loss('mse', () => {
    const err = tf.mean(tf.square(tf.sub(model.forward(batch.x), batch.y)));
    if (batch.poison === 'loss') return tf.add(err, Infinity);
    // finite loss (0), infinite gradient: d sqrt(|w|) / dw at w = 0
    if (batch.poison === 'grad')
      return tf.add(err, tf.mul(tf.sum(tf.sqrt(tf.abs(tf.sub(model.weight.value, model.weight.value)))), 1));
    return err;
  });
};

function toy(seed = 0, maxNonFinite = 3) {
  const model = new Linear(2, 1, { rng: new Generator(seed) });
  const optimizer = new AdamW([{ params: model.namedParameters(), lr: 0.05, weightDecay: 0.01 }]);
  const trainer = new Trainer({ model, objective: toyObjective, optimizer, maxNonFinite });
  return { model, optimizer, trainer };
}

function* toyData(poisoned: Record<number, 'loss' | 'grad'> = {}, n = 1000): IterableIterator<ToyBatch> {
  for (let i = 1; i <= n; i++) {
    const g = new Generator(100 + i);
    const x = g.normal([4, 2]);
    const y = tf.tidy(() => tf.matMul(x, tf.tensor2d([[2], [-1]])));
    yield { x, y, poison: poisoned[i] };
  }
}

const weightsOf = async (m: Linear) => [...(await m.weight.value.data()), ...(await m.bias!.value.data())];

describe('a checkpoint whose trainer.json was tampered with', () => {
  beforeAll(() => useBackend('cpu'));
  it('is passed over for the one before it: not a regular file, another step than its folder, counts out of range', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tampered-'));
    const { model, trainer, optimizer } = toy(0);
    await fit(trainer, { data: toyData(), steps: 4, store: new FileCheckpointStore(dir), checkpointEvery: 2 });
    const metaPath = join(dir, 'step-00000004', 'trainer.json');
    const original = readFileSync(metaPath, 'utf8');
    const edit = (f: (m: any) => void) => {
      const m = JSON.parse(original);
      f(m);
      return JSON.stringify(m);
    };
    const cases: [string, () => void][] = [
      ['a FIFO (the resume waited for a writer for ever)', () => execFileSync('mkfifo', [metaPath])],
      [
        'step 2 in folder step-4',
        () =>
          writeFileSync(
            metaPath,
            edit((m) => (m.step = 2)),
          ),
      ],
      [
        '10^9 non-finite steps in a row',
        () =>
          writeFileSync(
            metaPath,
            edit((m) => (m.consecutiveNonFinite = 1e9)),
          ),
      ],
      [
        'a generator word of Infinity',
        () => writeFileSync(metaPath, edit((m) => (m.rngs = { g: [1, 2, 3, 'X'] })).replace('"X"', '1e999')),
      ],
      [
        'an all-zero generator state (its normal draws never return)',
        () =>
          writeFileSync(
            metaPath,
            edit((m) => (m.rngs = { g: [0, 0, 0, 0] })),
          ),
      ],
      [
        'negative optimizer calls',
        () =>
          writeFileSync(
            metaPath,
            edit((m) => (m.optimizer.calls = -3)),
          ),
      ],
      [
        'a negative per-parameter step',
        () =>
          writeFileSync(
            metaPath,
            edit((m) => (m.optimizer.steps[Object.keys(m.optimizer.steps)[0]] = -6)),
          ),
      ],
    ];
    try {
      for (const [what, tamper] of cases) {
        rmSync(metaPath, { force: true });
        tamper();
        const skipped: string[] = [];
        const store = new FileCheckpointStore(dir, { onEvent: (e) => e.phase === 'skipped' && skipped.push(e.path) });
        const cp = (await store.latest())!;
        expect(cp.meta.step, what).toBe(2);
        expect(skipped, what).toEqual([join(dir, 'step-00000004')]);
        disposeLoaded(cp);
      }
      rmSync(metaPath);
      writeFileSync(metaPath, original);
      const cp = (await new FileCheckpointStore(dir).latest())!;
      expect(cp.meta.step).toBe(4);
      disposeLoaded(cp);
    } finally {
      optimizer.dispose();
      model.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a data position the source refuses names the checkpoint it came from', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'position-'));
    const { model, trainer, optimizer } = toy(0);
    try {
      await fit(trainer, { data: toyData(), steps: 2, store: new FileCheckpointStore(dir) });
      const metaPath = join(dir, 'step-00000002', 'trainer.json');
      const meta = JSON.parse(readFileSync(metaPath, 'utf8'));
      writeFileSync(metaPath, JSON.stringify({ ...meta, data: { epoch: 0, cursor: -5 } }));
      const again = toy(0);
      const err = await fit(again.trainer, {
        data: toyData(),
        steps: 4,
        store: new FileCheckpointStore(dir),
        resume: true,
      }).catch((e: Error) => e);
      expect((err as Error).message).toBe(
        `a plain batch iterable resumes by a batch count; got cursor -5 (resuming from ${join(dir, 'step-00000002')}, data position {"epoch":0,"cursor":-5})`,
      );
      again.optimizer.dispose();
      again.model.dispose();
    } finally {
      optimizer.dispose();
      model.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.each(names)('training loop (%s)', (backend) => {
  beforeAll(() => useBackend(backend));

  it('skips a step with a non-finite loss or gradient, reports why, and changes nothing', async () => {
    const { model, trainer, optimizer } = toy();
    const seen: StepResult[] = [];
    const w0: number[][] = [];
    const result = await fit(trainer, {
      data: toyData({ 2: 'loss', 4: 'grad' }),
      steps: 5,
      logger: { onStep: (r) => void seen.push(r) },
      hooks: { onGradients: async () => void w0.push(await weightsOf(model)) },
    });
    expect(seen.map((r) => r.skipped)).toEqual([false, true, false, true, false]);
    expect([result.step, result.applied, result.skipped, result.firstSkipped]).toEqual([5, 3, 2, seen[1]]);
    expect(seen[1].reason).toMatch(/non-finite loss mse=Infinity/);
    expect(seen[3].reason).toMatch(/non-finite gradient norm/);
    expect(w0[2]).toEqual(w0[1]); // the skipped step 2 left the weights as step 1 made them
    expect(optimizer.getState().steps).toEqual({ weight: 3, bias: 3 });
    optimizer.dispose();
    model.dispose();
  });

  it('stops after N non-finite steps in a row with a clear error; the last good checkpoint is intact', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'guard-'));
    const store = new FileCheckpointStore(dir, { keepLast: 2 });
    const { model, trainer, optimizer } = toy(0, 3);
    const err = await fit(trainer, {
      data: toyData({ 4: 'loss', 5: 'loss', 6: 'grad' }),
      steps: 20,
      store,
      checkpointEvery: 3,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NonFiniteLossError);
    expect((err as Error).message).toMatch(
      /3 non-finite steps in a row \(step 4: non-finite loss.*step 6: non-finite gradient norm/,
    );
    expect((err as Error).message).toContain(join(dir, 'step-00000003'));
    expect(readdirSync(dir)).toEqual(['step-00000003']);
    const afterStep3 = await weightsOf(model); // steps 4-6 were skipped
    const cp = (await store.latest())!;
    expect(cp.meta.step).toBe(3);
    expect([
      ...(await cp.files['model.safetensors'].get('weight')!.data()),
      ...(await cp.files['model.safetensors'].get('bias')!.data()),
    ]).toEqual(afterStep3);
    disposeLoaded(cp);
    optimizer.dispose();
    model.dispose();
  });

  it('gradient accumulation: two micro-batches of 4 give the update of one batch of 8 (mean loss)', async () => {
    const a = toy(1);
    const b = toy(1);
    const [b1, b2] = [...toyData({}, 2)];
    await a.trainer.trainStep([b1, b2]);
    const joined = { x: tf.concat([b1.x, b2.x]), y: tf.concat([b1.y, b2.y]) };
    await b.trainer.trainStep([joined]);
    const [wa, wb] = [await weightsOf(a.model), await weightsOf(b.model)];
    wa.forEach((v, i) => expect(v).toBeCloseTo(wb[i], 6));
    tf.dispose([b1.x, b1.y, b2.x, b2.y, joined.x, joined.y]);
    for (const t of [a, b]) {
      t.optimizer.dispose();
      t.model.dispose();
    }
  });

  it('fit reads the micro-batches of a step one at a time, disposing each after its backward; the update is the same', async () => {
    const given: ToyBatch[] = [];
    const live = () => given.filter((b) => !b.x.isDisposed).length;
    let most = 0;
    const watched = toy(1);
    const objective: Objective<Linear, ToyBatch> = async (model, batch, ctx) => {
      most = Math.max(most, live());
      await toyObjective(model, batch, ctx);
    };
    const trainer = new Trainer({ model: watched.model, objective, optimizer: watched.optimizer });
    const data = (function* () {
      for (const b of toyData({}, 6)) yield given[given.push(b) - 1]!;
    })();
    const r = await fit(trainer, { data, steps: 2, accumulate: 3 });
    expect([r.applied, given.length, most, live()]).toEqual([2, 6, 1, 0]);
    const atOnce = toy(1); // the same six batches as two arrays of three
    const again = [...toyData({}, 6)];
    await atOnce.trainer.trainStep(again.slice(0, 3));
    await atOnce.trainer.trainStep(again.slice(3));
    expect(await weightsOf(watched.model)).toEqual(await weightsOf(atOnce.model));
    tf.dispose(again.flatMap((b) => [b.x, b.y]));
    for (const t of [watched, atOnce]) {
      t.optimizer.dispose();
      t.model.dispose();
    }
  });

  it('fit: data that runs out inside a step names the steps done; the partial step is not taken and leaves nothing behind', async () => {
    const whole = toy(1); // the two whole steps alone
    const start = tf.memory().numTensors;
    await fit(whole.trainer, { data: toyData({}, 4), steps: 2, accumulate: 2 });
    const grown = tf.memory().numTensors - start; // the optimizer's moments
    const t = toy(1);
    const before = tf.memory().numTensors;
    // the fifth batch is step 3's first micro-batch: it runs forward and backward before the
    // sixth turns out to be missing
    await expect(fit(t.trainer, { data: toyData({}, 5), steps: 3, accumulate: 2 })).rejects.toThrow(
      'fit: the data ran out after 2 steps (3 asked for)',
    );
    expect(t.trainer.step).toBe(2);
    expect(await weightsOf(t.model)).toEqual(await weightsOf(whole.model));
    expect(tf.memory().numTensors - before).toBe(grown);
    for (const m of [whole, t]) {
      m.optimizer.dispose();
      m.model.dispose();
    }
  });

  it('a step whose second micro-batch cannot be read is not taken: counter, generators and weights as before', async () => {
    const t = toy(1);
    const noise = new Generator(7);
    const objective: Objective<Linear, ToyBatch> = async (model, batch, ctx) => {
      noise.normalArray(3); // a draw in step order, as dropout or the ITM negatives make
      await toyObjective(model, batch, ctx);
    };
    const trainer = new Trainer({ model: t.model, objective, optimizer: t.optimizer, rngs: { noise } });
    const [first] = [...toyData({}, 1)];
    const before = { state: noise.getState(), weights: await weightsOf(t.model), tensors: tf.memory().numTensors };
    const failing = {
      count: 2,
      next: async (i: number) => {
        if (i === 1) throw new Error('the loader failed');
        return first!;
      },
      release: (b: ToyBatch) => tf.dispose([b.x, b.y]),
    };
    await expect(trainer.trainStep(failing)).rejects.toThrow('the loader failed');
    expect(first!.x.isDisposed).toBe(true);
    expect([trainer.step, noise.getState(), await weightsOf(t.model)]).toEqual([0, before.state, before.weights]);
    expect(tf.memory().numTensors).toBe(before.tensors - 2);
    t.optimizer.dispose();
    t.model.dispose();
  });

  it('a loss term that fails leaves no tensor behind: non-scalar with kept tensors, no parameter reached, a throw', async () => {
    const { model, optimizer } = toy(3);
    const ctx = new StepContext({ params: model.namedParameters() });
    const x = tf.ones([4, 2]);
    const before = tf.memory().numTensors;
    await expect(
      ctx.loss('wide', () => {
        const y = model.forward(x);
        return { loss: y, keep: { twice: tf.mul(y, 2) } };
      }),
    ).rejects.toThrow('loss term "wide" must be a scalar, got shape [4,1]');
    await expect(ctx.loss('detached', () => tf.scalar(0))).rejects.toThrow(
      'loss term "detached": no trainable parameter reaches it',
    );
    await expect(
      ctx.loss('boom', () => {
        tf.sum(model.forward(x));
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(tf.memory().numTensors).toBe(before);
    expect(ctx.grads.size).toBe(0);
    ctx.dispose();
    x.dispose();
    optimizer.dispose();
    model.dispose();
  });

  it("a step's loss is the terms times their weights (what its gradient is of); losses holds them unweighted", async () => {
    const model = new Linear(2, 1, { rng: new Generator(4) });
    const optimizer = new AdamW([{ params: model.namedParameters(), lr: 0, weightDecay: 0 }]);
    const x = tf.ones([1, 2]);
    const objective: Objective<Linear, null> = async (m, _b, ctx) => {
      await ctx.loss('a', () => tf.sum(tf.square(m.forward(x))), { weight: 10 });
      await ctx.loss('b', () => tf.sum(tf.abs(m.forward(x))));
    };
    const trainer = new Trainer({ model, objective, optimizer });
    const r = await trainer.trainStep([null, null]); // two micro-batches: averaged
    const y = (await model.forward(x).data())[0];
    expect(r.losses.a).toBeCloseTo(y * y, 5);
    expect(r.losses.b).toBeCloseTo(Math.abs(y), 5);
    expect(r.loss).toBeCloseTo(10 * y * y + Math.abs(y), 4);
    x.dispose();
    optimizer.dispose();
    model.dispose();
  });

  it('an afterStep that throws after the update leaves the step taken (counter and update kept)', async () => {
    const t = toy(5);
    const objective: Objective<Linear, ToyBatch> = Object.assign(
      async (m: Linear, b: ToyBatch, ctx: StepContext) => toyObjective(m, b, ctx),
      {
        afterStep: () => {
          throw new Error('afterStep failed');
        },
      },
    );
    const trainer = new Trainer({ model: t.model, objective, optimizer: t.optimizer });
    const [b] = [...toyData({}, 1)];
    const w0 = await weightsOf(t.model);
    await expect(trainer.trainStep([b!])).rejects.toThrow('afterStep failed');
    expect(trainer.step).toBe(1);
    expect(t.optimizer.getState().steps).toEqual({ weight: 1, bias: 1 });
    expect(await weightsOf(t.model)).not.toEqual(w0);
    tf.dispose([b!.x, b!.y]);
    t.optimizer.dispose();
    t.model.dispose();
  });

  it('a restore whose optimizer moments do not fit changes nothing (the model is not loaded first)', async () => {
    const store = new MemoryCheckpointStore(1);
    const first = toy(6);
    await fit(first.trainer, { data: toyData(), steps: 2, store, checkpointEvery: 2 });
    const cp = (await store.latest())!;
    const bad = new Map(cp.files['optimizer.safetensors']);
    bad.set('exp_avg.weight', tf.zeros([3, 3]));
    const second = toy(7);
    const w0 = await weightsOf(second.model);
    await expect(
      second.trainer.restore({ ...cp, files: { ...cp.files, 'optimizer.safetensors': bad } }),
    ).rejects.toThrow('AdamW.setState: exp_avg.weight has shape [3,3], the parameter [1,2]');
    expect([second.trainer.step, await weightsOf(second.model)]).toEqual([0, w0]);
    expect(second.optimizer.getState().steps).toEqual({});
    bad.get('exp_avg.weight')!.dispose();
    disposeLoaded(cp);
    for (const t of [first, second]) {
      t.optimizer.dispose();
      t.model.dispose();
    }
  });

  it('resumes in process from a MemoryCheckpointStore bit for bit', async () => {
    const straight = toy(2);
    await fit(straight.trainer, { data: toyData(), steps: 6 });
    const store = new MemoryCheckpointStore(2);
    const first = toy(2);
    await fit(first.trainer, { data: toyData(), steps: 4, store, checkpointEvery: 2 });
    expect(store.ids()).toEqual(['step-2', 'step-4']);
    const second = toy(99); // other initial weights: everything comes from the checkpoint
    const r = await fit(second.trainer, { data: toyData(), steps: 6, store, resume: true });
    expect(r.resumedFrom).toBe('step-4');
    expect(await weightsOf(second.model)).toEqual(await weightsOf(straight.model));
    for (const t of [straight, first, second]) {
      t.optimizer.dispose();
      t.model.dispose();
    }
  });

  it('fine-grained settings (per-tensor groups, torch AdamW, multi-step + weight-decay schedule, clipping, EMA) resume bit for bit', async () => {
    const make = (seed: number) => {
      const model = new Linear(2, 1, { rng: new Generator(seed) });
      const optimizer = new AdamW(fiberFineParamGroups(model.namedParameters(), { baseLr: 0.05 }), {
        variant: 'torch',
      });
      const ema = new ModelEma(model, 0.9);
      const schedule = fineSchedule({
        maxIter: 8,
        steps: [0.5, 0.75],
        warmupSteps: 2,
        warmupFactor: 0.1,
        weightDecaySchedule: true,
      });
      const norms: tf.Tensor[] = [];
      // records the norm of the gradients AdamW receives (after clipping); read after the run, as
      // WebGPU in Node cannot read synchronously
      const step = optimizer.step.bind(optimizer);
      optimizer.step = (grads, scales) => {
        norms.push(tf.tidy(() => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g)))))));
        step(grads, scales);
      };
      const trainer = new Trainer({ model, objective: toyObjective, optimizer, schedule, ema, clipGradNorm: 0.5 });
      return { model, optimizer, ema, trainer, norms };
    };
    const a = make(3);
    const results: StepResult[] = [];
    await fit(a.trainer, { data: toyData(), steps: 8, logger: { onStep: (r) => void results.push(r) } });
    expect(results.some((r) => r.gradNorm > 0.5)).toBe(true);
    const norms = await Promise.all(a.norms.map(async (n) => (await n.data())[0]));
    norms.forEach((n, i) =>
      expect(n).toBeCloseTo(Math.min(results[i].gradNorm, 0.5 / (1 + 1e-6 / results[i].gradNorm)), 4),
    );
    const store = new MemoryCheckpointStore(1);
    const b = make(3);
    await fit(b.trainer, { data: toyData(), steps: 5, store });
    const c = make(7);
    await fit(c.trainer, { data: toyData(), steps: 8, store, resume: true });
    expect(await weightsOf(c.model)).toEqual(await weightsOf(a.model));
    const emaOf = async (e: ModelEma) => Array.from(await e.stateDict().get('weight')!.data());
    expect(await emaOf(c.ema)).toEqual(await emaOf(a.ema));
    expect(await emaOf(a.ema)).not.toEqual(Array.from(await a.model.weight.value.data()));
    for (const t of [a, b, c]) {
      tf.dispose(t.norms);
      t.optimizer.dispose();
      t.ema.dispose();
      t.model.dispose();
    }
  });

  it.runIf(heavy.includes(backend))(
    'a tiny FIBER pre-training step keeps the tensor count flat',
    async () => {
      const s = tinyCoarseSetup({ queueSize: 4 });
      const it = s.data.batches()[Symbol.asyncIterator]();
      const next = async () => (await it.next()).value!.batch;
      for (let i = 0; i < 2; i++) {
        const b = await next();
        await s.trainer.trainStep([b]);
        tf.dispose([b.pixels, b.textIds, b.textMasks]);
      } // the queue's 4 input slots are filled
      const b = await next();
      await expectNoTensorGrowth(() => s.trainer.trainStep([b]), { iterations: 2, label: 'trainStep' });
      tf.dispose([b.pixels, b.textIds, b.textMasks]);
      s.dispose();
    },
    300_000,
  );
});

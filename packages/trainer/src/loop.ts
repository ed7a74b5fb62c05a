// The training loop, in two layers users can take apart:
//   Trainer.trainStep(batches)  one optimizer step over one or more micro-batches (gradient
//       accumulation, the micro-batches given at once or read one at a time): the objective's loss terms, the non-finite guard, full-model gradient-norm
//       clipping, AdamW with the schedule's lr / weight-decay factors, the objective's afterStep,
//       EMA. Its state (and only it) goes into checkpoints: `checkpoint()` / `restore()`.
//   fit(trainer, options)       reads batches, calls trainStep, logs, saves checkpoints every N
//       steps, resumes from the newest complete checkpoint, stops on repeated non-finite steps.
import { findNonFinite, tf, type Generator, type Module, type Parameter } from '@fiber-vl/tensor-core';
import {
  CHECKPOINT_FORMAT,
  disposeLoaded,
  type Checkpoint,
  type CheckpointStore,
  type LoadedCheckpoint,
} from './checkpoint.js';
import type { ModelEma } from './ema.js';
import { clipGradNorm, gradNorm, type AdamW } from './optim.js';
import { constantSchedule, type Schedule } from './schedules.js';
import { disposeBatch, positioned, type BatchSource, type DataPosition, type JsonValue } from './source.js';
import { StepContext, type Objective, type Stateful } from './step.js';

export interface TrainerOptions<M extends Module, B> {
  model: M;
  objective: Objective<M, B>;
  optimizer: AdamW;
  /** lr and weight-decay factors per step (default constant 1). */
  schedule?: Schedule;
  /**
   * Every generator the run draws from, by name, so that checkpoints hold their states: the
   * model's (dropout, drop-path: the one given to the model's constructor), 'negatives' and 'mlm'
   * for coarse pre-training, a data generator if the data source draws from one in step order.
   */
  rngs?: Record<string, Generator>;
  /** More checkpointed state (the objective's own `stateful` is included automatically). */
  stateful?: Record<string, Stateful>;
  ema?: ModelEma;
  /** Full-model gradient-norm clipping (fine-grained FIBER: 1.0); off when undefined. */
  clipGradNorm?: number;
  /** Non-finite steps in a row before the run stops with NonFiniteLossError (default 5). */
  maxNonFinite?: number;
}

export interface StepResult {
  /** 1-based number of this step. */
  step: number;
  /** Loss values by term (averaged over micro-batches). */
  losses: Record<string, number>;
  /** The loss the step's gradient is of: the terms times their weights, summed (averaged over micro-batches). */
  loss: number;
  /** lr of the first parameter group in this step. */
  lr: number;
  /** Global gradient norm before clipping (computed when clipping or guarding). */
  gradNorm: number;
  /** True when the step was not applied (non-finite loss or gradient). */
  skipped: boolean;
  reason?: string;
}

export interface StepHooks {
  /** Receives copies of the tensors objectives observe (owns them). */
  observer?: (name: string, t: tf.Tensor) => void;
  /** Sees the accumulated gradients before clipping and the update (do not dispose them). */
  onGradients?: (grads: Map<string, tf.Tensor>) => void | Promise<void>;
}

/**
 * Micro-batches read one at a time, so that a step of gradient accumulation holds one of them in
 * memory rather than all `count`: `next(i)` gives the i-th (0-based, in order), and `release`
 * disposes it once its forward and backward are done, on error paths too.
 */
export interface MicroBatches<B> {
  readonly count: number;
  next(i: number): Promise<B>;
  release(batch: B): void;
}

export class NonFiniteLossError extends Error {
  constructor(
    readonly steps: StepResult[],
    readonly lastCheckpoint: string | undefined,
  ) {
    const list = steps.map((s) => `step ${s.step}: ${s.reason}`).join('; ');
    super(
      `training stopped: ${steps.length} non-finite steps in a row (${list}). ` +
        (lastCheckpoint ? `The last good checkpoint is ${lastCheckpoint}.` : 'No checkpoint was saved before.'),
    );
    this.name = 'NonFiniteLossError';
  }
}

export class Trainer<M extends Module, B> {
  readonly model: M;
  readonly objective: Objective<M, B>;
  readonly optimizer: AdamW;
  readonly schedule: Schedule;
  readonly rngs: Record<string, Generator>;
  readonly stateful: Record<string, Stateful>;
  readonly ema?: ModelEma;
  readonly clip?: number;
  readonly maxNonFinite: number;
  /** Optimizer steps taken (applied or skipped) = the schedule position. */
  step = 0;
  /** The non-finite steps of the current run of them. */
  nonFinite: StepResult[] = [];
  private readonly params: [string, Parameter][];

  constructor(o: TrainerOptions<M, B>) {
    this.model = o.model;
    this.objective = o.objective;
    this.optimizer = o.optimizer;
    this.schedule = o.schedule ?? constantSchedule;
    this.rngs = { ...(o.rngs ?? {}) };
    this.stateful = { ...(o.objective.stateful ?? {}), ...(o.stateful ?? {}) };
    this.ema = o.ema;
    this.clip = o.clipGradNorm;
    this.maxNonFinite = o.maxNonFinite ?? 5;
    if (!(Number.isInteger(this.maxNonFinite) && this.maxNonFinite >= 1))
      throw new RangeError(`Trainer: maxNonFinite must be a positive integer, got ${o.maxNonFinite}`);
    const inOptimizer = new Set(this.optimizer.paramNames());
    this.params = this.model.namedParameters().filter(([n, p]) => p.requiresGrad && inOptimizer.has(n));
  }

  /** The first group's lr in the next step (base lr x schedule). */
  currentLr(): number {
    const g = this.optimizer.groups[0];
    return g ? g.lr * this.schedule.lr(this.step) : 0;
  }

  /**
   * One optimizer step over `batches` (micro-batches whose gradients are averaged: each term is
   * scaled by 1 / their count, as Lightning's accumulate_grad_batches does). An array's batches
   * are not disposed; `MicroBatches` are read and released one at a time. A non-finite loss or
   * gradient skips the update (state changes of the objective are rolled back) and is reported;
   * `maxNonFinite` in a row throws NonFiniteLossError. An error before the update leaves the
   * trainer as it was (step counter and generators restored); one after it (the objective's
   * `afterStep`, the EMA) is thrown with the step taken, as the parameters have changed.
   */
  async trainStep(batches: B[] | MicroBatches<B>, hooks: StepHooks = {}): Promise<StepResult> {
    const micro: MicroBatches<B> = Array.isArray(batches)
      ? { count: batches.length, next: async (i) => batches[i] as B, release: () => {} }
      : batches;
    if (!(Number.isInteger(micro.count) && micro.count >= 1))
      throw new RangeError(`Trainer.trainStep: expected at least one micro-batch, got ${micro.count}`);
    this.model.train();
    const ctx = new StepContext({
      params: this.params,
      rngs: this.rngs,
      scale: 1 / micro.count,
      observer: hooks.observer,
    });
    const position = this.step;
    let applied = false;
    // a step that fails (not a skipped one) is not taken: its draws are undone with its counter
    const drawn = Object.entries(this.rngs).map(([name, g]) => [name, g.getState()] as const);
    this.step++;
    const lrScale = this.schedule.lr(position);
    const result: StepResult = {
      step: this.step,
      losses: {},
      loss: 0,
      lr: (this.optimizer.groups[0]?.lr ?? 0) * lrScale,
      gradNorm: NaN,
      skipped: false,
    };
    try {
      for (let i = 0; i < micro.count; i++) {
        ctx.microBatch = i;
        const batch = await micro.next(i);
        try {
          await this.objective(this.model, batch, ctx);
        } finally {
          micro.release(batch);
        }
      }
      result.losses = { ...ctx.losses };
      result.loss = ctx.total;
      if (hooks.onGradients) await hooks.onGradients(ctx.grads);
      const badLoss = Object.entries(ctx.losses).filter(([, v]) => !Number.isFinite(v));
      result.gradNorm = badLoss.length
        ? NaN
        : this.clip !== undefined
          ? await clipGradNorm(ctx.grads, this.clip)
          : await gradNorm(ctx.grads);
      if (badLoss.length || !Number.isFinite(result.gradNorm)) {
        result.skipped = true;
        result.reason = badLoss.length
          ? `non-finite loss ${badLoss.map(([k, v]) => `${k}=${v}`).join(', ')}`
          : `non-finite gradient norm ${result.gradNorm}`;
        ctx.rollback();
        this.nonFinite.push(result);
        if (this.nonFinite.length >= this.maxNonFinite) throw new NonFiniteLossError([...this.nonFinite], undefined);
        return result;
      }
      this.optimizer.step(ctx.grads, { lrScale, weightDecayScale: this.schedule.weightDecay(position) });
      // the update is made: from here a failure (afterStep, EMA) leaves the step taken
      applied = true;
      ctx.commit();
      this.nonFinite = [];
      this.objective.afterStep?.(this.model);
      this.ema?.update(this.model);
      return result;
    } catch (e) {
      ctx.rollback();
      if (!applied && !(e instanceof NonFiniteLossError)) {
        this.step = position;
        for (const [name, state] of drawn) this.rngs[name]!.setState(state);
      }
      throw e;
    } finally {
      ctx.dispose();
    }
  }

  /**
   * A snapshot of everything a bit-exact resume needs (see checkpoint.ts). Model and optimizer
   * tensors are the live ones: write it before the next step. `disposeCheckpoint` frees the rest.
   */
  checkpoint(data: DataPosition | null, user?: JsonValue): Checkpoint {
    const opt = this.optimizer.getState();
    const state = new Map<string, tf.Tensor>();
    const owned: tf.Tensor[] = [];
    for (const [name, s] of Object.entries(this.stateful)) {
      for (const [k, t] of s.getState()) {
        state.set(`${name}.${k}`, t);
        owned.push(t);
      }
    }
    if (this.ema) for (const [k, t] of this.ema.stateDict()) state.set(`ema.${k}`, t);
    return {
      meta: {
        format: CHECKPOINT_FORMAT,
        version: 1,
        step: this.step,
        consecutiveNonFinite: this.nonFinite.length,
        optimizer: { steps: opt.steps, calls: opt.calls },
        rngs: Object.fromEntries(Object.entries(this.rngs).map(([k, g]) => [k, g.getState()])),
        data,
        stateful: Object.keys(this.stateful),
        ema: this.ema !== undefined,
        ...(user === undefined ? {} : { user }),
      },
      files: {
        'model.safetensors': this.model.stateDict(),
        'optimizer.safetensors': opt.tensors,
        'state.safetensors': state,
      },
      owned,
    };
  }

  /**
   * Restores a checkpoint written by `checkpoint()` (the caller disposes `cp`). The generators,
   * stateful parts, EMA, model weights and optimizer moments are checked before anything changes;
   * a stateful part or the EMA that refuses its own tensors leaves the model and optimizer loaded
   * (start again from a new trainer).
   */
  async restore(cp: LoadedCheckpoint): Promise<void> {
    const { meta, files } = cp;
    const names = (o: object) => Object.keys(o).sort().join(', ');
    if (names(meta.rngs) !== names(this.rngs))
      throw new Error(`${cp.id}: generators [${names(meta.rngs)}] do not match this trainer's [${names(this.rngs)}]`);
    if ([...meta.stateful].sort().join(', ') !== names(this.stateful))
      throw new Error(
        `${cp.id}: stateful parts [${meta.stateful}] do not match this trainer's [${names(this.stateful)}]`,
      );
    if (meta.ema !== (this.ema !== undefined))
      throw new Error(
        `${cp.id}: the checkpoint ${meta.ema ? 'has' : 'has no'} EMA weights, this trainer ${this.ema ? 'uses' : 'does not use'} EMA`,
      );
    // a healthy run never saves NaN weights (the guard skips non-finite steps): these were damaged
    const bad = (await findNonFinite(files['model.safetensors'])).map((t) => `${t.name}: ${t.count}`);
    if (bad.length)
      throw new Error(
        `${cp.id}: model.safetensors has ${bad.length} tensor(s) holding NaN or Infinity (${bad.slice(0, 3).join('; ')}${bad.length > 3 ? '; ...' : ''}); the checkpoint is damaged: remove it to resume from the one before`,
      );
    const optimizerState = {
      tensors: files['optimizer.safetensors'],
      steps: meta.optimizer.steps,
      calls: meta.optimizer.calls,
    };
    // checked before the model changes: the model's load checks every key first, and with the
    // moments checked too a refusal of either leaves the trainer as it was
    this.optimizer.checkState(optimizerState);
    this.model.loadStateDict(files['model.safetensors']);
    this.optimizer.setState(optimizerState);
    const state = files['state.safetensors'];
    for (const [name, s] of Object.entries(this.stateful)) {
      const prefix = `${name}.`;
      await s.setState(
        new Map([...state].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t])),
      );
    }
    if (this.ema)
      this.ema.loadStateDict(
        new Map([...state].filter(([k]) => k.startsWith('ema.')).map(([k, t]) => [k.slice(4), t])),
      );
    for (const [k, g] of Object.entries(this.rngs)) g.setState(meta.rngs[k]);
    this.step = meta.step;
    // the guard needs no more of them than it counts to
    const nonFinite = Math.min(meta.consecutiveNonFinite, this.maxNonFinite);
    this.nonFinite = Array.from({ length: nonFinite }, (_, i) => ({
      step: meta.step - nonFinite + i + 1,
      losses: {},
      loss: NaN,
      lr: NaN,
      gradNorm: NaN,
      skipped: true,
      reason: 'non-finite (before resume)',
    }));
  }
}

/** Frees the snapshot tensors of a checkpoint from `Trainer.checkpoint`. */
export function disposeCheckpoint(cp: Checkpoint): void {
  tf.dispose(cp.owned);
}

/** What fit reports as it goes (all optional). */
export interface FitLogger {
  onStart?(info: { step: number; totalSteps: number; resumedFrom?: string }): void;
  onStep?(r: StepResult, info: { totalSteps: number; seconds: number }): void;
  onCheckpoint?(id: string, step: number): void;
  onEnd?(info: { step: number; seconds: number; stoppedBy?: Error }): void;
}

export interface FitOptions<B> {
  /** Batches: a DataSource (resumable by position) or a deterministic iterable (resumed by count). */
  data: BatchSource<B>;
  /** Optimizer steps to reach (counting those before a resume). */
  steps: number;
  /** Micro-batches per optimizer step (gradient accumulation; default 1). */
  accumulate?: number;
  store?: CheckpointStore;
  /** Save every N steps (and at the end) when a store is given; default 1000. */
  checkpointEvery?: number;
  /** Continue from the store's newest complete checkpoint, if any. */
  resume?: boolean;
  logger?: FitLogger;
  /** Kept in every checkpoint's trainer.json (e.g. the resolved run config). */
  user?: JsonValue;
  hooks?: StepHooks;
}

export interface FitResult {
  step: number;
  /** Steps of this call that updated the model, and those skipped for a non-finite loss or gradient. */
  applied: number;
  skipped: number;
  /** The first skipped step of this call (its `reason` says which loss or gradient). */
  firstSkipped?: StepResult;
  /** The last step's result (undefined if no step ran). */
  last?: StepResult;
  lastCheckpoint?: string;
  resumedFrom?: string;
}

/**
 * Trains until `steps` optimizer steps are done: batches from `data` (read one micro-batch at a
 * time, each disposed after its forward and backward), checkpoints every `checkpointEvery` steps and at the end, resume from the newest complete
 * checkpoint. A kill at any point and a resume give the same parameters, bit for bit, as an
 * uninterrupted run (given a deterministic data source and every generator in the trainer's rngs).
 */
export async function fit<M extends Module, B>(trainer: Trainer<M, B>, o: FitOptions<B>): Promise<FitResult> {
  const accumulate = o.accumulate ?? 1;
  const every = o.checkpointEvery ?? 1000;
  if (!(Number.isInteger(accumulate) && accumulate >= 1))
    throw new RangeError(`fit: accumulate must be a positive integer, got ${o.accumulate}`);
  if (!(Number.isInteger(every) && every >= 1))
    throw new RangeError(`fit: checkpointEvery must be a positive integer, got ${o.checkpointEvery}`);
  let position: DataPosition | undefined;
  let resumedFrom: string | undefined;
  let lastCheckpoint: string | undefined;
  if (o.resume && o.store) {
    const cp = await o.store.latest();
    if (cp) {
      try {
        await trainer.restore(cp);
      } finally {
        disposeLoaded(cp);
      }
      position = cp.meta.data ?? undefined;
      resumedFrom = lastCheckpoint = cp.id;
    }
  }
  const t0 = Date.now();
  o.logger?.onStart?.({ step: trainer.step, totalSteps: o.steps, resumedFrom });
  const save = async () => {
    if (!o.store) return;
    const cp = trainer.checkpoint(position ?? null, o.user);
    try {
      lastCheckpoint = await o.store.save(cp);
    } finally {
      disposeCheckpoint(cp);
    }
    o.logger?.onCheckpoint?.(lastCheckpoint, trainer.step);
  };
  let last: StepResult | undefined;
  let firstSkipped: StepResult | undefined;
  let applied = 0;
  let skipped = 0;
  const it = positioned(o.data, position)[Symbol.asyncIterator]();
  // the first batch of a resumed run starts at the checkpoint's data position: an error there
  // (a position the source refuses) names the checkpoint it came from
  let first = resumedFrom !== undefined;
  const nextBatch = async () => {
    if (!first) return it.next();
    first = false;
    try {
      return await it.next();
    } catch (e) {
      throw new Error(
        `${(e as Error).message} (resuming from ${resumedFrom}, data position ${JSON.stringify(position)})`,
        { cause: e },
      );
    }
  };
  try {
    // one micro-batch in memory at a time: each is read when its turn comes and disposed after it
    const micro: MicroBatches<B> = {
      count: accumulate,
      next: async () => {
        const next = await nextBatch();
        if (next.done)
          throw new Error(
            `fit: the data ran out after ${done} steps (${o.steps} asked for); give a source that repeats over epochs`,
          );
        position = next.value.position;
        return next.value.batch;
      },
      release: disposeBatch,
    };
    let done = trainer.step;
    while (trainer.step < o.steps) {
      done = trainer.step;
      try {
        last = await trainer.trainStep(micro, o.hooks);
        if (last.skipped) {
          skipped += 1;
          firstSkipped ??= last;
        } else applied += 1;
      } catch (e) {
        if (e instanceof NonFiniteLossError) throw new NonFiniteLossError(e.steps, lastCheckpoint);
        throw e;
      }
      o.logger?.onStep?.(last, { totalSteps: o.steps, seconds: (Date.now() - t0) / 1000 });
      if (trainer.step % every === 0 || trainer.step === o.steps) await save();
    }
  } catch (e) {
    o.logger?.onEnd?.({ step: trainer.step, seconds: (Date.now() - t0) / 1000, stoppedBy: e as Error });
    throw e;
  } finally {
    await it.return?.(undefined);
  }
  o.logger?.onEnd?.({ step: trainer.step, seconds: (Date.now() - t0) / 1000 });
  return { step: trainer.step, applied, skipped, firstSkipped, last, lastCheckpoint, resumedFrom };
}

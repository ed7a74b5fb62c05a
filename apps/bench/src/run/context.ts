// What every stage of one seed's run shares: the world, the tokenizer, the preset, the seed's
// generators, the log, and the records the report is made of (loss curves, stage timings).
import type { ByteLevelBpeTokenizer } from '@fiber-vl/roberta';
import { Generator, type Module, tf } from '@fiber-vl/tensor-core';
import type { Trainer, World } from '@fiber-vl/trainer';
import { StageProgress, type Log } from './progress.js';
import type { RunPreset } from './presets.js';
import type { LossCurve } from './report.js';

/** The scenes a stage is evaluated on: the test split (the run), or val (to choose settings without the test scenes). */
export type EvalSplit = 'val' | 'test';

/** How many of a split's scenes an evaluation reads: the first `want`, or all of a split that has fewer (val). */
export const scenesOf = (ctx: Pick<RunContext, 'world'>, split: EvalSplit, want: number): number =>
  Math.min(want, ctx.world.size(split));

export interface StageRecord {
  name: string;
  steps: number;
  seconds: number;
}

export interface RunContext {
  world: World;
  tokenizer: ByteLevelBpeTokenizer;
  preset: RunPreset;
  /** The training seed (model init, data order, masking, negatives). */
  seed: number;
  log: Log;
  curves: LossCurve[];
  stages: StageRecord[];
  /** Called with each stage's model when its training ends (export-models.ts writes the demo's models). */
  onTrained?: (ctx: RunContext, stage: string, model: Module) => Promise<void>;
}

/** A generator for one purpose of the seed's run, independent of the others (and of their order). */
export function seedRng(ctx: Pick<RunContext, 'seed'>, purpose: number): Generator {
  return new Generator(ctx.seed * 7919 + purpose * 104_729 + 17);
}

/** At most `max` points per curve: means over equal windows of steps. */
function downsample(points: [number, number][], max = 120): [number, number][] {
  if (points.length <= max) return points;
  const w = points.length / max;
  return Array.from({ length: max }, (_, i) => {
    const part = points.slice(Math.floor(i * w), Math.floor((i + 1) * w));
    return [part.at(-1)![0], part.reduce((s, p) => s + p[1], 0) / part.length] as [number, number];
  });
}

export interface TrainStageOptions<M extends Module, B> {
  /** Stage name in progress lines, curves and timings (e.g. 'coarse', 'vqa'). */
  name: string;
  trainer: Trainer<M, B>;
  steps: number;
  /** The batch of a step; its tensors are disposed after the step (also when it throws). */
  batch: (step: number) => B;
}

/** Runs `steps` optimizer steps, records the loss curve of every objective and the stage timing. */
export async function trainStage<M extends Module, B extends object>(
  ctx: RunContext,
  { name, trainer, steps, batch }: TrainStageOptions<M, B>,
): Promise<void> {
  const progress = new StageProgress(ctx.log, `[seed ${ctx.seed}] ${name}`, steps);
  const points = new Map<string, [number, number][]>();
  for (let step = 0; step < steps; step++) {
    const b = batch(step);
    let losses: Record<string, number>;
    try {
      const r = await trainer.trainStep([b]);
      losses = r.losses;
    } finally {
      tf.dispose(Object.values(b).filter((v): v is tf.Tensor => v instanceof tf.Tensor));
    }
    for (const [k, v] of Object.entries(losses)) {
      if (!points.has(k)) points.set(k, []);
      points.get(k)!.push([step + 1, v]);
    }
    progress.tick(step + 1, losses);
  }
  for (const [objective, p] of points)
    ctx.curves.push({ seed: ctx.seed, stage: name, objective, points: downsample(p) });
  ctx.stages.push({ name, steps, seconds: progress.seconds() });
  await ctx.onTrained?.(ctx, name, trainer.model);
}

/** Evaluation work timed as a stage (steps = 0). */
export async function timedStage<T>(ctx: RunContext, name: string, fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  ctx.log(`[seed ${ctx.seed}] ${name} ...`);
  const out = await fn();
  const seconds = (performance.now() - started) / 1000;
  ctx.stages.push({ name, steps: 0, seconds });
  ctx.log(`[seed ${ctx.seed}] ${name} done (${seconds.toFixed(1)} s)`);
  return out;
}

/** Copies of a model's state dict (the keys under `prefix`) that outlive it (the caller disposes them). */
export function snapshotState(model: Module, prefix = ''): Map<string, tf.Tensor> {
  return new Map(
    [...model.stateDict()].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k, tf.keep(tf.clone(t))]),
  );
}

/** Batches of `size` over [0, n). */
export function chunks(n: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let s = 0; s < n; s += size) out.push([s, Math.min(n, s + size)]);
  return out;
}

// The learning-rate and weight-decay schedules of the two official FIBER code bases. Each returns
// the factor that multiplies a group's base value for the optimizer step taken after `step`
// scheduler steps (0-based: the first optimizer step reads step 0, as a LambdaLR / _LRScheduler
// stepped after every optimizer step does).

export interface PolynomialDecayOptions {
  warmupSteps: number;
  totalSteps: number;
  power?: number;
  /** lr_end / lr_init when lrInit is not given. */
  lrEndRatio?: number;
  /** transformers' lr_init (the optimizer's default lr) and lr_end: reproduces its float expression exactly. */
  lrInit?: number;
  lrEnd?: number;
}

/**
 * Linear warm-up from 0, then polynomial decay to lr_end (transformers'
 * get_polynomial_decay_schedule_with_warmup; power 1 is FIBER's coarse schedule).
 */
export function polynomialDecayWithWarmup(
  step: number,
  { warmupSteps, totalSteps, power = 1, lrEndRatio = 0, lrInit, lrEnd }: PolynomialDecayOptions,
): number {
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  if (lrInit !== undefined) {
    const end = lrEnd ?? lrEndRatio * lrInit;
    if (!(lrInit > end))
      throw new RangeError(`polynomialDecayWithWarmup: lr_end (${end}) must be smaller than lr_init (${lrInit})`);
    // at the end (also when the warm-up takes every step, where transformers divides by zero)
    if (step >= totalSteps) return end / lrInit;
    const remaining = 1 - (step - warmupSteps) / (totalSteps - warmupSteps);
    return ((lrInit - end) * remaining ** power + end) / lrInit;
  }
  if (step >= totalSteps) return lrEndRatio;
  const remaining = 1 - (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  return (1 - lrEndRatio) * remaining ** power + lrEndRatio;
}

export interface WarmupMultiStepOptions {
  /** Increasing iteration numbers (see fineMilestones for the config's fractions). */
  milestones: number[];
  gamma?: number;
  warmupSteps?: number;
  warmupFactor?: number;
  warmupMethod?: 'linear' | 'constant';
}

/**
 * maskrcnn_benchmark's WarmupMultiStepLR (fine-grained FIBER): warm-up from `warmupFactor`
 * (linear or constant), then x gamma at each milestone passed (bisect_right).
 */
export function warmupMultiStep(
  step: number,
  {
    milestones,
    gamma = 0.1,
    warmupSteps = 2000,
    warmupFactor = 0.001,
    warmupMethod = 'linear',
  }: WarmupMultiStepOptions,
): number {
  checkMilestones(milestones);
  let warm = 1;
  if (step < warmupSteps) {
    if (warmupMethod === 'constant') warm = warmupFactor;
    else {
      const alpha = step / warmupSteps;
      warm = warmupFactor * (1 - alpha) + alpha;
    }
  }
  const passed = milestones.filter((m) => m <= step).length;
  return warm * gamma ** passed;
}

/** Python's round() (half to even), which maskrcnn_benchmark uses to turn fractions into iterations. */
export function pyRound(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** SOLVER.STEPS -> milestones: a value below 1 is a fraction of MAX_ITER (rounded), else an iteration. */
export function fineMilestones(steps: number[], maxIter: number): number[] {
  return steps.map((s) => (s < 1 ? pyRound(s * maxIter) : s));
}

export interface WeightDecayScheduleOptions {
  milestones: number[];
  gamma?: number;
  /** SOLVER.WEIGHT_DECAY_SCHEDULE_RATIO (0.667). */
  ratio?: number;
}

/**
 * SOLVER.WEIGHT_DECAY_SCHEDULE (maskrcnn_benchmark engine/trainer.py): after each scheduler step,
 * once `last_epoch >= ratio x next milestone`, every group's weight decay is multiplied by gamma
 * (at most once per iteration). Returns the factor in force for the optimizer step taken after
 * `step` scheduler steps.
 */
export function weightDecayScheduleFactor(
  step: number,
  { milestones, gamma = 0.1, ratio = 0.667 }: WeightDecayScheduleOptions,
): number {
  checkMilestones(milestones);
  let factor = 1;
  let last = 0; // the iteration (last_epoch) at which the previous drop happened
  for (const m of milestones) {
    // the check runs after scheduler.step(), so last_epoch >= 1 and one drop per iteration
    const at = Math.max(Math.ceil(m * ratio), last + 1, 1);
    if (at > step) break;
    factor *= gamma;
    last = at;
  }
  return factor;
}

function checkMilestones(milestones: number[]): void {
  for (let i = 1; i < milestones.length; i++) {
    if (!(milestones[i] >= milestones[i - 1]))
      throw new RangeError(`milestones must be increasing, got [${milestones.join(', ')}]`);
  }
}

/** A schedule: the lr and weight-decay factors for the optimizer step after `step` scheduler steps. */
export interface Schedule {
  lr(step: number): number;
  weightDecay(step: number): number;
}

export interface CoarseScheduleOptions {
  /** config max_steps. */
  maxSteps: number;
  /**
   * config warmup_steps: an iteration count, or a fraction (< 1) of maxSteps (0.1 = 10%). Python's
   * float 1.0 (the whole run) is the integer 1 here, one step: give maxSteps for that.
   */
  warmupSteps: number;
  /** config learning_rate (lr_init) and end_lr. */
  lr: number;
  endLr?: number;
  /** config decay_power (1). */
  power?: number;
}

/** Coarse FIBER's schedule (fiber_utils.set_schedule): warm-up then polynomial decay; weight decay constant. */
export function coarseSchedule({ maxSteps, warmupSteps, lr, endLr = 0, power = 1 }: CoarseScheduleOptions): Schedule {
  // `isinstance(warmup_steps, float)`: 0.1 is a fraction; an integer is a step count
  const warm = Number.isInteger(warmupSteps) ? warmupSteps : Math.trunc(maxSteps * warmupSteps);
  return {
    lr: (step) =>
      polynomialDecayWithWarmup(step, { warmupSteps: warm, totalSteps: maxSteps, power, lrInit: lr, lrEnd: endLr }),
    weightDecay: () => 1,
  };
}

export interface FineScheduleOptions extends Omit<WarmupMultiStepOptions, 'milestones'> {
  /** SOLVER.MAX_ITER. */
  maxIter: number;
  /** SOLVER.STEPS: fractions of maxIter or iterations ((0.67, 0.89) in pre-training). */
  steps: number[];
  /** SOLVER.WEIGHT_DECAY_SCHEDULE (true in pre-training) and its ratio. */
  weightDecaySchedule?: boolean;
  weightDecayScheduleRatio?: number;
}

/** Fine-grained FIBER's schedule: WarmupMultiStepLR (+ the weight-decay drops when enabled). */
export function fineSchedule({
  maxIter,
  steps,
  weightDecaySchedule = false,
  weightDecayScheduleRatio = 0.667,
  ...rest
}: FineScheduleOptions): Schedule {
  const milestones = fineMilestones(steps, maxIter);
  return {
    lr: (step) => warmupMultiStep(step, { ...rest, milestones }),
    weightDecay: (step) =>
      weightDecaySchedule
        ? weightDecayScheduleFactor(step, { milestones, gamma: rest.gamma, ratio: weightDecayScheduleRatio })
        : 1,
  };
}

/** A constant schedule (factor 1). */
export const constantSchedule: Schedule = { lr: () => 1, weightDecay: () => 1 };

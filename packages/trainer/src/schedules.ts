/**
 * Linear warm-up from 0, then polynomial decay to `lrEndRatio` (transformers'
 * get_polynomial_decay_schedule_with_warmup; power 1 is FIBER's coarse schedule). Returns the
 * factor that multiplies the base learning rate at `step` (0-based, as the LambdaLR sees it).
 */
export function polynomialDecayWithWarmup(step: number, { warmupSteps, totalSteps, power = 1, lrEndRatio = 0 }: { warmupSteps: number; totalSteps: number; power?: number; lrEndRatio?: number }): number {
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  if (step > totalSteps) return lrEndRatio;
  const remaining = 1 - (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  return (1 - lrEndRatio) * remaining ** power + lrEndRatio;
}

/**
 * maskrcnn_benchmark's WarmupMultiStepLR (fine-grained FIBER): linear warm-up from
 * `warmupFactor`, then x gamma at each milestone.
 */
export function warmupMultiStep(step: number, { milestones, gamma = 0.1, warmupSteps = 2000, warmupFactor = 0.001 }: { milestones: number[]; gamma?: number; warmupSteps?: number; warmupFactor?: number }): number {
  let warm = 1;
  if (step < warmupSteps) {
    const alpha = step / warmupSteps;
    warm = warmupFactor * (1 - alpha) + alpha;
  }
  const passed = milestones.filter((m) => m <= step).length;
  return warm * gamma ** passed;
}

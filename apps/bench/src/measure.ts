import { initBackend, tf, type BackendName } from '@fiber-vl/tensor-core';

export interface Timing {
  /** Median seconds per call. */
  seconds: number;
  iterations: number;
}

/**
 * Times `fn` (which must return a tensor, or tensors, that it created): one warm-up call, then
 * calls until `minSeconds` have passed or `maxIterations` ran. Each call waits for its result
 * (`await data()`, which every backend supports), so GPU work is included, and disposes it.
 * A warm-up call slower than `singleAboveSeconds` (a FIBER-B train step on tfjs' cpu backend takes
 * most of an hour) is the measurement: what it spends on compilation is a negligible part of it.
 */
export async function timeIt(
  fn: () => tf.Tensor | tf.Tensor[],
  { minSeconds = 1, maxIterations = 50, singleAboveSeconds = 300 } = {},
): Promise<Timing> {
  const once = async () => {
    const out = fn();
    const outs = Array.isArray(out) ? out : [out];
    await Promise.all(outs.map((t) => t.data()));
    tf.dispose(outs);
  };
  const t0 = performance.now();
  await once();
  const first = (performance.now() - t0) / 1000;
  if (first > singleAboveSeconds) return { seconds: first, iterations: 1 };
  const times: number[] = [];
  let total = 0;
  // A call slower than the budget is measured once more only.
  while (times.length < Math.max(1, maxIterations) && (total < minSeconds || times.length === 0)) {
    const t = performance.now();
    await once();
    const dt = (performance.now() - t) / 1000;
    times.push(dt);
    total += dt;
    if (first > minSeconds) break;
  }
  times.sort((a, b) => a - b);
  return { seconds: times[Math.floor(times.length / 2)], iterations: times.length };
}

export function peakRssMb(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

/**
 * Makes `name` the active backend for a full-size benchmark and returns its label for the report
 * (`wasm (2 threads)`, `webgpu (<adapter>)`), or undefined, logged, where it is unavailable.
 */
export async function useBenchBackend(
  name: BackendName,
  log: (line: string) => void,
  threads?: number,
): Promise<string | undefined> {
  try {
    const info = await initBackend({ backend: name, allowSoftwareWebGpu: true, threads });
    if (info.kernels && 'error' in info.kernels)
      log(`${name}: fiber-vl kernels unavailable (${info.kernels.error}); tfjs kernels only`);
    return `${name}${info.threads ? ` (${info.threads} threads)` : info.adapter ? ` (${info.adapter.description || info.adapter.vendor})` : ''}`;
  } catch (e) {
    log(`backend ${name} unavailable: ${(e as Error).message}`);
    return undefined;
  }
}

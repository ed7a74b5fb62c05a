// Test helpers for fiber-vl packages (`@fiber-vl/tensor-core/testing`): which backends to run
// on, numerical gradient checks and comparisons with reference arrays.
import { tf } from './tf.js';
import {
  availableBackends,
  BackendUnavailableError,
  initBackend,
  type BackendInfo,
  type BackendName,
} from './backends/index.js';
import { Generator } from './rng.js';
import type { Parameter } from './nn/module.js';

export { expectNoTensorGrowth } from './memory.js';

interface Probe {
  names: BackendName[];
  skipped: { backend: BackendName; reason: string }[];
  /** WebGPU runs on a CPU implementation (SwiftShader, a fallback adapter). */
  softwareWebgpu: boolean;
}

let probe: Promise<Probe> | undefined;

/**
 * The backends tests should run on: every one that starts here, or those named in
 * FIBER_TEST_BACKENDS (comma-separated). Unavailable ones are reported once on stderr with why.
 */
export function testBackends(): Promise<Probe> {
  probe ??= (async () => {
    const only = process.env.FIBER_TEST_BACKENDS?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const { available, unavailable } = await availableBackends();
    let names = available.map((b) => b.name);
    if (only?.length) names = names.filter((n) => only.includes(n));
    for (const u of unavailable) process.stderr.write(`[fiber-vl tests] skipping backend ${u.backend}: ${u.reason}\n`);
    for (const b of available) {
      const detail =
        b.name === 'wasm'
          ? `simd=${b.simd} threads=${b.threads}`
          : b.name === 'webgpu'
            ? `${b.adapter?.vendor} ${b.adapter?.description}`.trim()
            : '';
      if (names.includes(b.name)) process.stderr.write(`[fiber-vl tests] backend ${b.name} ${detail}\n`);
    }
    const softwareWebgpu = available.some((b) => b.name === 'webgpu' && b.adapter?.software === true);
    return { names, skipped: unavailable, softwareWebgpu };
  })();
  return probe;
}

/**
 * The backends of the heavy tests (whole-model parity, training steps): those of `testBackends()`,
 * less WebGPU on a software adapter unless FIBER_TEST_WEBGPU=full. There (SwiftShader: CI machines
 * without a GPU) every op is a shader compiled and run on the CPU and one whole-model case takes
 * many minutes; the op, kernel, layer and backbone tests still run on it, and a hardware adapter
 * runs everything. Says once per `label` on stderr what was left out.
 */
export async function heavyTestBackends(label: string): Promise<BackendName[]> {
  const { names, softwareWebgpu } = await testBackends();
  if (!names.includes('webgpu') || !softwareWebgpu || process.env.FIBER_TEST_WEBGPU === 'full') return names;
  process.stderr.write(
    `[fiber-vl tests] ${label}: not on WebGPU here (software adapter; FIBER_TEST_WEBGPU=full runs it)\n`,
  );
  return names.filter((n) => n !== 'webgpu');
}

/**
 * For the tests of the wasm kernels' threaded paths: starts wasm with a pool of `threads` whatever
 * FIBER_WASM_THREADS says (the root vitest config sets 1 per worker on 2 cores). Call it before
 * `testBackends()` or `useBackend('wasm')`: the first start fixes the pool, and a wasm started
 * earlier with another pool size throws. Where wasm cannot start it returns undefined, and
 * `testBackends()` reports why.
 */
export async function startThreadedWasm(threads = 2): Promise<BackendInfo | undefined> {
  let info: BackendInfo;
  try {
    info = await initBackend({ backend: 'wasm', threads });
  } catch (e) {
    if (e instanceof BackendUnavailableError) return undefined;
    throw e;
  }
  if (info.threads !== threads)
    throw new Error(`startThreadedWasm: wasm had already started with ${info.threads} threads, not ${threads}`);
  return info;
}

/** Makes `name` the current backend. */
export async function useBackend(name: BackendName): Promise<void> {
  await initBackend({ backend: name });
}

/** Max |a - b| over two arrays of equal length (throws on a length mismatch). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`maxAbsDiff: lengths differ (${a.length} vs ${b.length})`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > m || Number.isNaN(d)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

export interface GradCheckResult {
  /** Per input: max |analytic - numeric| and the scale it is judged against. */
  errors: { maxAbs: number; scale: number }[];
  ok: boolean;
}

/**
 * Compares tf.grads of sum(f(xs) * r) (r a fixed random projection) with central finite
 * differences in float64 arithmetic over float32 evaluations. Checks every input element up to
 * `maxElements` per input (then a random subset). Passes when |analytic - numeric| <=
 * atol + rtol * max|numeric|.
 */
export async function gradCheck(
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  xs: tf.Tensor[],
  {
    eps = 1e-2,
    atol = 1e-3,
    rtol = 1e-2,
    maxElements = 64,
    seed = 1,
  }: { eps?: number; atol?: number; rtol?: number; maxElements?: number; seed?: number } = {},
): Promise<GradCheckResult> {
  const rng = new Generator(seed);
  const y0 = tf.tidy(() => f(...xs));
  const r = rng.uniformArray(y0.size, -1, 1);
  const rT = tf.tensor(r, y0.shape);
  y0.dispose();
  const loss = (...ins: tf.Tensor[]) => tf.sum(tf.mul(f(...ins), rT));
  const grads = tf.tidy(() => tf.grads(loss)(xs));
  const analytic = await Promise.all(grads.map(async (g) => (await g.data()) as Float32Array));
  tf.dispose(grads);
  const values = await Promise.all(xs.map(async (x) => ((await x.data()) as Float32Array).slice()));
  const errors: GradCheckResult['errors'] = [];
  for (let i = 0; i < xs.length; i++) {
    const x = values[i];
    const idx = x.length <= maxElements ? [...x.keys()] : rng.permutation(x.length).slice(0, maxElements);
    let maxAbs = 0;
    let scale = 0;
    for (const j of idx) {
      const evalAt = async (v: number) => {
        const copy = x.slice();
        copy[j] = v;
        const out = tf.tidy(() => {
          const ins = xs.map((orig, k) => (k === i ? tf.tensor(copy, orig.shape, orig.dtype) : orig));
          return loss(...ins);
        });
        const value = (await out.data())[0];
        out.dispose();
        return value;
      };
      const numeric = ((await evalAt(x[j] + eps)) - (await evalAt(x[j] - eps))) / (2 * eps);
      maxAbs = Math.max(maxAbs, Math.abs(numeric - analytic[i][j]));
      scale = Math.max(scale, Math.abs(numeric));
    }
    errors.push({ maxAbs, scale });
  }
  rT.dispose();
  return { errors, ok: errors.every((e) => e.maxAbs <= atol + rtol * e.scale) };
}

/**
 * Max |ours - reference| of each named tensor, the references read by name from `expected` (e.g.
 * a SafetensorsFile of a parity fixture). A shape mismatch or NaN gives Infinity.
 */
export async function maxAbsErrors(
  checks: [string, tf.Tensor][],
  expected: { readTensor(name: string): Promise<tf.Tensor> },
): Promise<Record<string, number>> {
  const errors: Record<string, number> = {};
  for (const [name, t] of checks) {
    const ref = await expected.readTensor(name);
    errors[name] =
      t.shape.join() === ref.shape.join()
        ? maxAbsDiff((await t.data()) as Float32Array, (await ref.data()) as Float32Array)
        : Infinity;
    ref.dispose();
  }
  return errors;
}

/**
 * Gradient check of a model's parameters: tf.variableGrads of `loss` against central finite
 * differences obtained by perturbing each parameter's variable in place (restored afterwards).
 * `loss` must be deterministic (eval mode, or a re-seeded RNG inside). Checks up to `maxElements`
 * random elements per parameter.
 */
export async function gradCheckParameters(
  loss: () => tf.Scalar,
  params: [string, Parameter][],
  {
    eps = 1e-2,
    atol = 1e-3,
    rtol = 1e-2,
    maxElements = 8,
    seed = 1,
  }: { eps?: number; atol?: number; rtol?: number; maxElements?: number; seed?: number } = {},
): Promise<{ errors: Record<string, { maxAbs: number; scale: number }>; ok: boolean }> {
  const rng = new Generator(seed);
  const vars = params.map(([, p]) => p.value);
  const { value, grads } = tf.variableGrads(loss, vars);
  value.dispose();
  const errors: Record<string, { maxAbs: number; scale: number }> = {};
  try {
    for (const [name, p] of params) {
      const g = grads[p.value.name];
      if (!g) throw new Error(`gradCheckParameters: no gradient for ${name} (is it used by the loss?)`);
      const analytic = (await g.data()) as Float32Array;
      const original = ((await p.value.data()) as Float32Array).slice();
      const idx =
        original.length <= maxElements ? [...original.keys()] : rng.permutation(original.length).slice(0, maxElements);
      let maxAbs = 0;
      let scale = 0;
      const evalAt = async (j: number, v: number) => {
        const copy = original.slice();
        copy[j] = v;
        tf.tidy(() => p.value.assign(tf.tensor(copy, p.shape)));
        const l = tf.tidy(loss);
        const out = (await l.data())[0];
        l.dispose();
        return out;
      };
      try {
        for (const j of idx) {
          const numeric = ((await evalAt(j, original[j] + eps)) - (await evalAt(j, original[j] - eps))) / (2 * eps);
          maxAbs = Math.max(maxAbs, Math.abs(numeric - analytic[j]));
          scale = Math.max(scale, Math.abs(numeric));
        }
      } finally {
        tf.tidy(() => p.value.assign(tf.tensor(original, p.shape)));
      }
      errors[name] = { maxAbs, scale };
    }
  } finally {
    tf.dispose(Object.values(grads));
  }
  return { errors, ok: Object.values(errors).every((e) => e.maxAbs <= atol + rtol * e.scale) };
}

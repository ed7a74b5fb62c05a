// adamwUpdate: on wasm the kernel gives the same bits as the tfjs ops it replaces (the float32
// steps of torch's and transformers' AdamW); on every backend it matches a float64 AdamW, and it
// names a shape, step or variant that is wrong.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../tf.js';
import { Generator } from '../rng.js';
import { expectNoTensorGrowth } from '../memory.js';
import { maxAbsDiff, startThreadedWasm, testBackends, useBackend } from '../testing.js';
import { setWasmKernelsEnabled } from '../kernels/wasm.js';
import { type AdamWUpdateOptions, adamwUpdate } from './optim.js';

await startThreadedWasm(); // the threaded paths, whatever FIBER_WASM_THREADS says
const { names } = await testBackends();

/** Float64 AdamW, one step of every element. */
function refAdamW(w: number[], g: number[], m: number[], v: number[], o: AdamWUpdateOptions) {
  const bc1 = 1 - o.beta1 ** o.step;
  const bc2 = 1 - o.beta2 ** o.step;
  const torch = o.variant === 'torch';
  return w.map((wi, i) => {
    const mi = m[i] * o.beta1 + g[i] * (1 - o.beta1);
    const vi = v[i] * o.beta2 + g[i] * g[i] * (1 - o.beta2);
    let x = torch ? wi * (1 - o.lr * o.weightDecay) : wi;
    const denom = torch ? Math.sqrt(vi) / Math.sqrt(bc2) + o.eps : Math.sqrt(vi) + o.eps;
    x -= (mi / denom) * (torch ? o.lr / bc1 : (o.lr * Math.sqrt(bc2)) / bc1);
    if (!torch) x -= x * o.lr * o.weightDecay;
    return [x, mi, vi];
  });
}

describe.each(names)('adamwUpdate on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  const variants: AdamWUpdateOptions[] = [
    { variant: 'torch', lr: 5e-4, weightDecay: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1 },
    { variant: 'torch', lr: 1e-3, weightDecay: 0, beta1: 0.9, beta2: 0.98, eps: 1e-6, step: 7 },
    { variant: 'transformers', lr: 1e-4, weightDecay: 0.01, beta1: 0.9, beta2: 0.98, eps: 1e-8, step: 3 },
    { variant: 'transformers', lr: 2e-3, weightDecay: 0, beta1: 0.8, beta2: 0.999, eps: 1e-8, step: 40 },
  ];

  it.each(variants)('matches float64 AdamW, and on wasm the tfjs ops bit for bit (%o)', async (o) => {
    const rng = new Generator(4);
    // 70k elements: the kernel's threaded size, and a tail off the 4-lane vectors
    const n = 70001;
    const [w, g, m, v] = tf.tidy(() => [
      rng.normal([n]),
      tf.mul(rng.normal([n]), 1e-3),
      tf.mul(rng.normal([n]), 1e-4),
      tf.mul(tf.square(rng.normal([n])), 1e-7),
    ]);
    const out = adamwUpdate(w, g, m, v, o);
    const values = async (t: tf.Tensor) => Array.from((await t.data()) as Float32Array);
    const [wd, gd, md, vd] = await Promise.all([w, g, m, v].map(values));
    const ref = refAdamW(wd, gd, md, vd, o);
    // the moments, and the update w' - w (relative to its size: lr-sized steps, eps and decay show)
    const [w2, m2, v2] = await Promise.all(out.map(values));
    const rel = (got: number[], want: number[]) =>
      maxAbsDiff(got, want) / want.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
    const [stepRef, mRef, vRef] = [0, 1, 2].map((k) => ref.map((r, i) => (k ? r[k] : r[0] - wd[i])));
    expect(rel(m2, mRef)).toBeLessThan(1e-6);
    expect(rel(v2, vRef)).toBeLessThan(1e-6);
    expect(
      rel(
        w2.map((x, i) => x - wd[i]),
        stepRef,
      ),
    ).toBeLessThan(2e-3);
    if (backend === 'wasm') {
      setWasmKernelsEnabled(false);
      const ops = adamwUpdate(w, g, m, v, o);
      setWasmKernelsEnabled(true);
      for (let k = 0; k < 3; k++) expect(Array.from(await out[k].data())).toEqual(Array.from(await ops[k].data()));
      tf.dispose(ops);
    }
    await expectNoTensorGrowth(() => adamwUpdate(w, g, m, v, o), { label: 'adamwUpdate' });
    tf.dispose([w, g, m, v, ...out]);
  });

  it('names a moment or gradient whose shape differs, a step under 1 and an unknown variant', () => {
    const a = tf.zeros([2, 3]);
    const b = tf.zeros([3, 2]);
    const o = variants[0];
    expect(() => adamwUpdate(a, a, b, a, o)).toThrow(/m has shape \[3, 2\], the parameter \[2, 3\]/);
    expect(() => adamwUpdate(a, a, a, a, { ...o, step: 0 })).toThrow(/step must be >= 1/);
    const bad = JSON.parse('{"variant": "adam"}') as { variant: AdamWUpdateOptions['variant'] };
    expect(() => adamwUpdate(a, a, a, a, { ...o, ...bad })).toThrow(
      /variant must be "torch" or "transformers", got adam/,
    );
    tf.dispose([a, b]);
  });
});

import { beforeAll, describe, expect, it, vi } from 'vitest';
import { tf } from '../tf.js';
import { Generator } from '../rng.js';
import { expectNoTensorGrowth, testBackends, useBackend } from '../testing.js';
import { Embedding, LayerNorm, Linear } from './layers.js';
import { Module, Parameter } from './module.js';
import { initWeights } from './init-weights.js';

// built inside the tests, once a backend runs
class Inner extends Module {
  emb = new Embedding(64, 32, { rng: new Generator(2) });
  out = new Linear(32, 4, { rng: new Generator(3) });
}
class Block extends Module {
  fc = new Linear(256, 128, { rng: new Generator(1) });
  norm = new LayerNorm(128);
  gate = new Parameter(tf.fill([1], 0.5));
  inner = new Inner();
}

const read = async (t: tf.Tensor) => Array.from((await t.data()) as Float32Array);
const stats = async (t: tf.Tensor) => {
  const v = await read(t);
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  const sd = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length);
  return { mean, sd, max: v.reduce((m, x) => Math.max(m, Math.abs(x)), 0) };
};

const { names } = await testBackends();

describe.each(names)('initWeights on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('gives every Linear / Embedding weight N(0, std^2), Linear biases 0, LayerNorm 1 / 0, and leaves other parameters', async () => {
    const m = new Block();
    m.norm.weight.value.assign(tf.fill([128], 3));
    m.norm.bias.value.assign(tf.fill([128], -1));
    initWeights(m, { rng: new Generator(7) });
    for (const w of [m.fc.weight, m.inner.emb.weight]) {
      const s = await stats(w.value);
      expect(Math.abs(s.mean)).toBeLessThan(0.002);
      expect(s.sd).toBeGreaterThan(0.019);
      expect(s.sd).toBeLessThan(0.021);
    }
    expect((await stats(m.inner.out.weight.value)).sd).toBeLessThan(0.03); // 128 values: loose
    expect((await read(m.fc.bias!.value)).every((x) => x === 0)).toBe(true);
    expect((await read(m.inner.out.bias!.value)).every((x) => x === 0)).toBe(true);
    expect((await read(m.norm.weight.value)).every((x) => x === 1)).toBe(true);
    expect((await read(m.norm.bias.value)).every((x) => x === 0)).toBe(true);
    expect(await read(m.gate.value)).toEqual([0.5]);
    m.dispose();
  });

  it('draws N(0, std^2) for the std given, reproducibly from the generator', async () => {
    const a = new Block();
    const b = new Block();
    initWeights(a, { std: 0.5, rng: new Generator(9) });
    initWeights(b, { std: 0.5, rng: new Generator(9) });
    expect(await read(a.fc.weight.value)).toEqual(await read(b.fc.weight.value));
    const s = await stats(a.fc.weight.value); // the std given, not the default
    expect(s.sd).toBeGreaterThan(0.49);
    expect(s.sd).toBeLessThan(0.51);
    expect(await read(a.inner.emb.weight.value)).toEqual(await read(b.inner.emb.weight.value));
    a.dispose();
    b.dispose();
  });

  it('frees what it draws, and rejects a std that is not a positive number', async () => {
    const m = new Block();
    await expectNoTensorGrowth(() => initWeights(m, { rng: new Generator(3) }));
    for (const std of [0, -0.02, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => initWeights(m, { std })).toThrow(/initWeights: std must be a positive number/);
    m.dispose();
  });

  it('refuses a model of another copy of the package, whose layers it would not recognise', async () => {
    vi.resetModules();
    const other = await import('./layers.js');
    expect(other.Linear).not.toBe(Linear); // two copies
    const foreign = new other.Linear(2, 3);
    const before = await read(foreign.weight.value);
    expect(() => initWeights(foreign)).toThrow(
      /^initWeights: Linear is not a Module of this copy of @fiber-vl\/tensor-core/,
    );
    expect(await read(foreign.weight.value)).toEqual(before);
    foreign.dispose();
  });
});

import { beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend } from '../backends/index.js';
import { tf } from '../tf.js';
import { Generator, skipInit } from '../rng.js';
import { truncNormal } from './init.js';
import { initWeights } from './init-weights.js';
import { Conv2d, Dropout, Embedding, LayerNorm, Linear } from './layers.js';
import { Module, Parameter } from './module.js';

class Net extends Module {
  embed: Embedding;
  proj: Linear;
  conv: Conv2d;
  norm = new LayerNorm(6);
  table: Parameter;
  drop: Dropout;
  constructor(rng: Generator, initializerRange?: number) {
    super();
    this.embed = new Embedding(10, 6, { paddingIdx: 1, rng });
    this.proj = new Linear(6, 6, { rng });
    this.conv = new Conv2d(3, 6, 3, { rng });
    this.table = new Parameter(truncNormal([9, 2], { std: 0.02 }, rng));
    this.drop = new Dropout(0.5, rng);
    if (initializerRange !== undefined) initWeights(this, { std: initializerRange, rng });
  }
}

const values = (m: Module) => new Map([...m.stateDict()].map(([k, t]) => [k, Array.from(t.dataSync())]));

describe('skipInit', () => {
  beforeAll(() => initBackend({ backend: 'cpu' }));

  it('builds the same keys and shapes, zeros where the layers draw, and draws nothing', () => {
    for (const range of [undefined, 0.02]) {
      const rng = new Generator(3);
      const skipped = skipInit(() => new Net(rng, range));
      expect(rng.getState()).toEqual(new Generator(3).getState()); // no draw moved the generator
      const drawn = new Net(new Generator(3), range);
      const shapes = (m: Module) => [...m.stateDict()].map(([k, t]) => `${k} ${t.shape}`);
      expect(shapes(skipped)).toEqual(shapes(drawn));
      for (const [key, v] of values(skipped)) {
        if (key.startsWith('norm.weight'))
          expect(v.every((x) => x === 1)).toBe(true); // not drawn: as usual
        else expect(v.every((x) => x === 0)).toBe(true);
      }
      expect([...values(drawn).get('proj.weight')!].some((x) => x !== 0)).toBe(true);
      skipped.dispose();
      drawn.dispose();
    }
  });

  it('a strict load then gives exactly the loaded model, and leaves no tensor behind', () => {
    const drawn = new Net(new Generator(5), 0.02);
    const before = tf.memory().numTensors;
    const skipped = skipInit(() => new Net(new Generator(6), 0.02));
    skipped.loadStateDict(drawn.stateDict(), { strict: true });
    expect(values(skipped)).toEqual(values(drawn));
    skipped.dispose();
    expect(tf.memory().numTensors).toBe(before);
    drawn.dispose();
  });

  it('ends with its build: generators draw again, after a throw and inside nested builds too', () => {
    const rng = new Generator(7);
    const expected = new Generator(7).uniformArray(3); // drawn before any skipInit
    const inner = skipInit(() => {
      const nested = skipInit(() => rng.normalArray(4));
      return [...nested, ...rng.uniformArray(4, 1, 2)];
    });
    expect(inner).toEqual(new Array(8).fill(0));
    expect(() =>
      skipInit(() => {
        throw new RangeError('bad config');
      }),
    ).toThrow('bad config');
    expect(rng.uniformArray(3)).toEqual(expected);
    expect(expected.some((x) => x !== 0)).toBe(true);

    // a model built inside it still drops at random when it trains
    const net = skipInit(() => new Net(rng));
    net.train();
    const kept = tf.tidy(() => net.drop.forward(tf.ones([1000])).dataSync());
    const share = kept.filter((x) => x !== 0).length / kept.length;
    expect(share).toBeGreaterThan(0.4);
    expect(share).toBeLessThan(0.6);
    net.dispose();
  });

  it('refuses an asynchronous build (a Promise or another thenable), and generators draw after it', async () => {
    const rng = new Generator(8);
    let built: Linear | undefined;
    expect(() =>
      skipInit(async () => {
        built = new Linear(2, 2, { rng });
        return built;
      }),
    ).toThrow(/Promise.*synchronously/);
    built?.dispose();
    // a build that rejects: refused, and its rejection is not reported as unhandled (vitest fails on one)
    expect(() =>
      skipInit(async () => {
        throw new Error('async failure');
      }),
    ).toThrow(/Promise.*synchronously/);
    let called = false;
    const thenable = {
      // biome-ignore lint/suspicious/noThenProperty: the thenable skipInit must refuse
      then: () => {
        called = true;
      },
    };
    expect(() => skipInit(() => thenable)).toThrow(/thenable.*synchronously/);
    expect(called).toBe(false); // refused without calling its then
    await Promise.resolve();
    expect(rng.normalArray(2).every((x) => x !== 0)).toBe(true);
  });

  /** Two fresh copies of rng.js, as an app that loads both the ESM and the CJS build holds. */
  async function twoCopiesOfRng() {
    vi.resetModules();
    const a = await import('../rng.js');
    vi.resetModules();
    const b = await import('../rng.js');
    expect(a.Generator).not.toBe(b.Generator); // two copies
    return [a, b] as const;
  }

  it('shares one switch between two copies of the module (as the ESM and CJS builds in one app)', async () => {
    const [a, b] = await twoCopiesOfRng();
    a.skipInit(() => {
      expect(Array.from(new b.Generator(1).uniformArray(2))).toEqual([0, 0]);
    });
    b.skipInit(() => {
      expect(a.initSkipped()).toBe(true);
    });
    expect(Array.from(new b.Generator(1).uniformArray(2))).toEqual(Array.from(new Generator(1).uniformArray(2)));
  });

  it('shares one default generator between two copies, so manualSeed seeds both', async () => {
    const [a, b] = await twoCopiesOfRng();
    expect(b.defaultGenerator).toBe(a.defaultGenerator);
    a.manualSeed(7);
    const fromB = b.defaultGenerator.nextUint32();
    expect(fromB).toBe(new Generator(7).nextUint32());
  });
});

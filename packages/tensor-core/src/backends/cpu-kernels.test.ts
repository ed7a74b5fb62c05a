// fiber-vl's cpu kernels against tfjs-backend-cpu's own, bit for bit (Object.is on every element,
// so -0 and NaN count): BatchMatMul, Sum, Add / Sub / Multiply / RealDiv, Slice, SplitV and
// Unpack on random shapes and the edge cases. kernels.test.ts checks the copies against an index
// reference on every backend, and the parity suites run the kernels in whole models.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../tf.js';
import { Generator } from '../rng.js';
import { useBackend } from '../testing.js';
import { broadcastBinaryValues, isFiberCpuKernel, setCpuKernelsEnabled, sliceValues } from './cpu-kernels.js';

/** Runs `f` with fiber-vl's kernels and with tfjs' own; each output pair must be equal bit for bit. */
async function expectTfjsBits(f: () => tf.Tensor | tf.Tensor[], what: string) {
  const ours = [f()].flat();
  setCpuKernelsEnabled(false);
  let theirs: tf.Tensor[];
  try {
    theirs = [f()].flat();
  } finally {
    setCpuKernelsEnabled(true);
  }
  expect(ours.length, what).toBe(theirs.length);
  for (const [i, t] of ours.entries()) {
    expect(t.shape, what).toEqual(theirs[i].shape);
    expect(t.dtype, what).toBe(theirs[i].dtype);
    const a = Array.from(await t.data());
    const b = Array.from(await theirs[i].data());
    const first = a.findIndex((v, k) => !Object.is(v, b[k]));
    expect(first, `${what}: element ${first} is ${a[first]}, tfjs ${b[first]}`).toBe(-1);
  }
  tf.dispose([...ours, ...theirs]);
}

describe('fiber-vl cpu kernels', () => {
  beforeAll(() => useBackend('cpu'));
  afterEach(() => setCpuKernelsEnabled(true));

  it("are registered in place of tfjs' own", () => {
    for (const name of [
      'BatchMatMul',
      'Sum',
      'Add',
      'Sub',
      'Multiply',
      'RealDiv',
      'Slice',
      'SplitV',
      'Unpack',
      'Transpose',
    ])
      expect(isFiberCpuKernel(name), name).toBe(true);
    expect(isFiberCpuKernel('Maximum')).toBe(false);
  });

  it('batched matmul equals tfjs bit for bit: transposes, broadcast batches, K across blocks, K = 0, NaN', async () => {
    const g = new Generator(3);
    const shapes: [number, number, number, number[], number[]][] = [
      [1, 1, 1, [], []],
      [7, 5, 0, [2], [2]], // K = 0: zeros
      [3, 9, 48, [], []], // one block exactly
      [5, 6, 97, [3], []], // three blocks, the last partial; B shared by the batch
      [64, 33, 130, [], [2]], // A shared
      [2, 4, 20, [2, 3], [2, 3]],
      [0, 4, 5, [2], [2]], // empty output
    ];
    for (let t = 0; t < 24; t++)
      shapes.push([1 + g.nextInt(40), 1 + g.nextInt(40), g.nextInt(120), [[], [3]][g.nextInt(2)], []]);
    for (const [i, [M, N, K, batchA, batchB]] of shapes.entries()) {
      for (const [tA, tB] of [
        [false, false],
        [true, false],
        [false, true],
        [true, true],
      ]) {
        const withValue = (shape: number[], at: number, v: number) => {
          const data = Array.from(g.normal(shape).dataSync());
          if (at >= 0) data[at] = v;
          return tf.tensor(data, shape);
        };
        const a = withValue([...batchA, ...(tA ? [K, M] : [M, K])], i === 3 ? 2 : -1, Number.NaN);
        const b = withValue([...batchB, ...(tB ? [N, K] : [K, N])], i === 4 ? 5 : -1, Number.POSITIVE_INFINITY);
        await expectTfjsBits(() => tf.matMul(a, b, tA, tB), `[${a.shape}] x [${b.shape}] ${tA} ${tB}`);
        tf.dispose([a, b]);
      }
    }
    // a float32 tensor cast from int32 keeps its Int32Array: tfjs multiplies the stored integers
    // (16777217 is not a float32), and so must the kernel (1, where rounded values would give 0)
    const big = tf.cast(tf.tensor2d([16777217, -16777216], [1, 2], 'int32'), 'float32');
    const ones = tf.ones([2, 1]);
    await expectTfjsBits(() => tf.matMul(big, ones), 'int-backed float32');
    expect(Array.from(await tf.matMul(big, ones).data())).toEqual([1]);
    // a shape mismatch is tfjs' error
    const [p, q] = [tf.ones([2, 3]), tf.ones([4, 2])];
    expect(() => tf.matMul(p, q)).toThrow(/inner shapes \(3\) and \(4\)/);
    tf.dispose([big, ones, p, q]);
  });

  it('broadcast add, sub, mul and div equal tfjs bit for bit (signed zeros, division by zero)', async () => {
    const g = new Generator(4);
    const cases: [number[], number[]][] = [
      [[4, 5, 6], [6]], // a bias
      [
        [4, 5, 6],
        [4, 5, 1],
      ], // a LayerNorm mean
      [
        [2, 1, 3],
        [1, 4, 1],
      ], // both broadcast
      [[3, 4], []], // a scalar
      [[1], [2, 3]],
      [[2, 0, 3], [3]], // empty
      [
        [3, 7],
        [3, 7],
      ], // no broadcast
    ];
    for (let t = 0; t < 30; t++) {
      const rank = 1 + g.nextInt(5);
      const shape = Array.from({ length: rank }, () => 1 + g.nextInt(4));
      cases.push([shape, shape.slice(g.nextInt(rank)).map((d) => (g.nextInt(3) ? d : 1))]);
    }
    for (const [sa, sb] of cases) {
      const a = g.normal(sa);
      // zeros of both signs in b: division gives +-Infinity and NaN as tfjs does
      const b = tf.tidy(() => tf.mul(tf.round(g.normal(sb)), tf.sign(g.normal(sb))));
      for (const op of [tf.add, tf.sub, tf.mul, tf.div]) {
        await expectTfjsBits(() => op(a, b), `${op.name} [${sa}] [${sb}]`);
        await expectTfjsBits(() => op(b, a), `${op.name} [${sb}] [${sa}]`);
      }
      tf.dispose([a, b]);
    }
    // the helper itself, against the formula: out[i, j] = a[i, 0] - b[j]
    const out = broadcastBinaryValues(1, Float32Array.of(1, 2), [2, 1], Float32Array.of(10, 20, 30), [3], [2, 3]);
    expect(Array.from(out)).toEqual([-9, -19, -29, -8, -18, -28]);
    // float32 tensors cast from int32: the stored integers, as tfjs reads them
    const big = tf.cast(tf.tensor2d([16777217, 5], [2, 1], 'int32'), 'float32');
    const small = tf.cast(tf.tensor1d([16777216, 4], 'int32'), 'float32');
    await expectTfjsBits(() => tf.sub(big, small), 'int-backed float32 sub');
    expect(Array.from(await tf.sub(big, small).data())).toEqual([1, 16777213, -16777211, 1]);
    tf.dispose([big, small]);
    // int32 inputs stay with tfjs (tf.div of int32 is its FloorDiv)
    const i = tf.sub(tf.tensor1d([7, -7], 'int32'), tf.tensor2d([[2], [3]], [2, 1], 'int32'));
    expect(Array.from(await i.data())).toEqual([5, -9, 4, -10]);
    i.dispose();
  });

  it('sum over any axes equals tfjs bit for bit', async () => {
    const g = new Generator(6);
    const cases: [number[], number | number[], boolean][] = [
      [[700, 96], 0, false], // a bias gradient
      [[6, 37, 21], [0, 1], true],
      [[3, 50, 4, 9], [1, 2], false],
      [[4, 3, 5], [0, 2], true], // two blocks of reduced axes
      [[2, 1, 33, 1, 5], -3, false],
      [[5, 8], -1, false], // innermost: tfjs' own path
      [[2, 0, 3], 0, false], // empty
      [[3, 4, 5], [2, 0], false], // unsorted axes
      [[3, 4, 5], [-1, 0], true], // negative axes
    ];
    for (let t = 0; t < 20; t++) {
      const rank = 1 + g.nextInt(5);
      const shape = Array.from({ length: rank }, () => 1 + g.nextInt(6));
      const axes = Array.from({ length: rank }, (_, a) => a).filter(() => g.nextInt(2) === 0);
      cases.push([shape, axes.length ? axes : [g.nextInt(rank)], t % 2 === 0]);
    }
    for (const [shape, axis, keepDims] of cases) {
      const x = g.normal(shape);
      await expectTfjsBits(() => tf.sum(x, axis, keepDims), `sum [${shape}] over ${axis} keepDims ${keepDims}`);
      x.dispose();
    }
    // the gradient of a broadcast bias: a sum over the leading axes inside tfjs' Add gradient
    const x = g.normal([6, 5, 7]);
    const bias = g.normal([7]);
    await expectTfjsBits(() => tf.grad((b: tf.Tensor) => tf.sum(tf.mul(tf.add(x, b), x)))(bias), 'bias gradient');
    // a float32 tensor stored as Int32Array: tfjs rounds it to float32 when it transposes
    const big = tf.cast(tf.tensor2d([16777217, 1, 3, 16777217], [2, 2], 'int32'), 'float32');
    await expectTfjsBits(() => tf.sum(big, 0), 'int-backed float32 sum');
    tf.dispose([x, bias, big]);
    // int32 and bool stay with tfjs
    const b = tf.sum(tf.tensor2d([true, false, true, true], [2, 2], 'bool'), 0);
    expect([b.dtype, ...(await b.data())]).toEqual(['int32', 2, 1]);
    b.dispose();
  });

  it('slice, split and unstack equal tfjs bit for bit for every dtype', async () => {
    const g = new Generator(5);
    for (let t = 0; t < 30; t++) {
      const rank = 1 + g.nextInt(5);
      const shape = Array.from({ length: rank }, () => 1 + g.nextInt(5));
      const begin = shape.map((d) => g.nextInt(d));
      const extent = shape.map((d, a) => g.nextInt(d - begin[a] + 1));
      const axis = g.nextInt(rank);
      const cut = g.nextInt(shape[axis] + 1);
      for (const dtype of ['float32', 'int32', 'bool'] as const) {
        const x = tf.tidy(() => tf.cast(tf.mul(g.normal(shape), 3), dtype));
        await expectTfjsBits(() => tf.slice(x, begin, extent), `slice ${dtype} [${shape}] [${begin}] [${extent}]`);
        await expectTfjsBits(() => tf.split(x, [cut, shape[axis] - cut], axis), `split ${dtype} [${shape}] ${axis}`);
        await expectTfjsBits(() => tf.unstack(x, axis - rank), `unstack ${dtype} [${shape}] ${axis}`);
        await expectTfjsBits(() => tf.slice(x, begin, -1), `slice ${dtype} [${shape}] [${begin}] to the end`);
        await expectTfjsBits(() => tf.split(x, [cut, -1], axis), `split ${dtype} [${shape}] [${cut}, -1]`);
        if (shape[axis] % 2 === 0) await expectTfjsBits(() => tf.split(x, 2, axis), `split ${dtype} in 2`);
        x.dispose();
      }
    }
    // from the stored values of a float32 tensor cast from int32 or bool, into float32 arrays
    for (const from of [
      tf.tensor2d([16777217, 2, 3, 4, 5, 6], [2, 3], 'int32'),
      tf.tensor2d([true, false, true, true, false, true], [2, 3], 'bool'),
    ]) {
      const y = tf.cast(from, 'float32');
      await expectTfjsBits(() => [tf.slice(y, [0, 1], [2, 2]), ...tf.split(y, [1, 2], 1), ...tf.unstack(y, 1)], 'cast');
      tf.dispose([from, y]);
    }
    // runs of 16 and more are copied as blocks, shorter ones element by element
    const values = Float32Array.from({ length: 2 * 3 * 20 }, (_, i) => i);
    expect(Array.from(sliceValues(values, [2, 3, 20], [1, 1, 2], [1, 2, 17], 'float32'))).toEqual([
      ...Array.from({ length: 17 }, (_, i) => 82 + i),
      ...Array.from({ length: 17 }, (_, i) => 102 + i),
    ]);
    expect(Array.from(sliceValues(values, [2, 3, 20], [0, 2, 18], [2, 1, 2], 'float32'))).toEqual([58, 59, 118, 119]);
    // a box past the end is tfjs' error
    const x = tf.ones([3, 4]);
    expect(() => tf.slice(x, [2, 0], [2, 4])).toThrow(/would overflow input.shape\[0\] \(3\)/);
    x.dispose();
  });

  it('repeated kernels leave no data behind in the backend', () => {
    const x = tf.ones([4, 6, 8]);
    const step = () =>
      tf.tidy(() => {
        const [q, k] = tf.split(tf.add(x, tf.ones([8])), 2, 2);
        const s = tf.sum(tf.mul(tf.slice(q, [0, 1, 0], [4, 2, 4]), 2), [0, 1]); // not the innermost axes
        const p = tf.matMul(tf.unstack(q)[0], tf.slice(k, [1, 0, 0], [1, 6, 4]).squeeze([0]), false, true);
        return tf.add(tf.sum(p), tf.sum(s));
      });
    step().dispose();
    const backend = tf.engine().backend;
    const before = [tf.memory().numTensors, backend.numDataIds()];
    for (let i = 0; i < 5; i++) step().dispose();
    expect([tf.memory().numTensors, backend.numDataIds()]).toEqual(before);
    x.dispose();
  });
});

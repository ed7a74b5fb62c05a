// conv2dNhwc and the wasm UnsortedSegmentSum against tfjs' own kernels: values and gradients on
// every backend.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../tf.js';
import { Generator } from '../rng.js';
import { maxAbsDiff, testBackends, useBackend } from '../testing.js';
import { conv2dNhwc } from './conv.js';
import { hasScatterAddSegmentSum } from '../backends/cpu-kernels.js';

const { names } = await testBackends();

describe.each(names)('fast-gradient kernels on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it.each([
    { x: [2, 9, 8, 3], k: [3, 3, 3, 5], s: [1, 1] as [number, number] },
    { x: [1, 12, 16, 3], k: [4, 4, 3, 6], s: [4, 4] as [number, number] }, // a patch embedding
    { x: [2, 7, 9, 4], k: [3, 3, 4, 2], s: [2, 2] as [number, number] }, // odd sizes, stride 2
  ])('conv2dNhwc equals tf.conv2d, values and both gradients (%o)', async ({ x: xs, k, s }) => {
    const rng = new Generator(1);
    const x = rng.normal(xs) as tf.Tensor4D;
    const w = rng.normal(k) as tf.Tensor4D;
    const proj = tf.tidy(() => rng.normal(tf.conv2d(x, w, s, 'valid').shape));
    const ours = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(conv2dNhwc(a as tf.Tensor4D, b as tf.Tensor4D, s), proj)),
    )([x, w]);
    const ref = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, s, 'valid'), proj)),
    )([x, w]);
    expect(maxAbsDiff(await conv2dNhwc(x, w, s).data(), await tf.conv2d(x, w, s, 'valid').data())).toBeLessThan(1e-4);
    for (let i = 0; i < 2; i++) expect(maxAbsDiff(await ours[i].data(), await ref[i].data())).toBeLessThan(1e-3);
    tf.dispose([x, w, proj, ...ours, ...ref]);
  });

  it('conv2dNhwc computes the input gradient only where the input needs one', async () => {
    const rng = new Generator(2);
    const x = rng.normal([1, 8, 8, 3]) as tf.Tensor4D;
    const init = rng.normal([4, 4, 3, 5]);
    const w = tf.variable(init);
    const loss = (a: tf.Tensor, b: tf.Tensor) => tf.sum(conv2dNhwc(a as tf.Tensor4D, b as tf.Tensor4D, [4, 4]));
    let filterGrad: tf.Tensor | undefined;
    const filterOnly = await tf.profile(() => {
      const { value, grads } = tf.variableGrads(() => loss(x, w) as tf.Scalar, [w]);
      value.dispose();
      filterGrad = grads[w.name];
      return filterGrad;
    });
    expect(filterOnly.kernelNames).not.toContain('Conv2DBackpropInput');
    const both = await tf.profile(() => tf.grads(loss)([x, w]));
    expect(both.kernelNames).toContain('Conv2DBackpropInput');
    // the filter gradient itself: tfjs' own conv2d gradient
    const ref = tf.grad((b: tf.Tensor) => tf.sum(tf.conv2d(x, b as tf.Tensor4D, [4, 4], 'valid')))(w);
    expect(filterGrad?.shape).toEqual([4, 4, 3, 5]);
    expect(maxAbsDiff(await filterGrad!.data(), await ref.data())).toBeLessThan(1e-4);
    tf.dispose([x, init, w, ref, ...(filterGrad ? [filterGrad] : []), ...(both.result as tf.Tensor[])]);
  });

  it('conv2dNhwc names a bad rank, dtype, stride, channel count or size', () => {
    const x = tf.zeros([1, 4, 4, 3]) as tf.Tensor4D;
    const w = tf.zeros([2, 2, 3, 2]) as tf.Tensor4D;
    const xi = tf.zeros([1, 4, 4, 3], 'int32') as tf.Tensor4D;
    const w5 = tf.zeros([2, 2, 5, 2]) as tf.Tensor4D;
    const x3 = tf.zeros([4, 4, 3]);
    const small = tf.zeros([1, 1, 4, 3]) as tf.Tensor4D;
    expect(() => conv2dNhwc(x3 as tf.Tensor4D, w, [1, 1])).toThrow(/\[4, 4, 3\] and filter .* rank 4/);
    expect(() => conv2dNhwc(xi, w, [1, 1])).toThrow(/input \(int32\) .* must be float32/);
    expect(() => conv2dNhwc(x, w, [0, 1])).toThrow(/stride must be two positive integers, got \[0, 1\]/);
    expect(() => conv2dNhwc(x, w5, [1, 1])).toThrow(/has 3 channels, the filter \[2, 2, 5, 2\] wants 5/);
    expect(() => conv2dNhwc(small, w, [1, 1])).toThrow(/smaller than the filter 2 x 2/);
    tf.dispose([x, w, xi, w5, x3, small]);
  });

  it('gather gradients (UnsortedSegmentSum) scatter-add, dropping out-of-range ids', async () => {
    const table = tf.tensor2d([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    const idx = tf.tensor1d([2, 0, 2, 2], 'int32');
    const g = tf.grad((t: tf.Tensor) =>
      tf.sum(
        tf.mul(
          tf.gather(t, idx),
          tf.tensor2d([
            [1, 10],
            [2, 20],
            [3, 30],
            [4, 40],
          ]),
        ),
      ),
    )(table);
    expect(Array.from(await g.data())).toEqual([2, 20, 0, 0, 8, 80]);
    tf.dispose([table, idx, g]);
    // Out-of-range ids: our wasm kernel and tfjs' cpu kernel drop them. tfjs-backend-webgpu's own
    // kernel (not replaced by fiber-vl) writes them through WGSL's clamped array access instead, so
    // the check covers the kernels that promise it.
    if (backend === 'webgpu') return;
    const direct = tf.unsortedSegmentSum(
      tf.tensor2d([
        [1, 1],
        [2, 2],
        [4, 4],
      ]),
      tf.tensor1d([1, 5, 1], 'int32'),
      3,
    );
    expect(Array.from(await direct.data())).toEqual([0, 0, 5, 5, 0, 0]);
    direct.dispose();
  });

  it('UnsortedSegmentSum with many segments (an embedding gradient) equals the index reference', async () => {
    // wasm and cpu run fiber-vl's scatter-add (tfjs-cpu's builds a mask per segment: minutes for a
    // 50k-token vocabulary); webgpu keeps tfjs' kernel
    if (backend !== 'webgpu') expect(hasScatterAddSegmentSum(backend)).toBe(true);
    const [segments, n, inner] = [5000, 300, 3];
    const rng = new Generator(4);
    const x = rng.normal([n, inner]);
    const idsArr = Int32Array.from({ length: n }, (_, i) => (i * 7919) % segments);
    idsArr[5] = idsArr[9]; // a repeated id adds up
    const ids = tf.tensor1d(idsArr, 'int32');
    const xv = await x.data();
    const ref = new Float64Array(segments * inner);
    for (let i = 0; i < n; i++) for (let j = 0; j < inner; j++) ref[idsArr[i] * inner + j] += xv[i * inner + j];
    const y = tf.unsortedSegmentSum(x, ids, segments);
    expect(y.shape).toEqual([segments, inner]);
    expect(maxAbsDiff(await y.data(), ref)).toBeLessThan(1e-5);
    tf.dispose([x, ids, y]);
  });
});

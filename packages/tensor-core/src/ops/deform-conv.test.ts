// deformConv2d against torchvision.ops.deform_conv2d (values and every gradient, fixture written by
// scripts/fixtures/make_deform_conv_fixture.py), against a plain convolution when the offsets are
// zero, against finite differences, and for leaks, on every backend that starts here.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../tf.js';
import { Generator } from '../rng.js';
import { SafetensorsFile } from '../io/safetensors.js';
import { expectNoTensorGrowth, gradCheck, maxAbsDiff, testBackends, useBackend } from '../testing.js';
import { dcnMemoryView, deformConv2d, type DeformConv2dOptions } from './deform-conv.js';

interface Case {
  name: string;
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  bias: boolean;
  mask: boolean;
}

const fixture = await SafetensorsFile.open(join(__dirname, '../../../../fixtures/ops/deform_conv2d.safetensors'));
afterAll(() => fixture.close());
const cases: Case[] = JSON.parse(fixture.metadata.cases);
const { names, skipped } = await testBackends();
for (const s of skipped)
  describe.skip(`deformConv2d on ${s.backend} (skipped: ${s.reason})`, () => it('unavailable', () => {}));

const values = async (t: tf.Tensor) => (await t.data()) as Float32Array;
/** |ours - ref| <= 1e-4 * max(1, max|ref|), the spec's float32 tolerance. */
async function expectClose(ours: tf.Tensor, ref: tf.Tensor, what: string) {
  expect(ours.shape, what).toEqual(ref.shape);
  const r = await values(ref);
  const scale = Math.max(1, ...Array.from(r, Math.abs));
  expect(maxAbsDiff(await values(ours), r) / scale, what).toBeLessThanOrEqual(1e-4);
}

describe.each(names)('deformConv2d on %s', (backend) => {
  beforeAll(() => useBackend(backend));
  const rng = new Generator(11);

  for (const chunkElements of [undefined, 1]) {
    it.each(cases.map((c) => c.name))(
      `matches torchvision values and gradients (%s, chunkElements ${chunkElements ?? 'default'})`,
      async (name) => {
        const c = cases.find((k) => k.name === name)!;
        const t = async (key: string) => fixture.readTensor(`${name}.${key}`);
        const [x, offset, weight, dout] = await Promise.all(['input', 'offset', 'weight', 'dout'].map(t));
        const mask = c.mask ? await t('mask') : undefined;
        const bias = c.bias ? await t('bias') : undefined;
        const opts = { stride: c.stride, padding: c.padding, dilation: c.dilation, chunkElements };
        const inputs = [x, offset, weight, ...(mask ? [mask] : []), ...(bias ? [bias] : [])];
        const f = (...xs: tf.Tensor[]) =>
          deformConv2d(xs[0], xs[1], xs[2], {
            ...opts,
            mask: mask ? xs[3] : undefined,
            bias: bias ? xs[mask ? 4 : 3] : undefined,
          });
        const y = f(...inputs);
        await expectClose(y, await t('out'), `${name} forward`);
        const grads = tf.grads(f)(inputs, dout);
        const keys = ['input', 'offset', 'weight', ...(mask ? ['mask'] : []), ...(bias ? ['bias'] : [])];
        for (let i = 0; i < keys.length; i++)
          await expectClose(grads[i], await t(`grad_${keys[i]}`), `${name} grad ${keys[i]}`);
        tf.dispose([...inputs, dout, y, ...grads]);
      },
    );
  }

  it('is a plain convolution when the offsets are zero and the mask is one', async () => {
    for (const [stride, padding, dilation] of [
      [1, 1, 1],
      [2, 1, 1],
      [1, 2, 2],
      [2, 0, 1],
    ] as const) {
      const x = rng.normal([2, 3, 7, 6]);
      const w = rng.normal([5, 3, 3, 3], 0, 0.3);
      const b = rng.normal([5]);
      const ref = tf.tidy(() => {
        const padded = tf.pad(tf.transpose(x, [0, 2, 3, 1]), [
          [0, 0],
          [padding, padding],
          [padding, padding],
          [0, 0],
        ]) as tf.Tensor4D;
        const y = tf.conv2d(padded, tf.transpose(w, [2, 3, 1, 0]) as tf.Tensor4D, stride, 'valid', 'NHWC', dilation);
        return tf.transpose(tf.add(y, b), [0, 3, 1, 2]);
      });
      const [, , ho, wo] = ref.shape;
      const y = deformConv2d(x, tf.zeros([2, 18, ho, wo]), w, {
        bias: b,
        mask: tf.ones([2, 9, ho, wo]),
        stride,
        padding,
        dilation,
      });
      expect(maxAbsDiff(await values(y), await values(ref))).toBeLessThan(1e-4);
      tf.dispose([x, w, b, ref, y]);
    }
  });

  it('passes a finite-difference gradient check for every input', async () => {
    const x = rng.normal([1, 2, 4, 5]);
    // fractional offsets away from integers, where the bilinear weights are smooth
    const offset = tf.add(rng.uniform([1, 18, 4, 5], 0.2, 0.8), tf.mul(rng.normal([1, 18, 4, 5]).round(), 1));
    const mask = rng.uniform([1, 9, 4, 5], 0.1, 0.9);
    const w = rng.normal([3, 2, 3, 3], 0, 0.4);
    const b = rng.normal([3]);
    const f = (xi: tf.Tensor, o: tf.Tensor, m: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) =>
      deformConv2d(xi, o, wi, { mask: m, bias: bi, padding: 1 });
    // 8 elements per input on webgpu, where SwiftShader (a CPU Vulkan) makes each pass slow
    const maxElements = backend === 'webgpu' ? 8 : 24;
    const res = await gradCheck(f, [x, offset, mask, w, b], { eps: 1e-2, maxElements });
    expect(res.errors.map((e) => e.maxAbs <= 1e-3 + 1e-2 * e.scale)).toEqual([true, true, true, true, true]);
    tf.dispose([x, offset, mask, w, b]);
  });

  it('does not leak tensors, forward or backward', async () => {
    const x = rng.normal([1, 3, 6, 5]);
    const offset = rng.normal([1, 18, 3, 3]);
    const mask = rng.uniform([1, 9, 3, 3], 0, 1);
    const w = rng.normal([4, 3, 3, 3]);
    const opts: DeformConv2dOptions = { mask, stride: 2, padding: 1, chunkElements: 40 };
    await expectNoTensorGrowth(() => deformConv2d(x, offset, w, opts), { label: 'deformConv2d forward' });
    await expectNoTensorGrowth(
      () => tf.grads((a: tf.Tensor, o: tf.Tensor, wi: tf.Tensor) => deformConv2d(a, o, wi, opts))([x, offset, w]),
      {
        label: 'deformConv2d backward',
      },
    );
    tf.dispose([x, offset, mask, w]);
  });
});

describe('deformConv2d arguments', () => {
  beforeAll(() => useBackend('cpu'));
  it('names the tensor and the expected shape', () => {
    const x = tf.zeros([1, 4, 5, 5]);
    const w = tf.zeros([2, 4, 3, 3]);
    expect(() => deformConv2d(x, tf.zeros([1, 18, 5, 4]), w, { padding: 1 })).toThrow(
      /offset must be \[1, 18, 5, 5\].*got \[1, 18, 5, 4\]/,
    );
    expect(() => deformConv2d(x, tf.zeros([1, 36, 5, 5]), w, { padding: 1 })).toThrow(
      /2 deformable groups are not supported/,
    );
    expect(() => deformConv2d(x, tf.zeros([1, 18, 5, 5]), tf.zeros([2, 2, 3, 3]), { padding: 1 })).toThrow(
      /grouped convolution/,
    );
    expect(() => deformConv2d(x, tf.zeros([1, 18, 5, 5]), w, { padding: 1, mask: tf.zeros([1, 18, 5, 5]) })).toThrow(
      /mask must be \[1, 9, 5, 5\]/,
    );
    expect(() => deformConv2d(x, tf.zeros([1, 18, 5, 5]), w, { padding: 1, bias: tf.zeros([3]) })).toThrow(
      /bias must be \[2\]/,
    );
    expect(() => deformConv2d(tf.zeros([1, 4, 1, 1]), tf.zeros([1, 18, 1, 1]), w)).toThrow(
      /smaller than the 3x3 kernel/,
    );
  });
});

describe('dcnMemoryView', () => {
  beforeAll(() => useBackend('cpu'));
  it('reads the first Ch*h*w elements of each item as [Ch, h, w], like the unchecked CUDA op', async () => {
    const t = tf.reshape(tf.range(0, 2 * 3 * 5 * 4), [2, 3, 5, 4]);
    const v = dcnMemoryView(t, [3, 2]);
    expect(v.shape).toEqual([2, 3, 3, 2]);
    const data = Array.from(await v.data());
    expect(data.slice(0, 18)).toEqual([...Array(18).keys()]);
    expect(data.slice(18)).toEqual([...Array(18).keys()].map((i) => 60 + i));
    expect(dcnMemoryView(t, [5, 4])).toBe(t);
    expect(() => dcnMemoryView(t, [6, 4])).toThrow(/read past the \[2, 3, 5, 4\] block/);
  });
});

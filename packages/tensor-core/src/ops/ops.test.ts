// Every op against an independent float64 reference, and its gradient against finite
// differences, on every backend that starts here.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../tf.js';
import { Generator } from '../rng.js';
import { erf } from '../math.js';
import { gradCheck, maxAbsDiff, testBackends, useBackend } from '../testing.js';
import { gelu, l2Normalize, layerNorm, softmax } from './activations.js';
import { linear, matmul } from './linalg.js';
import { compositeAttention, registerAttentionKernel, scaledDotProductAttention } from './attention.js';
import { interpolateBicubic, roll, windowPartition, windowReverse } from './spatial.js';
import { bceWithLogits, crossEntropy, sigmoidFocalLoss } from './losses.js';
import { detach } from './detach.js';

const { names, skipped } = await testBackends();
for (const s of skipped) describe.skip(`ops on ${s.backend} (skipped: ${s.reason})`, () => it('unavailable', () => {}));

const rng = new Generator(7);
const rand = (shape: number[], scale = 1) => rng.normal(shape, 0, scale);
const values = async (t: tf.Tensor) => Array.from((await t.data()) as Float32Array);

const transposeLast = (x: tf.Tensor) =>
  tf.transpose(x, [...Array.from({ length: x.rank - 2 }, (_, i) => i), x.rank - 1, x.rank - 2]);

/** Row-major nested loops over the last axis: calls f(rowStart, n). */
function rows(size: number, n: number, f: (start: number) => void) {
  for (let s = 0; s < size; s += n) f(s);
}

describe.each(names)('ops on %s', (backend) => {
  beforeAll(() => useBackend(backend));
  const tol = 1e-5;

  it('matmul and linear match a float64 product, with all transpose modes', async () => {
    const a = rand([3, 4]);
    const b = rand([4, 5]);
    const [av, bv] = [await values(a), await values(b)];
    const ref: number[] = [];
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 5; j++) {
        let s = 0;
        for (let k = 0; k < 4; k++) s += av[i * 4 + k] * bv[k * 5 + j];
        ref.push(s);
      }
    expect(maxAbsDiff(await values(matmul(a, b)), ref)).toBeLessThan(tol);
    expect(maxAbsDiff(await values(matmul(tf.transpose(a), b, { transposeA: true })), ref)).toBeLessThan(tol);
    expect(maxAbsDiff(await values(matmul(a, tf.transpose(b), { transposeB: true })), ref)).toBeLessThan(tol);
    const bias = rand([5]);
    const biasV = await values(bias);
    const y = linear(tf.reshape(a, [1, 3, 4]), tf.transpose(b), bias);
    expect(y.shape).toEqual([1, 3, 5]);
    expect(
      maxAbsDiff(
        await values(y),
        ref.map((v, i) => v + biasV[i % 5]),
      ),
    ).toBeLessThan(tol);
    expect(() => linear(a, rand([5, 3]))).toThrow(/does not end in 3/);
  });

  it('matmul broadcasts batch dims on both sides as torch.matmul, values and gradients', async () => {
    // [2, 1, 3, 4] @ [1, 2, 4, 5]: tfjs' BatchMatMul flattened the batch dims (30 values for [2, 2, 3, 5])
    const cases: [number[], number[], boolean, boolean][] = [
      [[2, 1, 3, 4], [1, 2, 4, 5], false, false],
      [[3, 1, 2, 2], [1, 4, 2, 2], true, false],
      [[2, 3, 4], [3, 2, 5, 4], false, true],
      [[1, 3, 4], [2, 4, 5], false, false],
    ];
    for (const [sa, sb, tA, tB] of cases) {
      const a = rand(sa);
      const b = rand(sb);
      const [a4, b4] = [tA ? transposeLast(a) : a, tB ? transposeLast(b) : b];
      // numpy's rule on the batch dims, aligned at the right
      const [ba, bb] = [sa.slice(0, -2).reverse(), sb.slice(0, -2).reverse()];
      const full = Array.from({ length: Math.max(ba.length, bb.length) }, (_, i) =>
        Math.max(ba[i] ?? 1, bb[i] ?? 1),
      ).reverse();
      const want = (x: tf.Tensor, y: tf.Tensor) =>
        tf.matMul(
          tf.broadcastTo(x, [...full, ...x.shape.slice(-2)]),
          tf.broadcastTo(y, [...full, ...y.shape.slice(-2)]),
        );
      const got = matmul(a, b, { transposeA: tA, transposeB: tB });
      const ref = want(a4, b4);
      expect(got.shape, `${sa} @ ${sb}`).toEqual(ref.shape);
      expect(maxAbsDiff(await values(got), await values(ref))).toBeLessThan(tol);
      const w = rand(ref.shape);
      const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
        tf.sum(tf.mul(matmul(x, y, { transposeA: tA, transposeB: tB }), w)),
      )([a, b]);
      const [ra, rb] = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
        tf.sum(tf.mul(want(tA ? transposeLast(x) : x, tB ? transposeLast(y) : y), w)),
      )([a, b]);
      expect(ga.shape).toEqual(sa);
      expect(gb.shape).toEqual(sb);
      expect(maxAbsDiff(await values(ga), await values(ra))).toBeLessThan(1e-4);
      expect(maxAbsDiff(await values(gb), await values(rb))).toBeLessThan(1e-4);
      tf.dispose([a, b, got, ref, w, ga, gb, ra, rb]);
    }
    expect(() => matmul(rand([2, 3, 4]), rand([3, 4, 5]))).toThrow(
      'matmul: batch dims of [2, 3, 4] and [3, 4, 5] do not broadcast (2 against 3)',
    );
  });

  it('roll of an empty axis, softmax over a missing axis and a bicubic size of -1: torch-like results or named errors', () => {
    const empty = tf.zeros([2, 0, 3]);
    expect(roll(empty, 1, 1).shape).toEqual([2, 0, 3]); // k was NaN and tf.split threw
    expect(() => roll(empty, 1, 3)).toThrow('roll: axis 3 is out of range for rank 3');
    expect(() => softmax(empty, 3)).toThrow('softmax: axis 3 is out of range for [2, 0, 3]');
    expect(() => interpolateBicubic(tf.zeros([1, 2, 2]), [-1, 2])).toThrow(
      'interpolateBicubic: output size must be two positive integers, got [-1, 2]',
    );
    empty.dispose();
  });

  it('softmax, layerNorm, gelu and l2Normalize match float64 formulas', async () => {
    const x = rand([2, 3, 6], 2);
    const xv = await values(x);
    const sm: number[] = [];
    const ln: number[] = [];
    const l2: number[] = [];
    rows(xv.length, 6, (s) => {
      const r = xv.slice(s, s + 6);
      const m = Math.max(...r);
      const e = r.map((v) => Math.exp(v - m));
      const z = e.reduce((p, q) => p + q);
      sm.push(...e.map((v) => v / z));
      const mean = r.reduce((p, q) => p + q) / 6;
      const vr = r.reduce((p, q) => p + (q - mean) ** 2, 0) / 6;
      ln.push(...r.map((v) => (v - mean) / Math.sqrt(vr + 1e-5)));
      const norm = Math.sqrt(r.reduce((p, q) => p + q * q, 0));
      l2.push(...r.map((v) => v / Math.max(norm, 1e-12)));
    });
    expect(maxAbsDiff(await values(softmax(x)), sm)).toBeLessThan(tol);
    expect(maxAbsDiff(await values(layerNorm(x, undefined, undefined, 1e-5)), ln)).toBeLessThan(1e-4);
    expect(maxAbsDiff(await values(l2Normalize(x)), l2)).toBeLessThan(tol);
    expect(
      maxAbsDiff(
        await values(gelu(x)),
        xv.map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2))),
      ),
    ).toBeLessThan(tol);
    // softmax over a non-last axis
    const s1 = await values(softmax(x, 1));
    expect(s1[0] + s1[6] + s1[12]).toBeCloseTo(1, 5);
  });

  it('roll matches torch.roll semantics', async () => {
    const x = tf.reshape(tf.range(0, 12, 1, 'float32'), [3, 4]);
    expect(await values(roll(x, [1, -1], [0, 1]))).toEqual([9, 10, 11, 8, 1, 2, 3, 0, 5, 6, 7, 4]);
    expect(await values(roll(x, 5, 1))).toEqual([3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10]);
  });

  it('windowPartition orders windows batch-major, row-major, and windowReverse inverts it', async () => {
    const x = tf.reshape(tf.range(0, 2 * 4 * 4, 1, 'float32'), [2, 4, 4, 1]);
    const w = windowPartition(x, 2);
    expect(w.shape).toEqual([8, 2, 2, 1]);
    const wv = await values(w);
    expect(wv.slice(0, 4)).toEqual([0, 1, 4, 5]); // image 0, window (0,0)
    expect(wv.slice(4, 8)).toEqual([2, 3, 6, 7]); // image 0, window (0,1)
    expect(wv.slice(16, 20)).toEqual([16, 17, 20, 21]); // image 1, window (0,0)
    expect(await values(windowReverse(w, 2, 4, 4))).toEqual(await values(x));
    expect(() => windowPartition(tf.zeros([1, 5, 4, 1]), 2)).toThrow(/multiples of 2/);
  });

  it('bicubic interpolation matches torch.nn.functional.interpolate', async () => {
    // Reference values from torch 1.13: F.interpolate(x, size=(3, 5), mode='bicubic', align_corners=...)
    // with x = torch.arange(12.).reshape(1, 1, 3, 4) ** 2 / 10.
    const x = tf.reshape(tf.div(tf.square(tf.range(0, 12, 1, 'float32')), 10), [1, 1, 3, 4]);
    const up = interpolateBicubic(x, [3, 5]);
    expect(up.shape).toEqual([1, 1, 3, 5]);
    expect(maxAbsDiff(await values(up), BICUBIC_REF_FALSE)).toBeLessThan(1e-4);
    expect(
      maxAbsDiff(await values(interpolateBicubic(x, [3, 5], { alignCorners: true })), BICUBIC_REF_TRUE),
    ).toBeLessThan(1e-4);
    const down = interpolateBicubic(tf.reshape(tf.range(0, 36, 1, 'float32'), [6, 6]), [4, 3]);
    expect(maxAbsDiff(await values(down), BICUBIC_REF_DOWN)).toBeLessThan(1e-4);
  });

  it('attention equals softmax(q k^T * s + bias + mask) v and dispatches to a registered kernel', async () => {
    const q = rand([1, 2, 3, 4]);
    const k = rand([1, 2, 5, 4]);
    const v = rand([1, 2, 5, 4]);
    const bias = rand([2, 3, 5]);
    const mask = tf.tensor4d([0, 0, 0, -10000, -10000], [1, 1, 1, 5]);
    const [qv, kv, vv, bv, mv] = await Promise.all([q, k, v, bias, mask].map(values));
    const ref: number[] = [];
    for (let h = 0; h < 2; h++)
      for (let i = 0; i < 3; i++) {
        const sc: number[] = [];
        for (let j = 0; j < 5; j++) {
          let s = 0;
          for (let d = 0; d < 4; d++) s += qv[(h * 3 + i) * 4 + d] * 0.5 * kv[(h * 5 + j) * 4 + d];
          sc.push(s + bv[(h * 3 + i) * 5 + j] + mv[j]);
        }
        const m = Math.max(...sc);
        const e = sc.map((s) => Math.exp(s - m));
        const z = e.reduce((a, b) => a + b);
        for (let d = 0; d < 4; d++) ref.push(e.reduce((acc, p, j) => acc + (p / z) * vv[(h * 5 + j) * 4 + d], 0));
      }
    const out = scaledDotProductAttention(q, k, v, { bias, mask });
    expect(out.shape).toEqual([1, 2, 3, 4]);
    expect(maxAbsDiff(await values(out), ref)).toBeLessThan(tol);
    let calls = 0;
    registerAttentionKernel(backend, (...args) => (calls++, compositeAttention(...args)));
    scaledDotProductAttention(q, k, v).dispose();
    expect(calls).toBe(1);
    registerAttentionKernel(backend, compositeAttention);
    expect(() => scaledDotProductAttention(q, tf.zeros([1, 2, 5, 3]), v)).toThrow(/do not agree/);
  });

  it('losses match PyTorch definitions', async () => {
    const logits = rand([4, 5], 2);
    const targets = tf.tensor1d([1, -100, 4, 0], 'int32');
    const lv = await values(logits);
    const t = [1, -100, 4, 0];
    let sum = 0;
    let smooth = 0;
    let n = 0;
    for (let i = 0; i < 4; i++) {
      if (t[i] === -100) continue;
      const r = lv.slice(i * 5, i * 5 + 5);
      const m = Math.max(...r);
      const lse = m + Math.log(r.reduce((a, b) => a + Math.exp(b - m), 0));
      const nll = lse - r[t[i]];
      sum += nll;
      smooth += 0.9 * nll + 0.1 * (lse - r.reduce((a, b) => a + b) / 5);
      n++;
    }
    expect(Math.abs((await values(crossEntropy(logits, targets)))[0] - sum / n)).toBeLessThan(tol);
    expect(
      Math.abs((await values(crossEntropy(logits, targets, { labelSmoothing: 0.1 })))[0] - smooth / n),
    ).toBeLessThan(tol);
    const perItem = await values(crossEntropy(logits, targets, { reduction: 'none' }));
    expect(Math.abs(perItem[1])).toBe(0);

    const y = tf.tensor2d([1, 0, 0.5, 0, 1, 1, 0, 0, 1, 0], [2, 5]);
    const x = tf.reshape(logits, [2, 10]).slice([0, 0], [2, 5]);
    const [xv, yv] = [await values(x), await values(y)];
    const bce = xv.map((v, i) => Math.max(v, 0) - v * yv[i] + Math.log1p(Math.exp(-Math.abs(v))));
    expect(Math.abs((await values(bceWithLogits(x, y)))[0] - bce.reduce((a, b) => a + b) / 10)).toBeLessThan(tol);
    const pw = xv.map(
      (v, i) => (1 - yv[i]) * v + (1 + 2 * yv[i]) * (Math.log1p(Math.exp(-Math.abs(v))) + Math.max(-v, 0)),
    );
    expect(maxAbsDiff(await values(bceWithLogits(x, y, { reduction: 'none', posWeight: 3 })), pw)).toBeLessThan(tol);
    const focal = xv.map((v, i) => {
      const p = 1 / (1 + Math.exp(-v));
      const pt = p * yv[i] + (1 - p) * (1 - yv[i]);
      return bce[i] * (1 - pt) ** 2 * (0.25 * yv[i] + 0.75 * (1 - yv[i]));
    });
    expect(maxAbsDiff(await values(sigmoidFocalLoss(x, y)), focal)).toBeLessThan(tol);
  });

  it('crossEntropy refuses a target out of range as torch does: named on cpu and wasm, NaN on WebGPU', async () => {
    const logits = rand([2, 3, 4]);
    const targets = tf.tensor2d([0, -100, 3, 1, 4, 2], [2, 3], 'int32');
    const negative = tf.tensor2d([0, -1, 3, 1, -100, 2], [2, 3], 'int32');
    const before = tf.memory().numTensors;
    if (backend === 'webgpu') {
      const perItem = crossEntropy(logits, targets, { reduction: 'none' });
      const v = await values(perItem);
      expect(v.map(Number.isNaN)).toEqual([false, false, false, false, true, false]);
      expect(v[1]).toBe(0); // ignored
      const mean = crossEntropy(logits, negative);
      expect(Number.isNaN((await values(mean))[0])).toBe(true);
      tf.dispose([perItem, mean]);
    } else {
      expect(() => crossEntropy(logits, targets)).toThrow(
        'crossEntropy: target 4 at [1, 1] is out of bounds for 4 classes (targets are class indices in [0, 4) or ignoreIndex -100)',
      );
      expect(() => crossEntropy(logits, negative)).toThrow('crossEntropy: target -1 at [0, 1] is out of bounds');
      // a target equal to a non-default ignoreIndex is skipped, -100 is then out of range
      expect(() => crossEntropy(logits, negative, { ignoreIndex: -1 })).toThrow('target -100 at [1, 1]');
    }
    expect(tf.memory().numTensors).toBe(before);
    const options: [object, string][] = [
      [{ labelSmoothing: 1.5 }, 'crossEntropy: labelSmoothing must be in [0, 1], got 1.5'],
      [{ labelSmoothing: Number.NaN }, 'crossEntropy: labelSmoothing must be in [0, 1], got NaN'],
      [{ ignoreIndex: 0.5 }, 'crossEntropy: ignoreIndex must be an integer, got 0.5'],
      [{ reduction: 'avg' }, "crossEntropy: reduction must be 'mean', 'sum' or 'none', got avg"],
    ];
    const ok = tf.tensor2d([0, 1, 2, 3, 0, 1], [2, 3], 'int32');
    for (const [o, message] of options) expect(() => crossEntropy(logits, ok, o)).toThrow(message);
    expect(() => crossEntropy(tf.scalar(1), tf.scalar(0, 'int32'))).toThrow(
      'crossEntropy: logits must have a class axis',
    );
    tf.dispose([logits, targets, negative, ok]);
  });

  it('detach passes the value and stops the gradient', async () => {
    const x = tf.tensor1d([1, -2, 3]);
    const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(detach(a), a)))(x); // d/da (c * a) with c = a held constant
    expect(await values(g)).toEqual([1, -2, 3]);
    expect(await values(detach(x))).toEqual([1, -2, 3]);
  });

  describe('gradients match finite differences', () => {
    const cases: [string, () => tf.Tensor[], (...xs: tf.Tensor[]) => tf.Tensor][] = [
      ['matmul (batched, broadcast)', () => [rand([2, 3, 4]), rand([4, 2])], (a, b) => matmul(a, b)],
      ['matmul transposeB', () => [rand([3, 4]), rand([5, 4])], (a, b) => matmul(a, b, { transposeB: true })],
      ['linear', () => [rand([2, 3, 4]), rand([5, 4]), rand([5])], (x, w, b) => linear(x, w, b)],
      ['softmax', () => [rand([2, 5])], (x) => softmax(x)],
      ['layerNorm', () => [rand([2, 6]), rand([6]), rand([6])], (x, w, b) => layerNorm(x, w, b)],
      ['gelu', () => [rand([10], 2)], (x) => gelu(x)],
      ['l2Normalize', () => [rand([3, 4])], (x) => l2Normalize(x)],
      ['roll', () => [rand([3, 4])], (x) => roll(x, [1, -2], [0, 1])],
      ['windowPartition', () => [rand([1, 4, 4, 2])], (x) => windowPartition(x, 2)],
      ['windowReverse', () => [rand([4, 2, 2, 2])], (x) => windowReverse(x, 2, 4, 4)],
      ['interpolateBicubic', () => [rand([1, 2, 3, 3])], (x) => interpolateBicubic(x, [5, 4])],
      [
        'attention',
        () => [rand([1, 2, 3, 4]), rand([1, 2, 5, 4]), rand([1, 2, 5, 4]), rand([2, 3, 5])],
        (q, k, v, b) => scaledDotProductAttention(q, k, v, { bias: b }),
      ],
      [
        'crossEntropy',
        () => [rand([4, 5])],
        (x) => crossEntropy(x, tf.tensor1d([1, -100, 4, 0], 'int32'), { labelSmoothing: 0.1 }),
      ],
      [
        'bceWithLogits',
        () => [rand([2, 5])],
        (x) => bceWithLogits(x, tf.tensor2d([1, 0, 0.5, 0, 1, 1, 0, 0, 1, 0], [2, 5]), { posWeight: 2 }),
      ],
      [
        'sigmoidFocalLoss',
        () => [rand([2, 5])],
        (x) => sigmoidFocalLoss(x, tf.tensor2d([1, 0, 1, 0, 1, 1, 0, 0, 1, 0], [2, 5])),
      ],
    ];
    it.each(cases)('%s', async (_name, inputs, f) => {
      const xs = inputs();
      const r = await gradCheck(f, xs, { eps: 1e-2, atol: 2e-3, rtol: 2e-2 });
      expect(r.errors.map((e) => e.maxAbs <= 2e-3 + 2e-2 * e.scale)).toEqual(xs.map(() => true));
      tf.dispose(xs);
    });
  });
});

// torch 1.13 reference values (see the test above for the inputs).
const BICUBIC_REF_FALSE = [
  -0.00607500086, 0.0390251055, 0.212500006, 0.572575212, 0.930375159, 1.54532528, 2.1276257, 3.01250005, 4.08397627,
  4.97897625, 6.29672623, 7.41622782, 9.01250076, 10.7953777, 12.2275772,
];
const BICUBIC_REF_TRUE = [
  0, 0.0457031243, 0.212500006, 0.544921875, 0.899999976, 1.60000002, 2.18007803, 3.01250005, 4.01054716, 4.9000001,
  6.4000001, 7.51445389, 9.01250076, 10.6761723, 12.1000004,
];
const BICUBIC_REF_DOWN = [
  1.5546875, 3.6484375, 5.7421875, 10.625, 12.71875, 14.8125, 20.1875, 22.28125, 24.375, 29.2578125, 31.3515625,
  33.4453125,
];

import { tf } from '../tf.js';
import { KERNEL_NAMES, gemmShape } from '../kernels/wasm.js';
import { fiberKernelsActive } from '../kernels/active.js';

/** Sums a broadcast gradient back to `shape` (leading extra dims, and dims of size 1). */
export function sumToShape(g: tf.Tensor, shape: number[]): tf.Tensor {
  let out = g;
  const extra = g.rank - shape.length;
  if (extra > 0)
    out = tf.sum(
      out,
      Array.from({ length: extra }, (_, i) => i),
    );
  const axes = shape.flatMap((d, i) => (d === 1 && out.shape[i] !== 1 ? [i] : []));
  if (axes.length) out = tf.sum(out, axes, true);
  return out;
}

/** Swaps the last two axes. */
export function transposeLast2(x: tf.Tensor): tf.Tensor {
  const perm = Array.from({ length: x.rank }, (_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return tf.transpose(x, perm);
}

// tfjs' wasm matMul runs ~15x slower with its transposeA/B flags than on plain operands, and the
// stock MatMul gradient uses those flags. This product transposes explicitly in both passes.
const plainMatmul = tf.customGrad((a, b, save) => {
  const [x, y] = [a as tf.Tensor, b as tf.Tensor];
  (save as tf.GradSaveFunc)([x, y]);
  return {
    value: tf.matMul(x, y),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const d = dy as tf.Tensor;
      const [sa, sb] = saved;
      return [
        sumToShape(tf.matMul(d, transposeLast2(sb)), sa.shape),
        sumToShape(tf.matMul(transposeLast2(sa), d), sb.shape),
      ];
    },
  };
});

/** fiber-vl's GEMM kernel (wasm or webgpu) when it runs and covers the shapes (float32, batch dims equal or absent on one side). */
function fastGemm(a: tf.Tensor, b: tf.Tensor, transposeA: boolean, transposeB: boolean): boolean {
  return (
    fiberKernelsActive() &&
    a.dtype === 'float32' &&
    b.dtype === 'float32' &&
    gemmShape(a.shape, b.shape, transposeA, transposeB) !== undefined
  );
}

function runGemm(a: tf.Tensor, b: tf.Tensor, transposeA: boolean, transposeB: boolean, bias?: tf.Tensor): tf.Tensor {
  const inputs: tf.NamedTensorMap = bias ? { a, b, bias } : { a, b };
  return tf.engine().runKernel(KERNEL_NAMES.matMul, inputs, { transposeA, transposeB }) as tf.Tensor;
}

// op(A) op(B) [+ bias]: dA and dB are products with the transposes folded into the kernel's
// operand layout (no transposed copies); batch dims broadcast back with sumToShape.
tf.registerGradient({
  kernelName: KERNEL_NAMES.matMul,
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved, attrs) => {
    const d = dy as tf.Tensor;
    const [a, b] = saved;
    const tA = attrs.transposeA === true;
    const tB = attrs.transposeB === true;
    return {
      a: () =>
        sumToShape(
          tA ? matmul(b, d, { transposeA: tB, transposeB: true }) : matmul(d, b, { transposeB: !tB }),
          a.shape,
        ),
      b: () =>
        sumToShape(
          tB ? matmul(d, a, { transposeA: true, transposeB: tA }) : matmul(a, d, { transposeA: !tA }),
          b.shape,
        ),
      bias: () =>
        tf.sum(
          d,
          Array.from({ length: d.rank - 1 }, (_, i) => i),
        ),
    };
  },
});

/**
 * The batch shape `a` and `b` broadcast to (numpy / torch.matmul rules), and whether each must be
 * broadcast to it first: tfjs' BatchMatMul flattens the batch dims, so it broadcasts only an operand
 * whose batch is a single matrix ([2, 1, 3, 4] @ [1, 2, 4, 5] gave a [2, 2, 3, 5] of 30 values).
 */
function batchBroadcast(a: tf.Tensor, b: tf.Tensor): { shape: number[]; a: boolean; b: boolean } {
  const ba = a.shape.slice(0, -2);
  const bb = b.shape.slice(0, -2);
  const n = Math.max(ba.length, bb.length);
  const pa = [...new Array<number>(n - ba.length).fill(1), ...ba];
  const pb = [...new Array<number>(n - bb.length).fill(1), ...bb];
  const shape = pa.map((d, i) => {
    const e = pb[i];
    if (d !== e && d !== 1 && e !== 1)
      throw new RangeError(
        `matmul: batch dims of [${a.shape.join(', ')}] and [${b.shape.join(', ')}] do not broadcast (${d} against ${e})`,
      );
    return d === 1 ? e : d;
  });
  const size = (s: number[]) => s.reduce((x, y) => x * y, 1);
  const needs = (p: number[]) => size(p) > 1 && p.some((d, i) => d !== shape[i]);
  return { shape, a: needs(pa), b: needs(pb) };
}

/**
 * a @ b with optional transposes; batch dims broadcast as in torch.matmul. Differentiable. On wasm
 * and webgpu the fiber-vl GEMM kernel reads transposed operands in place; elsewhere no transposed-operand
 * kernel modes are used (they are slow in tfjs).
 */
export function matmul(a: tf.Tensor, b: tf.Tensor, { transposeA = false, transposeB = false } = {}): tf.Tensor {
  if (a.rank < 2 || b.rank < 2)
    throw new RangeError(
      `matmul: operands must have rank >= 2, got [${a.shape.join(', ')}] and [${b.shape.join(', ')}]`,
    );
  const batch = batchBroadcast(a, b);
  if (batch.a || batch.b)
    return tf.tidy(() =>
      matmul(
        batch.a ? tf.broadcastTo(a, [...batch.shape, ...a.shape.slice(-2)]) : a,
        batch.b ? tf.broadcastTo(b, [...batch.shape, ...b.shape.slice(-2)]) : b,
        { transposeA, transposeB },
      ),
    );
  if (fastGemm(a, b, transposeA, transposeB)) return runGemm(a, b, transposeA, transposeB);
  return tf.tidy(() => plainMatmul(transposeA ? transposeLast2(a) : a, transposeB ? transposeLast2(b) : b));
}

/**
 * torch.nn.functional.linear: x [..., in] @ weight[out, in]^T + bias[out] -> [..., out].
 * On wasm and webgpu one GEMM kernel call with the bias in its epilogue; the weight is never transposed.
 */
export function linear(x: tf.Tensor, weight: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  if (weight.rank !== 2) throw new RangeError(`linear: weight must be [out, in], got [${weight.shape.join(', ')}]`);
  const [outF, inF] = weight.shape;
  if (x.shape[x.rank - 1] !== inF) {
    throw new RangeError(`linear: input [${x.shape.join(', ')}] does not end in ${inF} (weight [${outF}, ${inF}])`);
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outF)) {
    throw new RangeError(`linear: bias must be [${outF}], got [${bias.shape.join(', ')}]`);
  }
  return tf.tidy(() => {
    const x2 = x.rank === 2 ? x : tf.reshape(x, [-1, inF]);
    let y: tf.Tensor;
    if (fastGemm(x2, weight, false, true) && (!bias || bias.dtype === 'float32')) {
      y = runGemm(x2, weight, false, true, bias);
    } else {
      y = plainMatmul(x2, tf.transpose(weight));
      if (bias) y = tf.add(y, bias);
    }
    return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), outF]);
  });
}

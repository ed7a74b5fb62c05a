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
 * a @ b with optional transposes (batch dims broadcast as in tf.matMul). Differentiable. On wasm
 * and webgpu the fiber-vl GEMM kernel reads transposed operands in place; elsewhere no transposed-operand
 * kernel modes are used (they are slow in tfjs).
 */
export function matmul(a: tf.Tensor, b: tf.Tensor, { transposeA = false, transposeB = false } = {}): tf.Tensor {
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

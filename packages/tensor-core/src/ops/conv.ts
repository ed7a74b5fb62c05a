// conv2d with a gradient that every backend runs fast. tfjs-backend-wasm has no kernel for the
// filter gradient (Conv2DBackpropFilter): the cpu fallback copies every tensor across and runs
// tfjs-cpu's loop (seconds per call on a patch embedding). Here the filter gradient is one matmul
// per kernel tap: dW[i, j] = X_pad[:, i::s, j::s, :]^T @ dY over all output positions, and the
// input gradient is the native transposed convolution, computed only where the input needs one
// (a patch embedding's pixels do not): the op is a kernel of its own (the backend's Conv2D) with
// a gradient per input, which tfjs calls only for the inputs on the path to what it differentiates.
import { tf } from '../tf.js';
import { matmul } from './linalg.js';

const KERNEL = 'FiberConv2DNhwc';

function stridesOf(attrs: tf.NamedAttrMap | undefined): [number, number] {
  const s = attrs?.strides;
  if (!Array.isArray(s) || s.length !== 2) throw new RangeError(`${KERNEL}: attr "strides" must be [sh, sw]`);
  return s as [number, number];
}

/** Registers KERNEL on `backendName` as that backend's own Conv2D (NHWC, 'valid', no dilation). */
function registerOn(backendName: string): void {
  if (tf.getKernel(KERNEL, backendName)) return;
  const conv = tf.getKernel('Conv2D', backendName);
  if (!conv) throw new Error(`conv2dNhwc: the ${backendName} backend has no Conv2D kernel`);
  tf.registerKernel({
    kernelName: KERNEL,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) =>
      conv.kernelFunc({
        inputs: { x: inputs.x, filter: inputs.filter },
        backend,
        attrs: { strides: stridesOf(attrs), pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1] },
      }),
  });
}

tf.registerGradient({
  kernelName: KERNEL,
  inputsToSave: ['x', 'filter'],
  gradFunc: (dy, [xs, ws], attrs) => {
    const stride = stridesOf(attrs);
    const d = dy as tf.Tensor4D;
    const [kh, kw, ci, co] = ws.shape;
    const [N, Ho, Wo] = d.shape;
    return {
      x: () => tf.conv2dTranspose(d, ws as tf.Tensor4D, xs.shape as [number, number, number, number], stride, 'valid'),
      filter: () => {
        const dyFlat = tf.reshape(d, [N * Ho * Wo, co]);
        if (kh === stride[0] && kw === stride[1] && xs.shape[1] === Ho * kh && xs.shape[2] === Wo * kw) {
          // non-overlapping patches (a patch embedding): one space-to-depth and one matmul
          const patches = tf.reshape(tf.transpose(tf.reshape(xs, [N, Ho, kh, Wo, kw, ci]), [0, 1, 3, 2, 4, 5]), [
            N * Ho * Wo,
            kh * kw * ci,
          ]);
          return tf.reshape(matmul(patches, dyFlat, { transposeA: true }), [kh, kw, ci, co]);
        }
        const taps: tf.Tensor[] = [];
        for (let i = 0; i < kh; i++) {
          for (let j = 0; j < kw; j++) {
            const patch = tf.stridedSlice(
              xs,
              [0, i, j, 0],
              [N, i + (Ho - 1) * stride[0] + 1, j + (Wo - 1) * stride[1] + 1, ci],
              [1, stride[0], stride[1], 1],
            );
            taps.push(matmul(tf.reshape(patch, [N * Ho * Wo, ci]), dyFlat, { transposeA: true })); // [ci, co]
          }
        }
        return tf.reshape(tf.stack(taps), [kh, kw, ci, co]);
      },
    };
  },
});

/**
 * 2-D convolution on NHWC input with an HWIO filter, 'valid' padding (pad the input first),
 * stride [sh, sw]. Differentiable with respect to both.
 */
export function conv2dNhwc(x: tf.Tensor4D, filter: tf.Tensor4D, stride: [number, number]): tf.Tensor4D {
  if (x.rank !== 4 || filter.rank !== 4)
    throw new RangeError(
      `conv2dNhwc: input [${x.shape.join(', ')}] and filter [${filter.shape.join(', ')}] must both have rank 4`,
    );
  if (x.dtype !== 'float32' || filter.dtype !== 'float32')
    throw new RangeError(`conv2dNhwc: input (${x.dtype}) and filter (${filter.dtype}) must be float32`);
  if (stride.length !== 2 || !stride.every((v) => Number.isInteger(v) && v >= 1))
    throw new RangeError(`conv2dNhwc: stride must be two positive integers, got [${stride.join(', ')}]`);
  const [kh, kw, ci] = filter.shape;
  if (x.shape[3] !== ci)
    throw new RangeError(
      `conv2dNhwc: input [${x.shape.join(', ')}] has ${x.shape[3]} channels, the filter [${filter.shape.join(', ')}] wants ${ci}`,
    );
  if (x.shape[1] < kh || x.shape[2] < kw)
    throw new RangeError(`conv2dNhwc: input [${x.shape.join(', ')}] is smaller than the filter ${kh} x ${kw}`);
  registerOn(tf.getBackend());
  return tf.engine().runKernel(KERNEL, { x, filter }, { strides: stride }) as tf.Tensor4D;
}

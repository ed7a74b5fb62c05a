// conv2d with a gradient that every backend runs fast. tfjs-backend-wasm has no kernel for the
// filter gradient (Conv2DBackpropFilter): the cpu fallback copies every tensor across and runs
// tfjs-cpu's loop (seconds per call on a patch embedding). Here the filter gradient is one matmul
// per kernel tap: dW[i, j] = X_pad[:, i::s, j::s, :]^T @ dY over all output positions, and the
// input gradient is the native transposed convolution.
import { tf } from '../tf.js';
import { matmul } from './linalg.js';

/**
 * 2-D convolution on NHWC input with an HWIO filter, 'valid' padding (pad the input first),
 * stride [sh, sw]. Differentiable with respect to both.
 */
export function conv2dNhwc(x: tf.Tensor4D, filter: tf.Tensor4D, stride: [number, number]): tf.Tensor4D {
  const [kh, kw, ci, co] = filter.shape;
  if (x.shape[3] !== ci)
    throw new RangeError(
      `conv2dNhwc: input [${x.shape.join(', ')}] has ${x.shape[3]} channels, the filter [${filter.shape.join(', ')}] wants ${ci}`,
    );
  const op = tf.customGrad((input, w, save) => {
    const [xi, wi] = [input as tf.Tensor4D, w as tf.Tensor4D];
    (save as tf.GradSaveFunc)([xi, wi]);
    return {
      value: tf.conv2d(xi, wi, stride, 'valid'),
      gradFunc: (dy, saved) => {
        const [xs, ws] = saved as [tf.Tensor4D, tf.Tensor4D];
        const d = dy as tf.Tensor4D;
        const [N, Ho, Wo] = d.shape;
        const dx = tf.conv2dTranspose(d, ws, xs.shape, stride, 'valid');
        const dyFlat = tf.reshape(d, [N * Ho * Wo, co]);
        if (kh === stride[0] && kw === stride[1] && xs.shape[1] === Ho * kh && xs.shape[2] === Wo * kw) {
          // non-overlapping patches (a patch embedding): one space-to-depth and one matmul
          const patches = tf.reshape(tf.transpose(tf.reshape(xs, [N, Ho, kh, Wo, kw, ci]), [0, 1, 3, 2, 4, 5]), [
            N * Ho * Wo,
            kh * kw * ci,
          ]);
          return [dx, tf.reshape(matmul(patches, dyFlat, { transposeA: true }), [kh, kw, ci, co])];
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
        return [dx, tf.reshape(tf.stack(taps), [kh, kw, ci, co])];
      },
    };
  });
  return op(x, filter) as tf.Tensor4D;
}

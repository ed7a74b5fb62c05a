// Small ops of convolutional heads.
import { tf } from '../tf.js';
import { separable2d } from './interpolate.js';

/** torch.nn.functional.hardsigmoid (the DyHead's h_sigmoid): relu6(x + 3) / 6. Differentiable. */
export function hardSigmoid(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.div(tf.relu6(tf.add(x, 3)), 6));
}

/** The [out, in] averaging matrix of PyTorch's adaptive average pooling along one axis. */
function adaptiveMatrix(inSize: number, outSize: number): Float32Array {
  const m = new Float32Array(outSize * inSize);
  for (let i = 0; i < outSize; i++) {
    const start = Math.floor((i * inSize) / outSize);
    const end = Math.ceil(((i + 1) * inSize) / outSize);
    for (let j = start; j < end; j++) m[i * inSize + j] = 1 / (end - start);
  }
  return m;
}

/**
 * torch.nn.functional.adaptive_avg_pool2d(x, size) for x [..., H, W]: output cell (i, j) averages
 * rows floor(i*H/oh) .. ceil((i+1)*H/oh) - 1 and the same for columns. Size [1, 1] is the global
 * average pool. Differentiable.
 */
export function adaptiveAvgPool2d(x: tf.Tensor, size: number | [number, number]): tf.Tensor {
  const [oh, ow] = Array.isArray(size) ? size : [size, size];
  if (x.rank < 2) throw new RangeError(`adaptiveAvgPool2d: need [..., H, W], got [${x.shape.join(', ')}]`);
  if (!(Number.isInteger(oh) && Number.isInteger(ow) && oh >= 1 && ow >= 1)) {
    throw new RangeError(`adaptiveAvgPool2d: output size must be positive integers, got [${oh}, ${ow}]`);
  }
  const [H, W] = x.shape.slice(-2);
  if (oh === 1 && ow === 1) return tf.mean(x, [x.rank - 2, x.rank - 1], true);
  return separable2d(x, adaptiveMatrix(H, oh), adaptiveMatrix(W, ow), [oh, ow]);
}

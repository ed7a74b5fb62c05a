// Resampling of the last two axes of [..., H, W] tensors with PyTorch's index rules:
// F.interpolate(mode='bilinear', align_corners) and F.interpolate(mode='nearest', size).
import { tf } from '../tf.js';
import { matmul } from './linalg.js';

export function checkResize(op: string, x: tf.Tensor, size: [number, number]): void {
  if (x.rank < 2) throw new RangeError(`${op}: need [..., H, W], got [${x.shape.join(', ')}]`);
  if (!size.every((s) => Number.isInteger(s) && s >= 1)) {
    throw new RangeError(`${op}: output size must be two positive integers, got [${size.join(', ')}]`);
  }
}

/**
 * out = Mh @ x @ Mw^T over the last two axes, for Mh [outH, H] and Mw [outW, W] given row-major.
 * Two plain GEMMs (tfjs' batched matmul is slow on wasm), differentiable.
 */
export function separable2d(
  x: tf.Tensor,
  mh: Float32Array,
  mw: Float32Array,
  [outH, outW]: [number, number],
): tf.Tensor {
  const [H, W] = x.shape.slice(-2);
  const lead = x.shape.slice(0, -2);
  const n = lead.reduce((a, b) => a * b, 1);
  return tf.tidy(() => {
    // [n*H, W] @ Mw^T -> [n, H, outW] -> [n, outW, H] -> [n*outW, H] @ Mh^T -> [n, outW, outH] -> [n, outH, outW]
    const rows = matmul(tf.reshape(x, [n * H, W]), tf.tensor2d(mw, [outW, W]), { transposeB: true });
    const cols = tf.reshape(tf.transpose(tf.reshape(rows, [n, H, outW]), [0, 2, 1]), [n * outW, H]);
    const out = matmul(cols, tf.tensor2d(mh, [outH, H]), { transposeB: true });
    return tf.reshape(tf.transpose(tf.reshape(out, [n, outW, outH]), [0, 2, 1]), [...lead, outH, outW]);
  });
}

/**
 * The [outSize, inSize] matrix of PyTorch's 1-D linear resampling (upsample_bilinear2d): source
 * index scale*i (alignCorners, scale = (in-1)/(out-1)) or max(0, (i+0.5)*in/out - 0.5), blended
 * between floor and the next index (clamped to the last one).
 */
export function bilinearMatrix(inSize: number, outSize: number, alignCorners: boolean): Float32Array {
  const m = new Float64Array(outSize * inSize);
  const scale = alignCorners ? (outSize > 1 ? (inSize - 1) / (outSize - 1) : 0) : inSize / outSize;
  for (let i = 0; i < outSize; i++) {
    const src = alignCorners ? scale * i : Math.max(0, scale * (i + 0.5) - 0.5);
    const i0 = Math.min(Math.floor(src), inSize - 1);
    const i1 = Math.min(i0 + 1, inSize - 1);
    const t = src - i0;
    m[i * inSize + i0] += 1 - t;
    m[i * inSize + i1] += t;
  }
  return Float32Array.from(m);
}

/**
 * F.interpolate(x, size, mode='bilinear', align_corners) for x [..., H, W]. `alignCorners: true`
 * is what F.upsample_bilinear does. Differentiable. Computed as two small matrix products, so a
 * non-finite input value spreads to its whole output row/column (0 * Inf = NaN).
 */
export function interpolateBilinear(x: tf.Tensor, size: [number, number], { alignCorners = false } = {}): tf.Tensor {
  checkResize('interpolateBilinear', x, size);
  const [H, W] = x.shape.slice(-2);
  if (H === size[0] && W === size[1]) return tf.clone(x);
  return separable2d(x, bilinearMatrix(H, size[0], alignCorners), bilinearMatrix(W, size[1], alignCorners), size);
}

/**
 * PyTorch's nearest source indices for a resize from `inSize` to `outSize` (upsample_nearest2d,
 * size given): identity, i >> 1 for exact doubling, else min(floor(i * float32(in / out)), in - 1)
 * evaluated in float32 as aten does.
 */
export function nearestIndices(inSize: number, outSize: number): Int32Array {
  const idx = new Int32Array(outSize);
  const scale = Math.fround(inSize / outSize);
  for (let i = 0; i < outSize; i++) {
    if (outSize === inSize) idx[i] = i;
    else if (outSize === 2 * inSize) idx[i] = i >> 1;
    else idx[i] = Math.min(Math.floor(Math.fround(i * scale)), inSize - 1);
  }
  return idx;
}

/** F.interpolate(x, size, mode='nearest') for x [..., H, W]. Differentiable (a gather per axis). */
export function interpolateNearest(x: tf.Tensor, size: [number, number]): tf.Tensor {
  checkResize('interpolateNearest', x, size);
  const [H, W] = x.shape.slice(-2);
  return tf.tidy(() => {
    let y = x;
    if (size[0] !== H) y = tf.gather(y, tf.tensor1d(nearestIndices(H, size[0]), 'int32'), x.rank - 2);
    if (size[1] !== W) y = tf.gather(y, tf.tensor1d(nearestIndices(W, size[1]), 'int32'), x.rank - 1);
    return y === x ? tf.clone(x) : y;
  });
}

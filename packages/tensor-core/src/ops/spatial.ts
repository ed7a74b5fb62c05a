import { tf } from '../tf.js';
import { checkResize } from './interpolate.js';
import { matmul } from './linalg.js';

/** torch.roll: out[i] = x[(i - shift) mod n] along each axis. Differentiable (slice + concat). */
export function roll(x: tf.Tensor, shifts: number | number[], axes: number | number[]): tf.Tensor {
  const s = Array.isArray(shifts) ? shifts : [shifts];
  const a = Array.isArray(axes) ? axes : [axes];
  if (s.length !== a.length) throw new RangeError(`roll: ${s.length} shifts for ${a.length} axes`);
  return tf.tidy(() => {
    let out = x;
    for (let i = 0; i < s.length; i++) {
      const axis = a[i] < 0 ? x.rank + a[i] : a[i];
      const n = x.shape[axis];
      if (n === undefined) throw new RangeError(`roll: axis ${a[i]} is out of range for rank ${x.rank}`);
      if (n === 0) continue; // an empty axis rolls to itself, as torch's
      const k = ((s[i] % n) + n) % n;
      if (k === 0) continue;
      const [head, tail] = tf.split(out, [n - k, k], axis);
      out = tf.concat([tail, head], axis);
    }
    return out;
  });
}

/** Swin's window_partition: [B, H, W, C] -> [B * nW, w, w, C], windows row-major per image. */
export function windowPartition(x: tf.Tensor, windowSize: number): tf.Tensor {
  const [B, H, W, C] = x.shape as number[];
  if (x.rank !== 4 || H % windowSize || W % windowSize) {
    throw new RangeError(
      `windowPartition: [${x.shape.join(', ')}] is not [B, H, W, C] with H, W multiples of ${windowSize}`,
    );
  }
  const w = windowSize;
  return tf.tidy(() =>
    tf.reshape(tf.transpose(tf.reshape(x, [B, H / w, w, W / w, w, C]), [0, 1, 3, 2, 4, 5]), [-1, w, w, C]),
  );
}

/** Swin's window_reverse: [B * nW, w, w, C] -> [B, H, W, C]. */
export function windowReverse(windows: tf.Tensor, windowSize: number, H: number, W: number): tf.Tensor {
  const w = windowSize;
  const C = windows.shape[3] as number;
  const B = windows.shape[0] / ((H / w) * (W / w));
  if (windows.rank !== 4 || !Number.isInteger(B)) {
    throw new RangeError(
      `windowReverse: [${windows.shape.join(', ')}] does not hold whole ${H}x${W} images of ${w}x${w} windows`,
    );
  }
  return tf.tidy(() =>
    tf.reshape(tf.transpose(tf.reshape(windows, [B, H / w, W / w, w, w, C]), [0, 1, 3, 2, 4, 5]), [B, H, W, C]),
  );
}

/** Cubic convolution weights of PyTorch's upsample_bicubic2d (A = -0.75). */
function cubicWeights(t: number): [number, number, number, number] {
  const A = -0.75;
  const near = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
  const far = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return [far(t + 1), near(t), near(1 - t), far(2 - t)];
}

/**
 * The [outSize, inSize] matrix M with out = M @ in for PyTorch's 1-D bicubic resampling
 * (border indices clamped; source index not clamped, as aten does for cubic).
 */
export function bicubicMatrix(inSize: number, outSize: number, alignCorners: boolean): Float32Array {
  const m = new Float64Array(outSize * inSize);
  const scale = alignCorners ? (outSize > 1 ? (inSize - 1) / (outSize - 1) : 0) : inSize / outSize;
  for (let i = 0; i < outSize; i++) {
    const real = alignCorners ? i * scale : (i + 0.5) * scale - 0.5;
    const x0 = Math.floor(real);
    const w = cubicWeights(real - x0);
    for (let k = 0; k < 4; k++) {
      const idx = Math.min(inSize - 1, Math.max(0, x0 - 1 + k));
      m[i * inSize + idx] += w[k];
    }
  }
  return Float32Array.from(m);
}

/**
 * torch.nn.functional.interpolate(x, size, mode='bicubic', align_corners) for x [..., H, W]
 * (PyTorch layout: the last two axes are resized). Differentiable.
 */
export function interpolateBicubic(x: tf.Tensor, size: [number, number], { alignCorners = false } = {}): tf.Tensor {
  checkResize('interpolateBicubic', x, size);
  const [H, W] = x.shape.slice(-2);
  const [outH, outW] = size;
  const lead = x.shape.slice(0, -2);
  const n = lead.reduce((a, b) => a * b, 1);
  return tf.tidy(() => {
    const mw = tf.tensor2d(bicubicMatrix(W, outW, alignCorners), [outW, W]);
    const mh = tf.tensor2d(bicubicMatrix(H, outH, alignCorners), [outH, H]);
    // [n*H, W] @ Mw^T -> [n, H, outW] -> [n, outW, H] -> [n*outW, H] @ Mh^T -> [n, outW, outH] -> [n, outH, outW]
    const rows = matmul(tf.reshape(x, [n * H, W]), mw, { transposeB: true });
    const cols = tf.reshape(tf.transpose(tf.reshape(rows, [n, H, outW]), [0, 2, 1]), [n * outW, H]);
    const out = tf.transpose(tf.reshape(matmul(cols, mh, { transposeB: true }), [n, outW, outH]), [0, 2, 1]);
    return tf.reshape(out, [...lead, outH, outW]);
  });
}

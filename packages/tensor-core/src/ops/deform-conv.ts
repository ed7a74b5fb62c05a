// Modulated deformable convolution (DCNv2) with torchvision.ops.deform_conv2d's semantics, built
// from tfjs ops so that it runs, and differentiates, on every backend.
//
// The sampled columns are gathered from the input laid out as rows [N*H*W + 1, C] (NHWC, plus one
// zero row that every out-of-map corner points at), blended with the bilinear weights times the
// mask, and multiplied with the weight as [K*C, out] (im2col + GEMM). Output rows are processed
// in chunks so that the column tensor stays bounded (P3 of an 800x1333 image at 256 channels
// would need 150 MB at once). The gradient is written by hand and recomputes the columns chunk by
// chunk, so that training keeps only the inputs, never the columns.
import { tf } from '../tf.js';
import { matmul } from './linalg.js';

type Pair = number | [number, number];

export interface DeformConv2dOptions {
  /** [out]. */
  bias?: tf.Tensor;
  /** [N, kh*kw, Ho, Wo], multiplies each sample (DCNv2); absent = all ones (DCNv1). */
  mask?: tf.Tensor;
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  /**
   * Upper bound on the elements of one gathered tensor [rows*Wo*K, C] of a chunk (default 2^22,
   * 16 MB); the peak temporary memory is a small multiple of it.
   */
  chunkElements?: number;
}

interface Geometry {
  n: number;
  c: number;
  h: number;
  w: number;
  out: number;
  kh: number;
  kw: number;
  k: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  dh: number;
  dw: number;
  ho: number;
  wo: number;
  rowsPerChunk: number;
}

const pair = (v: Pair): [number, number] => (Array.isArray(v) ? v : [v, v]);
const shapeOf = (t: tf.Tensor) => `[${t.shape.join(', ')}]`;

function geometry(x: tf.Tensor, offset: tf.Tensor, weight: tf.Tensor, o: DeformConv2dOptions): Geometry {
  const fail = (msg: string): never => {
    throw new RangeError(`deformConv2d: ${msg}`);
  };
  if (x.rank !== 4) fail(`input must be [N, C, H, W], got ${shapeOf(x)}`);
  if (weight.rank !== 4) fail(`weight must be [out, C, kh, kw], got ${shapeOf(weight)}`);
  for (const [name, t] of [
    ['input', x],
    ['offset', offset],
    ['weight', weight],
    ['mask', o.mask],
    ['bias', o.bias],
  ] as const) {
    if (t && t.dtype !== 'float32') fail(`${name} must be float32, got ${t.dtype}`);
  }
  const [n, c, h, w] = x.shape;
  const [out, cw, kh, kw] = weight.shape;
  if (cw !== c)
    fail(`weight ${shapeOf(weight)} does not take the ${c} input channels (grouped convolution is not supported)`);
  const [sh, sw] = pair(o.stride ?? 1);
  const [ph, pw] = pair(o.padding ?? 0);
  const [dh, dw] = pair(o.dilation ?? 1);
  if (!(sh >= 1 && sw >= 1 && dh >= 1 && dw >= 1 && ph >= 0 && pw >= 0)) {
    fail(
      `stride and dilation must be >= 1 and padding >= 0, ` +
        `got stride ${sh},${sw} padding ${ph},${pw} dilation ${dh},${dw}`,
    );
  }
  const ho = Math.floor((h + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const wo = Math.floor((w + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  if (ho < 1 || wo < 1) fail(`input ${shapeOf(x)} is smaller than the ${kh}x${kw} kernel (output ${ho}x${wo})`);
  const k = kh * kw;
  const want = (t: tf.Tensor, name: string, ch: number) => {
    const s: number[] = t.shape;
    if (t.rank !== 4 || s[0] !== n || s[1] !== ch || s[2] !== ho || s[3] !== wo) {
      const groups =
        t.rank === 4 && s[1] % ch === 0 && s[1] > ch ? ` (${s[1] / ch} deformable groups are not supported)` : '';
      fail(
        `${name} must be [${n}, ${ch}, ${ho}, ${wo}] for input ${shapeOf(x)} and weight ${shapeOf(weight)}, ` +
          `got ${shapeOf(t)}${groups}`,
      );
    }
  };
  want(offset, 'offset', 2 * k);
  if (o.mask) want(o.mask, 'mask', k);
  const bias = o.bias;
  if (bias && (bias.rank !== 1 || bias.shape[0] !== out)) fail(`bias must be [${out}], got ${shapeOf(bias)}`);
  const budget = o.chunkElements ?? 1 << 22;
  const rowsPerChunk = Math.max(1, Math.min(ho, Math.floor(budget / (n * wo * k * c))));
  return { n, c, h, w, out, kh, kw, k, sh, sw, ph, pw, dh, dw, ho, wo, rowsPerChunk };
}

/** The input as gather rows [N*H*W + 1, C]; the last row is zeros (where out-of-map corners point). */
function inputRows(g: Geometry, x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const rows = tf.reshape(tf.transpose(x, [0, 2, 3, 1]), [g.n * g.h * g.w, g.c]);
    return tf.concat([rows, tf.zeros([1, g.c])], 0);
  });
}

interface Plan {
  /** Row of each bilinear corner (y0x0, y0x1, y1x0, y1x1), [M] int32 with M = N*rows*Wo*K. */
  index: tf.Tensor[];
  /** Bilinear weight of each corner, [M, 1]. */
  weight: tf.Tensor[];
  /** Fractional parts of the sampling position, [M, 1]. */
  fy: tf.Tensor;
  fx: tf.Tensor;
  /** The modulation mask, [M, 1] (ones without a mask). */
  mask: tf.Tensor;
}

/**
 * Where the output rows [r0, r0 + rows) sample: position (y*s - p + i*d + dy, x*s - p + j*d + dx)
 * for tap k = i*kw + j, with (dy, dx) = offset[:, 2k : 2k+2]. Corners outside the map point at the
 * zero row; a sample with y <= -1 or y >= H (or x) then has all four corners outside or a zero
 * weight on the inside ones, exactly as the skipped samples of torchvision / the CUDA kernel.
 */
function plan(g: Geometry, offset: tf.Tensor, mask: tf.Tensor | undefined, r0: number, rows: number): Plan {
  const m = g.n * rows * g.wo * g.k;
  // [N, 2K, rows, Wo] -> [N*K, 2, rows*Wo] -> dy, dx [N, rows, Wo, K]. Nothing above rank 4: wasm
  // slices, transposes and unpacks rank-5 tensors element by element in JS.
  const off = tf.reshape(tf.slice(offset, [0, 0, r0, 0], [g.n, 2 * g.k, rows, g.wo]), [g.n * g.k, 2, rows * g.wo]);
  const component = (i: number) =>
    tf.transpose(
      tf.reshape(tf.slice(off, [0, i, 0], [g.n * g.k, 1, rows * g.wo]), [g.n, g.k, rows, g.wo]),
      [0, 2, 3, 1],
    );
  const [dy, dx] = [component(0), component(1)];
  const baseY = new Float32Array(rows * g.k);
  const baseX = new Float32Array(g.wo * g.k);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < g.k; t++) baseY[r * g.k + t] = (r0 + r) * g.sh - g.ph + Math.floor(t / g.kw) * g.dh;
  }
  for (let c = 0; c < g.wo; c++) for (let t = 0; t < g.k; t++) baseX[c * g.k + t] = c * g.sw - g.pw + (t % g.kw) * g.dw;
  const y = tf.add(dy, tf.tensor(baseY, [1, rows, 1, g.k]));
  const x = tf.add(dx, tf.tensor(baseX, [1, 1, g.wo, g.k]));
  const y0 = tf.floor(y);
  const x0 = tf.floor(x);
  const fy = tf.reshape(tf.sub(y, y0), [m, 1]);
  const fx = tf.reshape(tf.sub(x, x0), [m, 1]);
  const yi = tf.reshape(tf.cast(y0, 'int32'), [m]);
  const xi = tf.reshape(tf.cast(x0, 'int32'), [m]);
  const image = tf.reshape(
    tf.tile(tf.reshape(tf.range(0, g.n * g.h * g.w, g.h * g.w, 'int32'), [g.n, 1]), [1, m / g.n]),
    [m],
  );
  // JS numbers would promote int32 tensors to float32: integer scalars throughout.
  const int = (v: number) => tf.scalar(v, 'int32');
  const inside = (v: tf.Tensor, size: number) => tf.logicalAnd(tf.greaterEqual(v, int(0)), tf.less(v, int(size)));
  const zeroRow = int(g.n * g.h * g.w);
  const corner = (cy: tf.Tensor, cx: tf.Tensor) => {
    const valid = tf.cast(tf.logicalAnd(inside(cy, g.h), inside(cx, g.w)), 'int32');
    const row = tf.add(image, tf.add(tf.mul(cy, int(g.w)), cx));
    return tf.add(tf.mul(tf.sub(row, zeroRow), valid), zeroRow); // valid ? row : zeroRow
  };
  const y1 = tf.add(yi, int(1));
  const x1 = tf.add(xi, int(1));
  const gy = tf.sub(1, fy);
  const gx = tf.sub(1, fx);
  const maskRows = mask
    ? tf.reshape(tf.transpose(tf.slice(mask, [0, 0, r0, 0], [g.n, g.k, rows, g.wo]), [0, 2, 3, 1]), [m, 1])
    : tf.ones([m, 1]);
  return {
    index: [corner(yi, xi), corner(yi, x1), corner(y1, xi), corner(y1, x1)],
    weight: [tf.mul(gy, gx), tf.mul(gy, fx), tf.mul(fy, gx), tf.mul(fy, fx)],
    fy,
    fx,
    mask: maskRows,
  };
}

/**
 * table[index] row by row, [M, C]. GatherNd copies whole rows on wasm (~20x faster there than
 * GatherV2, which goes element by element); the cpu backend is the other way round.
 */
function gatherRows(table: tf.Tensor, index: tf.Tensor): tf.Tensor {
  if (tf.getBackend() === 'cpu') return tf.gather(table, index);
  return tf.gatherND(table, tf.reshape(index, [-1, 1]));
}

/** The modulated columns of a chunk: [N*rows*Wo, K*C]. */
function columns(g: Geometry, p: Plan, gathered: tf.Tensor[], rows: number): tf.Tensor {
  const terms = gathered.map((v, i) => tf.mul(v, tf.mul(p.weight[i], p.mask)));
  return tf.reshape(tf.addN(terms), [g.n * rows * g.wo, g.k * g.c]);
}

function forward(
  g: Geometry,
  x: tf.Tensor,
  offset: tf.Tensor,
  weight: tf.Tensor,
  mask?: tf.Tensor,
  bias?: tf.Tensor,
): tf.Tensor {
  return tf.tidy(() => {
    const table = inputRows(g, x);
    // [out, C, kh, kw] -> [K*C, out], matching the column layout (tap-major, then channel)
    const wt = tf.reshape(tf.transpose(weight, [2, 3, 1, 0]), [g.k * g.c, g.out]);
    const chunks: tf.Tensor[] = [];
    for (let r0 = 0; r0 < g.ho; r0 += g.rowsPerChunk) {
      const rows = Math.min(g.rowsPerChunk, g.ho - r0);
      chunks.push(
        tf.tidy(() => {
          const p = plan(g, offset, mask, r0, rows);
          const cols = columns(
            g,
            p,
            p.index.map((idx) => gatherRows(table, idx)),
            rows,
          );
          let y = matmul(cols, wt);
          if (bias) y = tf.add(y, bias);
          return tf.reshape(y, [g.n, rows, g.wo, g.out]);
        }),
      );
    }
    const y = chunks.length === 1 ? chunks[0] : tf.concat(chunks, 1);
    return tf.transpose(y, [0, 3, 1, 2]);
  });
}

/** Gradients w.r.t. input, offset, mask, weight and bias for dy [N, out, Ho, Wo]. */
function backward(g: Geometry, dy: tf.Tensor, x: tf.Tensor, offset: tf.Tensor, weight: tf.Tensor, mask?: tf.Tensor) {
  const table = inputRows(g, x);
  const wt = tf.tidy(() => tf.reshape(tf.transpose(weight, [2, 3, 1, 0]), [g.k * g.c, g.out]));
  const wtT = tf.transpose(wt);
  const dOut = tf.transpose(dy, [0, 2, 3, 1]); // [N, Ho, Wo, out]
  let dTable = tf.zeros(table.shape);
  let dWt = tf.zeros(wt.shape);
  const dOffset: tf.Tensor[] = [];
  const dMask: tf.Tensor[] = [];
  try {
    for (let r0 = 0; r0 < g.ho; r0 += g.rowsPerChunk) {
      const rows = Math.min(g.rowsPerChunk, g.ho - r0);
      const m = g.n * rows * g.wo * g.k;
      const [nextTable, nextWt, dOff, dM] = tf.tidy(() => {
        const p = plan(g, offset, mask, r0, rows);
        const gathered = p.index.map((idx) => gatherRows(table, idx)); // 4 x [M, C]
        const cols = columns(g, p, gathered, rows);
        const dOutRows = tf.reshape(tf.slice(dOut, [0, r0, 0, 0], [g.n, rows, g.wo, g.out]), [-1, g.out]);
        const dWtChunk = matmul(cols, dOutRows, { transposeA: true });
        const dCols = tf.reshape(matmul(dOutRows, wtT), [m, g.c]);
        // Input: each corner receives dCols * weight * mask (out-of-map corners land on the zero row).
        const updates = tf.concat(
          p.weight.map((wgt) => tf.mul(dCols, tf.mul(wgt, p.mask))),
          0,
        );
        const indices = tf.reshape(tf.concat(p.index, 0), [4 * m, 1]);
        const dTableChunk = tf.scatterND(indices, updates, table.shape);
        // d(sample)/d(corner value) summed over channels: D[i] = <gathered_i, dCols>, [M, 1].
        const d = gathered.map((v) => tf.sum(tf.mul(v, dCols), -1, true));
        const gy = tf.sub(1, p.fy);
        const gx = tf.sub(1, p.fx);
        // Bilinear weights w = [gy*gx, gy*fx, fy*gx, fy*fx]: dw/dy = [-gx, -fx, gx, fx], dw/dx = [-gy, gy, -fy, fy].
        const dPosY = tf.mul(p.mask, tf.addN([tf.mul(tf.sub(d[2], d[0]), gx), tf.mul(tf.sub(d[3], d[1]), p.fx)]));
        const dPosX = tf.mul(p.mask, tf.addN([tf.mul(tf.sub(d[1], d[0]), gy), tf.mul(tf.sub(d[3], d[2]), p.fy)]));
        // [M, 1] each -> [N, K, rows, Wo] -> [N*K, 1, rows*Wo], interleaved (dy, dx) -> [N, 2K, rows, Wo]
        const perTap = (t: tf.Tensor) =>
          tf.reshape(tf.transpose(tf.reshape(t, [g.n, rows, g.wo, g.k]), [0, 3, 1, 2]), [g.n * g.k, 1, rows * g.wo]);
        const dOffChunk = tf.reshape(tf.concat([perTap(dPosY), perTap(dPosX)], 1), [g.n, 2 * g.k, rows, g.wo]);
        const sampled = tf.addN(d.map((di, i) => tf.mul(di, p.weight[i])));
        const dMaskChunk = tf.transpose(tf.reshape(sampled, [g.n, rows, g.wo, g.k]), [0, 3, 1, 2]);
        return [tf.add(dTable, dTableChunk), tf.add(dWt, dWtChunk), dOffChunk, dMaskChunk];
      });
      tf.dispose([dTable, dWt]);
      dTable = nextTable;
      dWt = nextWt;
      dOffset.push(dOff);
      dMask.push(dM);
    }
    return tf.tidy(() => {
      const rows = tf.slice(dTable, [0, 0], [g.n * g.h * g.w, g.c]);
      return {
        input: tf.transpose(tf.reshape(rows, [g.n, g.h, g.w, g.c]), [0, 3, 1, 2]),
        offset: dOffset.length === 1 ? tf.clone(dOffset[0]) : tf.concat(dOffset, 2),
        mask: dMask.length === 1 ? tf.clone(dMask[0]) : tf.concat(dMask, 2),
        weight: tf.transpose(tf.reshape(dWt, [g.kh, g.kw, g.c, g.out]), [3, 2, 0, 1]),
        bias: tf.sum(dOut, [0, 1, 2]),
      };
    });
  } finally {
    tf.dispose([table, wt, wtT, dOut, dTable, dWt, ...dOffset, ...dMask]);
  }
}

/**
 * torchvision.ops.deform_conv2d(input, offset, weight, bias, stride, padding, dilation, mask) on
 * NCHW tensors: input [N, C, H, W], offset [N, 2*kh*kw, Ho, Wo] ((dy, dx) per tap k = i*kw + j),
 * weight [out, C, kh, kw] -> [N, out, Ho, Wo]. Samples are bilinear with zeros outside the map,
 * times `mask` [N, kh*kw, Ho, Wo] when given. One offset group and one conv group (what the
 * FIBER DyHead uses). Differentiable w.r.t. every tensor argument, with the same one-sided
 * derivatives as torchvision at integer sampling positions.
 */
export function deformConv2d(
  x: tf.Tensor,
  offset: tf.Tensor,
  weight: tf.Tensor,
  options: DeformConv2dOptions = {},
): tf.Tensor {
  const g = geometry(x, offset, weight, options);
  const { mask, bias } = options;
  const inputs = [x, offset, weight, ...(mask ? [mask] : []), ...(bias ? [bias] : [])];
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const ts = args as tf.Tensor[];
    save(ts);
    const [xi, oi, wi] = ts;
    const mi = mask ? ts[3] : undefined;
    const bi = bias ? ts[mask ? 4 : 3] : undefined;
    return {
      value: forward(g, xi, oi, wi, mi, bi),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const grads = backward(g, dy as tf.Tensor, saved[0], saved[1], saved[2], mask ? saved[3] : undefined);
        const out = [grads.input, grads.offset, grads.weight];
        if (mask) out.push(grads.mask);
        else grads.mask.dispose();
        if (bias) out.push(grads.bias);
        else grads.bias.dispose();
        return out;
      },
    };
  });
  return op(...inputs);
}

/**
 * The view the official CUDA DCN op (maskrcnn_benchmark `modulated_deform_conv`) takes of an
 * offset or mask tensor t [N, Ch, H, W] when its output is [h, w]: it never checks the shape and
 * reads, for each batch item, the first Ch*h*w elements of that item's row-major block as
 * [Ch, h, w]. The FIBER DyHead relies on this when DyConv[0] runs on level l+1 with level l's
 * offsets (fiber-spec §3.3 / §8.10). Identity when [h, w] = [H, W]. Differentiable.
 */
export function dcnMemoryView(t: tf.Tensor, [h, w]: [number, number]): tf.Tensor {
  if (t.rank !== 4) throw new RangeError(`dcnMemoryView: expected [N, Ch, H, W], got ${shapeOf(t)}`);
  const [n, ch, hh, ww] = t.shape;
  if (h === hh && w === ww) return t;
  if (!(h >= 1 && w >= 1 && h * w <= hh * ww)) {
    throw new RangeError(`dcnMemoryView: a [${h}, ${w}] output would read past the ${shapeOf(t)} block of each item`);
  }
  return tf.tidy(() => tf.reshape(tf.slice(tf.reshape(t, [n, ch * hh * ww]), [0, 0], [n, ch * h * w]), [n, ch, h, w]));
}

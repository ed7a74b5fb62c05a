// Anchors of the fine-grained FIBER detector: maskrcnn_benchmark's `make_anchor_generator_complex`
// (cell anchors from `generate_anchors`, then shifted over each FPN level's grid, row-major).

/** `MODEL.RPN` anchor settings of the fine-grained configs. */
export interface AnchorConfig {
  /** Anchor size per FPN level (P3..P7). */
  sizes: readonly number[];
  /** Stride per level. */
  strides: readonly number[];
  aspectRatios: readonly number[];
  /** Sizes per level are size * octave^(i / scalesPerOctave), i < scalesPerOctave. */
  scalesPerOctave: number;
  octave: number;
}

export const FIBER_ANCHORS: Readonly<AnchorConfig> = Object.freeze({
  sizes: Object.freeze([64, 128, 256, 512, 1024]),
  strides: Object.freeze([8, 16, 32, 64, 128]),
  aspectRatios: Object.freeze([1.0]),
  scalesPerOctave: 1,
  octave: 2.0,
});

/** Throws through `bad(field, why)` for an anchor config that would give no or non-finite anchors. */
export function validateAnchorConfig(c: AnchorConfig, bad: (field: string, why: string) => never): void {
  const list = (field: 'sizes' | 'strides' | 'aspectRatios', ok: (v: unknown) => boolean, what: string) => {
    const v: unknown = c[field];
    if (!Array.isArray(v) || v.length === 0 || !v.every(ok))
      bad(field, `must list ${what}, got ${JSON.stringify(v) ?? String(v)}`);
  };
  const positive = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;
  list('sizes', positive, 'positive numbers');
  list('strides', (v) => Number.isInteger(v) && (v as number) > 0, 'positive integers');
  list('aspectRatios', positive, 'positive numbers');
  if (!Number.isInteger(c.scalesPerOctave) || c.scalesPerOctave < 1)
    bad('scalesPerOctave', `must be a positive integer, got ${String(c.scalesPerOctave)}`);
  if (!positive(c.octave)) bad('octave', `must be a positive number, got ${String(c.octave)}`);
}

/** numpy's round: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * maskrcnn_benchmark `generate_anchors(stride, sizes, aspect_ratios)`: anchors around the centre of
 * the reference window (0, 0, stride - 1, stride - 1), ratio-major then size, xyxy with the +1
 * width convention. Stride 8, size 64 gives [-28, -28, 35, 35].
 */
export function cellAnchors(stride: number, sizes: readonly number[], aspectRatios: readonly number[]): number[][] {
  const whctr = (a: number[]) => {
    const w = a[2] - a[0] + 1;
    const h = a[3] - a[1] + 1;
    return [w, h, a[0] + 0.5 * (w - 1), a[1] + 0.5 * (h - 1)];
  };
  const mk = (w: number, h: number, cx: number, cy: number) => [
    cx - 0.5 * (w - 1),
    cy - 0.5 * (h - 1),
    cx + 0.5 * (w - 1),
    cy + 0.5 * (h - 1),
  ];
  const [w, h, cx, cy] = whctr([0, 0, stride - 1, stride - 1]);
  const out: number[][] = [];
  for (const ratio of aspectRatios) {
    const ws = roundHalfEven(Math.sqrt((w * h) / ratio));
    const hs = roundHalfEven(ws * ratio);
    const [rw, rh, rcx, rcy] = whctr(mk(ws, hs, cx, cy));
    for (const size of sizes) {
      const scale = size / stride;
      out.push(mk(rw * scale, rh * scale, rcx, rcy));
    }
  }
  return out;
}

/** Per-level anchor sizes of `make_anchor_generator_complex` (octave scales). */
export function levelSizes(config: AnchorConfig): number[][] {
  return config.sizes.map((size) =>
    Array.from({ length: config.scalesPerOctave }, (_, i) => config.octave ** (i / config.scalesPerOctave) * size),
  );
}

export function anchorsPerLocation(config: AnchorConfig = FIBER_ANCHORS): number {
  return config.aspectRatios.length * config.scalesPerOctave;
}

/**
 * Anchors of every level for feature maps of the given [height, width]s: one Float32Array
 * [H * W * A, 4] (xyxy) per level, ordered (y, x, anchor) like `grid_anchors`.
 */
export function generateAnchors(
  featureSizes: readonly (readonly [number, number])[],
  config: AnchorConfig = FIBER_ANCHORS,
): Float32Array[] {
  if (config.sizes.length !== config.strides.length) {
    throw new RangeError(
      `anchors: ${config.sizes.length} sizes but ${config.strides.length} strides (one of each per FPN level)`,
    );
  }
  if (featureSizes.length !== config.strides.length) {
    throw new RangeError(`anchors: ${featureSizes.length} feature maps but ${config.strides.length} anchor strides`);
  }
  const sizes = levelSizes(config);
  return featureSizes.map(([h, w], level) => {
    if (!(Number.isInteger(h) && Number.isInteger(w) && h >= 0 && w >= 0)) {
      throw new RangeError(`anchors: level ${level} has a bad feature size [${h}, ${w}]`);
    }
    const stride = config.strides[level];
    // the official cell anchors are float64 numpy cast to float32, the shifts float32
    const cell = cellAnchors(stride, sizes[level], config.aspectRatios).map((a) => a.map(Math.fround));
    const out = new Float32Array(h * w * cell.length * 4);
    let k = 0;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (const a of cell) {
          out[k++] = x * stride + a[0];
          out[k++] = y * stride + a[1];
          out[k++] = x * stride + a[2];
          out[k++] = y * stride + a[3];
        }
      }
    }
    return out;
  });
}

// Anti-aliased rasterisation of world scenes into 8-bit RGB images. Every shape is a signed distance
// (in units of the object's radius) and a pixel's coverage is clamp(0.5 - distance_in_pixels, 0, 1).
// Only + - * / sqrt and floor are used (no Math.sin / exp / pow, whose last bits vary between
// engines), so a scene gives byte-identical pixels on every platform.
import type { RawImage } from '@fiber-vl/swin';
import {
  COLOUR_RGB,
  SHAPES,
  type BackgroundKind,
  type Colour,
  type Shape,
  type Size,
  type Texture,
} from './attributes.js';

export type Rgb = [number, number, number];
/** [x0, y0, x1, y1] in pixels, x1 and y1 exclusive. */
export type Box = [number, number, number, number];

export interface SceneObject {
  shape: Shape;
  colour: Colour;
  size: Size;
  texture: Texture;
  /** Centre in pixels (image axes, y down) and radius: the shape fits in a circle of EXTENT * r. */
  x: number;
  y: number;
  r: number;
  /** Rotation as tan(angle / 2), which gives an exact rational rotation without trigonometry. */
  turn: number;
  /** Tight box of the visible pixels (coverage >= 0.5 once later objects are drawn on top). */
  box: Box;
  /** Visible area in pixels (coverage summed). */
  area: number;
  /** Fraction of the object's area hidden by objects drawn after it, in [0, 1). */
  occlusion: number;
  /** Indices of the objects drawn after it that hide at least 5% of it. */
  hiddenBy: number[];
  /** Its colour–shape pair is held out of the train split. */
  novel: boolean;
}

export interface Background {
  kind: BackgroundKind;
  /** flat: the first; gradient: from the first to the second; noise: value noise between them. */
  colours: [Rgb, Rgb];
  /** gradient direction, each -1, 0 or 1. */
  direction: [number, number];
  /** noise: lattice cell size in pixels, and the hash seed. */
  cell: number;
  seed: number;
}

/** A thin line drawn on the background: clutter that is no object. */
export interface Clutter {
  from: [number, number];
  to: [number, number];
  width: number;
  colour: Rgb;
}

/** Everything needed to re-render an image; objects in drawing order (later ones occlude earlier ones). */
export interface Scene {
  id: string;
  split: string;
  index: number;
  width: number;
  height: number;
  background: Background;
  clutter: Clutter[];
  objects: SceneObject[];
}

/** Every shape lies within EXTENT radii of its centre. */
export const EXTENT = 1.17;

// cos / sin of 36 and 72 degrees and sin 60, written out so that no engine's trigonometry is involved
const C36 = 0.8090169943749475;
const S36 = 0.5877852522924731;
const C72 = 0.30901699437494745;
const S72 = 0.9510565162951535;
const SIN60 = 0.8660254037844386;

/** The line through a and b as [nx, ny, c] with (nx, ny) the unit normal pointing away from `inside`. */
function halfPlane(a: readonly number[], b: readonly number[], inside: readonly number[]): [number, number, number] {
  const len = Math.sqrt((b[0] - a[0]) * (b[0] - a[0]) + (b[1] - a[1]) * (b[1] - a[1]));
  let [nx, ny] = [(b[1] - a[1]) / len, (a[0] - b[0]) / len];
  if (nx * (inside[0] - a[0]) + ny * (inside[1] - a[1]) > 0) [nx, ny] = [-nx, -ny];
  return [nx, ny, nx * a[0] + ny * a[1]];
}

/** A convex polygon [x0, y0, x1, y1, ...] as its edges' half-planes [nx, ny, c, ...]: distance max(nx u + ny v - c). */
function convex(xy: readonly number[]): Float64Array {
  const n = xy.length / 2;
  const points = Array.from({ length: n }, (_, i) => [xy[2 * i], xy[2 * i + 1]]);
  const centre = [0, 1].map((k) => points.reduce((acc, p) => acc + p[k], 0) / n);
  return Float64Array.from(points.flatMap((p, i) => halfPlane(p, points[(i + 1) % n], centre)));
}

// polygons as flat [x0, y0, x1, y1, ...] in radius units; the triangle is equilateral with its centroid on the centre
const TRIANGLE = convex([0, -1.1, 1.1 * SIN60, 0.55, -1.1 * SIN60, 0.55]);
const DIAMOND = convex([0, -1.1, 0.78, 0, 0, 1.1, -0.78, 0]);
const SQUARE_HALF = 0.82;
const ARM = 0.34; // half-width of the cross's arms

/**
 * Five-pointed star, outer radius 1.15, inner 0.48, a tip at the top. Mirrored onto u >= 0 it has
 * three tips (-90, -18 and 54 degrees); a point belongs to the tip whose direction is nearest, and
 * there the star is the wedge between that tip's two edges.
 */
const STAR = (() => {
  const [outer, inner] = [1.15, 0.48];
  const tips = [0, -1, S72, -C72, S36, C36];
  // the inner vertices on either side of each tip: at -126 / -54, -54 / 18 and 18 / 90 degrees
  const sides = [-S36, -C36, S36, -C36, S36, -C36, S72, C72, S72, C72, 0, 1];
  return [0, 1, 2].map((k) => {
    const [tx, ty] = [tips[2 * k], tips[2 * k + 1]];
    const tip = [tx * outer, ty * outer];
    const q1 = [sides[4 * k] * inner, sides[4 * k + 1] * inner];
    const q2 = [sides[4 * k + 2] * inner, sides[4 * k + 3] * inner];
    return Float64Array.from([tx, ty, ...halfPlane(q1, tip, [0, 0]), ...halfPlane(tip, q2, [0, 0])]);
  });
})();

function convexDistance(p: Float64Array, u: number, v: number): number {
  let m = -Infinity;
  for (let i = 0; i < p.length; i += 3) {
    const e = p[i] * u + p[i + 1] * v - p[i + 2];
    if (e > m) m = e;
  }
  return m;
}

/** Signed distance in radius units from local point (u, v) to the shape's outline, negative inside. */
export function shapeDistance(shape: Shape, u: number, v: number): number {
  switch (shape) {
    case 'circle':
      return Math.sqrt(u * u + v * v) - 1;
    case 'square':
      return Math.max(Math.abs(u), Math.abs(v)) - SQUARE_HALF;
    case 'triangle':
      return convexDistance(TRIANGLE, u, v);
    case 'diamond':
      return convexDistance(DIAMOND, u, v);
    case 'cross': {
      const au = Math.abs(u);
      const av = Math.abs(v);
      return Math.min(Math.max(au - ARM, av - 1), Math.max(au - 1, av - ARM));
    }
    case 'star': {
      const au = Math.abs(u);
      let best = STAR[0];
      let bestDot = best[0] * au + best[1] * v;
      for (let k = 1; k < 3; k++) {
        const dot = STAR[k][0] * au + STAR[k][1] * v;
        if (dot > bestDot) {
          best = STAR[k];
          bestDot = dot;
        }
      }
      return Math.max(best[2] * au + best[3] * v - best[4], best[5] * au + best[6] * v - best[7]);
    }
  }
}

/** Radius around the centre that is inside the shape (for skipping pixels that are surely covered). */
const INNER = Object.fromEntries(SHAPES.map((s) => [s, -shapeDistance(s, 0, 0)])) as Record<Shape, number>;

/** Anti-aliased coverage of an object over its clipped pixel box: cov[(py - y0) * w + (px - x0)]. */
export interface CoverageMask {
  x0: number;
  y0: number;
  w: number;
  h: number;
  cov: Float32Array;
}

type Placement = Pick<SceneObject, 'shape' | 'x' | 'y' | 'r' | 'turn'>;

/** Rotation (cos, sin) from tan(angle / 2). */
function rotation(turn: number): [number, number] {
  const t2 = turn * turn;
  return [(1 - t2) / (1 + t2), (2 * turn) / (1 + t2)];
}

export function coverageMask(o: Placement, width: number, height: number): CoverageMask {
  const reach = EXTENT * o.r + 1;
  const x0 = Math.max(0, Math.floor(o.x - reach));
  const y0 = Math.max(0, Math.floor(o.y - reach));
  const x1 = Math.min(width, Math.ceil(o.x + reach));
  const y1 = Math.min(height, Math.ceil(o.y + reach));
  const w = Math.max(0, x1 - x0);
  const h = Math.max(0, y1 - y0);
  const cov = new Float32Array(w * h);
  const [c, s] = rotation(o.turn);
  const inv = 1 / o.r;
  // pixels whose centre lies beyond EXTENT + half a pixel are empty; within INNER - half a pixel, full
  const outer = (EXTENT + 0.5 * inv) * (EXTENT + 0.5 * inv);
  const innerR = INNER[o.shape] - 0.5 * inv;
  const inner = innerR > 0 ? innerR * innerR : -1;
  for (let py = y0; py < y1; py++) {
    const dy = (py + 0.5 - o.y) * inv;
    for (let px = x0; px < x1; px++) {
      const dx = (px + 0.5 - o.x) * inv;
      const rho = dx * dx + dy * dy;
      if (rho >= outer) continue;
      const i = (py - y0) * w + (px - x0);
      if (rho < inner) {
        cov[i] = 1;
        continue;
      }
      // into the object's frame: rotate by -angle
      const a = 0.5 - shapeDistance(o.shape, c * dx + s * dy, c * dy - s * dx) * o.r;
      cov[i] = a <= 0 ? 0 : a >= 1 ? 1 : a;
    }
  }
  return { x0, y0, w, h, cov };
}

/** Pattern cells in radius units: at least ~2 pixels so that small objects keep a readable texture. */
function patternScale(r: number): number {
  return Math.max(2.2 / r, 0.28);
}

/** Whether local point (u, v) takes the pattern's darker shade. */
export function patternDark(texture: Texture, u: number, v: number, q: number): boolean {
  switch (texture) {
    case 'solid':
      return false;
    case 'striped':
      return (Math.floor(v / q) & 1) === 1;
    case 'checkered':
      return ((Math.floor(u / q) + Math.floor(v / q)) & 1) === 1;
    case 'dotted': {
      const cell = 2 * q;
      const fu = u / cell - Math.floor(u / cell) - 0.5;
      const fv = v / cell - Math.floor(v / cell) - 0.5;
      return fu * fu + fv * fv < 0.09;
    }
  }
}

/** A 32-bit integer hash of (x, y, seed) as a double in [0, 1). */
export function hash2(x: number, y: number, seed: number): number {
  let h = Math.imul(x | 0, 0x27d4eb2d) ^ Math.imul(y | 0, 0x165667b1) ^ (seed | 0);
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

/** Pixels are written through a Uint8ClampedArray: the store clamps and rounds (half to even) by spec. */
type Pixels = Uint8ClampedArray;

function paintBackground(data: Pixels, width: number, height: number, bg: Background) {
  const [c0, c1] = bg.colours;
  const [r0, g0, b0] = c0;
  const [dr, dg, db] = [c1[0] - r0, c1[1] - g0, c1[2] - b0];
  if (bg.kind === 'flat') {
    for (let i = 0; i < data.length; i += 3) {
      data[i] = r0;
      data[i + 1] = g0;
      data[i + 2] = b0;
    }
    return;
  }
  const [gx, gy] = bg.direction;
  // gradient: projection of the pixel centre on the direction, normalised to [0, 1] over the image
  const lo = Math.min(0, gx * width) + Math.min(0, gy * height);
  const span = Math.abs(gx) * width + Math.abs(gy) * height || 1;
  // noise: hashed values on a lattice of `cell`-pixel cells, smoothly interpolated, plus grain from an LCG
  const noise = bg.kind === 'noise';
  const cell = noise ? bg.cell : 1;
  const cols = Math.floor(width / cell) + 2;
  const rows = Math.floor(height / cell) + 2;
  const lattice = new Float64Array(noise ? cols * rows : 0);
  for (let j = 0; j < rows && noise; j++) for (let i = 0; i < cols; i++) lattice[j * cols + i] = hash2(i, j, bg.seed);
  // per column: lattice index and smoothstep weight
  const colIndex = new Int32Array(width);
  const colWeight = new Float64Array(width);
  for (let x = 0; x < width; x++) {
    const fx = (x + 0.5) / cell;
    colIndex[x] = Math.floor(fx);
    const f = fx - colIndex[x];
    colWeight[x] = f * f * (3 - 2 * f);
  }
  let state = bg.seed | 0;
  for (let y = 0; y < height; y++) {
    const fy = (y + 0.5) / cell;
    const iy = Math.floor(fy);
    const sy = (fy - iy) * (fy - iy) * (3 - 2 * (fy - iy));
    let i = y * width * 3;
    for (let x = 0; x < width; x++, i += 3) {
      let t: number;
      let grain = 0;
      if (noise) {
        const k = iy * cols + colIndex[x];
        const sx = colWeight[x];
        const a = lattice[k] + (lattice[k + 1] - lattice[k]) * sx;
        const b = lattice[k + cols] + (lattice[k + cols + 1] - lattice[k + cols]) * sx;
        t = a + (b - a) * sy;
        state = (Math.imul(state, 1664525) + 1013904223) | 0;
        grain = ((state >>> 24) - 128) / 16;
      } else t = ((x + 0.5) * gx + (y + 0.5) * gy - lo) / span;
      data[i] = r0 + dr * t + grain;
      data[i + 1] = g0 + dg * t + grain;
      data[i + 2] = b0 + db * t + grain;
    }
  }
}

function paintClutter(data: Pixels, width: number, height: number, line: Clutter) {
  const [ax, ay] = line.from;
  const [bx, by] = line.to;
  const reach = line.width / 2 + 1;
  const x0 = Math.max(0, Math.floor(Math.min(ax, bx) - reach));
  const x1 = Math.min(width, Math.ceil(Math.max(ax, bx) + reach));
  const y0 = Math.max(0, Math.floor(Math.min(ay, by) - reach));
  const y1 = Math.min(height, Math.ceil(Math.max(ay, by) + reach));
  const ex = bx - ax;
  const ey = by - ay;
  const ee = ex * ex + ey * ey || 1;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const wx = x + 0.5 - ax;
      const wy = y + 0.5 - ay;
      let t = (wx * ex + wy * ey) / ee;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const dx = wx - ex * t;
      const dy = wy - ey * t;
      const a = line.width / 2 + 0.5 - Math.sqrt(dx * dx + dy * dy);
      if (a > 0) blend(data, (y * width + x) * 3, line.colour, a >= 1 ? 1 : a);
    }
  }
}

function blend(data: Pixels, i: number, c: readonly number[], a: number) {
  data[i] = data[i] + (c[0] - data[i]) * a;
  data[i + 1] = data[i + 1] + (c[1] - data[i + 1]) * a;
  data[i + 2] = data[i + 2] + (c[2] - data[i + 2]) * a;
}

/** The pattern's darker shade of a colour. */
function shade(c: readonly number[]): Rgb {
  return [Math.round(c[0] * 0.55), Math.round(c[1] * 0.55), Math.round(c[2] * 0.55)];
}

/** Renders a scene (or a re-parsed JSON copy of one) to interleaved RGB bytes. */
export function renderScene(scene: Scene): RawImage {
  const { width, height } = scene;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new RangeError(
      `renderScene: scene ${scene.id} has width ${width} and height ${height}, expected positive integers`,
    );
  }
  const data: Pixels = new Uint8ClampedArray(width * height * 3);
  paintBackground(data, width, height, scene.background);
  for (const line of scene.clutter) paintClutter(data, width, height, line);
  for (const [n, o] of scene.objects.entries()) {
    const base = COLOUR_RGB[o.colour];
    if (!base)
      throw new RangeError(`renderScene: scene ${scene.id} object ${n} has unknown colour ${JSON.stringify(o.colour)}`);
    if (!SHAPES.includes(o.shape)) {
      throw new RangeError(`renderScene: scene ${scene.id} object ${n} has unknown shape ${JSON.stringify(o.shape)}`);
    }
    const dark = shade(base);
    const { x0, y0, w, h, cov } = coverageMask(o, width, height);
    const [c, s] = rotation(o.turn);
    const inv = 1 / o.r;
    const q = patternScale(o.r);
    for (let j = 0; j < h; j++) {
      const dy = (y0 + j + 0.5 - o.y) * inv;
      for (let i = 0; i < w; i++) {
        const a = cov[j * w + i];
        if (a === 0) continue;
        const dx = (x0 + i + 0.5 - o.x) * inv;
        const colour = patternDark(o.texture, c * dx + s * dy, c * dy - s * dx, q) ? dark : base;
        blend(data, ((y0 + j) * width + x0 + i) * 3, colour, a);
      }
    }
  }
  return { data: new Uint8Array(data.buffer), width, height, channels: 3 };
}

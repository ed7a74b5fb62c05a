// Scene layout: image size, background, clutter, and objects placed one on top of another with a
// bound on how much of each stays hidden; then exact boxes, areas and occlusion from the same
// coverage masks the renderer draws with.
import type { Generator } from '@fiber-vl/tensor-core';
import type { BackgroundKind, Colour, Shape, Size, Texture } from './attributes.js';
import {
  coverageMask,
  EXTENT,
  type Background,
  type Box,
  type Clutter,
  type CoverageMask,
  type Rgb,
  type Scene,
  type SceneObject,
} from './raster.js';

/** What the layout needs to know of the world's configuration. */
export interface LayoutConfig {
  shapes: readonly Shape[];
  colours: readonly Colour[];
  sizes: readonly Size[];
  textures: readonly Texture[];
  backgrounds: readonly BackgroundKind[];
  objects: readonly [number, number];
  imageSize: readonly [number, number];
  aspectRatios: readonly number[];
  /** Radius range per size, as fractions of the image's shorter side (keep a gap so size is learnable). */
  radius: Readonly<Record<Size, readonly [number, number]>>;
  maxOcclusion: number;
  clutter: number;
  distractorRate: number;
  overlapRate: number;
  novelRate: number;
}

/** Colour–shape pairs held out of train: train scenes never hold one, val / test draw them at `novelRate`. */
export interface CompositionRules {
  train: boolean;
  heldOut: readonly (readonly [Colour, Shape])[];
}

export const pairKey = (colour: string, shape: string) => `${colour} ${shape}`;

export function pick<T>(g: Generator, items: readonly T[]): T {
  return items[g.nextInt(items.length)];
}

function uniform(g: Generator, lo: number, hi: number): number {
  return lo + (hi - lo) * g.nextDouble();
}

/** Rounds to 1/100: compact JSON, and the values the renderer sees are the ones stored. */
const r2 = (v: number) => Math.round(v * 100) / 100;

/** A pair of objects "hides" another when it covers at least this fraction of its area. */
const HIDES = 0.05;

function greyish(g: Generator, lo: number, hi: number): Rgb {
  const l = lo + g.nextInt(hi - lo + 1);
  return [l + g.nextInt(25) - 12, l + g.nextInt(25) - 12, l + g.nextInt(25) - 12];
}

function sampleBackground(g: Generator, kinds: readonly BackgroundKind[]): Background {
  const kind = pick(g, kinds);
  const first = greyish(g, 120, 220);
  const mean = (first[0] + first[1] + first[2]) / 3;
  // the second colour is lighter or darker, whichever has room: 30-60 levels for noise, 50-80 for a
  // gradient (at 30-60, like noise, it changed by only 8-15 levels across a 16 px patch of a 64 px
  // input, and models told it from a flat background about half the time)
  const span = (kind === 'gradient' ? 50 : 30) + g.nextInt(31);
  const level = Math.min(240, Math.round(mean + span * (mean > 170 ? -1 : 1)));
  const second = greyish(g, level, level);
  const directions: [number, number][] = [
    [1, 0],
    [-1, 0],
    [0, 1],
    [0, -1],
    [1, 1],
    [1, -1],
    [-1, 1],
    [-1, -1],
  ];
  return {
    kind,
    colours: kind === 'flat' ? [first, first] : [first, second],
    direction: kind === 'gradient' ? pick(g, directions) : [0, 0],
    cell: kind === 'noise' ? 5 + g.nextInt(12) : 0,
    seed: kind === 'noise' ? g.nextUint32() | 0 : 0,
  };
}

function sampleClutter(g: Generator, width: number, height: number, bg: Background, max: number): Clutter[] {
  const n = g.nextInt(max + 1);
  const short = Math.min(width, height);
  const out: Clutter[] = [];
  for (let i = 0; i < n; i++) {
    const from: [number, number] = [r2(uniform(g, 0, width)), r2(uniform(g, 0, height))];
    const to: [number, number] = [
      r2(from[0] + uniform(g, -0.4, 0.4) * short),
      r2(from[1] + uniform(g, -0.4, 0.4) * short),
    ];
    const dark = 40 + g.nextInt(30);
    const [r, gr, b] = bg.colours[0];
    const colour: Rgb = [Math.max(0, r - dark), Math.max(0, gr - dark), Math.max(0, b - dark)];
    out.push({ from, to, width: r2(uniform(g, 0.8, 1.6)), colour });
  }
  return out;
}

type Attributes = Pick<SceneObject, 'shape' | 'colour' | 'size' | 'texture'>;

function sampleAttributes(
  g: Generator,
  cfg: LayoutConfig,
  rules: CompositionRules,
  placed: readonly Attributes[],
): Attributes | null {
  const heldOut = new Set(rules.heldOut.map(([c, s]) => pairKey(c, s)));
  for (let tries = 0; tries < 50; tries++) {
    let colour = pick(g, cfg.colours);
    let shape = pick(g, cfg.shapes);
    if (!rules.train && rules.heldOut.length > 0 && g.nextDouble() < cfg.novelRate)
      [colour, shape] = pick(g, rules.heldOut);
    else if (placed.length > 0 && g.nextDouble() < cfg.distractorRate) {
      // a distractor shares its colour or its shape with an object already there
      const other = pick(g, placed);
      if (g.nextDouble() < 0.5) colour = other.colour;
      else shape = other.shape;
    }
    if (rules.train && heldOut.has(pairKey(colour, shape))) continue;
    const a: Attributes = { shape, colour, size: pick(g, cfg.sizes), texture: pick(g, cfg.textures) };
    // no two objects alike in every attribute, so that every object has a unique description
    if (
      placed.some((p) => p.shape === a.shape && p.colour === a.colour && p.size === a.size && p.texture === a.texture)
    )
      continue;
    return a;
  }
  return null;
}

/** Objects stacked in drawing order with their visible coverage (coverage times what later objects leave). */
class Stack {
  private readonly pushed: CoverageMask[] = [];
  private readonly visible: Float32Array[] = [];
  private readonly totals: number[] = [];
  /** Visible coverage summed, and pixels still at >= 0.5 (where the box comes from). */
  private readonly sums: number[] = [];
  private readonly strong: number[] = [];

  /** The coverage masks of the objects pushed, in drawing order (never written to). */
  get masks(): readonly CoverageMask[] {
    return this.pushed;
  }

  /** Adds `top` if afterwards no object is hidden beyond `maxOcclusion` or left without a box. */
  tryPush(top: CoverageMask, maxOcclusion: number): boolean {
    const total = sum(top.cov);
    const strong = top.cov.reduce((n, c) => n + (c >= 0.5 ? 1 : 0), 0);
    if (strong === 0) return false;
    for (let k = 0; k < this.pushed.length; k++) {
      const m = this.pushed[k];
      if (!intersects(m, top)) continue;
      const vis = this.visible[k];
      let hidden = 0;
      let lost = 0;
      forOverlap(m, top, (i, j) => {
        hidden += vis[i] * top.cov[j];
        // float32 products, as measureObjects computes them
        if (vis[i] >= 0.5 && Math.fround(vis[i] * (1 - top.cov[j])) < 0.5) lost++;
      });
      if (1 - (this.sums[k] - hidden) / this.totals[k] > maxOcclusion || this.strong[k] - lost <= 0) return false;
    }
    for (let k = 0; k < this.pushed.length; k++) {
      const m = this.pushed[k];
      if (!intersects(m, top)) continue;
      const vis = this.visible[k];
      forOverlap(m, top, (i, j) => {
        if (vis[i] >= 0.5) this.strong[k]--;
        this.sums[k] -= vis[i] * top.cov[j];
        vis[i] *= 1 - top.cov[j];
        if (vis[i] >= 0.5) this.strong[k]++;
      });
    }
    this.pushed.push(top);
    this.visible.push(Float32Array.from(top.cov));
    this.totals.push(total);
    this.sums.push(total);
    this.strong.push(strong);
    return true;
  }
}

function intersects(a: CoverageMask, b: CoverageMask): boolean {
  return a.x0 < b.x0 + b.w && b.x0 < a.x0 + a.w && a.y0 < b.y0 + b.h && b.y0 < a.y0 + a.h;
}

/** Calls fn(index in a, index in b) for every pixel in both masks' boxes. */
function forOverlap(a: CoverageMask, b: CoverageMask, fn: (i: number, j: number) => void) {
  const x0 = Math.max(a.x0, b.x0);
  const x1 = Math.min(a.x0 + a.w, b.x0 + b.w);
  const y0 = Math.max(a.y0, b.y0);
  const y1 = Math.min(a.y0 + a.h, b.y0 + b.h);
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) fn((y - a.y0) * a.w + (x - a.x0), (y - b.y0) * b.w + (x - b.x0));
  }
}

function sum(a: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

export interface Measurement {
  box: Box;
  area: number;
  occlusion: number;
  /** Objects drawn later that hide at least 5% of this one. */
  hiddenBy: number[];
}

/** Boxes, visible areas, occlusion and occluders of objects in drawing order (null: nothing visible). */
export function measureObjects(
  objects: readonly Pick<SceneObject, 'shape' | 'x' | 'y' | 'r' | 'turn'>[],
  width: number,
  height: number,
): (Measurement | null)[] {
  return measureMasks(objects.map((o) => coverageMask(o, width, height)));
}

/** measureObjects from the objects' coverage masks, in drawing order. */
function measureMasks(masks: readonly CoverageMask[]): (Measurement | null)[] {
  return masks.map((m, k) => {
    const vis = Float32Array.from(m.cov);
    const total = sum(m.cov);
    const hiddenBy: number[] = [];
    for (let j = k + 1; j < masks.length; j++) {
      if (!intersects(m, masks[j])) continue;
      let hidden = 0;
      forOverlap(m, masks[j], (i, jj) => {
        hidden += vis[i] * masks[j].cov[jj];
        vis[i] *= 1 - masks[j].cov[jj];
      });
      if (hidden >= HIDES * total) hiddenBy.push(j);
    }
    let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
    for (let y = 0; y < m.h; y++) {
      for (let x = 0; x < m.w; x++) {
        if (vis[y * m.w + x] < 0.5) continue;
        x0 = Math.min(x0, m.x0 + x);
        x1 = Math.max(x1, m.x0 + x + 1);
        y0 = Math.min(y0, m.y0 + y);
        y1 = Math.max(y1, m.y0 + y + 1);
      }
    }
    if (x0 === Infinity || total === 0) return null;
    const area = sum(vis);
    const occlusion = Math.round((1 - area / total) * 1000) / 1000;
    return { box: [x0, y0, x1, y1], area: Math.round(area * 10) / 10, occlusion, hiddenBy };
  });
}

export interface SceneRef {
  id: string;
  split: string;
  index: number;
}

/** Lays out one scene; every random draw comes from `g`, in a fixed order. */
export function sampleScene(g: Generator, cfg: LayoutConfig, rules: CompositionRules, ref: SceneRef): Scene {
  const short = cfg.imageSize[0] + g.nextInt(cfg.imageSize[1] - cfg.imageSize[0] + 1);
  const long = Math.round(short * pick(g, cfg.aspectRatios));
  const landscape = g.nextDouble() < 0.5;
  const width = landscape ? long : short;
  const height = landscape ? short : long;
  const background = sampleBackground(g, cfg.backgrounds);
  const clutter = sampleClutter(g, width, height, background, cfg.clutter);

  const wanted = cfg.objects[0] + g.nextInt(cfg.objects[1] - cfg.objects[0] + 1);
  const placed: Omit<SceneObject, keyof Measurement | 'novel'>[] = [];
  const stack = new Stack();
  for (let n = 0; n < wanted; n++) {
    const attrs = sampleAttributes(g, cfg, rules, placed);
    if (!attrs) continue;
    const [lo, hi] = cfg.radius[attrs.size];
    const r = r2(uniform(g, lo, hi) * short);
    const turn = attrs.shape === 'circle' ? 0 : Math.round(uniform(g, -0.15, 0.15) * 1000) / 1000;
    const margin = EXTENT * r + 1;
    for (let tries = 0; tries < 25; tries++) {
      let x = uniform(g, margin, width - margin);
      let y = uniform(g, margin, height - margin);
      if (placed.length > 0 && g.nextDouble() < cfg.overlapRate) {
        // next to an object already there, so that some objects overlap
        const other = pick(g, placed);
        const reach = (other.r + r) * 1.1;
        x = Math.min(width - margin, Math.max(margin, other.x + uniform(g, -reach, reach)));
        y = Math.min(height - margin, Math.max(margin, other.y + uniform(g, -reach, reach)));
      }
      const o = { ...attrs, x: r2(x), y: r2(y), r, turn };
      if (stack.tryPush(coverageMask(o, width, height), cfg.maxOcclusion)) {
        placed.push(o);
        break;
      }
    }
  }

  const heldOut = new Set(rules.heldOut.map(([c, s]) => pairKey(c, s)));
  // the masks the layout computed: each is coverageMask of its placed object
  const measured = measureMasks(stack.masks);
  const objects = placed.map((o, k) => {
    const m = measured[k];
    if (!m) throw new Error(`world: scene ${ref.id} object ${k} vanished after layout (a layout bug)`);
    return { ...o, ...m, novel: heldOut.has(pairKey(o.colour, o.shape)) };
  });
  return { ...ref, width, height, background, clutter, objects };
}

// Pixel operations on 8-bit RGB images ([H, W, 3] row-major), following the OpenCV / numpy code of
// ALBEF's RandomAugment that FIBER's `albef_randaug` transform uses (coarse_grained/fiber/transforms/
// randaug.py). Geometric ops use cv2.warpAffine's fixed-point bilinear sampling; enhancements use
// the same lookup tables. Deterministic: no op draws random numbers itself.
import type { RawImage } from '@fiber-vl/swin';

export type Rgb = RawImage & { channels: 3 };

function assertRgb(img: RawImage, op: string): asserts img is Rgb {
  if (img.channels !== 3 || img.data.length !== img.width * img.height * 3) {
    throw new Error(
      `${op}: expected an RGB image, got ${img.width}x${img.height}x${img.channels} with ${img.data.length} bytes`,
    );
  }
}

const blank = (width: number, height: number): Rgb => ({
  width,
  height,
  channels: 3,
  data: new Uint8Array(width * height * 3),
});

export function hflip(img: RawImage): Rgb {
  assertRgb(img, 'hflip');
  const { width: W, height: H, data } = img;
  const out = blank(W, H);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const s = (y * W + (W - 1 - x)) * 3;
      const d = (y * W + x) * 3;
      out.data[d] = data[s];
      out.data[d + 1] = data[s + 1];
      out.data[d + 2] = data[s + 2];
    }
  }
  return out;
}

/** PIL's crop((left, top, left + width, top + height)); the rectangle must lie inside the image. */
export function crop(img: RawImage, left: number, top: number, width: number, height: number): Rgb {
  assertRgb(img, 'crop');
  if (left < 0 || top < 0 || width < 1 || height < 1 || left + width > img.width || top + height > img.height) {
    throw new RangeError(
      `crop: [${left}, ${top}, ${width}x${height}] is not inside the ${img.width}x${img.height} image`,
    );
  }
  const out = blank(width, height);
  for (let y = 0; y < height; y++) {
    const s = ((top + y) * img.width + left) * 3;
    out.data.set(img.data.subarray(s, s + width * 3), y * width * 3);
  }
  return out;
}

function mapChannels(img: Rgb, tables: Uint8Array[]): Rgb {
  const out = blank(img.width, img.height);
  for (let i = 0; i < img.data.length; i += 3) {
    out.data[i] = tables[0][img.data[i]];
    out.data[i + 1] = tables[1][img.data[i + 1]];
    out.data[i + 2] = tables[2][img.data[i + 2]];
  }
  return out;
}

function channelStats(img: Rgb, c: number): { min: number; max: number; hist: Uint32Array } {
  const hist = new Uint32Array(256);
  let min = 255;
  let max = 0;
  for (let i = c; i < img.data.length; i += 3) {
    const v = img.data[i];
    hist[v]++;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max, hist };
}

/**
 * PIL.ImageOps.autocontrast (cutoff 0) per channel: [min, max] stretched to [0, 255].
 * `albefQuirk` reproduces ALBEF's numpy code exactly, where `-low` of a uint8 scalar wraps to
 * 256 - low, so any channel whose minimum is above 0 comes out almost all 255.
 */
export function autoContrast(img: RawImage, albefQuirk = false): Rgb {
  assertRgb(img, 'autoContrast');
  const tables = [0, 1, 2].map((c) => {
    const { min: low, max: high } = channelStats(img, c);
    const t = new Uint8Array(256);
    if (high <= low) {
      for (let i = 0; i < 256; i++) t[i] = i;
      return t;
    }
    const scale = 255 / (high - low);
    const offset = (albefQuirk ? (256 - low) % 256 : -low) * scale;
    for (let i = 0; i < 256; i++) t[i] = Math.trunc(Math.min(255, Math.max(0, i * scale + offset)));
    return t;
  });
  return mapChannels(img, tables);
}

/** PIL.ImageOps.equalize per channel (ALBEF's equalize_func). */
export function equalize(img: RawImage): Rgb {
  assertRgb(img, 'equalize');
  const tables = [0, 1, 2].map((c) => {
    const { hist } = channelStats(img, c);
    const nonZero = Array.from(hist).filter((h) => h !== 0);
    const step = Math.floor(nonZero.slice(0, -1).reduce((a, b) => a + b, 0) / 255);
    const t = new Uint8Array(256);
    if (step === 0) {
      for (let i = 0; i < 256; i++) t[i] = i;
      return t;
    }
    let acc = Math.floor(step / 2);
    for (let i = 0; i < 256; i++) {
      t[i] = Math.min(255, Math.floor(acc / step));
      acc += hist[i];
    }
    return t;
  });
  return mapChannels(img, tables);
}

/** PIL.ImageEnhance.Brightness as ALBEF computes it: a float32 table i * factor, clipped, truncated. */
export function brightness(img: RawImage, factor: number): Rgb {
  assertRgb(img, 'brightness');
  const t = new Uint8Array(256);
  const f = Math.fround(factor);
  for (let i = 0; i < 256; i++) t[i] = Math.trunc(Math.min(255, Math.max(0, Math.fround(i * f))));
  return mapChannels(img, [t, t, t]);
}

/** cv2.BORDER_REFLECT_101 index. */
function reflect101(i: number, n: number): number {
  if (n === 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
  return i;
}

/** Round half to even (cvRound / numpy's rint). */
function rint(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * ALBEF's sharpness_func (PIL.ImageEnhance.Sharpness up to the border): a 3x3 smoothing kernel
 * ([1 1 1; 1 5 1; 1 1 1] / 13, cv2.filter2D) blended with the image by `factor` inside a 1-pixel
 * border that keeps the original. Out-of-range blends saturate; `albefQuirk` wraps them modulo 256
 * instead, as the official float32 -> uint8 cast does on x86.
 */
export function sharpness(img: RawImage, factor: number, albefQuirk = false): Rgb {
  assertRgb(img, 'sharpness');
  const { width: W, height: H, data } = img;
  if (factor === 1) return { ...img, data: Uint8Array.from(data) };
  const f32 = Math.fround;
  const kEdge = f32(1 / 13);
  const kCentre = f32(5 / 13);
  const degenerate = blank(W, H);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let dy = -1; dy <= 1; dy++) {
          const yy = reflect101(y + dy, H);
          for (let dx = -1; dx <= 1; dx++) {
            const xx = reflect101(x + dx, W);
            acc = f32(acc + f32((dx === 0 && dy === 0 ? kCentre : kEdge) * data[(yy * W + xx) * 3 + c]));
          }
        }
        degenerate.data[(y * W + x) * 3 + c] = Math.min(255, Math.max(0, rint(acc)));
      }
    }
  }
  if (factor === 0) return degenerate;
  const out = blank(W, H);
  out.data.set(data);
  const f = f32(factor);
  for (let y = 1; y < H - 1; y++) {
    for (let x = 1; x < W - 1; x++) {
      for (let c = 0; c < 3; c++) {
        const i = (y * W + x) * 3 + c;
        const d = degenerate.data[i];
        const v = Math.trunc(f32(d + f32(f * f32(data[i] - d))));
        out.data[i] = albefQuirk ? ((v % 256) + 256) % 256 : Math.min(255, Math.max(0, v));
      }
    }
  }
  return out;
}

/** A 2x3 affine matrix [a, b, c, d, e, f]: (x, y) -> (a x + b y + c, d x + e y + f). */
export type Affine = [number, number, number, number, number, number];

export function invertAffine([a, b, c, d, e, f]: Affine): Affine {
  let det = a * e - b * d;
  det = det !== 0 ? 1 / det : 0;
  const ia = e * det;
  const ie = a * det;
  const ib = -b * det;
  const id = -d * det;
  return [ia, ib, -ia * c - ib * f, id, ie, -id * c - ie * f];
}

export function applyAffine([a, b, c, d, e, f]: Affine, x: number, y: number): [number, number] {
  return [a * x + b * y + c, d * x + e * y + f];
}

const AB_BITS = 10;
const AB_SCALE = 1 << AB_BITS;
const INTER_BITS = 5;
const INTER_TAB = 1 << INTER_BITS;
const ROUND_DELTA = AB_SCALE / INTER_TAB / 2;

/**
 * cv2.warpAffine(img, M, (W, H), flags=INTER_LINEAR, borderValue=fill) with M the forward map
 * (src -> dst): source coordinates in 1/32 pixel, bilinear weights in 1/32768, constant border.
 */
export function warpAffine(img: RawImage, forward: Affine, fill: [number, number, number]): Rgb {
  assertRgb(img, 'warpAffine');
  const { width: W, height: H, data } = img;
  const M = invertAffine(forward);
  const out = blank(W, H);
  const adelta = new Int32Array(W);
  const bdelta = new Int32Array(W);
  for (let x = 0; x < W; x++) {
    adelta[x] = rint(M[0] * x * AB_SCALE);
    bdelta[x] = rint(M[3] * x * AB_SCALE);
  }
  const px = (sx: number, sy: number, c: number) =>
    sx >= 0 && sy >= 0 && sx < W && sy < H ? data[(sy * W + sx) * 3 + c] : fill[c];
  for (let y = 0; y < H; y++) {
    const X0 = rint((M[1] * y + M[2]) * AB_SCALE) + ROUND_DELTA;
    const Y0 = rint((M[4] * y + M[5]) * AB_SCALE) + ROUND_DELTA;
    for (let x = 0; x < W; x++) {
      const X = (X0 + adelta[x]) >> (AB_BITS - INTER_BITS);
      const Y = (Y0 + bdelta[x]) >> (AB_BITS - INTER_BITS);
      const sx = X >> INTER_BITS;
      const sy = Y >> INTER_BITS;
      const fx = X & (INTER_TAB - 1);
      const fy = Y & (INTER_TAB - 1);
      const o = (y * W + x) * 3;
      if (sx >= W || sx + 1 < 0 || sy >= H || sy + 1 < 0) {
        out.data[o] = fill[0];
        out.data[o + 1] = fill[1];
        out.data[o + 2] = fill[2];
        continue;
      }
      // Weights (1/32 steps, products scaled to 2^15) are exact integers: no fix-up needed.
      const w00 = (INTER_TAB - fx) * (INTER_TAB - fy) * 32;
      const w01 = fx * (INTER_TAB - fy) * 32;
      const w10 = (INTER_TAB - fx) * fy * 32;
      const w11 = fx * fy * 32;
      for (let c = 0; c < 3; c++) {
        const v = px(sx, sy, c) * w00 + px(sx + 1, sy, c) * w01 + px(sx, sy + 1, c) * w10 + px(sx + 1, sy + 1, c) * w11;
        out.data[o + c] = Math.min(255, Math.max(0, (v + (1 << 14)) >> 15));
      }
    }
  }
  return out;
}

const f32 = Math.fround;

/**
 * ALBEF's shear_x_func / shear_y_func / translate_*_func matrices (np.float32) and rotate_func's
 * cv2.getRotationMatrix2D.
 */
export const shearXMatrix = (factor: number): Affine => [1, f32(factor), 0, 0, 1, 0];
export const shearYMatrix = (factor: number): Affine => [1, 0, 0, f32(factor), 1, 0];
export const translateXMatrix = (offset: number): Affine => [1, 0, f32(-offset), 0, 1, 0];
export const translateYMatrix = (offset: number): Affine => [1, 0, 0, 0, 1, f32(-offset)];
export function rotationMatrix(width: number, height: number, degrees: number): Affine {
  const cx = width / 2;
  const cy = height / 2;
  const rad = (degrees * Math.PI) / 180;
  const a = Math.cos(rad);
  const b = Math.sin(rad);
  return [a, b, (1 - a) * cx - b * cy, -b, a, b * cx + (1 - a) * cy];
}

// Image pre-processing of FIBER, pixel-exact: Pillow's 8-bit resampler (the `albef` transform's
// Resize((S, S), BICUBIC)), ToTensor and ImageNet normalisation in float32; and the detection
// transform (shorter side 800, longer at most 1333, BGR 0-255 with Caffe mean/std).
import { tf } from '@fiber-vl/tensor-core';

/**
 * Interleaved 8-bit pixels, row-major: grayscale (channels 1), RGB (3) or RGBA (4). The transforms
 * treat them as FIBER's `Image.convert('RGB')` does: gray is replicated to R, G and B, alpha is
 * dropped (not composited).
 */
export interface RawImage {
  width: number;
  height: number;
  channels: 1 | 3 | 4;
  data: Uint8Array | Uint8ClampedArray;
}

const positiveInteger = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
const describeValue = (x: unknown) =>
  x === null
    ? 'null'
    : typeof x === 'object'
      ? (x.constructor?.name ?? 'object')
      : typeof x === 'string'
        ? JSON.stringify(x)
        : String(x);

/**
 * Checks a RawImage before any pixel is read: positive integer width and height, 1, 3 or 4
 * channels, 8-bit data of exactly width x height x channels bytes. Throws a RangeError naming the
 * field (with `what` in front, e.g. `images[2]`) and the expected and actual values.
 */
export function validateRawImage(img: RawImage, what = 'RawImage'): RawImage {
  if (typeof img !== 'object' || img === null)
    throw new RangeError(`${what} must be an object {width, height, channels, data}, got ${describeValue(img)}`);
  for (const field of ['width', 'height'] as const) {
    if (!positiveInteger(img[field]))
      throw new RangeError(`${what}.${field} must be a positive integer, got ${describeValue(img[field])}`);
  }
  if (!([1, 3, 4] as unknown[]).includes(img.channels)) {
    throw new RangeError(
      `${what}.channels must be 1 (grayscale), 3 (RGB) or 4 (RGBA), got ${describeValue(img.channels)}`,
    );
  }
  if (!(img.data instanceof Uint8Array || img.data instanceof Uint8ClampedArray)) {
    throw new RangeError(
      `${what}.data must be a Uint8Array or Uint8ClampedArray of 8-bit pixels, got ${describeValue(img.data)}`,
    );
  }
  const expected = img.width * img.height * img.channels;
  if (img.data.length !== expected) {
    throw new RangeError(
      `${what}.data has ${img.data.length} bytes, expected width ${img.width} x height ${img.height} x channels ${img.channels} = ${expected}`,
    );
  }
  return img;
}

function checkSize(value: number, name: string) {
  if (!positiveInteger(value)) throw new RangeError(`${name} must be a positive integer, got ${describeValue(value)}`);
}

/** An output image of at most MAX_IMAGE_PIXELS: past it a resize allocates gigabytes, or cannot. */
function checkPixels(width: number, height: number, what: string) {
  if (width * height > MAX_IMAGE_PIXELS)
    throw new RangeError(
      `${what} would be ${width}x${height}, more than MAX_IMAGE_PIXELS (${MAX_IMAGE_PIXELS}, 8192 x 8192) pixels`,
    );
}

type Filter = { support: number; kernel: (x: number) => number };

/** Pillow's filters (Imaging/Resample.c). */
export const PILLOW_FILTERS: Record<'bicubic' | 'bilinear', Filter> = {
  bicubic: {
    support: 2,
    kernel: (x) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  bilinear: {
    support: 1,
    kernel: (x) => {
      x = Math.abs(x);
      return x < 1 ? 1 - x : 0;
    },
  },
};

const PRECISION_BITS = 32 - 8 - 2;

type Coefficients = { bounds: Int32Array; weights: Int32Array; ksize: number };

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis: bounds and fixed-point weights. */
function coefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const ss = 1 / filterscale;
  const k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.kernel((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < ksize; x++) {
      const w = x < xmax && ww !== 0 ? k[x] / ww : 0;
      weights[xx * ksize + x] = Math.trunc(w < 0 ? -0.5 + w * (1 << PRECISION_BITS) : 0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, weights, ksize };
}

const clip8 = (v: number) => (v >= 1 << (PRECISION_BITS + 8) ? 255 : v <= 0 ? 0 : v >> PRECISION_BITS);

/** Pillow's ImagingResampleHorizontal_8bpc: each row of `src` (width `inW`) to `out` (width bounds.length / 2). */
function resampleHorizontal(src: Uint8Array, out: Uint8Array, inW: number, rows: number, C: number, co: Coefficients) {
  const { bounds, weights, ksize } = co;
  const outW = bounds.length / 2;
  const half = 1 << (PRECISION_BITS - 1);
  if (C === 3) {
    // RGB, the common case: the three channels in one pass over the taps (the same sums, ~1.7x faster)
    for (let y = 0, at = 0; y < rows; y++) {
      const row = y * inW * 3;
      for (let xx = 0; xx < outW; xx++, at += 3) {
        const n = bounds[xx * 2 + 1];
        const w0 = xx * ksize;
        let r = half;
        let g = half;
        let b = half;
        for (let k = 0, p = row + bounds[xx * 2] * 3; k < n; k++, p += 3) {
          const w = weights[w0 + k];
          r += src[p] * w;
          g += src[p + 1] * w;
          b += src[p + 2] * w;
        }
        out[at] = clip8(r);
        out[at + 1] = clip8(g);
        out[at + 2] = clip8(b);
      }
    }
    return;
  }
  for (let y = 0; y < rows; y++) {
    const row = y * inW * C;
    let at = y * outW * C;
    for (let xx = 0; xx < outW; xx++) {
      const first = row + bounds[xx * 2] * C;
      const n = bounds[xx * 2 + 1];
      const w0 = xx * ksize;
      for (let c = 0; c < C; c++) {
        let acc = half;
        for (let k = 0, p = first + c; k < n; k++, p += C) acc += src[p] * weights[w0 + k];
        out[at++] = clip8(acc);
      }
    }
  }
}

/** Pillow's ImagingResampleVertical_8bpc: `src` (rows of `W` pixels) to `out` (bounds.length / 2 rows). */
function resampleVertical(src: Uint8Array, out: Uint8Array, W: number, C: number, co: Coefficients) {
  const { bounds, weights, ksize } = co;
  const outH = bounds.length / 2;
  const line = W * C;
  const half = 1 << (PRECISION_BITS - 1);
  let at = 0;
  for (let yy = 0; yy < outH; yy++) {
    const first = bounds[yy * 2] * line;
    const n = bounds[yy * 2 + 1];
    const w0 = yy * ksize;
    for (let i = 0; i < line; i++) {
      let acc = half;
      for (let k = 0, p = first + i; k < n; k++, p += line) acc += src[p] * weights[w0 + k];
      out[at++] = clip8(acc);
    }
  }
}

/**
 * PIL.Image.resize((outW, outH), BICUBIC | BILINEAR) on 8-bit gray or RGB: the horizontal pass into
 * an 8-bit image, then the vertical pass; an axis whose size does not change is not resampled.
 * Integer arithmetic identical to Pillow's, so the output equals Pillow 9.4's (FIBER's) byte for
 * byte. Pillow 12.3 gives the same bytes except on some images over 100x taller than wide, where
 * pixels differ by 1 (8 of 300 random cases in a review). Four
 * channels are resampled each on its own, as Pillow does for RGBX; Pillow's RGBA premultiplies the
 * colours by alpha first (FIBER converts to RGB before it resizes, so it never does).
 */
export function pillowResize(
  img: RawImage,
  outW: number,
  outH: number,
  filterName: 'bicubic' | 'bilinear' = 'bicubic',
): RawImage {
  validateRawImage(img);
  checkSize(outW, 'pillowResize: width');
  checkSize(outH, 'pillowResize: height');
  checkPixels(outW, outH, 'pillowResize: the output');
  // the horizontal pass comes first: outW x the input's height
  if (outW !== img.width) checkPixels(outW, img.height, 'pillowResize: the horizontal pass');
  const filter = PILLOW_FILTERS[filterName];
  const C = img.channels;
  // one element type for the passes (a view, not a copy, of canvas pixels)
  let data = new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.length);
  let width = img.width;
  if (outW !== width) {
    const out = new Uint8Array(outW * img.height * C);
    resampleHorizontal(data, out, width, img.height, C, coefficients(width, outW, filter));
    data = out;
    width = outW;
  }
  if (outH !== img.height) {
    const out = new Uint8Array(width * outH * C);
    resampleVertical(data, out, width, C, coefficients(img.height, outH, filter));
    data = out;
  }
  // an unchanged image keeps its own data (and type)
  return data.buffer === img.data.buffer ? { ...img } : { width, height: outH, channels: C, data };
}

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/** f(v) for each byte value v. */
const byteTable = (f: (v: number) => number) => Float32Array.from({ length: 256 }, (_, v) => f(v));
/**
 * Per channel (R, G, B), the normalised value of each byte: ((v / 255) - mean) / std, every step
 * rounded to float32 as torchvision's ToTensor and Normalize do.
 */
const IMAGENET_VALUES = [0, 1, 2].map((c) =>
  byteTable((v) => {
    const f = Math.fround;
    return f(f(f(v / 255) - f(IMAGENET_MEAN[c])) / f(IMAGENET_STD[c]));
  }),
);

/**
 * The three planes [3, H, W] of an image's pixels, each byte through its plane's table: plane c
 * reads the image's channel `channelOf(c)` (a gray image's only channel for every plane).
 */
function channelPlanes(r: RawImage, tables: readonly Float32Array[], channelOf: (c: number) => number): Float32Array {
  const n = r.width * r.height;
  const out = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) {
    const value = tables[c];
    for (let i = 0, p = r.channels === 1 ? 0 : channelOf(c); i < n; i++, p += r.channels)
      out[c * n + i] = value[r.data[p]];
  }
  return out;
}

/**
 * FIBER's coarse eval transform (`albef`): Pillow BICUBIC resize to size x size (aspect ratio not
 * kept), /255 and ImageNet mean/std, all in float32 as torchvision does. -> Float32Array [3, S, S].
 */
export function fiberImageTransform(img: RawImage, size: number, what = 'RawImage'): Float32Array {
  validateRawImage(img, what);
  checkSize(size, 'fiberImageTransform: size');
  checkPixels(size, size, `fiberImageTransform: ${what} resized`);
  return channelPlanes(pillowResize(img, size, size, 'bicubic'), IMAGENET_VALUES, (c) => c);
}

/** A batch of images through fiberImageTransform, as a [B, 3, S, S] tensor. */
export function fiberPixelValues(images: RawImage[], size: number): tf.Tensor4D {
  checkSize(size, 'fiberPixelValues: size');
  checkPixels(size, size, 'fiberPixelValues: each image');
  let data: Float32Array;
  try {
    data = new Float32Array(images.length * 3 * size * size);
  } catch (e) {
    const gib = (images.length * 3 * size * size * 4) / 2 ** 30;
    throw new RangeError(
      `fiberPixelValues: ${images.length} images of ${size}x${size} need a ${gib.toFixed(1)} GiB float32 ` +
        `[${images.length}, 3, ${size}, ${size}] batch, more than this runtime allocates (${(e as Error).message}); pass fewer images`,
    );
  }
  images.forEach((img, b) => data.set(fiberImageTransform(img, size, `images[${b}]`), b * 3 * size * size));
  return tf.tensor4d(data, [images.length, 3, size, size]);
}

export const DETECTION_PIXEL_MEAN = [103.53, 116.28, 123.675] as const; // BGR
export const DETECTION_PIXEL_STD = [57.375, 57.12, 58.395] as const;
/** Per channel (B, G, R), the normalised value of each byte: (v - mean) / std in float32. */
const DETECTION_VALUES = [0, 1, 2].map((c) =>
  byteTable((v) => {
    const f = Math.fround;
    return f(f(v - f(DETECTION_PIXEL_MEAN[c])) / f(DETECTION_PIXEL_STD[c]));
  }),
);

/** Python's round(): halves to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * maskrcnn_benchmark's resize rule: the shorter side to `minSize` unless the longer side would
 * exceed `maxSize` (then scaled down so it does not); sizes rounded as the official Resize.
 */
export function detectionSize(
  width: number,
  height: number,
  minSize = 800,
  maxSize = 1333,
): { width: number; height: number } {
  let size = minSize;
  const minOrig = Math.min(width, height);
  const maxOrig = Math.max(width, height);
  if ((maxOrig / minOrig) * size > maxSize) size = roundHalfEven((maxSize * minOrig) / maxOrig);
  if ((width <= height && width === size) || (height <= width && height === size)) return { width, height };
  return width < height
    ? { width: size, height: Math.trunc((size * height) / width) }
    : { width: Math.trunc((size * width) / height), height: size };
}

/**
 * FIBER's fine-grained transform: Pillow BILINEAR resize by detectionSize, then BGR in 0..255 minus
 * the Caffe mean, divided by the std. -> Float32Array [3, H, W] (channels B, G, R).
 */
export function detectionImageTransform(
  img: RawImage,
  { minSize = 800, maxSize = 1333 } = {},
): { data: Float32Array; width: number; height: number } {
  validateRawImage(img);
  for (const [name, v] of [
    ['minSize', minSize],
    ['maxSize', maxSize],
  ] as const)
    if (!(Number.isInteger(v) && v >= 1))
      throw new RangeError(`detectionImageTransform: ${name} must be a positive integer, got ${String(v)}`);
  const { width, height } = detectionSize(img.width, img.height, minSize, maxSize);
  if (width < 1 || height < 1)
    throw new RangeError(
      `detectionImageTransform: a ${img.width}x${img.height} image resized with minSize ${minSize} and maxSize ` +
        `${maxSize} is ${width}x${height}: its aspect ratio is too extreme`,
    );
  checkPixels(
    width,
    height,
    `detectionImageTransform: a ${img.width}x${img.height} image resized with minSize ${minSize}`,
  );
  const data = channelPlanes(pillowResize(img, width, height, 'bilinear'), DETECTION_VALUES, (c) => 2 - c); // BGR
  return { data, width, height };
}

/** Decodes encoded images (PNG, JPEG, ...) into RawImage; one per platform (see `@fiber-vl/swin/node`, `browserImageDecoder`). */
export interface ImageDecoder {
  decode(bytes: Uint8Array): Promise<RawImage>;
}

/** Browsers: createImageBitmap + OffscreenCanvas (RGBA). */
export const browserImageDecoder: ImageDecoder = {
  async decode(bytes) {
    // the DOM typings declare both; a worker or an old browser may lack them
    const g: {
      createImageBitmap?: (b: Blob) => Promise<ImageBitmap>;
      OffscreenCanvas?: new (w: number, h: number) => OffscreenCanvas;
    } = globalThis;
    if (!g.createImageBitmap || !g.OffscreenCanvas)
      throw new Error(
        'browserImageDecoder needs createImageBitmap and OffscreenCanvas (use @fiber-vl/swin/node in Node)',
      );
    const bitmap = await g.createImageBitmap(new Blob([bytes as BlobPart]));
    const canvas = new g.OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext('2d') as OffscreenCanvasRenderingContext2D;
    ctx.drawImage(bitmap, 0, 0);
    const { data } = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
    return { width: bitmap.width, height: bitmap.height, channels: 4, data };
  },
};

/**
 * The most pixels an image may declare before it is decoded: 2^26 (8192 x 8192, 192 MiB as RGB).
 * A small file can declare a huge image (a 783 KB PNG of 16383 x 16383 took 2 GB to decode); no
 * data set these models read comes near it (COCO is 640 px, Visual Genome 1280).
 */
export const MAX_IMAGE_PIXELS = 2 ** 26;

// Where a record's image lives, and how its bytes become pixels. The training thread only
// *locates* an image (a map lookup); reading and decoding happen where the sample is prepared,
// in a worker thread or in-thread.
import { type ImageDecoder, MAX_IMAGE_PIXELS, type RawImage } from '@fiber-vl/swin';
import { DataSkipError } from './skips.js';

/**
 * An image's bytes or pixels, as a value that can be posted to a worker: a file range (Node; the
 * preparing thread reads it), bytes already read (browsers), or decoded pixels.
 */
export type ImageLocation =
  | { kind: 'file'; path: string; offset?: number; length?: number }
  | { kind: 'bytes'; name: string; bytes: Uint8Array }
  | { kind: 'raw'; name: string; image: RawImage };

export interface ImageStore {
  readonly name: string;
  /** Where image `ref` is, or undefined when the store does not hold it (the record is skipped as 'missing-image'). */
  locate(ref: string): ImageLocation | undefined | Promise<ImageLocation | undefined>;
}

/** Reads the bytes of a 'file' location; Node provides one (`readFileLocation` in `@fiber-vl/trainer/node`). */
export type FileReader = (location: { path: string; offset?: number; length?: number }) => Promise<Uint8Array>;

/** Images held in memory under their refs: encoded bytes or decoded pixels (tests, generated worlds, browsers). */
export function memoryImageStore(images: ReadonlyMap<string, Uint8Array | RawImage>, name = '<memory>'): ImageStore {
  return {
    name,
    locate(ref) {
      const v = images.get(ref);
      if (v === undefined) return undefined;
      return v instanceof Uint8Array ? { kind: 'bytes', name: ref, bytes: v } : { kind: 'raw', name: ref, image: v };
    },
  };
}

export function locationName(loc: ImageLocation): string {
  if (loc.kind !== 'file') return loc.name;
  return loc.offset === undefined ? loc.path : `${loc.path}@${loc.offset}`;
}

/** 8-bit RGB (alpha dropped, as PIL's convert('RGB') does); validates the buffer size. */
export function toRgb(img: RawImage, name = 'image'): RawImage {
  const { width, height, channels, data } = img;
  if (!(width > 0 && height > 0) || data.length !== width * height * channels) {
    throw new DataSkipError('corrupt-image', `${name}: ${width}x${height}x${channels} pixels but ${data.length} bytes`);
  }
  if (channels === 3) return img;
  const out = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < out.length; i += 3, j += 4) {
    out[i] = data[j];
    out[i + 1] = data[j + 1];
    out[i + 2] = data[j + 2];
  }
  return { width, height, channels: 3, data: out };
}

/**
 * Reads (when needed) and decodes an image location into RGB; failures become 'missing-image' /
 * 'corrupt-image' skips.
 */
export async function loadImage(loc: ImageLocation, decoder: ImageDecoder, readFile?: FileReader): Promise<RawImage> {
  const name = locationName(loc);
  if (loc.kind === 'raw') return toRgb(loc.image, name);
  let bytes: Uint8Array;
  if (loc.kind === 'bytes') bytes = loc.bytes;
  else {
    if (!readFile) throw new Error(`${name}: file images need a file reader (use @fiber-vl/trainer/node)`);
    try {
      bytes = await readFile(loc);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const missing = code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
      throw new DataSkipError(missing ? 'missing-image' : 'corrupt-image', `${name}: ${(e as Error).message}`);
    }
  }
  let img: RawImage;
  try {
    img = await decoder.decode(bytes);
  } catch (e) {
    throw new DataSkipError('corrupt-image', `${name}: ${(e as Error).message.split('\n')[0]}`);
  }
  return toRgb(img, name);
}

const isJpeg = (b: Uint8Array) => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
const isPng = (b: Uint8Array) => b.length > 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;

/**
 * Pure-JS JPEG (jpeg-js, strict: a truncated file is an error) and PNG (fast-png) decoding to RGB;
 * runs in browsers and workers. Slower than sharp, and JPEG pixels can differ from libjpeg-turbo's
 * (PIL's, sharp's) by a few levels where the IDCTs round differently. CMYK JPEGs convert as PIL's
 * `convert('RGB')` (within the IDCT's rounding). 16-bit PNGs keep the high byte, except 16-bit
 * greyscale, which is clipped to 255 as PIL does.
 */
export const jsImageDecoder: ImageDecoder = {
  async decode(bytes) {
    if (isJpeg(bytes)) {
      const { decode } = await import('jpeg-js');
      const r = decode(bytes, {
        useTArray: true,
        formatAsRGBA: false,
        tolerantDecoding: false,
        maxResolutionInMP: MAX_IMAGE_PIXELS / 2 ** 20,
        maxMemoryUsageInMB: 2048,
      });
      return { width: r.width, height: r.height, channels: 3, data: r.data };
    }
    if (isPng(bytes)) return decodePngRgb(bytes);
    throw new Error(
      `not a JPEG or PNG (first bytes ${Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0'))})`,
    );
  },
};

async function decodePngRgb(bytes: Uint8Array): Promise<RawImage> {
  // IHDR's size, read before anything is allocated (fast-png has no limit of its own)
  if (bytes.length >= 24) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const [w, h] = [view.getUint32(16), view.getUint32(20)];
    if (w * h > MAX_IMAGE_PIXELS)
      throw new Error(`a ${w} x ${h} PNG is over the ${MAX_IMAGE_PIXELS}-pixel limit (MAX_IMAGE_PIXELS)`);
  }
  const png = await import('fast-png');
  const d = png.decode(bytes);
  const { width, height, depth } = d;
  const n = width * height;
  const out = new Uint8Array(n * 3);
  if (d.palette) {
    const rgb = png.convertIndexedToRgb(d);
    const c = d.palette[0].length;
    for (let i = 0; i < n; i++) for (let k = 0; k < 3; k++) out[i * 3 + k] = rgb[i * c + k];
    return { width, height, channels: 3, data: out };
  }
  const channels = d.channels;
  // Samples as 8-bit, as PIL reads them: 16-bit keeps the high byte, except 16-bit greyscale without
  // alpha, which PIL reads as 32-bit integers and clips to 255; 1/2/4-bit grey rows are bit-packed and
  // scaled to 0..255.
  const sample: (i: number) => number =
    depth === 16
      ? channels === 1
        ? (i) => Math.min(d.data[i], 255)
        : (i) => d.data[i] >> 8
      : depth === 8
        ? (i) => d.data[i]
        : (() => {
            const rowBytes = Math.ceil((width * depth) / 8);
            const scale = 255 / ((1 << depth) - 1);
            return (i: number) => {
              const y = Math.floor(i / width);
              const bit = (i % width) * depth;
              const byte = d.data[y * rowBytes + (bit >> 3)];
              return Math.round(((byte >> (8 - depth - (bit & 7))) & ((1 << depth) - 1)) * scale);
            };
          })();
  for (let i = 0; i < n; i++) {
    if (channels >= 3) for (let k = 0; k < 3; k++) out[i * 3 + k] = sample(i * channels + k);
    else out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = sample(i * channels);
  }
  return { width, height, channels: 3, data: out };
}

// Node-only image decoding for @fiber-vl/swin (`@fiber-vl/swin/node`), through sharp (libvips).
import { readFile } from 'node:fs/promises';
import type { ImageDecoder, RawImage } from './preprocess.js';

/** Decodes PNG, JPEG, WebP, ... to 8-bit RGB with sharp (EXIF orientation is not applied, as PIL does not). */
export const sharpImageDecoder: ImageDecoder = {
  async decode(bytes) {
    const { default: sharp } = await import('sharp');
    const { data, info } = await sharp(bytes).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, channels: 3, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  },
};

/** Reads and decodes an image file. */
export async function readImage(path: string): Promise<RawImage> {
  const bytes = await readFile(path).catch((e: NodeJS.ErrnoException) => {
    throw new Error(`cannot read image ${path}: ${e.code ?? e.message}`);
  });
  try {
    return await sharpImageDecoder.decode(bytes);
  } catch (e) {
    throw new Error(`cannot decode image ${path}: ${(e as Error).message}`);
  }
}

// Node-only image decoding for @fiber-vl/swin (`@fiber-vl/swin/node`), through sharp (libvips).
import { readFile } from 'node:fs/promises';
import { type ImageDecoder, MAX_IMAGE_PIXELS, type RawImage } from './preprocess.js';

type Sharp = typeof import('sharp')['default'];
let sharpModule: Promise<Sharp> | undefined;

/** sharp is an optional peer dependency (native libvips, ~30 MB): only this entry needs it. */
function loadSharp(): Promise<Sharp> {
  return (sharpModule ??= import('sharp').then(
    (m) => m.default,
    (e: Error) => {
      sharpModule = undefined;
      throw new Error(
        `@fiber-vl/swin/node decodes images with the optional peer dependency "sharp": npm install sharp@^0.35.5 (${e.message.split('\n')[0]})`,
      );
    },
  ));
}

/** Decodes PNG, JPEG, WebP, ... to 8-bit RGB with sharp (EXIF orientation is not applied, as PIL does not). */
export const sharpImageDecoder: ImageDecoder = {
  async decode(bytes) {
    const sharp = await loadSharp();
    const { data, info } = await sharp(bytes, { limitInputPixels: MAX_IMAGE_PIXELS })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    return {
      width: info.width,
      height: info.height,
      channels: 3,
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    };
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

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

/** PIL's CMYK -> RGB (`cmyk2rgb` in Convert.c): each channel times the inverse of K, no colour profile. */
function pilCmykToRgb(cmyk: Uint8Array, pixels: number): Uint8Array {
  const out = new Uint8Array(pixels * 3);
  for (let p = 0; p < pixels; p++) {
    const nk = 255 - cmyk[p * 4 + 3];
    for (let c = 0; c < 3; c++) {
      const t = cmyk[p * 4 + c] * nk + 128; // MULDIV255
      out[p * 3 + c] = nk - ((t + (t >> 8)) >> 8);
    }
  }
  return out;
}

/** A PNG's bit depth and colour type (IHDR); undefined for bytes that do not start as a PNG. */
function pngHeader(bytes: Uint8Array): { bitDepth: number; colourType: number } | undefined {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  const ihdr = [0x49, 0x48, 0x44, 0x52];
  if (bytes.length < 26 || signature.some((v, i) => bytes[i] !== v) || ihdr.some((v, i) => bytes[12 + i] !== v))
    return undefined;
  return { bitDepth: bytes[24], colourType: bytes[25] };
}

/**
 * Decodes PNG, JPEG, WebP, ... to 8-bit RGB with sharp, as PIL's `Image.open(f).convert('RGB')` (the
 * official pre-processing) does; EXIF orientation and embedded colour profiles are not applied, as
 * PIL does not apply them. Two kinds of file need PIL's own rules, which sharp does not follow by
 * default:
 * - CMYK JPEGs and TIFFs: PIL converts without a colour profile (`cmyk2rgb`); sharp would apply one.
 * - 16-bit greyscale PNGs (colour type 0, with or without a tRNS chunk): PIL reads them as 32-bit
 *   integers and clips them to 255 (so most pixels are white); sharp would scale them to 8 bits (and
 *   reads a tRNS chunk as alpha). Parity comes first: the model saw PIL's pixels.
 * Both are checked against Pillow 9.4 on files it read.
 */
export const sharpImageDecoder: ImageDecoder = {
  async decode(bytes) {
    const sharp = await loadSharp();
    // ignoreIcc: PIL's convert('RGB') ignores an embedded colour profile (Adobe RGB, Display P3)
    const open = () => sharp(bytes, { limitInputPixels: MAX_IMAGE_PIXELS, ignoreIcc: true });
    const meta = await open().metadata();
    if (meta.space === 'cmyk') {
      // 8-bit CMYK only: sharp would rescale 16-bit samples, and that is not checked against PIL
      if (meta.depth !== 'uchar')
        throw new Error(`a CMYK ${meta.format} of ${meta.depth} samples is not supported (8-bit CMYK only)`);
      const { data, info } = await open()
        .pipelineColourspace('cmyk')
        .toColourspace('cmyk')
        .raw()
        .toBuffer({ resolveWithObject: true });
      if (info.channels !== 4) throw new Error(`a CMYK ${meta.format} decoded to ${info.channels} channels, not 4`);
      const rgb = pilCmykToRgb(data, info.width * info.height);
      return { width: info.width, height: info.height, channels: 3, data: rgb };
    }
    const png = meta.format === 'png' ? pngHeader(bytes) : undefined;
    if (png?.bitDepth === 16 && png.colourType === 0) {
      const { data, info } = await open()
        .extractChannel(0)
        .toColourspace('grey16')
        .raw({ depth: 'ushort' })
        .toBuffer({ resolveWithObject: true });
      // a Buffer may start at an odd offset of its pool, where a Uint16Array view cannot
      const aligned = data.byteOffset % 2 === 0 ? data : Uint8Array.from(data);
      const grey = new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
      if (info.channels !== 1 || grey.length !== info.width * info.height)
        throw new Error(`a 16-bit greyscale PNG decoded to ${info.channels} channels of ${grey.length} values`);
      const rgb = new Uint8Array(grey.length * 3);
      for (let p = 0; p < grey.length; p++) rgb.fill(Math.min(grey[p], 255), p * 3, p * 3 + 3);
      return { width: info.width, height: info.height, channels: 3, data: rgb };
    }
    const { data, info } = await open().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.byteLength !== info.width * info.height * 3)
      throw new Error(`the image decoded to ${info.channels} channels of ${data.byteLength} bytes, not RGB`);
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

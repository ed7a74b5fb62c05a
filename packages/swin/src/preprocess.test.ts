import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SafetensorsFile, tf } from '@fiber-vl/tensor-core';
import { useBackend } from '@fiber-vl/tensor-core/testing';
import {
  detectionImageTransform,
  detectionSize,
  fiberImageTransform,
  fiberPixelValues,
  pillowResize,
  validateRawImage,
  type RawImage,
} from './preprocess.js';

const fixtures = join(__dirname, '../../../fixtures/fiber');

describe('FIBER image transform (Pillow 9.4 BICUBIC + ToTensor + Normalize)', () => {
  it.each([
    ['set-a', 'image'],
    ['set-b', 'pixel_values'],
  ])('%s: pixel_values from raw_image_k are bit-exact', async (dir, key) => {
    await useBackend('cpu');
    const f = await SafetensorsFile.open(join(fixtures, dir, 'inputs.safetensors'));
    const expected = (await f.readRaw(key)).data as Float32Array;
    const size = (await f.info(key)).shape[3];
    for (const k of [0, 1]) {
      const raw = await f.readRaw(`raw_image_${k}`);
      const [h, w] = raw.shape;
      const img: RawImage = {
        width: w,
        height: h,
        channels: 3,
        data: Uint8Array.from(raw.data as ArrayLike<number | bigint>, Number),
      };
      const ours = fiberImageTransform(img, size);
      const ref = expected.subarray(k * ours.length, (k + 1) * ours.length);
      let mismatches = 0;
      for (let i = 0; i < ours.length; i++) if (ours[i] !== ref[i]) mismatches++;
      expect(mismatches, `${dir} raw_image_${k}`).toBe(0);
    }
    await f.close();
    tf.disposeVariables();
  });
});

describe('Pillow resampling', () => {
  // random L / RGB / RGBX images resized by Pillow 9.4 (scripts/fixtures/make_pillow_resize_fixture.py)
  const resizeCases = (
    JSON.parse(readFileSync(join(__dirname, '../../../fixtures/ops/pillow_resize.json'), 'utf8')) as {
      cases: {
        width: number;
        height: number;
        channels: 1 | 3 | 4;
        filter: 'bicubic' | 'bilinear';
        outWidth: number;
        outHeight: number;
        input: string;
        output: string;
      }[];
    }
  ).cases;
  it('has the fixture cases (8 sizes x 3 channel counts x 2 filters)', () => {
    expect(resizeCases).toHaveLength(48);
  });
  it.each(
    resizeCases.map((c) => [`${c.width}x${c.height}x${c.channels} -> ${c.outWidth}x${c.outHeight} ${c.filter}`, c]),
  )('equals Pillow byte for byte: %s', (_, c) => {
    const data = Uint8Array.from(Buffer.from(c.input, 'base64'));
    const out = pillowResize(
      { width: c.width, height: c.height, channels: c.channels, data },
      c.outWidth,
      c.outHeight,
      c.filter,
    );
    expect([out.width, out.height, out.channels]).toEqual([c.outWidth, c.outHeight, c.channels]);
    expect(Buffer.from(out.data).equals(Buffer.from(c.output, 'base64'))).toBe(true);
    // a Uint8ClampedArray (canvas pixels) gives the same bytes
    const clamped = pillowResize(
      { width: c.width, height: c.height, channels: c.channels, data: new Uint8ClampedArray(data) },
      c.outWidth,
      c.outHeight,
      c.filter,
    );
    expect(Buffer.from(clamped.data).equals(Buffer.from(out.data))).toBe(true);
    // a view into a larger buffer (a pooled Node Buffer, a subarray) reads from its own offset
    const pooled = new Uint8Array(data.length + 7).fill(255);
    pooled.set(data, 3);
    const view = pillowResize(
      { width: c.width, height: c.height, channels: c.channels, data: pooled.subarray(3, 3 + data.length) },
      c.outWidth,
      c.outHeight,
      c.filter,
    );
    expect(Buffer.from(view.data).equals(Buffer.from(out.data))).toBe(true);
  });
  it('keeps an image whose size does not change and is exact for constant images', () => {
    const img: RawImage = { width: 5, height: 4, channels: 3, data: new Uint8Array(60).fill(77) };
    expect(pillowResize(img, 5, 4).data).toBe(img.data);
    const canvas: RawImage = { width: 5, height: 4, channels: 4, data: new Uint8ClampedArray(80).fill(9) };
    expect(pillowResize(canvas, 5, 4).data).toBe(canvas.data);
    expect([...new Set(pillowResize(img, 9, 7).data)]).toEqual([77]);
    expect([...new Set(pillowResize(img, 2, 3, 'bilinear').data)]).toEqual([77]);
  });
  it('detection sizes follow maskrcnn_benchmark (shorter side 800, longer at most 1333)', () => {
    expect(detectionSize(640, 480)).toEqual({ width: 1066, height: 800 });
    // the official rule rounds the shorter side first, so the longer may pass 1333 by a pixel or two
    expect(detectionSize(1000, 200)).toEqual({ width: 1335, height: 267 });
    expect(detectionSize(800, 800)).toEqual({ width: 800, height: 800 });
  });
});

describe('RawImage validation', () => {
  const rgb = (w: number, h: number): RawImage => ({
    width: w,
    height: h,
    channels: 3,
    data: Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 37) & 255),
  });
  const bad = (over: Record<string, unknown>) => ({ ...rgb(5, 4), ...over }) as RawImage;

  it.each([
    [
      'too little data',
      { data: new Uint8Array(59) },
      'RawImage.data has 59 bytes, expected width 5 x height 4 x channels 3 = 60',
    ],
    [
      'too much data',
      { data: new Uint8Array(61) },
      'RawImage.data has 61 bytes, expected width 5 x height 4 x channels 3 = 60',
    ],
    ['width 0', { width: 0 }, 'RawImage.width must be a positive integer, got 0'],
    ['height 2.5', { height: 2.5 }, 'RawImage.height must be a positive integer, got 2.5'],
    ['width NaN', { width: NaN }, 'RawImage.width must be a positive integer, got NaN'],
    ['negative height', { height: -4 }, 'RawImage.height must be a positive integer, got -4'],
    [
      '2 channels',
      { channels: 2, data: new Uint8Array(40) },
      'RawImage.channels must be 1 (grayscale), 3 (RGB) or 4 (RGBA), got 2',
    ],
    [
      'float pixels',
      { data: new Float32Array(60) },
      'RawImage.data must be a Uint8Array or Uint8ClampedArray of 8-bit pixels, got Float32Array',
    ],
    [
      'a plain array',
      { data: new Array(60).fill(0) },
      'RawImage.data must be a Uint8Array or Uint8ClampedArray of 8-bit pixels, got Array',
    ],
    ['16-bit pixels', { data: new Uint16Array(60) }, 'got Uint16Array'],
  ])('%s is a RangeError naming the field', (_, over, message) => {
    const img = bad(over);
    for (const run of [
      () => validateRawImage(img),
      () => fiberImageTransform(img, 8),
      () => pillowResize(img, 3, 3),
      () => detectionImageTransform(img),
    ]) {
      expect(run).toThrow(RangeError);
      expect(run).toThrow(message);
    }
  });

  it('names the image of a batch, and rejects a bad output size', () => {
    expect(() => fiberPixelValues([rgb(5, 4), bad({ width: 0 })], 8)).toThrow(
      'images[1].width must be a positive integer, got 0',
    );
    expect(() => fiberPixelValues([rgb(5, 4)], 7.5)).toThrow(
      'fiberPixelValues: size must be a positive integer, got 7.5',
    );
    expect(() => fiberImageTransform(rgb(5, 4), 0)).toThrow(
      'fiberImageTransform: size must be a positive integer, got 0',
    );
    expect(() => pillowResize(rgb(5, 4), NaN, 3)).toThrow('pillowResize: width must be a positive integer, got NaN');
  });

  it('grayscale is replicated to R, G and B and RGBA drops alpha, as convert("RGB") does', () => {
    const img = rgb(7, 5);
    const gray: RawImage = { width: 7, height: 5, channels: 1, data: img.data.filter((_, i) => i % 3 === 0) };
    const grayAsRgb: RawImage = {
      ...gray,
      channels: 3,
      data: Uint8Array.from(Array.from(gray.data).flatMap((v) => [v, v, v])),
    };
    expect(fiberImageTransform(gray, 9)).toEqual(fiberImageTransform(grayAsRgb, 9));
    expect(detectionImageTransform(gray, { minSize: 10, maxSize: 20 })).toEqual(
      detectionImageTransform(grayAsRgb, { minSize: 10, maxSize: 20 }),
    );
    // sizes and ratios that resize to nothing are named (it was pillowResize's "width ... got 0")
    for (const minSize of [0, -5, Number.NaN])
      expect(() => detectionImageTransform(gray, { minSize })).toThrow(
        `detectionImageTransform: minSize must be a positive integer, got ${minSize}`,
      );
    const strip: RawImage = { width: 1, height: 10000, channels: 1, data: new Uint8Array(10000) };
    expect(() => detectionImageTransform(strip)).toThrow(
      'detectionImageTransform: a 1x10000 image resized with minSize 800 and maxSize 1333 is 0x0: its aspect ratio',
    );
    const rgba: RawImage = {
      width: 7,
      height: 5,
      channels: 4,
      data: Uint8ClampedArray.from({ length: 140 }, (_, i) =>
        i % 4 === 3 ? (i * 13) & 255 : img.data[Math.floor(i / 4) * 3 + (i % 4)],
      ),
    };
    expect(fiberImageTransform(rgba, 9)).toEqual(fiberImageTransform(img, 9));
    expect(detectionImageTransform(rgba, { minSize: 10, maxSize: 20 })).toEqual(
      detectionImageTransform(img, { minSize: 10, maxSize: 20 }),
    );
  });
});

describe('output sizes past MAX_IMAGE_PIXELS', () => {
  const tiny: RawImage = { width: 2, height: 1, channels: 3, data: new Uint8Array(6) };
  it('are refused before anything is allocated, naming the call and the size', () => {
    expect(() => fiberImageTransform(tiny, 8193)).toThrow(
      new RangeError(
        'fiberImageTransform: RawImage resized would be 8193x8193, more than MAX_IMAGE_PIXELS (67108864, 8192 x 8192) pixels',
      ),
    );
    expect(() => pillowResize(tiny, 70_000, 1000)).toThrow(/^pillowResize: the output would be 70000x1000, more than/);
    expect(() => detectionImageTransform(tiny, { minSize: 9000, maxSize: 20_000 })).toThrow(
      /^detectionImageTransform: a 2x1 image resized with minSize 9000 would be 18000x9000, more than MAX_IMAGE_PIXELS/,
    );
    expect(() => fiberPixelValues([tiny], 100_000)).toThrow(/^fiberPixelValues: each image would be 100000x100000/);
    // both ends within the limit, but the horizontal pass (output width x input height) is not
    const tall: RawImage = { width: 1, height: 2 ** 25, channels: 1, data: new Uint8Array(2 ** 25) };
    expect(() => pillowResize(tall, 8192, 1)).toThrow(
      /^pillowResize: the horizontal pass would be 8192x33554432, more than MAX_IMAGE_PIXELS/,
    );
  });
  it('a batch larger than a typed array can hold names its size instead of "Invalid typed array length"', () => {
    // 3 PiB: past every runtime's typed-array length or allocation (Node 20 refuses the length,
    // later V8s the allocation), so it fails before the first resize wherever the test runs
    expect(() => fiberPixelValues(Array(2 ** 22).fill(tiny), 8192)).toThrow(
      /^fiberPixelValues: 4194304 images of 8192x8192 need a 3145728\.0 GiB float32 \[4194304, 3, 8192, 8192\] batch, more than this runtime allocates \(.+\); pass fewer images$/,
    );
  });
});

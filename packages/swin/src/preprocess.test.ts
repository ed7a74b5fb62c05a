import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SafetensorsFile, tf } from '@fiber-vl/tensor-core';
import { useBackend } from '@fiber-vl/tensor-core/testing';
import { detectionSize, fiberImageTransform, pillowResize, type RawImage } from './preprocess.js';

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
      const img: RawImage = { width: w, height: h, channels: 3, data: Uint8Array.from(raw.data as ArrayLike<number | bigint>, Number) };
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
  it('keeps an image whose size does not change and is exact for constant images', () => {
    const img: RawImage = { width: 5, height: 4, channels: 3, data: new Uint8Array(60).fill(77) };
    expect(pillowResize(img, 5, 4).data).toEqual(img.data);
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

import { inflateSync } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { base64, encodePng, pngDataUrl, zlibFixed } from './png.js';
import { createWorld } from './world.js';

async function decode(png: Uint8Array) {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height, channels: info.channels };
}

/** Deterministic bytes: an LCG, so the test needs no randomness source. */
function noise(n: number, seed = 1): Uint8Array {
  let s = seed;
  return Uint8Array.from({ length: n }, () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24);
}

describe('PNG encoder', () => {
  it('round-trips rendered scenes through sharp', async () => {
    for (const backgrounds of [['flat'], ['gradient'], ['noise']] as const) {
      const img = createWorld({ seed: 9, backgrounds }).image('test', 0);
      const png = encodePng(img);
      expect(await decode(png)).toEqual({
        data: new Uint8Array(img.data),
        width: img.width,
        height: img.height,
        channels: 3,
      });
      // flat and gradient backgrounds compress well; noise (per-pixel grain) less so
      expect(png.length, backgrounds[0]).toBeLessThan(img.data.length * (backgrounds[0] === 'noise' ? 0.8 : 0.2));
    }
  });

  it('round-trips RGB and RGBA of odd sizes, incompressible noise and long runs', async () => {
    const cases = [
      { width: 1, height: 1, channels: 3 as const, data: Uint8Array.from([1, 2, 3]) },
      { width: 7, height: 3, channels: 4 as const, data: noise(7 * 3 * 4) },
      { width: 97, height: 61, channels: 3 as const, data: noise(97 * 61 * 3, 7) },
      { width: 300, height: 200, channels: 4 as const, data: new Uint8Array(300 * 200 * 4).fill(200) },
    ];
    for (const img of cases) expect(await decode(encodePng(img))).toEqual(img);
  });

  it('writes zlib streams that Node inflates, including matches across the 32 KiB window', () => {
    const data = new Uint8Array(100_000);
    data.set(noise(30_000, 3), 0);
    data.set(noise(30_000, 3), 40_000); // a repeat 40 000 bytes back: outside the window, literals again
    data.set(data.subarray(45_000, 65_000), 70_000); // a repeat 25 000 bytes back: inside it
    expect(new Uint8Array(inflateSync(zlibFixed(data)))).toEqual(data);
    expect(new Uint8Array(inflateSync(zlibFixed(new Uint8Array(0))))).toEqual(new Uint8Array(0));
  });

  it('makes data URLs with standard base64', () => {
    for (const n of [0, 1, 2, 3, 4, 5, 100]) {
      const bytes = noise(n, n + 1);
      expect(base64(bytes)).toBe(Buffer.from(bytes).toString('base64'));
    }
    const img = { width: 2, height: 1, channels: 3 as const, data: Uint8Array.from([255, 0, 0, 0, 0, 255]) };
    expect(pngDataUrl(img)).toBe(`data:image/png;base64,${Buffer.from(encodePng(img)).toString('base64')}`);
  });

  it('rejects images whose fields disagree, naming them', () => {
    expect(() => encodePng({ width: 2, height: 2, channels: 3, data: new Uint8Array(11) })).toThrow(
      /data has 11 bytes, expected 2 x 2 x 3 = 12/,
    );
    expect(() => encodePng({ width: 0, height: 2, channels: 3, data: new Uint8Array(0) })).toThrow(/width 0/);
    expect(() => encodePng({ width: 1, height: 1, channels: 2 as 3, data: new Uint8Array(2) })).toThrow(
      /channels must be 3/,
    );
  });
});

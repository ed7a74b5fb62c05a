import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Generator } from '@fiber-vl/tensor-core';
import { detectionSize, pillowResize } from '@fiber-vl/swin';
import { jsImageDecoder } from './images.js';
import * as ops from './augment/ops.js';
import { coarseAugment, FIBER_RANDAUG_OPS, randAugment, randomResizedCropParams } from './augment/coarse.js';
import { FIBER_FINE_MIN_SIZES, fineAugment, toLegacyBoxes } from './augment/fine.js';
import { affineTargets, cropTargets, flipTargets, swapLeftRight, type Targets } from './augment/targets.js';
import type { Skip } from './skips.js';
import { fixture, fixtureJson } from './test-helpers.js';
import { sampleGenerator } from './order.js';

let img: ops.Rgb;
beforeAll(async () => {
  img = (await jsImageDecoder.decode(new Uint8Array(readFileSync(fixture('jsonl/images/b.png'))))) as ops.Rgb;
});

const gradient = (w: number, h: number): ops.Rgb => {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) data.set([(i * 7) % 256, (i * 13) % 256, (i * 29) % 256], i * 3);
  return { width: w, height: h, channels: 3, data };
};

describe('RandAugment ops equal the official numpy / OpenCV code (magnitude 7)', () => {
  const expected = fixtureJson('expected/randaug_ops.json') as {
    width: number;
    height: number;
    outputs: Record<string, string>;
  };
  const want = (name: string) => new Uint8Array(Buffer.from(expected.outputs[name], 'base64'));
  const enhance = 0.7 * 1.8 + 0.1;
  const fill: [number, number, number] = [128, 128, 128];

  it.each([
    ['AutoContrast', () => ops.autoContrast(img, true)],
    ['PIL.autocontrast', () => ops.autoContrast(img)],
    ['Equalize', () => ops.equalize(img)],
    ['Brightness', () => ops.brightness(img, enhance)],
    ['Sharpness', () => ops.sharpness(img, enhance, true)],
    ['ShearX+', () => ops.warpAffine(img, ops.shearXMatrix(0.7 * 0.3), fill)],
    ['ShearX-', () => ops.warpAffine(img, ops.shearXMatrix(-0.7 * 0.3), fill)],
    ['ShearY+', () => ops.warpAffine(img, ops.shearYMatrix(0.7 * 0.3), fill)],
    ['TranslateX+', () => ops.warpAffine(img, ops.translateXMatrix(7), fill)],
    ['TranslateY-', () => ops.warpAffine(img, ops.translateYMatrix(-7), fill)],
    ['Rotate+', () => ops.warpAffine(img, ops.rotationMatrix(img.width, img.height, 21), fill)],
    ['Rotate-', () => ops.warpAffine(img, ops.rotationMatrix(img.width, img.height, -21), fill)],
  ])('%s', (name, run) => {
    const out = run();
    expect([out.width, out.height]).toEqual([expected.width, expected.height]);
    expect(Array.from(out.data)).toEqual(Array.from(want(name)));
  });

  it('saturates Sharpness where the official cast wraps around', () => {
    // A bright dot on black and a dark dot on white: 98 + 1.36 * (255 - 98) = 311.5 and 157 + 1.36 * (0 - 157) = -56.5.
    const dot = (bg: number, fg: number): ops.Rgb => {
      const data = new Uint8Array(3 * 3 * 3).fill(bg);
      data.set([fg, fg, fg], 4 * 3);
      return { width: 3, height: 3, channels: 3, data };
    };
    expect(ops.sharpness(dot(0, 255), enhance, true).data[12]).toBe(311 - 256);
    expect(ops.sharpness(dot(0, 255), enhance).data[12]).toBe(255);
    expect(ops.sharpness(dot(255, 0), enhance, true).data[12]).toBe(256 - 56);
    expect(ops.sharpness(dot(255, 0), enhance).data[12]).toBe(0);
  });
});

describe('pixel ops', () => {
  it('flips twice to the identity, and crops like PIL', () => {
    const g = gradient(5, 3);
    expect(ops.hflip(ops.hflip(g)).data).toEqual(g.data);
    expect(Array.from(ops.hflip(g).data.subarray(0, 3))).toEqual(Array.from(g.data.subarray(12, 15)));
    const c = ops.crop(g, 1, 1, 3, 2);
    expect(Array.from(c.data.subarray(0, 3))).toEqual(
      Array.from(g.data.subarray((1 * 5 + 1) * 3, (1 * 5 + 1) * 3 + 3)),
    );
    expect(() => ops.crop(g, 3, 0, 3, 1)).toThrow(/not inside the 5x3 image/);
  });

  it('warps with the identity to a copy, and translates half a pixel to the rounded-up mean', () => {
    const g = gradient(6, 4);
    expect(ops.warpAffine(g, [1, 0, 0, 0, 1, 0], [0, 0, 0]).data).toEqual(g.data);
    const half = ops.warpAffine(g, ops.translateXMatrix(0.5), [9, 9, 9]);
    expect(half.data[0]).toBe((g.data[0] + g.data[3] + 1) >> 1);
    // The last column samples half outside: the border value weighs in.
    expect(half.data[5 * 3]).toBe((g.data[5 * 3] + 9 + 1) >> 1);
  });

  it('enhances as PIL for known values', () => {
    const one = (v: number[]): ops.Rgb => ({
      width: v.length,
      height: 1,
      channels: 3,
      data: Uint8Array.from(v.flatMap((x) => [x, x, x])),
    });
    expect(Array.from(ops.autoContrast(one([10, 50, 100, 200])).data.filter((_, i) => i % 3 === 0))).toEqual([
      0, 53, 120, 255,
    ]);
    const eq = ops.equalize(one([...Array(255).fill(0), ...Array(255).fill(100)]));
    expect([eq.data[0], eq.data[255 * 3]]).toEqual([0, 255]);
    expect(Array.from(ops.brightness(one([0, 100, 200]), 1.36).data.filter((_, i) => i % 3 === 0))).toEqual([
      0, 136, 255,
    ]);
  });
});

describe('RandAugment and the coarse augmentation', () => {
  it('is a pure function of the generator state', () => {
    for (let seed = 0; seed < 20; seed++) {
      const a = randAugment(img, new Generator(seed));
      const b = randAugment(img, new Generator(seed));
      expect(a.applied).toEqual(b.applied);
      expect(a.image.data).toEqual(b.image.data);
    }
  });

  it('draws FIBER ops with replacement and applies each with probability 1/2', () => {
    const counts = new Map<string, number>();
    let applied = 0;
    const N = 400;
    const tiny = gradient(8, 8);
    for (let s = 0; s < N; s++) {
      const r = randAugment(tiny, sampleGenerator(1, 0, s));
      applied += r.applied.length;
      r.applied.forEach((op) => counts.set(op, (counts.get(op) ?? 0) + 1));
    }
    expect(applied / (2 * N)).toBeGreaterThan(0.43);
    expect(applied / (2 * N)).toBeLessThan(0.57);
    expect(new Set(counts.keys())).toEqual(new Set(FIBER_RANDAUG_OPS));
  });

  it('crops an area fraction in [0.5, 1] with aspect in [3/4, 4/3] (or the centre-crop fallback)', () => {
    for (let s = 0; s < 200; s++) {
      const [top, left, h, w] = randomResizedCropParams(640, 480, sampleGenerator(2, 0, s));
      expect(top >= 0 && left >= 0 && top + h <= 480 && left + w <= 640).toBe(true);
      expect((w * h) / (640 * 480)).toBeGreaterThan(0.49);
      expect(w / h).toBeGreaterThan(0.74);
      expect(w / h).toBeLessThan(1.35);
    }
    // A 100:1 strip cannot fit the ratio range: the fallback crops its centre at ratio 4/3.
    expect(randomResizedCropParams(1000, 10, new Generator(0))).toEqual([0, 493, 10, 13]);
  });

  it('gives an S x S image and carries boxes through crop, resize and flip', () => {
    const t: Targets = { boxes: [[3, 10, 12, 22]], spans: [[[0, 10]]] };
    for (let s = 0; s < 30; s++) {
      const dropped: Skip[] = [];
      const r = coarseAugment(img, sampleGenerator(3, 0, s), { size: 32, randAugment: null }, t, dropped);
      expect([r.image.width, r.image.height]).toEqual([32, 32]);
      const [top, left, h, w] = r.crop;
      const sx = 32 / w;
      const sy = 32 / h;
      let expectBox = [
        Math.max(0, 3 - left) * sx,
        Math.max(0, 10 - top) * sy,
        Math.min(w, 12 - left) * sx,
        Math.min(h, 22 - top) * sy,
      ];
      if (r.flipped) expectBox = [32 - expectBox[2], expectBox[1], 32 - expectBox[0], expectBox[3]];
      if (r.targets!.boxes.length) r.targets!.boxes[0].forEach((v, k) => expect(v).toBeCloseTo(expectBox[k], 9));
      else expect(dropped[0].reason).toBe('box-outside-image');
      expect(r.targets!.spans!.length).toBe(r.targets!.boxes.length);
    }
  });
});

describe('boxes', () => {
  it('drops boxes cropped out, with their spans and categories', () => {
    const dropped: Skip[] = [];
    const t = cropTargets(
      {
        boxes: [
          [0, 0, 10, 10],
          [50, 50, 60, 60],
          [5, 5, 30, 30],
        ],
        spans: [[[0, 1]], [[2, 3]], [[4, 5]]],
        categories: [1, 2, 3],
      },
      8,
      8,
      20,
      20,
      dropped,
    );
    expect(t).toEqual({
      boxes: [
        [0, 0, 2, 2],
        [0, 0, 20, 20],
      ],
      spans: [[[0, 1]], [[4, 5]]],
      categories: [1, 3],
    });
    expect(dropped.map((d) => d.reason)).toEqual(['box-outside-image']);
  });

  it('flips continuous boxes as x -> W - x', () => {
    expect(flipTargets({ boxes: [[1, 2, 4, 6]] }, 10).boxes).toEqual([[6, 2, 9, 6]]);
  });

  it('moves boxes through an affine map by their corners', () => {
    const t = affineTargets({ boxes: [[2, 2, 4, 4]] }, ops.translateXMatrix(-3), 20, 20, []);
    expect(t.boxes).toEqual([[5, 2, 7, 4]]);
    const r = affineTargets({ boxes: [[8, 8, 12, 12]] }, ops.rotationMatrix(20, 20, 45), 20, 20, []);
    const d = 2 * Math.SQRT2;
    r.boxes[0].forEach((v, k) => expect(v).toBeCloseTo([10 - d, 10 - d, 10 + d, 10 + d][k], 9));
  });

  it("converts to maskrcnn_benchmark's inclusive boxes, dropping one-pixel ones", () => {
    const dropped: Skip[] = [];
    const t = toLegacyBoxes(
      {
        boxes: [
          [0, 0, 10, 5],
          [3, 3, 4, 9],
          [-2, 1, 50, 8],
        ],
        spans: [[[0, 1]], [[1, 2]], [[2, 3]]],
      },
      20,
      10,
      dropped,
    );
    expect(t).toEqual({
      boxes: [
        [0, 0, 9, 4],
        [0, 1, 19, 7],
      ],
      spans: [[[0, 1]], [[2, 3]]],
    });
    expect(dropped.map((d) => d.reason)).toEqual(['degenerate-box']);
  });
});

describe('fine-grained multi-scale', () => {
  it('draws the shorter side from 480..800 (longer <= 1333), scaling and flipping boxes as the official code', () => {
    const big: ops.Rgb = gradient(64, 48);
    const seen = new Set<number>();
    for (let s = 0; s < 25; s++) {
      const t: Targets = { boxes: [[4, 6, 19, 29]] };
      const r = fineAugment(big, sampleGenerator(4, 0, s), {}, t);
      seen.add(r.minSize);
      const size = detectionSize(64, 48, r.minSize, 1333);
      expect([r.image.width, r.image.height]).toEqual([size.width, size.height]);
      expect(Math.min(r.image.width, r.image.height)).toBe(r.minSize);
      const [kx, ky] = [size.width / 64, size.height / 48];
      const box = [4 * kx, 6 * ky, 19 * kx, 29 * ky];
      expect(r.targets!.boxes[0]).toEqual(
        r.flipped ? [size.width - box[2] - 1, box[1], size.width - box[0] - 1, box[3]] : box,
      );
      if (s < 2) {
        const resized = pillowResize(big, size.width, size.height, 'bilinear');
        const want = r.flipped ? ops.hflip(resized) : resized;
        expect(Buffer.from(r.image.data).equals(Buffer.from(want.data))).toBe(true);
      }
    }
    expect([...seen].sort((a, b) => a - b)).toEqual([...FIBER_FINE_MIN_SIZES]);
  });

  it('caps the longer side at maxSize (shorter side round(1333 * 20 / 200), longer int(133 * 200 / 20))', () => {
    const wide = gradient(200, 20);
    const r = fineAugment(wide, new Generator(0), { minSizes: [800], flipProb: 0 });
    expect([r.image.width, r.image.height]).toEqual([1330, 133]);
  });
});

describe('swapLeftRight', () => {
  it('swaps whole words, keeps case, and moves spans', () => {
    const text = 'the Left dog, right of a bright LEFT cat';
    const spans: [number, number][][] = [[[4, 12]], [[14, 19]], [[25, 31]], [[32, 40]]];
    const r = swapLeftRight(text, spans);
    expect(r.text).toBe('the Right dog, left of a bright RIGHT cat');
    expect(r.spans.map((ss) => r.text.slice(...ss[0]))).toEqual(['Right dog', 'left', 'bright', 'RIGHT cat']);
    expect(swapLeftRight('no sides here', [[[0, 2]]])).toEqual({ text: 'no sides here', spans: [[[0, 2]]] });
  });
  it('reads words in any script: a letter or mark next to "left" makes another word', () => {
    for (const word of ['éleft', 'rightß', 'leftñ', 'e\u0301left', 'left2', '_right'])
      expect(swapLeftRight(`a ${word} b`).text, word).toBe(`a ${word} b`);
    expect(swapLeftRight('à left, «right»').text).toBe('à right, «left»');
  });
});

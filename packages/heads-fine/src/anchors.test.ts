// Anchors and BoxCoder against the official anchor generator and BoxCoder.decode outputs of both
// fixture sets (set B: VLDyHead on a 128x128 image; set A: the full tiny model on 96x128).
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '@fiber-vl/tensor-core';
import { expectNoTensorGrowth, gradCheck, testBackends, useBackend } from '@fiber-vl/tensor-core/testing';
import { FIBER_ANCHORS, anchorsPerLocation, cellAnchors, generateAnchors } from './anchors.js';
import { BBOX_XFORM_CLIP, decodeBoxes, decodeBoxesTensor, encodeBoxes } from './box-coder.js';
import { chwToHwc, maxAbs, openFixture } from './test-fixtures.js';

const SET_B = {
  file: 'set-b-head.safetensors',
  sizes: [16, 8, 4, 2, 1].map((s) => [s, s] as [number, number]),
  images: 2,
  key: (l: number) => `${l}`,
};
const SET_A = {
  file: 'set-a-fine.safetensors',
  sizes: [
    [12, 16],
    [6, 8],
    [3, 4],
    [2, 2],
    [1, 1],
  ] as [number, number][],
  images: 2,
  key: (l: number) => `P${l + 3}`,
};

describe('anchors (make_anchor_generator_complex)', () => {
  it('cell anchors follow maskrcnn_benchmark generate_anchors', () => {
    expect(cellAnchors(8, [64], [1])).toEqual([[-28, -28, 35, 35]]);
    expect(cellAnchors(128, [1024], [1])).toEqual([[-448, -448, 575, 575]]);
    // stride 16, sizes 128/256/512, ratios 0.5/1/2, as the official numpy generate_anchors prints them
    // (not the MATLAB table in its comment, which is centred at 8 instead of 7.5)
    expect(cellAnchors(16, [128, 256, 512], [0.5, 1, 2])).toEqual([
      [-84, -40, 99, 55],
      [-176, -88, 191, 103],
      [-360, -184, 375, 199],
      [-56, -56, 71, 71],
      [-120, -120, 135, 135],
      [-248, -248, 263, 263],
      [-36, -80, 51, 95],
      [-80, -168, 95, 183],
      [-168, -344, 183, 359],
    ]);
    expect(anchorsPerLocation()).toBe(1);
  });

  it('rejects mismatched levels and bad sizes', () => {
    expect(() => generateAnchors([[2, 2]])).toThrow(/1 feature maps but 5 anchor strides/);
    expect(() =>
      generateAnchors([
        [2, 2],
        [1, 1],
        [1, 1],
        [1, 1],
        [1.5, 1],
      ]),
    ).toThrow(/level 4 has a bad feature size/);
    expect(() => generateAnchors([[1, 1]], { ...FIBER_ANCHORS, sizes: [64, 128] })).toThrow(/2 sizes but 5 strides/);
  });

  it.each([SET_B, SET_A])('equal the official anchors of $file', async ({ file, sizes, key }) => {
    const fx = await openFixture(file);
    const anchors = generateAnchors(sizes);
    for (let l = 0; l < 5; l++) {
      const ref = await fx.get(`anchors.${key(l)}`);
      const n = sizes[l][0] * sizes[l][1] * 4;
      // set A stores the anchors once per image
      for (let b = 0; b < ref.data.length / n; b++)
        expect(maxAbs(anchors[l], ref.data.subarray(b * n, (b + 1) * n))).toBe(0);
    }
  });
});

describe('BoxCoder (plain arrays)', () => {
  it.each([SET_B, SET_A])(
    'decode matches the official decoded boxes of $file',
    async ({ file, sizes, images, key }) => {
      const fx = await openFixture(file);
      const anchors = generateAnchors(sizes);
      let worst = 0;
      for (let l = 0; l < 5; l++) {
        const [h, w] = sizes[l];
        const reg = await fx.get(file === SET_A.file ? `head.bbox_reg.${key(l)}` : `bbox_reg.${key(l)}`);
        const ref = await fx.get(`decoded_boxes.${key(l)}`);
        for (let b = 0; b < images; b++) {
          const got = decodeBoxes(chwToHwc(reg.data, 4, h, w, b), anchors[l]);
          worst = Math.max(worst, maxAbs(got, ref.data.subarray(b * h * w * 4, (b + 1) * h * w * 4)));
        }
      }
      expect(worst).toBeLessThanOrEqual(1e-4);
    },
  );

  it('encode inverts decode and clamps dw/dh at log(1000/16)', () => {
    const anchors = new Float32Array([-28, -28, 35, 35, 100, 50, 163, 113]);
    const boxes = new Float32Array([0, 0, 9, 19, 90, 40, 200, 130]);
    const back = decodeBoxes(encodeBoxes(boxes, anchors), anchors);
    expect(maxAbs(back, boxes)).toBeLessThan(1e-4);
    // a huge dw is clamped: width = exp(log(62.5)) * 64 = 4000
    const big = decodeBoxes([0, 0, 100, 100], [-28, -28, 35, 35]);
    expect(big[2] - big[0] + 1).toBeCloseTo(Math.exp(BBOX_XFORM_CLIP) * 64, 1);
    expect(() => decodeBoxes([0, 0, 0], [0, 0, 0, 0])).toThrow(/not a whole number of boxes/);
    expect(() => encodeBoxes([0, 0, 1, 1], [0, 0, 1, 1, 0, 0, 1, 1])).toThrow(/1 codes\/boxes but 2 anchors/);
  });
});

const { names } = await testBackends();

describe.each(names)('BoxCoder (tensors) on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it.each([SET_B, SET_A])(
    'decodeBoxesTensor matches the official decoded boxes of $file',
    async ({ file, sizes, images, key }) => {
      const fx = await openFixture(file);
      const anchors = generateAnchors(sizes);
      let worst = 0;
      for (let l = 0; l < 5; l++) {
        const [h, w] = sizes[l];
        const reg = await fx.get(file === SET_A.file ? `head.bbox_reg.${key(l)}` : `bbox_reg.${key(l)}`);
        const ref = await fx.get(`decoded_boxes.${key(l)}`);
        const out = tf.tidy(() => {
          const codes = tf.reshape(tf.transpose(tf.tensor4d(reg.data, [images, 4, h, w]), [0, 2, 3, 1]), [
            images,
            h * w,
            4,
          ]);
          return decodeBoxesTensor(codes, tf.tensor2d(anchors[l], [h * w, 4]));
        });
        worst = Math.max(worst, maxAbs((await out.data()) as Float32Array, ref.data));
        out.dispose();
      }
      expect(worst).toBeLessThanOrEqual(1e-4);
    },
  );

  it('decodeBoxesTensor has correct gradients and does not leak', async () => {
    const anchors = tf.tensor2d([
      [-28, -28, 35, 35],
      [100, 50, 163, 113],
      [0, 0, 7, 7],
    ]);
    const codes = tf.tensor2d([
      [0.3, -0.2, 0.1, -0.4],
      [-1, 0.5, 0.7, 0.2],
      [0.2, 0.1, -0.3, 0.6],
    ]);
    const r = await gradCheck((c) => tf.div(decodeBoxesTensor(c, anchors), 100), [codes], { eps: 1e-2 });
    expect(r.ok).toBe(true);
    await expectNoTensorGrowth(() => decodeBoxesTensor(codes, anchors).dispose());
    tf.dispose([anchors, codes]);
  });
});

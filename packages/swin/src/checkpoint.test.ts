import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '@fiber-vl/tensor-core';
import { maxAbsDiff, useBackend } from '@fiber-vl/tensor-core/testing';
import { SwinTransformer } from './model.js';
import { fiberCoarseWindowSize, swinConfig } from './config.js';
import { loadSwinCheckpoint, resizeRelativePositionTable } from './checkpoint.js';

const tiny = (imageSize: number) =>
  swinConfig('swin_base_patch4_window12_384', {
    imageSize,
    embedDim: 8,
    depths: [2, 2, 2, 2],
    numHeads: [1, 2, 2, 4],
    windowSize: fiberCoarseWindowSize(imageSize),
  });

describe('Swin checkpoints at another resolution', () => {
  beforeAll(() => useBackend('cpu'));

  it('resizes a relative-position table like torch bicubic (FIBER swin_adapt_position_encoding)', () => {
    const t = tf.div(tf.pow(tf.reshape(tf.range(0, 98, 1, 'float32'), [49, 2]), 1.5), 50);
    const r = resizeRelativePositionTable(t, 9);
    expect(r.shape).toEqual([81, 2]);
    const v = Array.from(r.dataSync());
    // torch 1.13 reference values for the same input
    expect(
      maxAbsDiff(
        v.slice(0, 10),
        [
          -0.0719449, -0.0600361, -0.0485915, -0.0170353, 0.0114233, 0.0631023, 0.099977, 0.1632781, 0.1955079,
          0.2680658,
        ],
      ),
    ).toBeLessThan(1e-5);
    expect(
      maxAbsDiff(v.slice(-6), [18.2175426, 18.5092468, 18.734808, 19.0292263, 19.111618, 19.4079895]),
    ).toBeLessThan(1e-4);
    expect(v.reduce((a, b) => a + b)).toBeCloseTo(1240.9927, 2);
  });

  it('loads a 128-px checkpoint into a 160-px model: tables resized, buffers rebuilt, all else strict', () => {
    const src = new SwinTransformer(tiny(128));
    const dst = new SwinTransformer(tiny(160));
    const dict = new Map([...src.stateDict()].map(([k, v]) => [`vit_model.${k}`, v]));
    const r = loadSwinCheckpoint(dst, dict, { prefix: 'vit_model.' });
    expect(r.resized).toHaveLength(8);
    expect(dst.layers.at(0).blocks.at(0).attn.relativePositionBiasTable.shape).toEqual([81, 1]);
    expect(Array.from(dst.layers.at(1).blocks.at(0).attn.qkv.weight.value.dataSync())).toEqual(
      Array.from(src.layers.at(1).blocks.at(0).attn.qkv.weight.value.dataSync()),
    );
    const x = tf.randomNormal([1, 3, 160, 160]);
    const out = dst.forward(x);
    expect(out.lastHiddenState!.shape).toEqual([1, 25, 64]);
    src.dispose();
    dst.dispose();
  });

  it("names the key of a table that cannot be (2w-1)^2 rows, and of an index that is not the window's", () => {
    const dst = new SwinTransformer(tiny(160));
    const own = dst.stateDict();
    const key = 'layers.0.blocks.0.attn.relative_position_bias_table';
    for (const rows of [0, 4, 5]) {
      const dict = new Map(own);
      dict.set(key, tf.zeros([rows, 1]));
      expect(() => loadSwinCheckpoint(dst, dict), `${rows} rows`).toThrow(
        `${key}: relative_position_bias_table has ${rows} rows, not (2w-1)^2 for a window w >= 1 (the model has [81,1])`,
      );
    }
    expect(() => resizeRelativePositionTable(tf.zeros([9, 1]), 4)).toThrow('the side must be 2w-1');
    const indexKey = 'layers.1.blocks.1.attn.relative_position_index';
    const index = own.get(indexKey)!;
    const values = Array.from(index.dataSync());
    values[7] = 1000;
    const dict = new Map(own);
    dict.set(indexKey, tf.tensor(values, index.shape, 'int32'));
    expect(() => loadSwinCheckpoint(dst, dict)).toThrow(
      `${indexKey}: element 7 is 1000, where the index Swin builds for this window has ${index.dataSync()[7]}`,
    );
    dst.dispose();
  });
});

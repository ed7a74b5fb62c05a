// Swin-B at full size has exactly the official checkpoint's backbone keys and shapes (FIBER's
// vit_model rows without the fusion parameters), at 384 and 576 px.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { skipInit } from '@fiber-vl/tensor-core';
import { useBackend } from '@fiber-vl/tensor-core/testing';
import { SwinTransformer } from './model.js';
import { fiberCoarseWindowSize, swinConfig } from './config.js';

function officialRows(file: string): [string, string][] {
  const lines = readFileSync(join(__dirname, '../../../fixtures/fiber/keys', file), 'utf8')
    .trim()
    .split('\n')
    .slice(1);
  return lines
    .map((l) => l.split('\t'))
    .filter(([k]) => k.startsWith('vit_model.') && !/i2t/.test(k))
    .map(([k, shape]) => [k.slice('vit_model.'.length), shape.replace(/\s/g, '')]);
}

describe('Swin-B state-dict keys', () => {
  beforeAll(() => useBackend('cpu'));
  it.each([
    [384, 'state_dict_keys_coarse.tsv'],
    [576, 'state_dict_keys_coarse_576.tsv'],
  ] as const)('at %i px match the official table in order', (size, file) => {
    const config = swinConfig('swin_base_patch4_window12_384', {
      imageSize: size,
      windowSize: fiberCoarseWindowSize(size),
    });
    const model = skipInit(() => new SwinTransformer(config));
    const ours = [...model.stateDict()].map(([k, t]) => [k, JSON.stringify(t.shape)]);
    expect(ours).toEqual(officialRows(file));
    expect(model.numParameters()).toBeGreaterThan(86e6);
    model.dispose();
  });
});

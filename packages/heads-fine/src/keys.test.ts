// The full-size fine-grained FIBER-B model has exactly the keys and shapes, in order, of the
// official GeneralizedVLRCNN state dict: both fixture sets' state_dict_keys_fine.tsv (set B lists
// the v2 and v3 configs; v3 adds norm_i2t_i to the fused Swin blocks; the table lists those rows
// last, while the model registers them right after proj_i2t, as fusion_swin_transformer_v3.py does);
// and fusion's matchFiberCheckpoint recognises each version.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { matchFiberCheckpoint } from '@fiber-vl/fusion';
import { skipInit } from '@fiber-vl/tensor-core';
import { useBackend } from '@fiber-vl/tensor-core/testing';
import { createFiberFineModel } from './model.js';

const KEYS = join(__dirname, '../../../fixtures/fiber/keys');

/** [key, shape as "AxB"] rows of a key table (set A writes shapes as "[A, B]"), with the 4th column. */
function table(file: string): { key: string; shape: string; presentIn: string[] }[] {
  return readFileSync(join(KEYS, file), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#') && !l.startsWith('key\t'))
    .map((l) => {
      const [key, shape, , presentIn = 'v2,v3'] = l.split('\t');
      return { key, shape: shape.replace(/[[\]\s]/g, '').replace(/,/g, 'x'), presentIn: presentIn.split(',') };
    });
}

function ourKeys(version: 'v2' | 'v3'): { key: string; shape: string }[] {
  const model = skipInit(() => createFiberFineModel('base', { version }));
  const state = [...model.stateDict()].map(([name, t]) => ({ name, shape: t.shape }));
  model.dispose();
  // fusion's matchFiberCheckpoint names this very model, so a checkpoint it matches builds as here
  expect(matchFiberCheckpoint(state)).toMatchObject({ verdict: 'exact', kind: 'fine', version });
  return state.map(({ name, shape }) => ({ key: name, shape: shape.join('x') || '' }));
}

describe('fine-grained FIBER-B state-dict keys', () => {
  beforeAll(() => useBackend('cpu'));

  it.each([
    ['set B, v2', 'state_dict_keys_fine.set-b.tsv', 806],
    ['set A (v2)', 'state_dict_keys_fine.set-a.tsv', 806],
  ] as const)(
    '%s: every key and shape in order',
    (_, file, count) => {
      const expected = table(file)
        .filter((r) => r.presentIn.includes('v2'))
        .map(({ key, shape }) => ({ key, shape }));
      expect(expected).toHaveLength(count);
      expect(ourKeys('v2')).toEqual(expected);
    },
    600_000,
  );

  it("set B, v3: the v2 keys in order, plus each fused block's norm_i2t_i right after its proj_i2t", () => {
    const rows = table('state_dict_keys_fine.set-b.tsv');
    const v3Only = rows.filter((r) => !r.presentIn.includes('v2')).map(({ key, shape }) => ({ key, shape }));
    expect(v3Only).toHaveLength(12);
    const ours = ourKeys('v3');
    const isNorm = (k: string) => k.includes('.attn.norm_i2t_i.');
    expect(ours.filter((r) => !isNorm(r.key))).toEqual(
      rows.filter((r) => r.presentIn.includes('v2')).map(({ key, shape }) => ({ key, shape })),
    );
    expect(ours.filter((r) => isNorm(r.key))).toEqual(v3Only);
    ours.forEach((r, i) => {
      if (r.key.endsWith('norm_i2t_i.weight'))
        expect(ours[i - 1].key).toBe(r.key.replace('norm_i2t_i.weight', 'proj_i2t.bias'));
    });
  }, 600_000);
});

// The full-size FIBER-B FPN and VLDyHead have exactly the keys and shapes, in order, of the
// official fine-grained state dict (`fusion_backbone.backbone.fpn.*` and `rpn.head.*` rows of both
// fixture sets' state_dict_keys_fine.tsv; set B lists the v2 and v3 configs separately).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@fiber-vl/tensor-core/testing';
import { FIBER_DYHEAD, FIBER_FPN } from './config.js';
import { FPN } from './fpn.js';
import { VLDyHead } from './dyhead.js';
import { FINE_FIXTURES } from './parity-fixtures.js';

/** [key, shape as "AxB"] rows of a key table (set A writes shapes as "[A, B]"), with the 4th column. */
function table(file: string): { key: string; shape: string; presentIn: string[] }[] {
  return readFileSync(join(FINE_FIXTURES, 'keys', file), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#') && !l.startsWith('key\t'))
    .map((l) => {
      const [key, shape, , presentIn = 'v2,v3'] = l.split('\t');
      return { key, shape: shape.replace(/[[\]\s]/g, '').replace(/,/g, 'x'), presentIn: presentIn.split(',') };
    });
}

describe('fine-grained FPN and head state-dict keys', () => {
  let ours: { key: string; shape: string }[];
  beforeAll(async () => {
    await useBackend('cpu');
    const fpn = new FPN(FIBER_FPN);
    const head = new VLDyHead(FIBER_DYHEAD);
    const rows = (prefix: string, dict: Map<string, { shape: number[] }>) =>
      [...dict].map(([k, t]) => ({ key: prefix + k, shape: t.shape.join('x') }));
    ours = [...rows('fusion_backbone.backbone.fpn.', fpn.stateDict()), ...rows('rpn.head.', head.stateDict())];
    fpn.dispose();
    head.dispose();
  });

  it.each([
    ['set B, v2', 'set-b-fpn-rpn-head.tsv', 'v2'],
    ['set B, v3', 'set-b-fpn-rpn-head.tsv', 'v3'],
    ['set A', 'set-a-fpn-rpn-head.tsv', 'v2'],
  ])('%s', (_, file, version) => {
    const expected = table(file)
      .filter((r) => r.presentIn.includes(version))
      .map(({ key, shape }) => ({ key, shape }));
    expect(expected).toHaveLength(16 + 3 + 6 * 20 + 6 + 2 + 5);
    expect(ours).toEqual(expected);
  });
});

// roberta-base at full size has exactly the official FIBER checkpoint's text-backbone keys and
// shapes (text_transformer rows without the fusion parameters), in PyTorch's order.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { skipInit } from '@fiber-vl/tensor-core';
import { useBackend } from '@fiber-vl/tensor-core/testing';
import { RobertaModel } from './modeling.js';

describe('roberta-base state-dict keys', () => {
  beforeAll(() => useBackend('cpu'));
  it('match the official table in order', () => {
    const rows = readFileSync(join(__dirname, '../../../fixtures/fiber/keys/state_dict_keys_coarse.tsv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split('\t'))
      .filter(([k]) => k.startsWith('text_transformer.') && !/t2i/.test(k))
      .map(([k, shape]) => [k.slice('text_transformer.'.length), shape.replace(/\s/g, '')]);
    const model = skipInit(() => new RobertaModel({}));
    expect([...model.stateDict()].map(([k, t]) => [k, JSON.stringify(t.shape)])).toEqual(rows);
    expect(model.numParameters()).toBe(124645632);
    model.dispose();
  });
});

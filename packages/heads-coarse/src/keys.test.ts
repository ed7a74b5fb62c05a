// FIBER-B at 384 and 576 px, built for each official task, has exactly the keys and shapes (in
// order) of the official checkpoints' state dicts, and fusion's matchFiberCheckpoint recognises it. The ITC queue buffers (image_queue, ...:
// training state, 4096 x 3 x S x S images among them) are left out: the official loader drops them
// and the released fixtures omit them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { skipInit } from '@fiber-vl/tensor-core';
import { useBackend } from '@fiber-vl/tensor-core/testing';
import { fiberBaseConfig, matchFiberCheckpoint } from '@fiber-vl/fusion';
import { FiberCoarseModel } from './model.js';
import { FIBER_TASK_HEADS, type FiberTask } from './config.js';

const QUEUES = new Set([
  'image_queue',
  'text_queue',
  'image_input_queue',
  'text_input_queue',
  'text_input_mask_queue',
  'queue_ptr',
  'queue_total',
]);
const table = (file: string) =>
  readFileSync(join(__dirname, '../../../fixtures/fiber/keys', file), 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split('\t'))
    .filter(([k]) => !QUEUES.has(k));

describe('FIBER-B state-dict keys of every task checkpoint', () => {
  beforeAll(() => useBackend('cpu'));
  for (const [size, file] of [
    [384, 'state_dict_keys_coarse.tsv'],
    [576, 'state_dict_keys_coarse_576.tsv'],
  ] as const) {
    const rows = table(file);
    it.each(Object.keys(FIBER_TASK_HEADS) as FiberTask[])(`${size} px: %s`, (task) => {
      const expected = rows
        .filter((r) => r[3].split(',').includes(task))
        .map(([k, shape]) => [k, shape.replace(/\s/g, '')]);
      const model = skipInit(() => new FiberCoarseModel(fiberBaseConfig(size), task));
      const state = [...model.stateDict()].map(([name, t]) => ({ name, shape: t.shape }));
      model.dispose();
      expect(state.map(({ name, shape }) => [name, JSON.stringify(shape)])).toEqual(expected);
      // matchFiberCheckpoint names this very model, so a checkpoint it matches builds as above
      expect(matchFiberCheckpoint(state)).toMatchObject({ verdict: 'exact', kind: 'coarse', task, imageSize: size });
    });
  }
});

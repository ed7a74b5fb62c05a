// The torch.save writer: what it writes, our own reader reads back exactly (torch.load reads it too:
// checked by hand with Debian's python3-torch 1.13 while writing it; tests never need Python).
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../tf.js';
import { useBackend } from '../testing.js';
import { bufferSource } from './byte-source.js';
import { TorchCheckpoint } from './torch.js';
import { serializeTorchCheckpoint } from './torch-writer.js';
import { readZipDirectory } from './zip.js';

describe('serializeTorchCheckpoint', () => {
  beforeAll(() => useBackend('cpu'));

  it.each([undefined, 'model', 'state_dict'])(
    'round-trips float, int64, bool, scalar and empty tensors (wrap %s)',
    async (wrapKey) => {
      const tensors = new Map<string, tf.Tensor>([
        [
          'layer.weight',
          tf.tensor2d([
            [1.5, -2],
            [3, 4e-8],
          ]),
        ],
        ['layer.relative_position_index', tf.tensor1d([0, 2147483647, -5], 'int32')],
        ['mask', tf.tensor1d([1, 0, 1], 'bool')],
        ['temp', tf.scalar(0.07)],
        ['empty', tf.zeros([0, 3])],
      ]);
      const bytes = serializeTorchCheckpoint(tensors, { wrapKey });
      const ckpt = await TorchCheckpoint.fromSource(bufferSource(bytes, 'written.pth'));
      const dict = ckpt.stateDict();
      expect([...dict.keys()]).toEqual([...tensors.keys()]);
      for (const [name, t] of tensors) {
        const ref = dict.get(name)!;
        expect(ref.shape).toEqual(t.shape);
        const back = await ckpt.readTensor(ref, name);
        expect(Array.from(await back.data())).toEqual(Array.from(await t.data()));
        back.dispose();
      }
      expect(dict.get('layer.relative_position_index')!.dtype).toBe('I64');
      // data entries start on 64-byte boundaries, as torch.save writes them
      const entries = await readZipDirectory(bufferSource(bytes));
      for (const [name, e] of entries) if (name.includes('/data/')) expect(e.dataOffset % 64).toBe(0);
      tf.dispose([...tensors.values()]);
    },
  );

  it('names the tensor whose data does not fit its shape', () => {
    expect(() => serializeTorchCheckpoint({ w: { dtype: 'F32', shape: [2, 2], data: [1, 2, 3] } })).toThrow(
      'serializeTorchCheckpoint: tensor "w" has 3 values for shape [2, 2]',
    );
  });
});

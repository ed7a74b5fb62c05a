// PyTorch checkpoints written by real torch.save (torch 1.13, scripts/fixtures/make_torch_fixtures.py).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../testing.js';
import { tf } from '../tf.js';
import { bufferSource } from './byte-source.js';
import { readStoredZip, writeStoredZip } from '../../test/zip-writer.js';
import { DTYPE_BYTES } from './dtypes.js';
import { TorchCheckpoint } from './torch.js';

const dir = join(__dirname, '../../../../fixtures/torch');
const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')).state_dict as Record<
  string,
  { dtype: string; shape: number[]; values: number[] }
>;
const DTYPES: Record<string, string> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16', int64: 'I64', bool: 'BOOL' };

describe('torch.save checkpoints', () => {
  beforeAll(() => useBackend('cpu'));

  it('reads a .pth state dict: f32, f16, bf16, i64, bool, scalars, shared-storage views and strided tensors', async () => {
    const ckpt = await TorchCheckpoint.open(join(dir, 'state_dict.pth'));
    const sd = ckpt.stateDict();
    expect([...sd.keys()]).toEqual(Object.keys(expected)); // OrderedDict order kept
    for (const [name, e] of Object.entries(expected)) {
      const ref = sd.get(name)!;
      expect(ref.dtype, name).toBe(DTYPES[e.dtype]);
      expect(ref.shape, name).toEqual(e.shape);
      const raw = await ckpt.readRaw(ref);
      const got = Array.from(raw.data as ArrayLike<number | bigint>, Number);
      if (e.dtype === 'float32' || e.dtype === 'int64' || e.dtype === 'bool') expect(got, name).toEqual(e.values);
      else got.forEach((v, i) => expect(v, `${name}[${i}]`).toBe(e.values[i])); // f16/bf16 widen exactly
    }
    expect(sd.get('rank_output.weight')!.offset).toBe(6); // a view of itm_score.fc.weight row 1
    const t = await ckpt.readTensor(sd.get('index')!, 'index');
    expect(t.dtype).toBe('int32');
    expect(t.arraySync()).toEqual([
      [-5, -4, -3, -2],
      [-1, 0, 1, 2],
      [3, 4, 5, 6],
    ]);
    t.dispose();
    await ckpt.close();
  });

  it('reads a checkpoint saved on a big-endian machine (byteorder "big") as torch.load does; refuses another order', async () => {
    const pth = readFileSync(join(dir, 'state_dict.pth'));
    const itemOf = new Map(
      [...(await TorchCheckpoint.fromSource(bufferSource(pth))).stateDict().values()].map((r) => [
        r.storageKey,
        DTYPE_BYTES[r.dtype],
      ]),
    );
    // torch 1.13 wrote no byteorder record (read as little-endian); torch >= 2.1 writes one
    const withOrder = (order: string) =>
      writeStoredZip(
        [...readStoredZip(pth), { name: 'state_dict/byteorder', data: new TextEncoder().encode(order) }].map(
          ({ name, data }) => {
            const item = itemOf.get(name.split('/data/')[1] ?? '');
            if (!item || order !== 'big') return { name, data };
            const swapped = data.slice();
            for (let i = 0; i < data.length; i += item) swapped.set(data.subarray(i, i + item).reverse(), i);
            return { name, data: swapped };
          },
        ),
      );
    const big = await TorchCheckpoint.fromSource(bufferSource(withOrder('big'), 'big.pth'));
    for (const [name, e] of Object.entries(expected)) {
      const got = Array.from(
        (await big.readRaw(big.stateDict().get(name)!)).data as ArrayLike<number | bigint>,
        Number,
      );
      expect(got, name).toEqual(e.values);
    }
    const chunks = [];
    for await (const c of big.readRawChunks(big.stateDict().get('index')!, 'index', { chunkBytes: 16 }))
      chunks.push(...c);
    expect(chunks.map(Number)).toEqual(expected.index.values);
    await expect(TorchCheckpoint.fromSource(bufferSource(withOrder('weird'), 'w.pth'))).rejects.toThrow(
      'w.pth: the byteorder record says "weird", not "little" or "big"',
    );
  });

  it('reads a Node Buffer through bufferSource (Buffer.slice is a view, not a copy)', async () => {
    // readFileSync's Buffer: the stored tensors are views into it, and Buffer#slice shares memory
    for (const [file, key, shape] of [
      ['lightning.ckpt', 'itm_score.fc.weight', [2, 6]],
      ['expanded.pth', 'position_ids', [1, 6]],
    ] as const) {
      const path = join(dir, file);
      const fromBuffer = await TorchCheckpoint.fromSource(bufferSource(readFileSync(path), file));
      const fromFile = await TorchCheckpoint.open(path);
      const [a, b] = await Promise.all([fromBuffer.readStateDict(), fromFile.readStateDict()]);
      expect(a.get(key)!.shape).toEqual(shape);
      for (const [k, t] of b) expect(Array.from(await a.get(k)!.data())).toEqual(Array.from(await t.data()));
      tf.dispose([...a.values(), ...b.values()]);
      await Promise.all([fromBuffer.close(), fromFile.close()]);
    }
  });

  it('reads a Lightning .ckpt: state_dict and the plain data around it', async () => {
    const ckpt = await TorchCheckpoint.open(join(dir, 'lightning.ckpt'));
    const root = ckpt.root as Map<string, unknown>;
    expect(root.get('epoch')).toBe(3);
    expect(root.get('pytorch-lightning_version')).toBe('1.5.10');
    const hp = (root.get('hyper_parameters') as Map<string, Map<string, unknown>>).get('config')!;
    expect(hp.get('image_size')).toBe(384);
    expect(hp.get('lr')).toBe(1e-5);
    expect(hp.get('flags')).toEqual([true, null]);
    const sd = await ckpt.readStateDict();
    expect([...sd.keys()]).toEqual([
      'itm_score.fc.weight',
      'itm_score.fc.bias',
      'rank_output.weight',
      'rank_output.bias',
    ]);
    expect(Array.from(sd.get('rank_output.bias')!.dataSync())).toEqual(
      [expected['itm_score.fc.bias'].values[1]].map(Math.fround),
    );
    await ckpt.close();
  });

  it.each([
    ['truncated.pth', /truncated/],
    ['bad_opcode.pth', /data\.pkl: unsupported or invalid pickle opcode 0xff at byte 27/],
    ['unexpected_global.pth', /data\.pkl: refusing global os\.system/],
    ['storage_size_mismatch.pth', /storage 0 \(FloatStorage\) holds 44 bytes, expected 48 for 12 elements/],
  ])('refuses %s with a clear error', async (file, message) => {
    await expect(TorchCheckpoint.open(join(dir, file))).rejects.toThrow(message);
  });

  it('keeps unknown objects as inert stubs only when asked (never executing them)', async () => {
    const ckpt = await TorchCheckpoint.open(join(dir, 'unexpected_global.pth'), { unknownGlobals: 'stub' });
    expect(ckpt.root).toMatchObject({ global: 'os.system', args: ['echo hacked'] });
    await ckpt.close();
  });
});

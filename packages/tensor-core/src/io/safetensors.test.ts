import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../tf.js';
import { useBackend } from '../testing.js';
import { SafetensorsFile, serializeSafetensors, type SafetensorsDType } from './safetensors.js';
import { ShardedSafetensors, openSafetensors, saveSafetensors } from './sharded.js';

const fixtures = join(__dirname, '../../test/fixtures');
beforeAll(() => useBackend('cpu'));

/** Builds a file by hand: header JSON (unpadded unless given) + data bytes. */
function rawFile(header: unknown, data: Uint8Array, headerLen?: number): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}
const open = (bytes: Uint8Array) => SafetensorsFile.fromBytes(bytes, 'bad.safetensors');

describe('safetensors round trip', () => {
  const cases: [SafetensorsDType, number[], (number | bigint)[]][] = [
    ['F32', [2, 2], [1.5, -2.25, 3.0e-8, 65504]],
    ['F16', [4], [1.5, -2.25, 0.0001, 65504]],
    ['BF16', [3], [1.5, -2.25, 3.0e38]],
    ['I64', [3], [0n, -5n, 9007199254740993n]],
    ['I32', [2], [2147483647, -2147483648]],
    ['U8', [3], [0, 128, 255]],
    ['BOOL', [2], [1, 0]],
    ['F64', [1], [Math.PI]],
  ];
  it.each(cases)('%s keeps dtype, shape and values', async (dtype, shape, data) => {
    const bytes = serializeSafetensors({ t: { dtype, shape, data: data as number[] } }, { format: 'pt' });
    expect((bytes.length - 8 - Number(new DataView(bytes.buffer).getBigUint64(0, true))) % 1).toBe(0);
    expect(Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8).toBe(0);
    const f = await SafetensorsFile.fromBytes(bytes);
    expect(f.metadata).toEqual({ format: 'pt' });
    const raw = await f.readRaw('t');
    expect(raw.dtype).toBe(dtype);
    expect(raw.shape).toEqual(shape);
    const got = Array.from(raw.data as ArrayLike<number | bigint>);
    if (dtype === 'F16')
      expect(got).toEqual([1.5, -2.25, 0.00010001659393310547, 65504]); // torch: .half()
    else if (dtype === 'BF16')
      expect(got).toEqual([1.5, -2.25, 3.00405527047391e38]); // torch: tensor(3e38).bfloat16()
    else if (dtype === 'F32') expect(got).toEqual(Array.from(Float32Array.from(data as number[])));
    else expect(got).toEqual(data);
  });

  it('writes tf.Tensors and reads them back as tensors; I64 becomes int32 with a range check', async () => {
    const a = tf.tensor2d([
      [1, 2],
      [3, 4],
    ]);
    const b = tf.tensor1d([7, -1], 'int32');
    const f = await SafetensorsFile.fromBytes(
      serializeSafetensors(
        new Map<string, tf.Tensor>([
          ['a', a],
          ['b', b],
        ]),
      ),
    );
    expect(f.keys()).toEqual(['a', 'b']);
    expect((await f.readTensor('a')).arraySync()).toEqual([
      [1, 2],
      [3, 4],
    ]);
    const bt = await f.readTensor('b');
    expect(bt.dtype).toBe('int32');
    const big = await SafetensorsFile.fromBytes(
      serializeSafetensors({ x: { dtype: 'I64', shape: [1], data: [2n ** 40n] } }),
      'big.safetensors',
    );
    await expect(big.readTensor('x')).rejects.toThrow(
      'big.safetensors: tensor "x": I64 value 1099511627776 at index 0 does not fit in int32',
    );
    await expect(f.readTensor('zzz')).rejects.toThrow(/no tensor "zzz" \(the file has 2: a, b\)/);
  });

  it('keeps a tensor named "__proto__" and refuses one named "__metadata__"', async () => {
    const one = tf.ones([2]);
    const f = await SafetensorsFile.fromBytes(serializeSafetensors(new Map([['__proto__', one]]), { a: 'b' }));
    expect(f.keys()).toEqual(['__proto__']); // it vanished from the header, and the file was refused on reading
    const back = await f.readTensor('__proto__');
    expect(Array.from(await back.data())).toEqual([1, 1]);
    back.dispose();
    expect(() => serializeSafetensors(new Map([['__metadata__', one]]))).toThrow(
      'serializeSafetensors: "__metadata__" is the header\'s metadata entry, not a tensor name',
    );
    one.dispose();
  });

  it('saves to disk and reads lazily from a file, and reads a sharded checkpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fiber-st-'));
    await saveSafetensors(join(dir, 'part-1.safetensors'), { 'layer.0.w': tf.ones([2, 3]) });
    await saveSafetensors(join(dir, 'part-2.safetensors'), { 'layer.1.w': tf.zeros([4]) });
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({
        metadata: { total_size: 40 },
        weight_map: { 'layer.0.w': 'part-1.safetensors', 'layer.1.w': 'part-2.safetensors' },
      }),
    );
    const single = await openSafetensors(join(dir, 'part-1.safetensors'));
    expect(single.keys()).toEqual(['layer.0.w']);
    await single.close();
    const sharded = (await openSafetensors(join(dir, 'model.safetensors.index.json'))) as ShardedSafetensors;
    const all = await sharded.readAll();
    expect([...all.keys()]).toEqual(['layer.0.w', 'layer.1.w']);
    expect(all.get('layer.1.w')!.shape).toEqual([4]);
    expect((await sharded.info('layer.0.w')).shape).toEqual([2, 3]);
    await sharded.close();
    expect(() =>
      ShardedSafetensors.fromIndex('x.json', { weight_map: { a: '../../etc/passwd' } }, async () => {
        throw new Error();
      }),
    ).toThrow(/leaves the checkpoint folder/);
    await expect(SafetensorsFile.open(join(dir, 'missing.safetensors'))).rejects.toThrow(
      /missing.safetensors: no such file/,
    );
  });
});

describe('safetensors validation', () => {
  const f32 = (n: number) => new Uint8Array(4 * n);
  it('rejects a header length past the end of the file', async () => {
    await expect(open(rawFile({}, f32(0), 1000))).rejects.toThrow(
      'bad.safetensors: header length 1000 runs past the end of the file (10 bytes)',
    );
  });
  it('rejects a file shorter than 8 bytes', async () => {
    await expect(open(new Uint8Array(3))).rejects.toThrow(
      'bad.safetensors: file is 3 bytes, too short for the 8-byte header length',
    );
  });
  it('rejects bad JSON', async () => {
    await expect(open(rawFile('{"a": [', f32(0)))).rejects.toThrow(/bad.safetensors: header is not valid JSON/);
    await expect(open(rawFile('[1, 2]', f32(0)))).rejects.toThrow('bad.safetensors: header is not a JSON object');
  });
  it('rejects an unknown dtype', async () => {
    await expect(open(rawFile({ w: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, f32(1)))).rejects.toThrow(
      'bad.safetensors: tensor "w": unknown dtype "F8_E4M3"',
    );
  });
  it('rejects out-of-range offsets', async () => {
    await expect(open(rawFile({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32(2)))).rejects.toThrow(
      'bad.safetensors: tensor "w": data_offsets [0, 16] are out of range (data section is 8 bytes)',
    );
    await expect(open(rawFile({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, f32(2)))).rejects.toThrow(
      'end before they begin',
    );
  });
  it('rejects overlapping tensors', async () => {
    const h = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    };
    await expect(open(rawFile(h, f32(3)))).rejects.toThrow(
      'bad.safetensors: tensors "a" [0, 8] and "b" [4, 12] overlap',
    );
  });
  it('rejects gaps and bytes after the last tensor, as the reference reader does', async () => {
    const gap = {
      a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
    };
    await expect(open(rawFile(gap, f32(3)))).rejects.toThrow(
      'bad.safetensors: bytes [4, 8) of the data section belong to no tensor (before "b")',
    );
    await expect(open(rawFile({ b: gap.b }, f32(3)))).rejects.toThrow(
      'bytes [0, 8) of the data section belong to no tensor',
    );
    await expect(open(rawFile({ a: gap.a }, f32(3)))).rejects.toThrow(
      "bad.safetensors: 8 bytes after the end of the last tensor's data (byte 4 of a 12-byte data section)",
    );
    await expect(open(rawFile({}, f32(1)))).rejects.toThrow('4 bytes after the end');
    // a tensor of no elements inside another's bytes
    const inside = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      e: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
    };
    await expect(open(rawFile(inside, f32(2)))).rejects.toThrow('tensors "a" [0, 8] and "e" [4, 4] overlap');
    // in any header order, and with empty tensors at the edges, a tiled data section reads
    const tiled = {
      z: { dtype: 'F32', shape: [0], data_offsets: [8, 8] },
      b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
      e: { dtype: 'I8', shape: [0], data_offsets: [0, 0] },
      a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
    };
    const file = await open(rawFile(tiled, f32(2)));
    expect(file.keys()).toEqual(['z', 'b', 'e', 'a']);
    await file.close();
  });
  it('rejects a shape that does not match the byte size', async () => {
    await expect(open(rawFile({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32(2)))).rejects.toThrow(
      'bad.safetensors: tensor "w": shape [3] of F32 needs 12 bytes, data_offsets [0, 8] give 8',
    );
    await expect(open(rawFile({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 8] } }, f32(2)))).rejects.toThrow(
      'is not a list of non-negative integers',
    );
  });
  it('shows a bad value briefly, also one nested deeper than JSON.stringify can go', async () => {
    const deep = `{"w": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    await expect(open(rawFile(deep, f32(0)))).rejects.toThrow(
      'bad.safetensors: tensor "w": entry is a value nested too deeply to show, not an object',
    );
    const long = { w: { dtype: 'F32', shape: Array(1000).fill(-1), data_offsets: [0, 0] } };
    await expect(open(rawFile(long, f32(0)))).rejects.toThrow(
      'tensor "w": shape [-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,... is not a list',
    );
  });
});

describe('files from an independent writer', () => {
  it('reads the FIBER fixture inputs exactly as numpy does', async () => {
    const expected = JSON.parse(readFileSync(join(fixtures, 'tiny_coarse_inputs.expected.json'), 'utf8'));
    const f = await SafetensorsFile.open(join(fixtures, 'tiny_coarse_inputs.safetensors'));
    expect(f.metadata).toEqual(expected.tensors.__metadata__ ?? {});
    const names = Object.keys(expected.tensors).filter((k) => k !== '__metadata__');
    expect(f.keys().sort()).toEqual(names.sort());
    for (const name of names) {
      const e = expected.tensors[name];
      const raw = await f.readRaw(name);
      expect(raw.dtype).toBe(e.dtype);
      expect(raw.shape).toEqual(e.shape);
      const v = Array.from(raw.data as ArrayLike<number | bigint>, Number);
      expect(v.slice(0, 4)).toEqual(e.first);
      expect(v[v.length - 1]).toBe(e.last);
      expect(Math.abs(v.reduce((a, b) => a + b, 0) - e.sum)).toBeLessThan(1e-6 * Math.max(1, Math.abs(e.sum)));
      const t = await f.readTensor(name);
      expect(t.shape).toEqual(e.shape);
      t.dispose();
    }
    await f.close();
  });
});

describe('duplicate keys in JSON headers', () => {
  it('finds a key repeated in one object, at any depth, and nothing in valid headers', async () => {
    const { findDuplicateKey } = await import('./json-keys.js');
    expect(findDuplicateKey('{"a": 1, "b": {"a": 2}, "c": [{"a": 3}, {"a": 4}]}')).toBeUndefined();
    expect(findDuplicateKey('{"a": 1, "a": 2}')).toEqual({ key: 'a', path: [] });
    expect(findDuplicateKey('{"w": {"dtype": "F32", "shape": [1], "dtype": "I32"}}')).toEqual({
      key: 'dtype',
      path: ['w'],
    });
    expect(findDuplicateKey('{"x\\"y": 1, "x\\u0022y": 2}')).toEqual({ key: 'x"y', path: [] }); // equal once decoded
    expect(findDuplicateKey('{"a\\\\": {"b": [1, {"c": 1, "c": 2}]}}')).toEqual({ key: 'c', path: ['a\\', 'b', '?'] });
  });
});

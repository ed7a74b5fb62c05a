// Writing PyTorch checkpoints that `torch.load` reads (the zip container of torch.save >= 1.6:
// archive/data.pkl + archive/data/<n> storages + archive/version), so weights trained here go back
// to the official PyTorch code. The pickle holds an OrderedDict of tensors rebuilt with
// torch._utils._rebuild_tensor_v2, optionally wrapped in a dict under one key ({"model": ...} as
// maskrcnn_benchmark saves, {"state_dict": ...} as Lightning does). Entries are stored
// (uncompressed) with their data aligned to 64 bytes, as torch.save writes them.
import { tf } from '../tf.js';
import { encode, type SafetensorsDType } from './safetensors.js';

const STORAGE_OF: Record<SafetensorsDType, string> = {
  F32: 'FloatStorage',
  F16: 'HalfStorage',
  BF16: 'BFloat16Storage',
  F64: 'DoubleStorage',
  I64: 'LongStorage',
  I32: 'IntStorage',
  I16: 'ShortStorage',
  I8: 'CharStorage',
  U8: 'ByteStorage',
  BOOL: 'BoolStorage',
};

export type TorchWriterInput =
  | tf.Tensor
  | { dtype: SafetensorsDType; shape: number[]; data: ArrayLike<number> | ArrayLike<bigint> };

export interface SerializeTorchOptions {
  /** Wrap the state dict in a dict under this key ('model' for maskrcnn_benchmark .pth, 'state_dict' for Lightning .ckpt). */
  wrapKey?: string;
  /** Store int32 tensors as int64 (LongStorage), as PyTorch keeps index buffers. Default true. */
  int64?: boolean;
  /** Archive folder name inside the zip (torch.save uses the file's stem; any name loads). */
  archiveName?: string;
}

class Pickler {
  private readonly parts: number[] = [];
  private readonly enc = new TextEncoder();
  byte(...b: number[]) {
    this.parts.push(...b);
  }
  u32(v: number) {
    this.byte(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  }
  str(s: string) {
    const b = this.enc.encode(s);
    this.byte(0x58); // BINUNICODE
    this.u32(b.length);
    for (const x of b) this.parts.push(x);
  }
  int(v: number) {
    if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff)
      throw new RangeError(`torch writer: integer ${v} out of range`);
    if (v < 256)
      this.byte(0x4b, v); // BININT1
    else {
      this.byte(0x4a); // BININT
      this.u32(v);
    }
  }
  global(module: string, name: string) {
    const b = this.enc.encode(`${module}\n${name}\n`);
    this.byte(0x63); // GLOBAL
    for (const x of b) this.parts.push(x);
  }
  tuple(items: number[]) {
    this.byte(0x28); // MARK
    for (const v of items) this.int(v);
    this.byte(0x74); // TUPLE
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A stored-only zip; each entry's data starts on a 64-byte boundary (padding in the local extra field). */
function zip(entries: { name: string; data: Uint8Array }[]): Uint8Array {
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const { name, data } of entries) {
    if (data.length >= 0xffffffff || offset >= 0xffffffff)
      throw new RangeError('torch writer: checkpoints over 4 GiB need ZIP64, which this writer does not write');
    const nameBytes = enc.encode(name);
    const headerLen = 30 + nameBytes.length;
    const pad = (64 - ((offset + headerLen + 4) % 64)) % 64; // extra field: 4-byte header + padding
    const extraLen = 4 + pad;
    const crc = crc32(data);
    const local = new DataView(new ArrayBuffer(headerLen + extraLen));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, 20, true);
    local.setUint32(14, crc, true);
    local.setUint32(18, data.length, true);
    local.setUint32(22, data.length, true);
    local.setUint16(26, nameBytes.length, true);
    local.setUint16(28, extraLen, true);
    new Uint8Array(local.buffer).set(nameBytes, 30);
    local.setUint16(headerLen, 0xcafe, true); // an unassigned id for the padding field (torch uses "FB")
    local.setUint16(headerLen + 2, pad, true);
    const cd = new DataView(new ArrayBuffer(46 + nameBytes.length));
    cd.setUint32(0, 0x02014b50, true);
    cd.setUint16(4, 20, true);
    cd.setUint16(6, 20, true);
    cd.setUint32(16, crc, true);
    cd.setUint32(20, data.length, true);
    cd.setUint32(24, data.length, true);
    cd.setUint16(28, nameBytes.length, true);
    cd.setUint32(42, offset, true);
    new Uint8Array(cd.buffer).set(nameBytes, 46);
    chunks.push(new Uint8Array(local.buffer), data);
    central.push(new Uint8Array(cd.buffer));
    offset += headerLen + extraLen + data.length;
  }
  const cdSize = central.reduce((n, c) => n + c.length, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, entries.length, true);
  end.setUint16(10, entries.length, true);
  end.setUint32(12, cdSize, true);
  end.setUint32(16, offset, true);
  const out = new Uint8Array(offset + cdSize + 22);
  let p = 0;
  for (const c of [...chunks, ...central, new Uint8Array(end.buffer)]) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

/**
 * A torch.save checkpoint (bytes) of `tensors` that `torch.load(path)` returns as an OrderedDict
 * (or `{wrapKey: OrderedDict}`), contiguous, on the CPU.
 *
 * @example
 * writeFileSync('model.pth', serializeTorchCheckpoint(model.stateDict(), { wrapKey: 'model' }));
 */
export function serializeTorchCheckpoint(
  tensors: Map<string, TorchWriterInput> | Record<string, TorchWriterInput>,
  { wrapKey, int64 = true, archiveName = 'archive' }: SerializeTorchOptions = {},
): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const p = new Pickler();
  const storages: { name: string; data: Uint8Array }[] = [];
  p.byte(0x80, 2); // PROTO 2
  if (wrapKey !== undefined) {
    p.byte(0x7d); // EMPTY_DICT
    p.str(wrapKey);
  }
  p.global('collections', 'OrderedDict');
  p.byte(0x29, 0x52); // EMPTY_TUPLE, REDUCE -> OrderedDict()
  p.byte(0x28); // MARK (SETITEMS)
  entries.forEach(([name, t], i) => {
    let dtype: SafetensorsDType;
    let shape: number[];
    let data: ArrayLike<number> | ArrayLike<bigint>;
    if (t instanceof tf.Tensor) {
      shape = t.shape;
      data = t.dataSync() as ArrayLike<number>;
      dtype =
        t.dtype === 'float32'
          ? 'F32'
          : t.dtype === 'int32'
            ? int64
              ? 'I64'
              : 'I32'
            : t.dtype === 'bool'
              ? 'BOOL'
              : (undefined as never);
      if (!dtype)
        throw new TypeError(
          `serializeTorchCheckpoint: tensor "${name}" has dtype ${t.dtype}, which has no torch storage here`,
        );
    } else {
      ({ dtype, shape, data } = t);
    }
    const numel = shape.reduce((a, b) => a * b, 1);
    if (data.length !== numel)
      throw new RangeError(
        `serializeTorchCheckpoint: tensor "${name}" has ${data.length} values for shape [${shape.join(', ')}]`,
      );
    const key = String(i);
    storages.push({ name: `${archiveName}/data/${key}`, data: encode(dtype, data) });
    const strides = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
    p.str(name);
    p.global('torch._utils', '_rebuild_tensor_v2');
    p.byte(0x28); // MARK (args)
    p.byte(0x28); // MARK (persistent id tuple)
    p.str('storage');
    p.global('torch', STORAGE_OF[dtype]);
    p.str(key);
    p.str('cpu');
    p.int(numel);
    p.byte(0x74, 0x51); // TUPLE, BINPERSID
    p.int(0); // storage offset
    p.tuple(shape);
    p.tuple(strides);
    p.byte(0x89); // requires_grad False
    p.global('collections', 'OrderedDict');
    p.byte(0x29, 0x52); // backward hooks: OrderedDict()
    p.byte(0x74, 0x52); // TUPLE, REDUCE
  });
  p.byte(0x75); // SETITEMS
  if (wrapKey !== undefined) p.byte(0x73); // SETITEM
  p.byte(0x2e); // STOP
  const enc = new TextEncoder();
  return zip([
    { name: `${archiveName}/data.pkl`, data: p.bytes() },
    { name: `${archiveName}/byteorder`, data: enc.encode('little') },
    ...storages,
    { name: `${archiveName}/version`, data: enc.encode('3\n') },
  ]);
}

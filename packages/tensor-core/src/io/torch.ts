// Reading PyTorch checkpoints without Python: the zip container of torch.save (>= 1.6) and the
// subset of pickle it writes. Only a fixed set of globals is accepted (OrderedDict, the tensor /
// parameter rebuild functions, the typed storages); anything else in the pickle is refused with an
// error naming it, never imported or executed. Tensors are returned as lazy references whose bytes
// are read from their storage entry when asked for.
import { tf } from '../tf.js';
import type { ByteSource } from './byte-source.js';
import { platform } from '#platform';
import { decode, rawToTensor, type RawTensor, type SafetensorsDType } from './safetensors.js';
import { readZipDirectory, type ZipEntry } from './zip.js';

export class TorchCheckpointError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'TorchCheckpointError';
  }
}

const STORAGES: Record<string, { dtype: SafetensorsDType; bytes: number }> = {
  FloatStorage: { dtype: 'F32', bytes: 4 },
  HalfStorage: { dtype: 'F16', bytes: 2 },
  BFloat16Storage: { dtype: 'BF16', bytes: 2 },
  DoubleStorage: { dtype: 'F64', bytes: 8 },
  LongStorage: { dtype: 'I64', bytes: 8 },
  IntStorage: { dtype: 'I32', bytes: 4 },
  ShortStorage: { dtype: 'I16', bytes: 2 },
  CharStorage: { dtype: 'I8', bytes: 1 },
  ByteStorage: { dtype: 'U8', bytes: 1 },
  BoolStorage: { dtype: 'BOOL', bytes: 1 },
};

/** A tensor inside a torch checkpoint, not yet read. */
export class TorchTensorRef {
  constructor(
    readonly storageKey: string,
    readonly dtype: SafetensorsDType,
    readonly storageNumel: number,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}

class Global {
  constructor(readonly module: string, readonly name: string) {}
  get qualified() {
    return `${this.module}.${this.name}`;
  }
}
class StorageType {
  constructor(readonly name: string) {}
}
/** An object the reader did not build (only with `unknownGlobals: 'stub'`): inert data. */
export class PickleStub {
  constructor(
    readonly global: string,
    readonly args: unknown[],
    public state?: unknown,
  ) {}
}
const MARK = Symbol('mark');

export interface TorchLoadOptions {
  /** 'error' (default): refuse any global outside the allowed set; 'stub': keep them as inert PickleStub data. */
  unknownGlobals?: 'error' | 'stub';
}

/** Unpickles torch.save's data.pkl. `persistentLoad` resolves storages. */
function unpickle(bytes: Uint8Array, file: string, persistentLoad: (pid: unknown[]) => unknown, { unknownGlobals = 'error' }: TorchLoadOptions): unknown {
  const fail = (m: string): never => {
    throw new TorchCheckpointError(file, `data.pkl: ${m}`);
  };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dec = new TextDecoder();
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let p = 0;
  const need = (n: number) => {
    if (p + n > bytes.length) fail(`truncated at byte ${p}`);
  };
  const readLine = () => {
    const end = bytes.indexOf(10, p);
    if (end < 0) fail(`unterminated line at byte ${p}`);
    const s = dec.decode(bytes.subarray(p, end));
    p = end + 1;
    return s;
  };
  const popMark = () => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail('MARK missing');
    const items = stack.splice(i);
    items.shift();
    return items;
  };
  const top = () => {
    if (!stack.length) fail(`stack underflow at byte ${p}`);
    return stack[stack.length - 1];
  };
  const allowed = (g: Global): unknown => {
    if (g.module === 'collections' && g.name === 'OrderedDict') return g;
    if (g.module === 'torch._utils' && (g.name === '_rebuild_tensor_v2' || g.name === '_rebuild_parameter' || g.name === '_rebuild_tensor')) return g;
    if (g.module === 'torch' && g.name in STORAGES) return new StorageType(g.name);
    if (unknownGlobals === 'stub') return g;
    return fail(`refusing global ${g.qualified} (only tensors, storages and OrderedDict are loaded; pass unknownGlobals: 'stub' to keep other objects as inert data)`);
  };
  const call = (fn: unknown, args: unknown[]): unknown => {
    if (!(fn instanceof Global)) return fail(`REDUCE on a non-callable (${String(fn)})`);
    if (fn.qualified === 'collections.OrderedDict') return new Map();
    if (fn.qualified === 'torch._utils._rebuild_tensor_v2' || fn.qualified === 'torch._utils._rebuild_tensor') {
      const [storage, offset, size, stride] = args as [{ key: string; type: StorageType; numel: number }, number, number[], number[]];
      if (!storage || !(storage.type instanceof StorageType)) return fail('_rebuild_tensor_v2 without a storage');
      const info = STORAGES[storage.type.name];
      return new TorchTensorRef(storage.key, info.dtype, storage.numel, offset, [...size], [...stride]);
    }
    if (fn.qualified === 'torch._utils._rebuild_parameter') return args[0];
    return new PickleStub(fn.qualified, args);
  };
  for (;;) {
    need(1);
    const op = bytes[p++];
    switch (op) {
      case 0x80: need(1); p++; break; // PROTO
      case 0x95: need(8); p += 8; break; // FRAME
      case 0x2e: // STOP
        if (stack.length !== 1) fail(`STOP with ${stack.length} items on the stack`);
        return stack[0];
      case 0x28: stack.push(MARK); break; // MARK
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT (as a Map: keys keep their order)
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x85: stack.push([stack.pop()]); break; // TUPLE1
      case 0x86: { const b = stack.pop(); const a = stack.pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = stack.pop(); const b = stack.pop(); const a = stack.pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x64: { const items = popMark(); const m = new Map(); for (let i = 0; i < items.length; i += 2) m.set(items[i], items[i + 1]); stack.push(m); break; } // DICT
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: need(1); stack.push(bytes[p++]); break; // BININT1
      case 0x4d: need(2); stack.push(dv.getUint16(p, true)); p += 2; break; // BININT2
      case 0x4a: need(4); stack.push(dv.getInt32(p, true)); p += 4; break; // BININT
      case 0x8a: { need(1); const n = bytes[p++]; need(n); let v = 0n; for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[p + i]); if (n && bytes[p + n - 1] & 0x80) v -= 1n << BigInt(8 * n); p += n; stack.push(Number.isSafeInteger(Number(v)) ? Number(v) : v); break; } // LONG1
      case 0x47: need(8); stack.push(dv.getFloat64(p, false)); p += 8; break; // BINFLOAT
      case 0x58: { need(4); const n = dv.getUint32(p, true); p += 4; need(n); stack.push(dec.decode(bytes.subarray(p, p + n))); p += n; break; } // BINUNICODE
      case 0x8c: { need(1); const n = bytes[p++]; need(n); stack.push(dec.decode(bytes.subarray(p, p + n))); p += n; break; } // SHORT_BINUNICODE
      case 0x8d: { need(8); const n = Number(dv.getBigUint64(p, true)); p += 8; need(n); stack.push(dec.decode(bytes.subarray(p, p + n))); p += n; break; } // BINUNICODE8
      case 0x55: { need(1); const n = bytes[p++]; need(n); stack.push(dec.decode(bytes.subarray(p, p + n))); p += n; break; } // SHORT_BINSTRING
      case 0x54: { need(4); const n = dv.getInt32(p, true); p += 4; need(n); stack.push(dec.decode(bytes.subarray(p, p + n))); p += n; break; } // BINSTRING
      case 0x43: { need(1); const n = bytes[p++]; need(n); stack.push(bytes.slice(p, p + n)); p += n; break; } // SHORT_BINBYTES
      case 0x42: { need(4); const n = dv.getUint32(p, true); p += 4; need(n); stack.push(bytes.slice(p, p + n)); p += n; break; } // BINBYTES
      case 0x71: need(1); memo.set(bytes[p++], top()); break; // BINPUT
      case 0x72: need(4); memo.set(dv.getUint32(p, true), top()); p += 4; break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: { need(1); const k = bytes[p++]; if (!memo.has(k)) fail(`BINGET of unknown memo ${k}`); stack.push(memo.get(k)); break; } // BINGET
      case 0x6a: { need(4); const k = dv.getUint32(p, true); p += 4; if (!memo.has(k)) fail(`LONG_BINGET of unknown memo ${k}`); stack.push(memo.get(k)); break; } // LONG_BINGET
      case 0x63: { const mod = readLine(); const name = readLine(); stack.push(allowed(new Global(mod, name))); break; } // GLOBAL
      case 0x93: { const name = stack.pop() as string; const mod = stack.pop() as string; stack.push(allowed(new Global(mod, name))); break; } // STACK_GLOBAL
      case 0x51: { const pid = stack.pop(); if (!Array.isArray(pid)) fail('BINPERSID with a non-tuple id'); stack.push(persistentLoad(pid as unknown[])); break; } // BINPERSID
      case 0x52: { const args = stack.pop() as unknown[]; const fn = stack.pop(); stack.push(call(fn, args)); break; } // REDUCE
      case 0x81: { const args = stack.pop() as unknown[]; const cls = stack.pop(); stack.push(call(cls, args)); break; } // NEWOBJ
      case 0x62: { const state = stack.pop(); const obj = top(); if (obj instanceof PickleStub) obj.state = state; break; } // BUILD: tensors and dicts take no state here
      case 0x73: { const v = stack.pop(); const k = stack.pop(); const d = top(); if (!(d instanceof Map)) fail('SETITEM on a non-dict'); (d as Map<unknown, unknown>).set(k, v); break; } // SETITEM
      case 0x75: { const items = popMark(); const d = top(); if (!(d instanceof Map)) fail('SETITEMS on a non-dict'); for (let i = 0; i < items.length; i += 2) (d as Map<unknown, unknown>).set(items[i], items[i + 1]); break; } // SETITEMS
      case 0x61: { const v = stack.pop(); const l = top(); if (!Array.isArray(l)) fail('APPEND on a non-list'); (l as unknown[]).push(v); break; } // APPEND
      case 0x65: { const items = popMark(); const l = top(); if (!Array.isArray(l)) fail('APPENDS on a non-list'); (l as unknown[]).push(...items); break; } // APPENDS
      default:
        fail(`unsupported or invalid pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${p - 1}`);
    }
  }
}

/** An opened PyTorch checkpoint: the unpickled object tree (dicts as Maps) with TorchTensorRef leaves. */
export class TorchCheckpoint {
  private constructor(
    private readonly source: ByteSource,
    private readonly entries: Map<string, ZipEntry>,
    private readonly prefix: string,
    readonly root: unknown,
  ) {}

  static async fromSource(source: ByteSource, options: TorchLoadOptions = {}): Promise<TorchCheckpoint> {
    const entries = await readZipDirectory(source);
    const pkl = [...entries.keys()].find((n) => n.endsWith('/data.pkl') || n === 'data.pkl');
    if (!pkl) throw new TorchCheckpointError(source.name, 'no data.pkl in the archive (not a torch.save checkpoint?)');
    const prefix = pkl.slice(0, pkl.length - 'data.pkl'.length);
    const e = entries.get(pkl)!;
    if (e.compression !== 0) throw new TorchCheckpointError(source.name, `data.pkl is compressed (method ${e.compression}); torch.save writes stored entries`);
    const bytes = await source.read(e.dataOffset, e.size);
    const root = unpickle(bytes, source.name, (pid) => {
      const [kind, type, key, , numel] = pid as [string, StorageType, string, string, number];
      if (kind !== 'storage' || !(type instanceof StorageType)) throw new TorchCheckpointError(source.name, `data.pkl: unsupported persistent id ${JSON.stringify(pid.map(String))}`);
      const entry = entries.get(`${prefix}data/${key}`);
      if (!entry) throw new TorchCheckpointError(source.name, `storage ${key} is missing from the archive`);
      const expected = numel * STORAGES[type.name].bytes;
      if (entry.size !== expected) throw new TorchCheckpointError(source.name, `storage ${key} (${type.name}) holds ${entry.size} bytes, expected ${expected} for ${numel} elements`);
      return { key, type, numel };
    }, options);
    return new TorchCheckpoint(source, entries, prefix, root);
  }

  /** Opens a .pth / .ckpt / .bin file (Node). */
  static async open(path: string, options?: TorchLoadOptions): Promise<TorchCheckpoint> {
    return TorchCheckpoint.fromSource(await platform.fileSource(path), options);
  }

  /**
   * The tensors of the state dict: Lightning's `state_dict`, a `model` / `state_dict` entry, or the
   * root itself when it is a dict of tensors.
   */
  stateDict(): Map<string, TorchTensorRef> {
    const asMap = (x: unknown) => (x instanceof Map ? (x as Map<unknown, unknown>) : undefined);
    const root = asMap(this.root);
    if (!root) throw new TorchCheckpointError(this.source.name, 'the checkpoint is not a dict');
    const nested = asMap(root.get('state_dict')) ?? asMap(root.get('model')) ?? root;
    const out = new Map<string, TorchTensorRef>();
    for (const [k, v] of nested) if (typeof k === 'string' && v instanceof TorchTensorRef) out.set(k, v);
    if (!out.size) throw new TorchCheckpointError(this.source.name, 'no tensors found in the state dict');
    return out;
  }

  /** Reads one tensor's values (strided views gathered) as a RawTensor. */
  async readRaw(ref: TorchTensorRef): Promise<RawTensor> {
    const entry = this.entries.get(`${this.prefix}data/${ref.storageKey}`)!;
    const itemBytes = STORAGES[Object.keys(STORAGES).find((k) => STORAGES[k].dtype === ref.dtype)!].bytes;
    const contiguous = ref.shape.every((_, i) => ref.stride[i] === ref.shape.slice(i + 1).reduce((a, b) => a * b, 1) || ref.shape[i] === 1);
    if (contiguous) {
      const bytes = await this.source.read(entry.dataOffset + ref.offset * itemBytes, ref.numel * itemBytes);
      return { dtype: ref.dtype, shape: ref.shape, data: decode(ref.dtype, bytes) };
    }
    const all = decode(ref.dtype, await this.source.read(entry.dataOffset, entry.size)) as unknown as ArrayLike<number | bigint> & { constructor: new (n: number) => ArrayLike<number | bigint> };
    const out = new (all.constructor as new (n: number) => Record<number, number | bigint> & ArrayLike<number | bigint>)(ref.numel);
    const idx = new Array(ref.shape.length).fill(0);
    for (let n = 0; n < ref.numel; n++) {
      let src = ref.offset;
      for (let d = 0; d < idx.length; d++) src += idx[d] * ref.stride[d];
      out[n] = all[src];
      for (let d = idx.length - 1; d >= 0; d--) {
        if (++idx[d] < ref.shape[d]) break;
        idx[d] = 0;
      }
    }
    return { dtype: ref.dtype, shape: ref.shape, data: out as unknown as RawTensor['data'] };
  }

  async readTensor(ref: TorchTensorRef, name = 'tensor'): Promise<tf.Tensor> {
    return rawToTensor(await this.readRaw(ref), `${this.source.name}: ${name}`);
  }

  /** Reads the whole state dict as tf.Tensors (one tensor at a time). */
  async readStateDict(filter: (name: string) => boolean = () => true): Promise<Map<string, tf.Tensor>> {
    const out = new Map<string, tf.Tensor>();
    for (const [k, ref] of this.stateDict()) if (filter(k)) out.set(k, await this.readTensor(ref, k));
    return out;
  }

  async close(): Promise<void> {
    await this.source.close?.();
  }
}

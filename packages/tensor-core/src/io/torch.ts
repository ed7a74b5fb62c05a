// Reading PyTorch checkpoints without Python: the zip container of torch.save (>= 1.6) and the
// subset of pickle it writes. Only a fixed set of globals is accepted (OrderedDict, the tensor /
// parameter rebuild functions, the typed storages); anything else in the pickle is refused with an
// error naming it, never imported or executed. Tensors are returned as lazy references whose bytes
// are read from their storage entry when asked for.
//
// Every tensor view is checked against its storage when the pickle builds it (sizes, strides and
// offset non-negative, the last element inside the storage), so a small file cannot claim a large
// tensor; what a view materialises is bounded by `maxTensorBytes` (and `maxExpandedBytes` for views
// that repeat storage elements, e.g. stride-0 expands).
import { tf } from '../tf.js';
import { READ_CHUNK_BYTES, readRange, type ByteSource } from './byte-source.js';
import { platform } from '#platform';
import {
  DEFAULT_MAX_TENSOR_BYTES,
  DTYPE_BYTES,
  checkMaterialisable,
  decode,
  rawToTensor,
  shapeNumel,
  type RawTensor,
  type RawValues,
  type SafetensorsDType,
} from './dtypes.js';
import { describe, unpickle, type PickleHooks } from './pickle.js';
import { readZipDirectory, readZipEntry, type ZipEntry } from './zip.js';

export class TorchCheckpointError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'TorchCheckpointError';
  }
}

/** torch's typed storages and the dtype of their elements (bytes per element: DTYPE_BYTES). */
const STORAGE_DTYPES: Record<string, SafetensorsDType> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

/** Views repeating storage elements materialise at most this much by default (256 MiB). */
export const DEFAULT_MAX_EXPANDED_BYTES = 1 << 28;
/** A data.pkl larger than this is refused (a state dict of 10,000 tensors pickles to ~2 MB). */
const MAX_PICKLE_BYTES = 1 << 30;
/** PyTorch's own limit on tensor dimensions. */
const MAX_DIMS = 64;

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
    return shapeNumel(this.shape);
  }
}

class Global {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified() {
    return `${this.module}.${this.name}`;
  }
}
class StorageType {
  constructor(
    readonly name: string,
    readonly dtype: SafetensorsDType,
  ) {}
}
class StorageRef {
  constructor(
    readonly key: string,
    readonly type: StorageType,
    readonly numel: number,
  ) {}
}
/** An object the reader did not build (only with `unknownGlobals: 'stub'`): inert data. */
export class PickleStub {
  constructor(
    readonly global: string,
    readonly args: unknown[],
    public state?: unknown,
  ) {}
}

export interface TorchLoadOptions {
  /** 'error' (default): refuse any global outside the allowed set; 'stub': keep them as inert PickleStub data. */
  unknownGlobals?: 'error' | 'stub';
  /** The largest tensor materialised, in bytes once decoded (default 4 GiB); readRawChunks streams larger ones. */
  maxTensorBytes?: number;
  /** The largest materialised view that repeats storage elements (stride 0 / overlapping strides; default 256 MiB). */
  maxExpandedBytes?: number;
}

const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const short = (x: unknown) =>
  typeof x === 'string'
    ? JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}...` : x)
    : typeof x === 'bigint' || typeof x === 'number'
      ? `${x}`
      : describe(x);

/** Checks that a view's sizes, strides and offset are PyTorch-valid and stay inside its storage. */
function checkView(ref: TorchTensorRef, storageType: string, fail: (m: string) => never): void {
  const { shape, stride, offset } = ref;
  if (shape.length !== stride.length)
    fail(`size [${shape.join(', ')}] and stride [${stride.join(', ')}] differ in length`);
  if (shape.length > MAX_DIMS) fail(`${shape.length} dimensions (PyTorch allows ${MAX_DIMS})`);
  if (!isCount(offset)) fail(`storage offset ${short(offset)} is not a non-negative integer`);
  shape.forEach((d, i) => {
    if (typeof d !== 'number' || !Number.isSafeInteger(d)) fail(`size ${short(d)} in dimension ${i} is not an integer`);
    if (d < 0) fail(`negative size ${d} in dimension ${i} of [${shape.join(', ')}]`);
  });
  stride.forEach((s, i) => {
    if (typeof s !== 'number' || !Number.isSafeInteger(s))
      fail(`stride ${short(s)} in dimension ${i} is not an integer`);
    if (s < 0) fail(`negative stride ${s} in dimension ${i} of [${stride.join(', ')}] (PyTorch tensors have none)`);
  });
  const numel = ref.numel;
  if (!Number.isFinite(numel)) fail(`size [${shape.join(', ')}] has more than 2^53 elements`);
  if (numel === 0) return;
  let last = offset;
  for (let i = 0; i < shape.length; i++) last += (shape[i] - 1) * stride[i];
  if (last >= ref.storageNumel) {
    fail(
      `view [${shape.join(', ')}] (stride [${stride.join(', ')}], offset ${offset}) reaches element ${last} of ` +
        `storage ${ref.storageKey}, which holds ${ref.storageNumel} elements (${storageType})`,
    );
  }
}

/** Row-major strides: the view reads one run of storage. */
function isContiguous(ref: TorchTensorRef): boolean {
  let expected = 1;
  for (let d = ref.shape.length - 1; d >= 0; d--) {
    if (ref.shape[d] !== 1 && ref.stride[d] !== expected) return false;
    expected *= ref.shape[d];
  }
  return true;
}

/** Storage elements [first, last] a (checked, non-empty) view touches. */
function viewSpan(ref: TorchTensorRef): [number, number] {
  let last = ref.offset;
  for (let i = 0; i < ref.shape.length; i++) last += (ref.shape[i] - 1) * ref.stride[i];
  return [ref.offset, last];
}

/** Copies a strided view's elements out of `span` (the storage bytes from element `first`), in row-major order. */
function gather(ref: TorchTensorRef, span: Uint8Array, first: number): Uint8Array {
  const item = DTYPE_BYTES[ref.dtype];
  const { shape, stride } = ref;
  const out = new Uint8Array(ref.numel * item);
  // copy runs along the last dimension when it is unit-strided, else element by element
  const unit = shape.length > 0 && stride[shape.length - 1] === 1;
  const run = unit ? shape[shape.length - 1] : 1;
  const outer = unit ? shape.length - 1 : shape.length;
  const idx = new Array<number>(outer).fill(0);
  let src = ref.offset - first;
  for (let o = 0; o < out.length; o += run * item) {
    out.set(span.subarray(src * item, (src + run) * item), o);
    for (let d = outer - 1; d >= 0; d--) {
      src += stride[d];
      if (++idx[d] < shape[d]) break;
      src -= stride[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

// torch.save's legacy formats: a pickle of this magic number first (PyTorch < 1.6, or
// _use_new_zipfile_serialization=False), or a tar archive (PyTorch <= 0.3).
const LEGACY_MAGIC = [0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const RESAVE = 're-save it with PyTorch >= 1.6: torch.save(torch.load(old_path), new_path)';

/** What a file that is not a zip archive is, from its first bytes, or undefined. */
function legacyFormat(head: Uint8Array): string | undefined {
  if (head[0] === 0x80 && head[1] <= 5) {
    if (LEGACY_MAGIC.every((b, i) => head[2 + i] === b)) {
      return `a legacy torch.save file (PyTorch < 1.6 format, or _use_new_zipfile_serialization=False), not the zip format this reader reads; ${RESAVE}`;
    }
    return `a plain pickle file, not a torch.save zip archive (only torch.save checkpoints are read); if it came from PyTorch < 1.6, ${RESAVE}`;
  }
  if (head.length >= 262 && new TextDecoder().decode(head.subarray(257, 262)) === 'ustar') {
    return `a tar archive: the tar format of PyTorch <= 0.3, not the zip format this reader reads; ${RESAVE}`;
  }
  return undefined;
}

/**
 * What torch.save's pickle may refer to, as inert values: OrderedDict, the tensor / parameter
 * rebuild functions (building checked TorchTensorRefs), the typed storages (their archive entries
 * checked against their element count) and, with unknownGlobals 'stub', anything else as PickleStub.
 */
function torchPickleHooks(
  entries: Map<string, ZipEntry>,
  prefix: string,
  unknownGlobals: 'error' | 'stub',
  fail: (m: string) => never,
): PickleHooks {
  const pickleFail = (m: string): never => fail(`data.pkl: ${m}`);
  const storages = new Map<string, StorageRef>();
  return {
    global(module, name) {
      const g = new Global(module, name);
      if (g.qualified === 'collections.OrderedDict') return g;
      if (module === 'torch._utils' && ['_rebuild_tensor_v2', '_rebuild_tensor', '_rebuild_parameter'].includes(name))
        return g;
      if (module === 'torch' && Object.hasOwn(STORAGE_DTYPES, name)) return new StorageType(name, STORAGE_DTYPES[name]);
      if (unknownGlobals === 'stub') return g;
      return pickleFail(
        `refusing global ${g.qualified} (only tensors, storages and OrderedDict are loaded; pass unknownGlobals: 'stub' to keep other objects as inert data)`,
      );
    },
    call(fn, args) {
      if (!(fn instanceof Global)) return pickleFail(`REDUCE on a ${describe(fn)}, which is not callable`);
      switch (fn.qualified) {
        case 'collections.OrderedDict':
          return new Map();
        case 'torch._utils._rebuild_tensor_v2':
        case 'torch._utils._rebuild_tensor': {
          const [storage, offset, size, stride] = args;
          if (!(storage instanceof StorageRef))
            return pickleFail(`${fn.name} without a storage (got ${short(storage)})`);
          if (!Array.isArray(size) || !Array.isArray(stride))
            return pickleFail(`${fn.name}: size and stride must be tuples`);
          if (!isCount(offset)) {
            return pickleFail(
              `tensor of storage ${storage.key}: offset ${short(offset)} is not a non-negative integer`,
            );
          }
          const ref = new TorchTensorRef(
            storage.key,
            storage.type.dtype,
            storage.numel,
            offset,
            [...size],
            [...stride],
          );
          checkView(ref, storage.type.name, (m) => pickleFail(`tensor of storage ${storage.key}: ${m}`));
          return ref;
        }
        case 'torch._utils._rebuild_parameter': // (data, requires_grad, backward_hooks): the data
          return args[0] ?? null;
        default:
          return new PickleStub(fn.qualified, args);
      }
    },
    build(obj, state) {
      if (obj instanceof PickleStub) obj.state = state; // tensors and dicts take no state here
    },
    persistentLoad(pid) {
      const [kind, type, key, , numel] = pid;
      if (
        pid.length < 5 ||
        kind !== 'storage' ||
        !(type instanceof StorageType) ||
        typeof key !== 'string' ||
        !isCount(numel)
      ) {
        return pickleFail(`unsupported persistent id (${pid.map(short).join(', ')})`);
      }
      const known = storages.get(key);
      if (known) {
        if (known.type.name !== type.name) pickleFail(`storage ${key} is both ${known.type.name} and ${type.name}`);
        return known;
      }
      const storageEntry = entries.get(`${prefix}data/${key}`);
      if (!storageEntry) return fail(`storage ${key} is missing from the archive`);
      const expected = numel * DTYPE_BYTES[type.dtype];
      if (storageEntry.size !== expected) {
        fail(
          `storage ${key} (${type.name}) holds ${storageEntry.size} bytes, expected ${expected} for ${numel} elements`,
        );
      }
      const ref = new StorageRef(key, type, numel);
      storages.set(key, ref);
      return ref;
    },
  };
}

/**
 * Whether the archive's `byteorder` record says "big" (torch.save on a big-endian machine writes
 * it; without one, torch.load reads little-endian). Any other value is refused, as torch.load
 * refuses it ("Unknown endianness type").
 */
async function readByteOrder(source: ByteSource, entry: ZipEntry | undefined, fail: (m: string) => never) {
  if (!entry) return false;
  if (entry.size > 16) return fail(`the byteorder record is ${entry.size} bytes, not "little" or "big"`);
  const order = new TextDecoder().decode(await readZipEntry(source, entry));
  if (order !== 'little' && order !== 'big')
    fail(`the byteorder record says ${JSON.stringify(order)}, not "little" or "big"`);
  return order === 'big';
}

/** A copy of `bytes` with each `item`-byte element's bytes reversed (the source may be shared). */
function byteSwapped(bytes: Uint8Array, item: number): Uint8Array {
  if (item === 1) return bytes;
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += item) for (let k = 0; k < item; k++) out[i + k] = bytes[i + item - 1 - k];
  return out;
}

/** An opened PyTorch checkpoint: the unpickled object tree (dicts as Maps) with TorchTensorRef leaves. */
export class TorchCheckpoint {
  private readonly maxTensorBytes: number;
  private readonly maxExpandedBytes: number;

  private constructor(
    private readonly source: ByteSource,
    private readonly entries: Map<string, ZipEntry>,
    private readonly prefix: string,
    readonly root: unknown,
    options: TorchLoadOptions,
    /** The archive's byteorder record says "big": storages are byte-swapped as they are read. */
    private readonly bigEndian = false,
  ) {
    this.maxTensorBytes = options.maxTensorBytes ?? DEFAULT_MAX_TENSOR_BYTES;
    this.maxExpandedBytes = options.maxExpandedBytes ?? DEFAULT_MAX_EXPANDED_BYTES;
  }

  /** The file's name, as given by its ByteSource. */
  get name(): string {
    return this.source.name;
  }

  static async fromSource(source: ByteSource, options: TorchLoadOptions = {}): Promise<TorchCheckpoint> {
    const fail = (m: string): never => {
      throw new TorchCheckpointError(source.name, m);
    };
    const legacy = legacyFormat(await readRange(source, 0, Math.min(source.size, 512), fail, 'the first bytes'));
    if (legacy) fail(`is ${legacy}`);
    const entries = await readZipDirectory(source);
    // archive/data.pkl (the folder is named after the file torch.save wrote)
    const pkl =
      [...entries.keys()].find((n) => /^[^/]*\/data\.pkl$/.test(n)) ??
      (entries.has('data.pkl') ? 'data.pkl' : undefined);
    if (!pkl) return fail('no data.pkl in the archive (not a torch.save checkpoint?)');
    const prefix = pkl.slice(0, pkl.length - 'data.pkl'.length);
    const entry = entries.get(pkl)!;
    if (entry.size > MAX_PICKLE_BYTES) fail(`data.pkl is ${entry.size} bytes, over the ${MAX_PICKLE_BYTES}-byte limit`);
    const bytes = await readZipEntry(source, entry);
    const hooks = torchPickleHooks(entries, prefix, options.unknownGlobals ?? 'error', fail);
    const root = unpickle(bytes, hooks, (m) => fail(`data.pkl: ${m}`));
    const bigEndian = await readByteOrder(source, entries.get(`${prefix}byteorder`), fail);
    return new TorchCheckpoint(source, entries, prefix, root, options, bigEndian);
  }

  /** Opens a .pth / .ckpt / .bin file (Node); the file is closed again if it cannot be read. */
  static async open(path: string, options?: TorchLoadOptions): Promise<TorchCheckpoint> {
    let source: ByteSource;
    try {
      source = await platform.fileSource(path);
    } catch (e) {
      throw new TorchCheckpointError(path, e instanceof Error ? e.message : String(e));
    }
    try {
      return await TorchCheckpoint.fromSource(source, options);
    } catch (e) {
      await source.close?.().catch(() => undefined);
      throw e;
    }
  }

  /**
   * The tensors of the state dict: Lightning's `state_dict`, a `model` / `state_dict` entry, or the
   * root itself when it is a dict of tensors.
   */
  stateDict(): Map<string, TorchTensorRef> {
    const asMap = (x: unknown) => (x instanceof Map ? x : undefined);
    const root = asMap(this.root);
    if (!root) {
      const what =
        this.root instanceof PickleStub ? `${this.root.global} object, kept as an inert stub` : describe(this.root);
      throw new TorchCheckpointError(
        this.name,
        `the checkpoint is ${/^[aeiou]/i.test(what) ? 'an' : 'a'} ${what}, not a dict`,
      );
    }
    const nested = asMap(root.get('state_dict')) ?? asMap(root.get('model')) ?? root;
    const out = new Map<string, TorchTensorRef>();
    for (const [k, v] of nested) if (typeof k === 'string' && v instanceof TorchTensorRef) out.set(k, v);
    if (!out.size) throw new TorchCheckpointError(this.name, 'no tensors found in the state dict');
    return out;
  }

  /** The storage entry of a view, after checking the view against it. */
  private storageOf(ref: TorchTensorRef, fail: (m: string) => never): ZipEntry {
    const entry = this.entries.get(`${this.prefix}data/${ref.storageKey}`);
    if (!entry) return fail(`storage ${ref.storageKey} is not in this checkpoint`);
    if (entry.size !== ref.storageNumel * DTYPE_BYTES[ref.dtype])
      fail(`storage ${ref.storageKey} does not hold ${ref.storageNumel} ${ref.dtype} elements`);
    checkView(ref, ref.dtype, fail);
    return entry;
  }

  /** A storage's bytes as values, little-endian whatever the machine that saved them. */
  private decode(dtype: SafetensorsDType, bytes: Uint8Array): RawValues {
    return decode(dtype, this.bigEndian ? byteSwapped(bytes, DTYPE_BYTES[dtype]) : bytes);
  }

  private failFor(name: string | undefined, ref: TorchTensorRef) {
    const what = name === undefined ? `tensor of storage ${ref.storageKey}` : `tensor "${name}"`;
    return (m: string): never => {
      throw new TorchCheckpointError(this.name, `${what}: ${m}`);
    };
  }

  /**
   * Reads one tensor's values (strided views gathered) as a RawTensor. Tensors over
   * `maxTensorBytes`, or views that repeat storage elements over `maxExpandedBytes`, are refused
   * before anything is allocated.
   */
  async readRaw(ref: TorchTensorRef, name?: string): Promise<RawTensor> {
    const fail = this.failFor(name, ref);
    const entry = this.storageOf(ref, fail);
    checkMaterialisable(ref.dtype, ref.shape, this.maxTensorBytes, fail);
    if (ref.numel > ref.storageNumel) {
      checkMaterialisable(
        ref.dtype,
        ref.shape,
        this.maxExpandedBytes,
        (m) => fail(`a view that repeats storage elements (stride 0): ${m}`),
        'maxExpandedBytes',
      );
    }
    const item = DTYPE_BYTES[ref.dtype];
    if (ref.numel === 0) return { dtype: ref.dtype, shape: [...ref.shape], data: decode(ref.dtype, new Uint8Array(0)) };
    const [first, last] = viewSpan(ref);
    const span = await readZipEntry(this.source, entry, first * item, (last + 1) * item);
    const bytes = isContiguous(ref) ? span : gather(ref, span, first);
    return { dtype: ref.dtype, shape: [...ref.shape], data: this.decode(ref.dtype, bytes) };
  }

  /**
   * A tensor's values in row-major pieces of about `chunkBytes`, for tensors too large to hold at
   * once (contiguous views of stored entries are streamed; any other view is read whole).
   */
  async *readRawChunks(
    ref: TorchTensorRef,
    name?: string,
    { chunkBytes = READ_CHUNK_BYTES }: { chunkBytes?: number } = {},
  ): AsyncGenerator<RawValues> {
    const fail = this.failFor(name, ref);
    const entry = this.storageOf(ref, fail);
    if (!isContiguous(ref) || entry.compression !== 0) {
      yield (await this.readRaw(ref, name)).data;
      return;
    }
    const item = DTYPE_BYTES[ref.dtype];
    const step = Math.max(1, Math.floor(chunkBytes / item)) * item;
    const start = ref.offset * item;
    const total = ref.numel * item;
    for (let done = 0; done < total; done += step) {
      yield this.decode(
        ref.dtype,
        await readZipEntry(this.source, entry, start + done, start + Math.min(total, done + step)),
      );
    }
  }

  async readTensor(ref: TorchTensorRef, name = 'tensor'): Promise<tf.Tensor> {
    const raw = await this.readRaw(ref, name);
    try {
      return rawToTensor(raw, `tensor "${name}"`);
    } catch (e) {
      throw new TorchCheckpointError(this.name, e instanceof Error ? e.message : String(e));
    }
  }

  /** Reads the whole state dict as tf.Tensors (one tensor at a time); on a failure none is kept. */
  async readStateDict(filter: (name: string) => boolean = () => true): Promise<Map<string, tf.Tensor>> {
    const out = new Map<string, tf.Tensor>();
    try {
      for (const [k, ref] of this.stateDict()) if (filter(k)) out.set(k, await this.readTensor(ref, k));
      return out;
    } catch (e) {
      tf.dispose([...out.values()]);
      throw e;
    }
  }

  async close(): Promise<void> {
    await this.source.close?.();
  }
}

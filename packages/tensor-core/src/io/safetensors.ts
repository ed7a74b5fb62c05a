// safetensors (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then
// the raw little-endian data. Offsets are relative to the end of the header.
//
// Reading is lazy: opening parses only the header; each tensor's bytes are read when asked for,
// so a multi-GB checkpoint is never held in memory twice. The header is checked as the reference
// implementation checks it (and a little more): valid UTF-8 JSON without repeated keys, string
// metadata, known dtypes, integer shapes whose byte size equals their data_offsets, data inside
// the file and no two tensors sharing bytes.
import { tf } from '../tf.js';
import { READ_CHUNK_BYTES, bufferSource, readRange, type ByteSource } from './byte-source.js';
import { platform } from '#platform';
import {
  DEFAULT_MAX_TENSOR_BYTES,
  DTYPE_BYTES,
  checkMaterialisable,
  decode,
  encode,
  isDType,
  rawToTensor,
  shapeNumel,
  type RawTensor,
  type RawValues,
  type SafetensorsDType,
} from './dtypes.js';
import { findDuplicateKey } from './json-keys.js';

export {
  DTYPE_BYTES,
  DEFAULT_MAX_TENSOR_BYTES,
  decode,
  encode,
  rawToTensor,
  countNonFinite,
  type RawTensor,
  type RawValues,
  type SafetensorsDType,
} from './dtypes.js';

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Byte offsets of the data, relative to the start of the data section. */
  dataOffsets: [number, number];
}

export class SafetensorsError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'SafetensorsError';
  }
}

export interface SafetensorsOptions {
  /** The largest tensor materialised, in bytes once decoded (default 4 GiB); readRawChunks streams larger ones. */
  maxTensorBytes?: number;
}

/** The reference implementation's limit on the header. */
const MAX_HEADER_BYTES = 100_000_000;
const MAX_DIMS = 64;

const isPlainObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * A header value as a message shows it: its JSON cut to `max` characters. JSON.parse reads nesting
 * that JSON.stringify overflows the stack on (`[[[...]]]` 100,000 deep): such a value is named.
 */
function brief(x: unknown, max = 40): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(x);
  } catch {
    return 'a value nested too deeply to show';
  }
  json ??= String(x);
  return json.length > max ? `${json.slice(0, max)}...` : json;
}

/** Parses and checks one header entry. */
function tensorInfo(key: string, value: unknown, dataSize: number, fail: (m: string) => never): TensorInfo {
  const bad = (m: string): never => fail(`tensor "${key}": ${m}`);
  if (!isPlainObject(value)) return bad(`entry is ${brief(value)}, not an object`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (!isDType(dtype)) return bad(`unknown dtype ${brief(dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    return bad(`shape ${brief(shape)} is not a list of non-negative integers`);
  }
  if (shape.length > MAX_DIMS) bad(`shape has ${shape.length} dimensions (at most ${MAX_DIMS})`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    return bad(`data_offsets ${brief(offsets)} is not [begin, end]`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) bad(`data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataSize) bad(`data_offsets [${begin}, ${end}] are out of range (data section is ${dataSize} bytes)`);
  const expected = shapeNumel(shape) * DTYPE_BYTES[dtype];
  if (end - begin !== expected) {
    bad(
      `shape [${shape.join(', ')}] of ${dtype} needs ${Number.isFinite(expected) ? expected : 'more than 2^53'} bytes, data_offsets [${begin}, ${end}] give ${end - begin}`,
    );
  }
  return { name: key, dtype: dtype, shape: [...shape], dataOffsets: [begin, end] };
}

export class SafetensorsFile {
  private readonly maxTensorBytes: number;

  private constructor(
    private readonly source: ByteSource,
    readonly name: string,
    readonly tensors: Map<string, TensorInfo>,
    readonly metadata: Record<string, string>,
    /** Absolute offset of the data section in the source. */
    private readonly dataStart: number,
    options: SafetensorsOptions,
  ) {
    this.maxTensorBytes = options.maxTensorBytes ?? DEFAULT_MAX_TENSOR_BYTES;
  }

  /** Parses and validates the header of any byte source; tensor data is read on demand. */
  static async fromSource(
    source: ByteSource,
    name = source.name,
    options: SafetensorsOptions = {},
  ): Promise<SafetensorsFile> {
    const fail = (msg: string): never => {
      throw new SafetensorsError(name, msg);
    };
    if (source.size < 8) fail(`file is ${source.size} bytes, too short for the 8-byte header length`);
    const lenBytes = await readRange(source, 0, 8, fail, 'the header length');
    const headerLen = Number(new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true));
    if (headerLen > source.size - 8)
      fail(`header length ${headerLen} runs past the end of the file (${source.size} bytes)`);
    if (headerLen > MAX_HEADER_BYTES) fail(`header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
    let headerText = '';
    try {
      headerText = new TextDecoder('utf-8', { fatal: true }).decode(
        await readRange(source, 8, headerLen, fail, 'the header'),
      );
    } catch (e) {
      if (e instanceof SafetensorsError) throw e;
      fail('header is not valid UTF-8');
    }
    let header: unknown;
    try {
      header = JSON.parse(headerText);
    } catch (e) {
      fail(`header is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
    }
    if (!isPlainObject(header)) return fail('header is not a JSON object');
    const dup = findDuplicateKey(headerText);
    if (dup) fail(`header has the key "${dup.key}" twice${dup.path.length ? ` (in "${dup.path.join('" > "')}")` : ''}`);
    const dataStart = 8 + headerLen;
    const dataSize = source.size - dataStart;
    const tensors = new Map<string, TensorInfo>();
    let metadata: Record<string, string> = {};
    for (const [key, value] of Object.entries(header)) {
      if (key === '__metadata__') {
        if (!isPlainObject(value)) return fail('"__metadata__" is not an object');
        const bad = Object.entries(value).find(([, v]) => typeof v !== 'string');
        if (bad) fail(`"__metadata__"["${bad[0]}"] is ${brief(bad[1])}, not a string`);
        metadata = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)]));
        continue;
      }
      tensors.set(key, tensorInfo(key, value, dataSize, fail));
    }
    // as the reference reader (safetensors' Metadata::validate): ordered by their offsets, the
    // tensors tile the data section, from its first byte to its last, without gaps or overlaps
    const ordered = [...tensors.values()].sort(
      (a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1],
    );
    let end = 0;
    let last: TensorInfo | undefined;
    for (const t of ordered) {
      const [start, stop] = t.dataOffsets;
      if (last && start < end) {
        fail(
          `tensors "${last.name}" [${last.dataOffsets.join(', ')}] and "${t.name}" [${t.dataOffsets.join(', ')}] overlap`,
        );
      }
      if (start > end) {
        fail(
          `bytes [${end}, ${start}) of the data section belong to no tensor (before "${t.name}"); safetensors files have no gaps`,
        );
      }
      [end, last] = [stop, t];
    }
    if (end !== dataSize) {
      fail(
        `${dataSize - end} bytes after the end of the last tensor's data (byte ${end} of a ${dataSize}-byte data section); safetensors files end with their last tensor`,
      );
    }
    return new SafetensorsFile(source, name, tensors, metadata, dataStart, options);
  }

  /** Opens a file from a path (Node) lazily; the file is closed again if its header is refused. */
  static async open(path: string, options: SafetensorsOptions = {}): Promise<SafetensorsFile> {
    let source: ByteSource;
    try {
      source = await platform.fileSource(path);
    } catch (e) {
      throw new SafetensorsError(path, e instanceof Error ? e.message : String(e));
    }
    try {
      return await SafetensorsFile.fromSource(source, path, options);
    } catch (e) {
      await source.close?.().catch(() => undefined);
      throw e;
    }
  }

  /** Wraps bytes already in memory (browser fetch, tests). */
  static fromBytes(bytes: Uint8Array, name = '<bytes>', options: SafetensorsOptions = {}): Promise<SafetensorsFile> {
    return SafetensorsFile.fromSource(bufferSource(bytes, name), name, options);
  }

  keys(): string[] {
    return [...this.tensors.keys()];
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t)
      throw new SafetensorsError(
        this.name,
        `no tensor "${name}" (the file has ${this.tensors.size}: ${this.keys().slice(0, 10).join(', ')}${this.tensors.size > 10 ? ', ...' : ''})`,
      );
    return t;
  }

  private failFor(name: string) {
    return (m: string): never => {
      throw new SafetensorsError(this.name, `tensor "${name}": ${m}`);
    };
  }

  /** Reads and decodes one tensor's values; a tensor over `maxTensorBytes` is refused before anything is allocated. */
  async readRaw(name: string): Promise<RawTensor> {
    const t = this.info(name);
    const fail = this.failFor(name);
    checkMaterialisable(t.dtype, t.shape, this.maxTensorBytes, fail);
    const [begin, end] = t.dataOffsets;
    const bytes = await readRange(this.source, this.dataStart + begin, end - begin, fail, 'data');
    return { dtype: t.dtype, shape: [...t.shape], data: decode(t.dtype, bytes) };
  }

  /** One tensor's values in row-major pieces of about `chunkBytes` (for tensors too large to hold at once). */
  async *readRawChunks(
    name: string,
    { chunkBytes = READ_CHUNK_BYTES }: { chunkBytes?: number } = {},
  ): AsyncGenerator<RawValues> {
    const t = this.info(name);
    const fail = this.failFor(name);
    const item = DTYPE_BYTES[t.dtype];
    const step = Math.max(1, Math.floor(chunkBytes / item)) * item;
    const [begin, end] = t.dataOffsets;
    for (let at = begin; at < end; at += step) {
      yield decode(t.dtype, await readRange(this.source, this.dataStart + at, Math.min(step, end - at), fail, 'data'));
    }
  }

  /**
   * Reads one tensor as a tf.Tensor: floats as float32 (F16/BF16/F64 converted), integers as
   * int32 (I64 values outside the int32 range throw), BOOL as bool.
   */
  async readTensor(name: string): Promise<tf.Tensor> {
    const raw = await this.readRaw(name);
    try {
      return rawToTensor(raw, `tensor "${name}"`);
    } catch (e) {
      throw new SafetensorsError(this.name, e instanceof Error ? e.message : String(e));
    }
  }

  /** Reads every tensor (or those passing `filter`) into a Map, one at a time; on a failure none is kept. */
  async readAll(filter: (name: string) => boolean = () => true): Promise<Map<string, tf.Tensor>> {
    const out = new Map<string, tf.Tensor>();
    try {
      for (const name of this.keys()) if (filter(name)) out.set(name, await this.readTensor(name));
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

export type SafetensorsInput =
  | tf.Tensor
  | RawTensor
  | { dtype: SafetensorsDType; shape: number[]; data: ArrayLike<number> | ArrayLike<bigint> };

function toRaw(name: string, t: SafetensorsInput): { dtype: SafetensorsDType; shape: number[]; bytes: Uint8Array } {
  if (t instanceof tf.Tensor) {
    const dtype: SafetensorsDType =
      t.dtype === 'float32' ? 'F32' : t.dtype === 'int32' ? 'I32' : t.dtype === 'bool' ? 'BOOL' : (undefined as never);
    if (!dtype)
      throw new TypeError(
        `serializeSafetensors: tensor "${name}" has dtype ${t.dtype}, which safetensors cannot store`,
      );
    return { dtype, shape: t.shape, bytes: encode(dtype, t.dataSync() as ArrayLike<number>) };
  }
  if (!isDType(t.dtype)) throw new TypeError(`serializeSafetensors: tensor "${name}" has unknown dtype ${t.dtype}`);
  const elements = t.shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== elements) {
    throw new RangeError(
      `serializeSafetensors: tensor "${name}" has ${t.data.length} values for shape [${t.shape.join(', ')}] (${elements})`,
    );
  }
  return { dtype: t.dtype, shape: t.shape, bytes: encode(t.dtype, t.data) };
}

/**
 * Writes tensors into safetensors bytes. tf.Tensors are stored as F32/I32/BOOL; give
 * {dtype, shape, data} to store F16, BF16, I64, ... Tensors are laid out in the given order.
 */
export function serializeSafetensors(
  tensors: Map<string, SafetensorsInput> | Record<string, SafetensorsInput>,
  metadata?: Record<string, string>,
): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  // no prototype: a tensor named "__proto__" is an entry like any other (it vanished from the header)
  const header: Record<string, unknown> = Object.create(null);
  if (metadata) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === '__metadata__')
      throw new RangeError('serializeSafetensors: "__metadata__" is the header\'s metadata entry, not a tensor name');
    const raw = toRaw(name, t);
    header[name] = { dtype: raw.dtype, shape: raw.shape, data_offsets: [offset, offset + raw.bytes.byteLength] };
    blobs.push(raw.bytes);
    offset += raw.bytes.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8; // the format pads the header with spaces to 8 bytes
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const b of blobs) {
    out.set(b, pos);
    pos += b.byteLength;
  }
  return out;
}

// safetensors (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then
// the raw little-endian data. Offsets are relative to the end of the header.
//
// Reading is lazy: opening parses only the header; each tensor's bytes are read when asked for,
// so a multi-GB checkpoint is never held in memory twice. Every offset is validated.
import { tf } from '../tf.js';
import { type ByteSource, bufferSource } from './byte-source.js';
import { platform } from '#platform';

export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const DTYPE_BYTES: Record<SafetensorsDType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Byte offsets of the data, relative to the start of the data section. */
  dataOffsets: [number, number];
}

/** Decoded values: F16/BF16 widened to Float32Array, I64 as BigInt64Array, BOOL as Uint8Array. */
export type RawValues = Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | BigInt64Array;

export interface RawTensor {
  dtype: SafetensorsDType;
  shape: number[];
  data: RawValues;
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

const MAX_HEADER_BYTES = 100_000_000;

export class SafetensorsFile {
  private constructor(
    private readonly source: ByteSource,
    readonly name: string,
    readonly tensors: Map<string, TensorInfo>,
    readonly metadata: Record<string, string>,
    /** Absolute offset of the data section in the source. */
    private readonly dataStart: number,
  ) {}

  /** Parses and validates the header of any byte source; tensor data is read on demand. */
  static async fromSource(source: ByteSource, name = source.name): Promise<SafetensorsFile> {
    const fail = (msg: string): never => {
      throw new SafetensorsError(name, msg);
    };
    if (source.size < 8) fail(`file is ${source.size} bytes, too short for the 8-byte header length`);
    const lenBytes = await source.read(0, 8);
    const headerLen = Number(new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true));
    if (headerLen > source.size - 8) fail(`header length ${headerLen} runs past the end of the file (${source.size} bytes)`);
    if (headerLen > MAX_HEADER_BYTES) fail(`header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
    const headerText = new TextDecoder().decode(await source.read(8, headerLen));
    let header: unknown;
    try {
      header = JSON.parse(headerText);
    } catch (e) {
      fail(`header is not valid JSON (${(e as Error).message})`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
    const dataStart = 8 + headerLen;
    const dataSize = source.size - dataStart;
    const tensors = new Map<string, TensorInfo>();
    let metadata: Record<string, string> = {};
    for (const [key, value] of Object.entries(header as Record<string, unknown>)) {
      if (key === '__metadata__') {
        if (typeof value !== 'object' || value === null) fail('"__metadata__" is not an object');
        metadata = value as Record<string, string>;
        continue;
      }
      const entry = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof entry !== 'object' || entry === null) fail(`tensor "${key}": entry is not an object`);
      const { dtype, shape, data_offsets: offsets } = entry;
      if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
        fail(`tensor "${key}": unknown dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
      }
      if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
        fail(`tensor "${key}": shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
      }
      if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
        fail(`tensor "${key}": data_offsets ${JSON.stringify(offsets)} is not [begin, end]`);
      }
      const [begin, end] = offsets as [number, number];
      if (end < begin) fail(`tensor "${key}": data_offsets [${begin}, ${end}] end before they begin`);
      if (end > dataSize) fail(`tensor "${key}": data_offsets [${begin}, ${end}] are out of range (data section is ${dataSize} bytes)`);
      const elements = (shape as number[]).reduce((a, b) => a * b, 1);
      const expected = elements * DTYPE_BYTES[dtype as SafetensorsDType];
      if (end - begin !== expected) {
        fail(`tensor "${key}": shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${expected} bytes, data_offsets [${begin}, ${end}] give ${end - begin}`);
      }
      tensors.set(key, { name: key, dtype: dtype as SafetensorsDType, shape: shape as number[], dataOffsets: [begin, end] });
    }
    const sorted = [...tensors.values()].filter((t) => t.dataOffsets[1] > t.dataOffsets[0]).sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0]);
    for (let i = 1; i < sorted.length; i++) {
      const [prev, cur] = [sorted[i - 1], sorted[i]];
      if (cur.dataOffsets[0] < prev.dataOffsets[1]) {
        fail(`tensors "${prev.name}" [${prev.dataOffsets.join(', ')}] and "${cur.name}" [${cur.dataOffsets.join(', ')}] overlap`);
      }
    }
    return new SafetensorsFile(source, name, tensors, metadata, dataStart);
  }

  /** Opens a file from a path (Node) lazily. */
  static async open(path: string): Promise<SafetensorsFile> {
    return SafetensorsFile.fromSource(await platform.fileSource(path));
  }

  /** Wraps bytes already in memory (browser fetch, tests). */
  static fromBytes(bytes: Uint8Array, name = '<bytes>'): Promise<SafetensorsFile> {
    return SafetensorsFile.fromSource(bufferSource(bytes, name), name);
  }

  keys(): string[] {
    return [...this.tensors.keys()];
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new SafetensorsError(this.name, `no tensor "${name}" (the file has ${this.tensors.size}: ${this.keys().slice(0, 10).join(', ')}${this.tensors.size > 10 ? ', ...' : ''})`);
    return t;
  }

  /** Reads and decodes one tensor's values. */
  async readRaw(name: string): Promise<RawTensor> {
    const t = this.info(name);
    const [begin, end] = t.dataOffsets;
    const bytes = await this.source.read(this.dataStart + begin, end - begin);
    return { dtype: t.dtype, shape: t.shape, data: decode(t.dtype, bytes) };
  }

  /**
   * Reads one tensor as a tf.Tensor: floats as float32 (F16/BF16/F64 converted), integers as
   * int32 (I64 values outside the int32 range throw), BOOL as bool.
   */
  async readTensor(name: string): Promise<tf.Tensor> {
    const raw = await this.readRaw(name);
    return rawToTensor(raw, `${this.name}: tensor "${name}"`);
  }

  /** Reads every tensor (or those passing `filter`) into a Map, one at a time. */
  async readAll(filter: (name: string) => boolean = () => true): Promise<Map<string, tf.Tensor>> {
    const out = new Map<string, tf.Tensor>();
    for (const name of this.keys()) if (filter(name)) out.set(name, await this.readTensor(name));
    return out;
  }

  async close(): Promise<void> {
    await this.source.close?.();
  }
}

/** RawTensor -> tf.Tensor (float32 / int32 / bool). */
export function rawToTensor(raw: RawTensor, what = 'tensor'): tf.Tensor {
  const { dtype, shape, data } = raw;
  switch (dtype) {
    case 'F32':
    case 'F16':
    case 'BF16':
      return tf.tensor(data as Float32Array, shape, 'float32');
    case 'F64':
      return tf.tensor(Float32Array.from(data as Float64Array), shape, 'float32');
    case 'I32':
      return tf.tensor(data as Int32Array, shape, 'int32');
    case 'I16':
    case 'I8':
    case 'U8':
      return tf.tensor(Int32Array.from(data as Int16Array), shape, 'int32');
    case 'BOOL':
      return tf.tensor(data as Uint8Array, shape, 'bool');
    case 'I64': {
      const src = data as BigInt64Array;
      const out = new Int32Array(src.length);
      for (let i = 0; i < src.length; i++) {
        const v = src[i];
        if (v > 2147483647n || v < -2147483648n) throw new RangeError(`${what}: I64 value ${v} at index ${i} does not fit in int32`);
        out[i] = Number(v);
      }
      return tf.tensor(out, shape, 'int32');
    }
  }
}

function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function f32ToF16(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++; // round to nearest even (may carry into exp)
  return sign | half;
}

function aligned(bytes: Uint8Array, align: number): ArrayBuffer {
  // Typed views need aligned offsets; copy when the slice is not aligned.
  if (bytes.byteOffset % align === 0) return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  return bytes.slice().buffer as ArrayBuffer;
}

/** Little-endian bytes -> values (platforms running JS are little-endian). */
export function decode(dtype: SafetensorsDType, bytes: Uint8Array): RawValues {
  switch (dtype) {
    case 'F32':
      return new Float32Array(aligned(bytes, 4));
    case 'F64':
      return new Float64Array(aligned(bytes, 8));
    case 'F16': {
      const h = new Uint16Array(aligned(bytes, 2));
      const out = new Float32Array(h.length);
      for (let i = 0; i < h.length; i++) out[i] = f16ToF32(h[i]);
      return out;
    }
    case 'BF16': {
      const h = new Uint16Array(aligned(bytes, 2));
      const out = new Uint32Array(h.length);
      for (let i = 0; i < h.length; i++) out[i] = h[i] << 16;
      return new Float32Array(out.buffer);
    }
    case 'I64':
      return new BigInt64Array(aligned(bytes, 8));
    case 'I32':
      return new Int32Array(aligned(bytes, 4));
    case 'I16':
      return new Int16Array(aligned(bytes, 2));
    case 'I8':
      return new Int8Array(aligned(bytes, 1));
    case 'U8':
    case 'BOOL':
      return new Uint8Array(aligned(bytes, 1));
  }
}

/** Values -> little-endian bytes of `dtype` (F16/BF16 rounded to nearest even from float32). */
export function encode(dtype: SafetensorsDType, data: ArrayLike<number> | BigInt64Array | ArrayLike<bigint>): Uint8Array {
  const n = data.length;
  switch (dtype) {
    case 'F32':
      return new Uint8Array(Float32Array.from(data as ArrayLike<number>).buffer);
    case 'F64':
      return new Uint8Array(Float64Array.from(data as ArrayLike<number>).buffer);
    case 'F16': {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = f32ToF16((data as ArrayLike<number>)[i]);
      return new Uint8Array(out.buffer);
    }
    case 'BF16': {
      const bits = new Uint32Array(Float32Array.from(data as ArrayLike<number>).buffer);
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) {
        const x = bits[i];
        if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) out[i] = (x >>> 16) | 0x40; // keep NaN a NaN
        else out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
      }
      return new Uint8Array(out.buffer);
    }
    case 'I64': {
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) out[i] = BigInt((data as ArrayLike<number | bigint>)[i]);
      return new Uint8Array(out.buffer);
    }
    case 'I32':
      return new Uint8Array(Int32Array.from(data as ArrayLike<number>).buffer);
    case 'I16':
      return new Uint8Array(Int16Array.from(data as ArrayLike<number>).buffer);
    case 'I8':
      return new Uint8Array(Int8Array.from(data as ArrayLike<number>).buffer);
    case 'U8':
    case 'BOOL':
      return Uint8Array.from(data as ArrayLike<number>);
  }
}

export type SafetensorsInput = tf.Tensor | RawTensor | { dtype: SafetensorsDType; shape: number[]; data: ArrayLike<number> | ArrayLike<bigint> };

function toRaw(name: string, t: SafetensorsInput): { dtype: SafetensorsDType; shape: number[]; bytes: Uint8Array } {
  if (t instanceof tf.Tensor) {
    const dtype: SafetensorsDType = t.dtype === 'float32' ? 'F32' : t.dtype === 'int32' ? 'I32' : t.dtype === 'bool' ? 'BOOL' : (undefined as never);
    if (!dtype) throw new TypeError(`serializeSafetensors: tensor "${name}" has dtype ${t.dtype}, which safetensors cannot store`);
    return { dtype, shape: t.shape, bytes: encode(dtype, t.dataSync() as ArrayLike<number>) };
  }
  if (!(t.dtype in DTYPE_BYTES)) throw new TypeError(`serializeSafetensors: tensor "${name}" has unknown dtype ${t.dtype}`);
  const elements = t.shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== elements) {
    throw new RangeError(`serializeSafetensors: tensor "${name}" has ${t.data.length} values for shape [${t.shape.join(', ')}] (${elements})`);
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
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of entries) {
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

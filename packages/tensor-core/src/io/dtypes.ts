// The one dtype table of every reader: safetensors' names, which torch's typed storages map onto,
// little-endian decoding into typed arrays, the conversion to tf.Tensors, and the limit on what a
// reader materialises in memory.
import { tf } from '../tf.js';

export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** Bytes per element in a file. */
export const DTYPE_BYTES: Record<SafetensorsDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Bytes per element once decoded: F16 and BF16 widen to float32. */
const DECODED_BYTES: Record<SafetensorsDType, number> = { ...DTYPE_BYTES, F16: 4, BF16: 4 };

/** An own key of DTYPE_BYTES (not `constructor` or another name found on the prototype). */
export function isDType(x: unknown): x is SafetensorsDType {
  return typeof x === 'string' && Object.hasOwn(DTYPE_BYTES, x);
}

/** Decoded values: F16/BF16 widened to Float32Array, I64 as BigInt64Array, BOOL as Uint8Array. */
export type RawValues = Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | BigInt64Array;

export interface RawTensor {
  dtype: SafetensorsDType;
  shape: number[];
  data: RawValues;
}

/**
 * The largest tensor a reader materialises by default: 4 GiB, the largest ArrayBuffer Node 20
 * allocates (`buffer.constants.MAX_LENGTH`). Larger tensors are refused before any allocation;
 * `readRawChunks` streams them instead.
 */
export const DEFAULT_MAX_TENSOR_BYTES = 2 ** 32;

/** How many elements `shape` holds, or Infinity past 2^53 (no silent rounding of huge products). */
export function shapeNumel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return Infinity;
  }
  return n;
}

/** Decoded size of `numel` elements of `dtype`, in bytes. */
export const decodedBytes = (dtype: SafetensorsDType, numel: number): number => numel * DECODED_BYTES[dtype];

/** Human-readable byte count for messages: 2147483648 bytes (2.00 GiB). */
export function formatBytes(n: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u < 0 ? `${n} bytes` : `${n} bytes (${v.toFixed(2)} ${units[u]})`;
}

/** Refuses a tensor over `limit` bytes once decoded, before anything is allocated. */
export function checkMaterialisable(
  dtype: SafetensorsDType,
  shape: readonly number[],
  limit: number,
  fail: (message: string) => never,
  option = 'maxTensorBytes',
): void {
  const bytes = decodedBytes(dtype, shapeNumel(shape));
  if (bytes > limit) {
    fail(
      `[${shape.join(', ')}] ${dtype} is ${formatBytes(bytes)} in memory, over the limit of ${formatBytes(limit)} ` +
        `(option ${option}); read it in pieces with readRawChunks()`,
    );
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
  const e = exp - 127 + 15;
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

/**
 * An ArrayBuffer holding exactly `bytes`, aligned for typed views. Bytes that own their whole
 * buffer (a fresh read) are used as they are; a slice of a larger buffer is copied, so that the
 * values never alias the caller's memory.
 */
function owned(bytes: Uint8Array): ArrayBuffer {
  const buf = bytes.buffer;
  if (buf instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === buf.byteLength) return buf;
  // Uint8Array's slice, not the argument's own: a Node Buffer's slice() is a view, not a copy
  return Uint8Array.prototype.slice.call(bytes).buffer;
}

/** Little-endian bytes -> values (platforms running JS are little-endian). */
export function decode(dtype: SafetensorsDType, bytes: Uint8Array): RawValues {
  if (bytes.byteLength % DTYPE_BYTES[dtype] !== 0) {
    throw new RangeError(`decode: ${bytes.byteLength} bytes is not a whole number of ${dtype} elements`);
  }
  switch (dtype) {
    case 'F32':
      return new Float32Array(owned(bytes));
    case 'F64':
      return new Float64Array(owned(bytes));
    case 'F16': {
      const h = new Uint16Array(owned(bytes));
      const out = new Float32Array(h.length);
      for (let i = 0; i < h.length; i++) out[i] = f16ToF32(h[i]);
      return out;
    }
    case 'BF16': {
      const h = new Uint16Array(owned(bytes));
      const out = new Uint32Array(h.length);
      for (let i = 0; i < h.length; i++) out[i] = h[i] << 16;
      return new Float32Array(out.buffer);
    }
    case 'I64':
      return new BigInt64Array(owned(bytes));
    case 'I32':
      return new Int32Array(owned(bytes));
    case 'I16':
      return new Int16Array(owned(bytes));
    case 'I8':
      return new Int8Array(owned(bytes));
    case 'U8':
    case 'BOOL':
      return new Uint8Array(owned(bytes));
  }
}

/** Values -> little-endian bytes of `dtype` (F16/BF16 rounded to nearest even from float32). */
export function encode(
  dtype: SafetensorsDType,
  data: ArrayLike<number> | BigInt64Array | ArrayLike<bigint>,
): Uint8Array {
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
        if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff)
          out[i] = (x >>> 16) | 0x40; // keep NaN a NaN
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

/** Non-finite (NaN, ±Inf) values among decoded values; integer and bool dtypes have none. */
export function countNonFinite(values: RawValues): number {
  if (!(values instanceof Float32Array || values instanceof Float64Array)) return 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) n++;
  return n;
}

/** RawTensor -> tf.Tensor (float32 / int32 / bool). I64 values outside int32 throw a RangeError naming `what`. */
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
        if (v > 2147483647n || v < -2147483648n)
          throw new RangeError(`${what}: I64 value ${v} at index ${i} does not fit in int32`);
        out[i] = Number(v);
      }
      return tf.tensor(out, shape, 'int32');
    }
  }
}

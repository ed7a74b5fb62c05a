// A read-only ZIP reader for PyTorch's checkpoint container (torch.save writes stored, i.e.
// uncompressed, entries, ZIP64 when large). Only the central directory and the local headers are
// read up front; entry data is read on demand through a ByteSource, so large checkpoints are not
// loaded whole. Every count, size, offset and name length is checked against the bytes that hold
// it before it is used, and the work is bounded by the size of the central directory.
import { readRange, type ByteSource } from './byte-source.js';
import { inflateRaw } from './inflate.js';

export interface ZipEntry {
  name: string;
  /** Offset of the entry's data (compressed or not) in the source. */
  dataOffset: number;
  /** Uncompressed size. */
  size: number;
  /** Size of the data in the file: `size` for stored entries. */
  compressedSize: number;
  /** 0 stored, 8 deflate; other methods are listed but cannot be read. */
  compression: number;
}

export class ZipError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'ZipError';
  }
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const EOCD_BYTES = 22;
const CENTRAL_HEADER_BYTES = 46;
const LOCAL_HEADER_BYTES = 30;
/** The EOCD record sits in the last 22 bytes + a comment of at most 65535 bytes. */
const EOCD_SEARCH_BYTES = EOCD_BYTES + 0xffff;
/** A central directory larger than this is refused (800 tensors take ~100 KB). */
export const MAX_CENTRAL_DIRECTORY_BYTES = 1 << 28;

/** Deflate cannot expand data by more than ~1032:1. */
const MAX_DEFLATE_RATIO = 1032;

const u16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const u32 = (b: Uint8Array, o: number) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
/** A little-endian u64, or Infinity when it does not fit a safe integer. */
const u64 = (b: Uint8Array, o: number) => {
  const hi = u32(b, o + 4);
  return hi >= 2 ** 21 ? Infinity : u32(b, o) + hi * 2 ** 32;
};

export async function readZipDirectory(src: ByteSource): Promise<Map<string, ZipEntry>> {
  const fail = (m: string): never => {
    throw new ZipError(src.name, m);
  };
  if (src.size < EOCD_BYTES) fail(`${src.size} bytes is too short for a ZIP file (truncated?)`);
  const tailStart = Math.max(0, src.size - EOCD_SEARCH_BYTES);
  const tail = await readRange(src, tailStart, src.size - tailStart, fail, 'the end of the file');
  let eocd = -1;
  for (let i = tail.length - EOCD_BYTES; i >= 0; i--) {
    if (u32(tail, i) === SIG_EOCD && i + EOCD_BYTES + u16(tail, i + 20) <= tail.length) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail('no ZIP end-of-central-directory record: not a PyTorch zip checkpoint, or truncated');
  if (u16(tail, eocd + 4) !== 0 || u16(tail, eocd + 6) !== 0 || u16(tail, eocd + 8) !== u16(tail, eocd + 10)) {
    fail('multi-disk ZIP archives are not supported');
  }
  let count = u16(tail, eocd + 10);
  let cdSize = u32(tail, eocd + 12);
  let cdOffset = u32(tail, eocd + 16);
  /** Where the central directory must end: the (ZIP64) end record. */
  let cdLimit = tailStart + eocd;
  if (cdOffset === 0xffffffff || count === 0xffff || cdSize === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || u32(tail, loc) !== SIG_ZIP64_LOCATOR) fail('ZIP64 end-of-central-directory locator missing');
    const z64Offset = u64(tail, loc + 8);
    if (z64Offset + 56 > tailStart + loc)
      fail(`ZIP64 end-of-central-directory offset ${z64Offset} lies past its locator`);
    const z64 = await readRange(src, z64Offset, 56, fail, 'the ZIP64 end-of-central-directory record');
    if (u32(z64, 0) !== SIG_ZIP64_EOCD) fail('bad ZIP64 end-of-central-directory record');
    count = u64(z64, 32);
    cdSize = u64(z64, 40);
    cdOffset = u64(z64, 48);
    cdLimit = z64Offset;
  }
  if (cdSize > MAX_CENTRAL_DIRECTORY_BYTES)
    fail(`central directory of ${cdSize} bytes is over the ${MAX_CENTRAL_DIRECTORY_BYTES}-byte limit`);
  if (cdOffset + cdSize > cdLimit) {
    fail(
      `central directory [${cdOffset}, ${cdOffset + cdSize}) runs past the end of the archive (byte ${cdLimit}): truncated or corrupt`,
    );
  }
  if (count * CENTRAL_HEADER_BYTES > cdSize) fail(`${count} entries cannot fit in a ${cdSize}-byte central directory`);
  const cd = await readRange(src, cdOffset, cdSize, fail, 'the central directory');
  const names = new TextDecoder();
  const entries = new Map<string, ZipEntry & { localOffset: number }>();
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (p + CENTRAL_HEADER_BYTES > cd.length || u32(cd, p) !== SIG_CENTRAL)
      fail(`central directory entry ${n} is corrupt`);
    const flags = u16(cd, p + 8);
    const compression = u16(cd, p + 10);
    let compressedSize = u32(cd, p + 20);
    let size = u32(cd, p + 24);
    const nameLen = u16(cd, p + 28);
    const extraLen = u16(cd, p + 30);
    const commentLen = u16(cd, p + 32);
    let localOffset = u32(cd, p + 42);
    const end = p + CENTRAL_HEADER_BYTES + nameLen + extraLen + commentLen;
    if (end > cd.length) fail(`central directory entry ${n} runs past the end of the central directory`);
    const name = names.decode(cd.subarray(p + CENTRAL_HEADER_BYTES, p + CENTRAL_HEADER_BYTES + nameLen));
    if (flags & 1) fail(`entry "${name}" is encrypted`);
    // ZIP64 extra field (id 1): the fields saturated at 0xffffffff, in this order
    let e = p + CENTRAL_HEADER_BYTES + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = u16(cd, e);
      const len = u16(cd, e + 2);
      if (e + 4 + len > extraEnd) fail(`entry "${name}": extra field runs past its end`);
      if (id === 1) {
        let q = e + 4;
        const field = (what: string) => {
          if (q + 8 > e + 4 + len) fail(`entry "${name}": ZIP64 extra field has no ${what}`);
          const v = u64(cd, q);
          q += 8;
          return v;
        };
        if (size === 0xffffffff) size = field('uncompressed size');
        if (compressedSize === 0xffffffff) compressedSize = field('compressed size');
        if (localOffset === 0xffffffff) localOffset = field('local header offset');
      }
      e += 4 + len;
    }
    if (compression === 0 && compressedSize !== size)
      fail(`stored entry "${name}" has compressed size ${compressedSize} but size ${size}`);
    if (compression === 8 && size > compressedSize * MAX_DEFLATE_RATIO + 64) {
      fail(`deflated entry "${name}" declares ${size} bytes, more than deflate can produce from ${compressedSize}`);
    }
    if (entries.has(name)) fail(`entry "${name}" appears twice`);
    if (localOffset + LOCAL_HEADER_BYTES > cdOffset)
      fail(`entry "${name}": local header offset ${localOffset} is past the central directory`);
    const local = await readRange(src, localOffset, LOCAL_HEADER_BYTES, fail, `the local header of "${name}"`);
    if (u32(local, 0) !== SIG_LOCAL) fail(`local header of "${name}" is corrupt`);
    const dataOffset = localOffset + LOCAL_HEADER_BYTES + u16(local, 26) + u16(local, 28);
    if (dataOffset + compressedSize > cdOffset) {
      fail(
        `entry "${name}" [${dataOffset}, ${dataOffset + compressedSize}) runs into the central directory at byte ${cdOffset}: truncated or corrupt`,
      );
    }
    entries.set(name, { name, dataOffset, size, compressedSize, compression, localOffset });
    p = end;
  }
  // entries must not share bytes (overlapping entries are how zip bombs multiply their output)
  const byOffset = [...entries.values()].sort((a, b) => a.localOffset - b.localOffset);
  for (let i = 1; i < byOffset.length; i++) {
    const [prev, cur] = [byOffset[i - 1], byOffset[i]];
    if (cur.localOffset < prev.dataOffset + prev.compressedSize)
      fail(`entries "${prev.name}" and "${cur.name}" overlap`);
  }
  return new Map([...entries].map(([k, { localOffset: _, ...entry }]) => [k, entry]));
}

/**
 * Reads an entry's uncompressed bytes: a stored entry directly (optionally only [start, end)), a
 * deflated one inflated whole into its declared size, then sliced.
 */
export async function readZipEntry(src: ByteSource, entry: ZipEntry, start = 0, end = entry.size): Promise<Uint8Array> {
  const fail = (m: string): never => {
    throw new ZipError(src.name, `entry "${entry.name}" ${m}`);
  };
  if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && 0 <= start && start <= end && end <= entry.size)) {
    fail(`has no bytes [${start}, ${end}) (it holds ${entry.size})`);
  }
  if (entry.compression === 0) return readRange(src, entry.dataOffset + start, end - start, fail, 'bytes');
  if (entry.compression !== 8)
    fail(`uses compression method ${entry.compression}; only stored (0) and deflate (8) entries can be read`);
  const packed = await readRange(src, entry.dataOffset, entry.compressedSize, fail, 'bytes');
  const whole = await inflateRaw(packed, entry.size, fail);
  return start === 0 && end === entry.size ? whole : whole.slice(start, end);
}

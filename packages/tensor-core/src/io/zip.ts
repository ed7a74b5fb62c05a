// A read-only ZIP reader for PyTorch's checkpoint container (torch.save writes stored, i.e.
// uncompressed, entries, ZIP64 when large). Only the central directory is read up front; entries
// are read on demand through a ByteSource, so large checkpoints are not loaded whole.
import type { ByteSource } from './byte-source.js';

export interface ZipEntry {
  name: string;
  /** Offset of the entry's data in the source. */
  dataOffset: number;
  size: number;
  compression: number;
}

export class ZipError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'ZipError';
  }
}

const u16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const u32 = (b: Uint8Array, o: number) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
const u64 = (b: Uint8Array, o: number) => u32(b, o) + u32(b, o + 4) * 2 ** 32;

export async function readZipDirectory(src: ByteSource): Promise<Map<string, ZipEntry>> {
  const fail = (m: string): never => {
    throw new ZipError(src.name, m);
  };
  if (src.size < 22) fail(`${src.size} bytes is too short for a ZIP file (truncated?)`);
  // End of central directory: within the last 64 KiB + 22 bytes
  const tailLen = Math.min(src.size, 65557);
  const tail = await src.read(src.size - tailLen, tailLen);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (u32(tail, i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail('no ZIP end-of-central-directory record: not a PyTorch zip checkpoint, or truncated');
  let count = u16(tail, eocd + 10);
  let cdSize = u32(tail, eocd + 12);
  let cdOffset = u32(tail, eocd + 16);
  if (cdOffset === 0xffffffff || count === 0xffff || cdSize === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || u32(tail, loc) !== 0x07064b50) fail('ZIP64 end-of-central-directory locator missing');
    const z64Offset = u64(tail, loc + 8);
    const z64 = await src.read(z64Offset, 56);
    if (u32(z64, 0) !== 0x06064b50) fail('bad ZIP64 end-of-central-directory record');
    count = u64(z64, 32);
    cdSize = u64(z64, 40);
    cdOffset = u64(z64, 48);
  }
  if (cdOffset + cdSize > src.size) fail(`central directory [${cdOffset}, ${cdOffset + cdSize}) lies past the end of the file (${src.size} bytes): truncated`);
  const cd = await src.read(cdOffset, cdSize);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (p + 46 > cd.length || u32(cd, p) !== 0x02014b50) fail(`central directory entry ${n} is corrupt`);
    const compression = u16(cd, p + 10);
    let size = u32(cd, p + 24);
    const nameLen = u16(cd, p + 28);
    const extraLen = u16(cd, p + 30);
    const commentLen = u16(cd, p + 32);
    let localOffset = u32(cd, p + 42);
    const name = new TextDecoder().decode(cd.subarray(p + 46, p + 46 + nameLen));
    // ZIP64 extra field (id 1): the 0xffffffff fields in order: uncompressed, compressed, offset
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = u16(cd, e);
      const len = u16(cd, e + 2);
      if (id === 1) {
        let q = e + 4;
        if (size === 0xffffffff) (size = u64(cd, q)), (q += 8);
        if (u32(cd, p + 20) === 0xffffffff) q += 8;
        if (localOffset === 0xffffffff) localOffset = u64(cd, q);
      }
      e += 4 + len;
    }
    const local = await src.read(localOffset, 30);
    if (u32(local, 0) !== 0x04034b50) fail(`local header of "${name}" is corrupt`);
    const dataOffset = localOffset + 30 + u16(local, 26) + u16(local, 28);
    if (dataOffset + size > src.size) fail(`entry "${name}" [${dataOffset}, ${dataOffset + size}) lies past the end of the file: truncated`);
    entries.set(name, { name, dataOffset, size, compression });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

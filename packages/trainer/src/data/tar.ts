// A tar reader in TypeScript (POSIX ustar, pax 'x' headers, GNU 'L' long names), two ways:
// indexTar reads only the 512-byte headers of a random-access source (a file, a Blob) and returns
// where each member's bytes are, so members are read on demand; readTar parses a stream of chunks
// (a network or decompression stream) in one pass. Webdataset shards group consecutive members by
// key: "dir/000123.jpg" and "dir/000123.txt" are the sample "dir/000123".
import type { ByteSource } from '@fiber-vl/tensor-core';

const BLOCK = 512;

export class TarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarError';
  }
}

/** A regular file in a tar: its name and where its bytes are. */
export interface TarMember {
  name: string;
  /** Offset of the member's data (after its header) and its size, in bytes. */
  offset: number;
  size: number;
}

interface Header {
  name: string;
  size: number;
  type: string;
}

const decoder = new TextDecoder();

function cString(block: Uint8Array, start: number, length: number): string {
  let end = start;
  while (end < start + length && block[end] !== 0) end++;
  return decoder.decode(block.subarray(start, end));
}

/** A numeric field: octal ASCII (NUL/space padded), or GNU base-256 when the high bit is set. */
function tarNumber(block: Uint8Array, start: number, length: number, what: string, at: number): number {
  if (block[start] & 0x80) {
    let v = block[start] & 0x3f;
    for (let i = 1; i < length; i++) v = v * 256 + block[start + i];
    if (!Number.isSafeInteger(v)) throw new TarError(`${what}: base-256 ${what} too large at byte ${at}`);
    return v;
  }
  const s = cString(block, start, length).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarError(`bad ${what} field "${s}" in the tar header at byte ${at}`);
  return parseInt(s, 8);
}

/** Parses one header block; null for an all-zero block (the end of the archive). */
function parseHeader(block: Uint8Array, at: number, source: string): Header | null {
  let zero = true;
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) zero = false;
  if (zero) return null;
  const stored = tarNumber(block, 148, 8, 'checksum', at);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  if (stored !== unsigned && stored !== signed) {
    throw new TarError(
      `${source}: bad tar header checksum at byte ${at} (stored ${stored}, computed ${unsigned}): ` +
        'not a tar, or corrupt',
    );
  }
  let name = cString(block, 0, 100);
  const magic = cString(block, 257, 6);
  if (magic.startsWith('ustar')) {
    const prefix = cString(block, 345, 155);
    if (prefix && magic === 'ustar') name = `${prefix}/${name}`; // "ustar  " (old GNU) has no prefix field
  }
  const typeByte = block[156];
  return {
    name,
    size: tarNumber(block, 124, 12, 'size', at),
    type: typeByte === 0 ? '0' : String.fromCharCode(typeByte),
  };
}

/** pax records "LEN key=value\n"; returns path and size overrides. */
function parsePax(data: Uint8Array, at: number, source: string): { path?: string; size?: number } {
  const out: { path?: string; size?: number } = {};
  let i = 0;
  while (i < data.length) {
    let sp = i;
    while (sp < data.length && data[sp] !== 0x20) sp++;
    const len = parseInt(decoder.decode(data.subarray(i, sp)), 10);
    if (!(len > 0) || i + len > data.length) throw new TarError(`${source}: bad pax record at byte ${at + i}`);
    const rec = decoder.decode(data.subarray(sp + 1, i + len - 1));
    const eq = rec.indexOf('=');
    const key = rec.slice(0, eq);
    const value = rec.slice(eq + 1);
    if (key === 'path') out.path = value;
    else if (key === 'size') out.size = Number(value);
    i += len;
  }
  return out;
}

const padded = (size: number) => Math.ceil(size / BLOCK) * BLOCK;
const cleanName = (name: string) => name.replace(/^(\.\/)+/, '');

/** The regular-file members of a tar, read header by header (data is skipped, never read). */
export async function indexTar(source: ByteSource): Promise<TarMember[]> {
  const members: TarMember[] = [];
  let pos = 0;
  let pending: { path?: string; size?: number } = {};
  while (pos + BLOCK <= source.size) {
    const header = parseHeader(await source.read(pos, BLOCK), pos, source.name);
    if (!header) break;
    const size = pending.size ?? header.size;
    const dataAt = pos + BLOCK;
    if (dataAt + size > source.size) {
      throw new TarError(
        `${source.name}: member "${header.name}" at byte ${pos} needs ${size} bytes ` +
          `but the file ends at ${source.size} (truncated)`,
      );
    }
    if (header.type === 'x' || header.type === 'L') {
      const data = await source.read(dataAt, size);
      pending = header.type === 'x' ? parsePax(data, dataAt, source.name) : { path: cString(data, 0, data.length) };
    } else {
      if (header.type === '0' || header.type === '7')
        members.push({ name: cleanName(pending.path ?? header.name), offset: dataAt, size });
      pending = {};
    }
    pos = dataAt + padded(size);
  }
  return members;
}

/** A member read from a stream, with its bytes. */
export interface TarStreamEntry {
  name: string;
  data: Uint8Array;
}

/** Parses a tar from a stream of chunks of any sizes, yielding each regular file with its bytes. */
export async function* readTar(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  name = '<tar stream>',
): AsyncGenerator<TarStreamEntry> {
  const queue: Uint8Array[] = [];
  let queued = 0;
  let consumed = 0;
  const iterator = (Symbol.asyncIterator in chunks ? chunks[Symbol.asyncIterator]() : chunks[Symbol.iterator]()) as
    | AsyncIterator<Uint8Array>
    | Iterator<Uint8Array>;
  let ended = false;
  const fill = async (n: number) => {
    while (queued < n && !ended) {
      const r = await iterator.next();
      if (r.done) ended = true;
      else if (r.value.length) {
        queue.push(r.value);
        queued += r.value.length;
      }
    }
    return queued >= n;
  };
  const take = (n: number): Uint8Array => {
    const out = new Uint8Array(n);
    let done = 0;
    while (done < n) {
      const head = queue[0];
      const k = Math.min(n - done, head.length);
      out.set(head.subarray(0, k), done);
      done += k;
      if (k === head.length) queue.shift();
      else queue[0] = head.subarray(k);
    }
    queued -= n;
    consumed += n;
    return out;
  };
  let pending: { path?: string; size?: number } = {};
  for (;;) {
    const at = consumed;
    if (!(await fill(BLOCK))) {
      if (queued === 0) return; // a stream without the end-of-archive blocks
      throw new TarError(`${name}: truncated header at byte ${at}`);
    }
    const header = parseHeader(take(BLOCK), at, name);
    if (!header) return;
    const size = pending.size ?? header.size;
    if (!(await fill(padded(size)))) {
      if (queued < size)
        throw new TarError(`${name}: member "${header.name}" at byte ${at} is truncated (${size} bytes declared)`);
    }
    const data = take(size);
    take(Math.min(padded(size) - size, queued));
    if (header.type === 'x') pending = parsePax(data, at + BLOCK, name);
    else if (header.type === 'L') pending = { path: cString(data, 0, data.length) };
    else {
      if (header.type === '0' || header.type === '7') yield { name: cleanName(pending.path ?? header.name), data };
      pending = {};
    }
  }
}

/**
 * webdataset's split of a member name: key = directory + basename up to its first dot; extension = the rest,
 * lower-cased.
 */
export function webdatasetKey(name: string): { key: string; ext: string } | undefined {
  const slash = name.lastIndexOf('/');
  const dot = name.indexOf('.', slash + 1);
  if (dot <= slash + 1) return undefined;
  return { key: name.slice(0, dot), ext: name.slice(dot + 1).toLowerCase() };
}

/**
 * Consecutive members with the same key form a sample (webdataset's group_by_keys); names without a key are ignored.
 */
export function groupWebdataset<M extends { name: string }>(
  members: Iterable<M>,
): { key: string; files: Map<string, M> }[] {
  const out: { key: string; files: Map<string, M> }[] = [];
  let current: { key: string; files: Map<string, M> } | undefined;
  for (const m of members) {
    const k = webdatasetKey(m.name);
    if (!k) continue;
    if (!current || current.key !== k.key || current.files.has(k.ext)) {
      current = { key: k.key, files: new Map() };
      out.push(current);
    }
    current.files.set(k.ext, m);
  }
  return out;
}

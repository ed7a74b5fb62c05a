// Node-only file access for the data loaders: byte sources over files, image folders, tar shards,
// JSON and JSONL files, and the image decoder choice (sharp when it loads, else pure JS).
import { constants, readFileSync, statSync, type Stats } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import type { ByteSource } from '@fiber-vl/tensor-core';
import type { ImageDecoder } from '@fiber-vl/swin';
import { sharpImageDecoder } from '@fiber-vl/swin/node';
import { type FileReader, type ImageStore, jsImageDecoder } from '../images.js';
import { indexLines, type JsonlSourceOptions, jsonlSource } from '../formats/jsonl.js';
import type { TarShard } from '../formats/webdataset.js';
import type { CaptionRecord, GroundingRecord, Nlvr2Record } from '../records.js';
import type { Parsed, RecordSource } from '../source.js';

/** What a path that is not a regular file is, for messages: 'a directory', 'a FIFO', 'a character device', ... */
export const fileKind = (st: Stats) =>
  st.isDirectory()
    ? 'a directory'
    : st.isFIFO()
      ? 'a FIFO'
      : st.isCharacterDevice()
        ? 'a character device'
        : st.isBlockDevice()
          ? 'a block device'
          : st.isSocket()
            ? 'a socket'
            : 'not a file';

/**
 * Opens a file to read, refusing anything but a regular file: a FIFO would block the read, and a
 * device such as /dev/zero never ends. Opened non-blocking, so that a FIFO is refused rather than
 * waited on; a directory's error has the code EISDIR, as reading one would.
 */
async function openRegularFile(path: string): Promise<FileHandle> {
  const handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const st = await handle.stat();
    if (!st.isFile())
      throw Object.assign(new Error(`${path} is not a regular file (${fileKind(st)})`), {
        code: st.isDirectory() ? 'EISDIR' : 'ENOTREG',
      });
  } catch (e) {
    await handle.close();
    throw e;
  }
  return handle;
}

/** `use` on a regular file's handle, closed whatever happens. */
async function withRegularFile<T>(path: string, use: (handle: FileHandle) => Promise<T>): Promise<T> {
  const handle = await openRegularFile(path);
  try {
    return await use(handle);
  } finally {
    await handle.close();
  }
}

/**
 * A regular file's text, read synchronously (a run folder's config.json and log.jsonl); anything
 * else is refused naming its kind, as openRegularFile refuses it.
 */
export function readRegularTextSync(path: string): string {
  const st = statSync(path);
  if (!st.isFile()) throw new Error(`${path} is not a regular file (${fileKind(st)})`);
  return readFileSync(path, 'utf8');
}

/** A file read range by range through one handle. */
export async function fileSource(path: string): Promise<ByteSource> {
  const handle = await openRegularFile(path).catch((e: NodeJS.ErrnoException) => {
    const why = e.code === 'ENOENT' ? 'no such file' : e.message;
    throw new Error(why.startsWith(path) ? why : `cannot open ${path}: ${why}`);
  });
  const { size } = await handle.stat().catch(async (e: Error) => {
    await handle.close();
    throw new Error(`cannot read ${path}: ${e.message}`);
  });
  return {
    name: path,
    size,
    async read(offset, length) {
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(out, done, length - done, offset + done);
        if (bytesRead === 0) throw new Error(`${path}: unexpected end of file at byte ${offset + done}`);
        done += bytesRead;
      }
      return out;
    },
    close: () => handle.close(),
  };
}

/**
 * Reads a 'file' image location: the whole file, or a member's range inside a tar shard. Anything
 * but a regular file (a FIFO, a device such as /dev/zero, a directory) is refused, naming its kind.
 */
export const readFileLocation: FileReader = ({ path, offset, length }) =>
  withRegularFile(path, async (handle) => {
    if (offset === undefined) return new Uint8Array(await handle.readFile());
    const out = new Uint8Array(length ?? 0);
    const { bytesRead } = await handle.read(out, 0, out.length, offset);
    if (bytesRead !== out.length) throw new Error(`${path}: ${out.length} bytes at ${offset} past the end of the file`);
    return out;
  });

/** Images under a folder, by path relative to it; refs that would leave the folder are not found. */
export function imageFolder(root: string): ImageStore {
  const base = resolve(root);
  return {
    name: root,
    locate(ref) {
      const path = resolve(base, ref);
      return path.startsWith(base + sep) ? { kind: 'file', path } : undefined;
    },
  };
}

export async function readJson(path: string): Promise<unknown> {
  const bytes = await withRegularFile(path, (handle) => handle.readFile()).catch((e: NodeJS.ErrnoException) => {
    // withRegularFile's own refusals ("<path> is not a regular file (a directory)") name the path already
    const why = e.code === 'ENOENT' ? 'no such file' : e.message;
    throw new Error(why.startsWith(path) ? why : `cannot read ${path}: ${why}`);
  });
  let text: string;
  try {
    // fatal: Python's json.load refuses bytes that are not UTF-8; a lossy read would train on U+FFFD
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (e) {
    // the decoder's refusal is a TypeError; anything else (a file past V8's longest string) says why
    throw new Error(
      e instanceof TypeError ? `${path} is not UTF-8 text` : `cannot read ${path}: ${(e as Error).message}`,
    );
  }
  try {
    return JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new Error(`${path} is not json: ${(e as Error).message}`);
  }
}

/**
 * A JSONL file indexed by line (12 bytes of memory per line), each line parsed when its record is
 * asked for; the third argument is as `jsonlSource`'s (the image store, or options with `idOf`).
 */
export async function openJsonl<R extends CaptionRecord | GroundingRecord | Nlvr2Record>(
  path: string,
  parse: (obj: unknown, where: string, index: number) => Parsed<R>,
  options?: ImageStore | JsonlSourceOptions,
): Promise<RecordSource<R>> {
  return jsonlSource(await indexLines(await fileSource(path)), parse, options);
}

/**
 * Tar shards on disk, for `tarImageStore` / `webdatasetSource`; a worker reads members straight from
 * the file. `webdatasetSource` owns the shards it is given (its `close()` closes them); otherwise
 * the caller closes each shard's source. When one path cannot be opened, the shards already open
 * are closed before the error is thrown.
 */
export async function openTarShards(paths: readonly string[]): Promise<TarShard[]> {
  const opened = await Promise.allSettled(paths.map(fileSource));
  const sources = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = opened.find((r) => r.status === 'rejected');
  if (failed) {
    // a failing close must not hide why the open failed
    await Promise.allSettled(sources.map((s) => s.close?.()));
    throw failed.reason;
  }
  return sources.map((source, k) => ({ source, path: paths[k] }));
}

// A 1x1 PNG: decoding it tells whether sharp's native module loads on this machine.
const PROBE_PNG = Uint8Array.from(
  atob('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC'),
  (c) => c.charCodeAt(0),
);

export type DecoderChoice = 'auto' | 'sharp' | 'js';

/** 'sharp' (libvips, fast), 'js' (jpeg-js + fast-png), or 'auto': sharp when it loads here, else js. */
export async function nodeImageDecoder(choice: DecoderChoice = 'auto'): Promise<ImageDecoder> {
  if (choice === 'js') return jsImageDecoder;
  try {
    await sharpImageDecoder.decode(PROBE_PNG);
    return sharpImageDecoder;
  } catch (e) {
    if (choice === 'sharp') throw new Error(`sharp is not usable here: ${(e as Error).message}`);
    return jsImageDecoder;
  }
}

// Node-only file access for the readers: the one module of src/io that imports Node built-ins.
// The readers reach it only through dynamic import(), so browser bundles never load it.
import { constants } from 'node:fs';
import { open, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { READ_CHUNK_BYTES, type ByteSource } from './byte-source.js';

/** Why a path cannot be read, in a few words ("no such file", "is a directory"). */
function describeOpenError(e: unknown): string {
  const code = typeof e === 'object' && e !== null && 'code' in e ? e.code : undefined;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'is a directory, not a file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EMFILE' || code === 'ENFILE') return 'too many open files';
  return `cannot open (${e instanceof Error ? e.message : String(e)})`;
}

/** Opens a regular file; the handle is closed again when the path is not one. */
async function openRegularFile(path: string): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle;
  try {
    // non-blocking, so that a FIFO without a writer is refused below rather than waited on
    handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw new Error(describeOpenError(e));
  }
  try {
    const st = await handle.stat();
    if (st.isDirectory()) throw new Error('is a directory, not a file');
    if (!st.isFile()) throw new Error('is not a regular file');
    return { handle, size: st.size };
  } catch (e) {
    await handle.close().catch(() => undefined);
    throw e instanceof Error && !('code' in e) ? e : new Error(describeOpenError(e));
  }
}

/**
 * A file on disk, read range by range through one file handle (Node only). Reads larger than
 * `chunkBytes` are split, since one read of 2 GiB or more aborts Node. A failure to open throws an
 * Error whose message says why in a few words; callers prefix the path (their typed error).
 */
export async function fileSource(
  path: string,
  { chunkBytes = READ_CHUNK_BYTES }: { chunkBytes?: number } = {},
): Promise<ByteSource> {
  const { handle, size } = await openRegularFile(path);
  let closed = false;
  return {
    name: path,
    size,
    async read(offset, length) {
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(out, done, Math.min(chunkBytes, length - done), offset + done);
        if (bytesRead === 0) throw new Error(`unexpected end of file at byte ${offset + done} (did the file change?)`);
        done += bytesRead;
      }
      return out;
    },
    async close() {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}

/** A whole small file as UTF-8 text; larger than `maxBytes` or invalid UTF-8 is refused. */
export async function readTextFile(path: string, maxBytes: number): Promise<string> {
  const { handle, size } = await openRegularFile(path);
  try {
    if (size > maxBytes) throw new Error(`is ${size} bytes, over the ${maxBytes}-byte limit for this file`);
    const bytes = new Uint8Array(size);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await handle.read(bytes, done, size - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, done));
    } catch {
      throw new Error('is not valid UTF-8 text');
    }
  } finally {
    await handle.close();
  }
}

export async function writeBytes(path: string, bytes: Uint8Array): Promise<void> {
  await writeFile(path, bytes);
}

/** The path of `name` in the folder of `file`. */
export const besidePath = (file: string, name: string): string => join(dirname(file), name);

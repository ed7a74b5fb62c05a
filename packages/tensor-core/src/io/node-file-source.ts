import { open } from 'node:fs/promises';
import type { ByteSource } from './byte-source.js';

/** A file on disk, read range by range through one file handle (Node only). */
export async function fileSource(path: string): Promise<ByteSource> {
  const handle = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new Error(`cannot open ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  });
  const { size } = await handle.stat();
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

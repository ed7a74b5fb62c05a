// Random access to the bytes of a checkpoint. Readers never trust a ByteSource with a range they
// have not checked: every read goes through readRange, which checks the range against the size
// and turns a failing read into the reader's own typed error.

/** Random access to bytes: a file (Node), a Blob (browser) or memory. */
export interface ByteSource {
  readonly name: string;
  readonly size: number;
  /** The bytes [offset, offset + length); the caller may keep them. */
  read(offset: number, length: number): Promise<Uint8Array>;
  close?(): Promise<void>;
}

/**
 * Large reads are split into reads of at most this many bytes: Node's file reads take an int32
 * length (a single read of 2 GiB or more aborts the process), and smaller pieces keep browsers'
 * Blob slices small.
 */
export const READ_CHUNK_BYTES = 1 << 26;

export function bufferSource(bytes: Uint8Array, name = '<bytes>'): ByteSource {
  return {
    name,
    size: bytes.byteLength,
    async read(offset, length) {
      if (!(offset >= 0 && length >= 0 && offset + length <= bytes.byteLength)) {
        throw new RangeError(`${name}: read [${offset}, ${offset + length}) past ${bytes.byteLength} bytes`);
      }
      return bytes.subarray(offset, offset + length);
    },
  };
}

/** A Blob or File (browser), read slice by slice. */
export function blobSource(
  blob: Blob,
  name = 'name' in blob && typeof blob.name === 'string' ? blob.name : '<blob>',
): ByteSource {
  return {
    name,
    size: blob.size,
    async read(offset, length) {
      if (length <= READ_CHUNK_BYTES) return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
      const out = new Uint8Array(length);
      for (let done = 0; done < length; done += READ_CHUNK_BYTES) {
        const end = Math.min(length, done + READ_CHUNK_BYTES);
        out.set(new Uint8Array(await blob.slice(offset + done, offset + end).arrayBuffer()), done);
      }
      return out;
    },
  };
}

/**
 * Reads [offset, offset + length) of `src` after checking that the range lies inside it; a range
 * outside, a failing read or a short one are reported through `fail` (the reader's typed error).
 */
export async function readRange(
  src: ByteSource,
  offset: number,
  length: number,
  fail: (message: string) => never,
  what = 'bytes',
): Promise<Uint8Array> {
  const end = offset + length;
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || end > src.size) {
    fail(`${what} [${offset}, ${end}) lie outside the file (${src.size} bytes)`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await src.read(offset, length);
  } catch (e) {
    return fail(`cannot read ${what} [${offset}, ${end}): ${e instanceof Error ? e.message : String(e)}`);
  }
  if (bytes.byteLength !== length) fail(`reading ${what} [${offset}, ${end}) gave ${bytes.byteLength} bytes`);
  return bytes;
}

/** Random access to bytes: a file (Node), a Blob (browser) or memory. */
export interface ByteSource {
  readonly name: string;
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  close?(): Promise<void>;
}

export function bufferSource(bytes: Uint8Array, name = '<bytes>'): ByteSource {
  return {
    name,
    size: bytes.byteLength,
    async read(offset, length) {
      if (offset < 0 || offset + length > bytes.byteLength) throw new RangeError(`${name}: read [${offset}, ${offset + length}) past ${bytes.byteLength} bytes`);
      return bytes.subarray(offset, offset + length);
    },
  };
}

/** A Blob or File (browser), read slice by slice. */
export function blobSource(blob: Blob, name = (blob as File).name ?? '<blob>'): ByteSource {
  return {
    name,
    size: blob.size,
    async read(offset, length) {
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
  };
}

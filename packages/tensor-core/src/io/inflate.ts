// Raw deflate (ZIP method 8) through the platform's DecompressionStream (Node >= 20, browsers),
// with the output bounded by the size the archive declares: a stream that inflates past it (a zip
// bomb) is cancelled as soon as it does, one that stops short is refused.

/** Inflates `data` into exactly `expectedSize` bytes, or reports through `fail`. */
export async function inflateRaw(
  data: Uint8Array,
  expectedSize: number,
  fail: (message: string) => never,
): Promise<Uint8Array> {
  if (typeof DecompressionStream === 'undefined')
    fail('is deflate-compressed and this platform has no DecompressionStream');
  let stream: DecompressionStream;
  try {
    stream = new DecompressionStream('deflate-raw');
  } catch {
    return fail("is deflate-compressed and this platform's DecompressionStream has no 'deflate-raw'");
  }
  const out = new Uint8Array(expectedSize);
  let size = 0;
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  // the write settles once the reader has drained the output; its failure shows on the read side
  writer
    .write(new Uint8Array(data))
    .then(() => writer.close())
    .catch(() => undefined);
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        return fail(`holds corrupt deflate data (${e instanceof Error ? e.message : String(e)})`);
      }
      if (chunk.done) break;
      if (size + chunk.value.byteLength > expectedSize)
        fail(`inflates past its declared size of ${expectedSize} bytes`);
      out.set(chunk.value, size);
      size += chunk.value.byteLength;
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
  if (size !== expectedSize) fail(`inflates to ${size} bytes, not its declared ${expectedSize}`);
  return out;
}

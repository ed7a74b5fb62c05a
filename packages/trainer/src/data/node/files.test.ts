// File access refuses what is not a regular file: a FIFO would block the read and /dev/zero never
// ends, so an image folder or a data file that holds one must fail (or be skipped), not hang.
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { deflateSync } from 'node:zlib';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { jsImageDecoder, loadImage } from '../images.js';
import { sharpImageDecoder } from '@fiber-vl/swin/node';
import { fileSource, readFileLocation, readJson } from './files.js';

const dir = mkdtempSync(join(tmpdir(), 'fiber-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fifo = join(dir, 'pipe.jpg');
let fifoMade = false;
try {
  execFileSync('mkfifo', [fifo]);
  fifoMade = true;
} catch {
  // no mkfifo (Windows): the FIFO cases are skipped
}
const zero = join(dir, 'zero.jpg');
const hasDevZero = existsSync('/dev/zero');
if (hasDevZero) symlinkSync('/dev/zero', zero);
const folder = join(dir, 'folder.jpg');
mkdirSync(folder);
const plain = join(dir, 'plain.json');
writeFileSync(plain, '{"ok": true}');

/** A PNG that declares width x height and holds a few bytes of data (a decoder must look at the size first). */
function pngHeader(width: number, height: number): Uint8Array {
  const chunk = (type: string, data: Uint8Array) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(4 + body.length + 4);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), 4 + body.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(64))),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

describe('image size limit', () => {
  it('a PNG over MAX_IMAGE_PIXELS is refused from its header, by both decoders', async () => {
    const big = pngHeader(9000, 9000); // 81 Mpx, over 2^26
    await expect(jsImageDecoder.decode(big)).rejects.toThrow('a 9000 x 9000 PNG is over the 67108864-pixel limit');
    await expect(sharpImageDecoder.decode(big)).rejects.toThrow(/exceeds pixel limit/);
    const path = join(dir, 'big.png');
    writeFileSync(path, big);
    await expect(loadImage({ kind: 'file', path }, jsImageDecoder, readFileLocation)).rejects.toMatchObject({
      reason: 'corrupt-image',
    });
  });
});

describe("both decoders give PIL's convert('RGB') pixels", () => {
  // scripts/fixtures/make_pil_convert_fixture.py (Pillow 9.4): a CMYK JPEG, 16-bit PNGs and a JPEG
  // with an embedded Display P3 profile (which PIL ignores)
  const fx = join(__dirname, '../../../../../fixtures/ops/pil-convert');
  const want = JSON.parse(readFileSync(join(fx, 'expected.json'), 'utf8')).files as Record<string, { rgb: number[] }>;
  it.each(Object.keys(want))('%s', async (file) => {
    const bytes = new Uint8Array(readFileSync(join(fx, file)));
    const sharp = await sharpImageDecoder.decode(bytes);
    expect(Array.from(sharp.data)).toEqual(want[file].rgb);
    // the JS decoder reads JPEG and PNG only
    if (file.endsWith('.tif')) return expect(jsImageDecoder.decode(bytes)).rejects.toThrow(/not a JPEG or PNG/);
    const js = await jsImageDecoder.decode(bytes);
    // jpeg-js' IDCT rounds differently from libjpeg-turbo's: within 2 levels; PNGs exactly
    const tol = file.endsWith('.jpg') ? 2 : 0;
    expect(Math.max(...Array.from(js.data, (v, i) => Math.abs(v - want[file].rgb[i])))).toBeLessThanOrEqual(tol);
  });
});

describe('Node file access', () => {
  it('reads regular files as before', async () => {
    expect(await readJson(plain)).toEqual({ ok: true });
    // bytes that are not UTF-8 are refused, as Python's json.load refuses them
    const latin1 = join(dir, 'latin1.json');
    writeFileSync(latin1, Buffer.concat([Buffer.from('{"name": "caf'), Buffer.from([0xe9]), Buffer.from('"}')]));
    await expect(readJson(latin1)).rejects.toThrow(new Error(`${latin1} is not UTF-8 text`));
    writeFileSync(latin1, '\uFEFF{"name": "café"}');
    expect(await readJson(latin1)).toEqual({ name: 'café' });
    // a file past V8's longest string (sparse here: 512 MiB of NULs, valid UTF-8) says so; it was
    // reported as not UTF-8
    const long = join(dir, 'long.json');
    writeFileSync(long, '');
    truncateSync(long, 2 ** 29);
    await expect(readJson(long)).rejects.toThrow(`cannot read ${long}: Cannot create a string longer than`);
    rmSync(long);
    expect(Array.from(await readFileLocation({ path: plain, offset: 1, length: 4 }))).toEqual(
      Array.from(Buffer.from('"ok"')),
    );
    const src = await fileSource(plain);
    expect(src.size).toBe(12);
    await src.close?.();
  });

  it.runIf(fifoMade)('refuses a FIFO instead of waiting for a writer', async () => {
    await expect(readFileLocation({ path: fifo })).rejects.toThrow(`${fifo} is not a regular file (a FIFO)`);
    // the path once: the refusal names it (it read "cannot read P: P is not a regular file")
    await expect(readJson(fifo)).rejects.toThrow(new Error(`${fifo} is not a regular file (a FIFO)`));
    await expect(fileSource(fifo)).rejects.toThrow(new Error(`${fifo} is not a regular file (a FIFO)`));
    await expect(loadImage({ kind: 'file', path: fifo }, jsImageDecoder, readFileLocation)).rejects.toMatchObject({
      reason: 'corrupt-image',
    });
  });

  it.runIf(hasDevZero)('refuses a link to /dev/zero instead of reading for ever', async () => {
    await expect(readFileLocation({ path: zero })).rejects.toThrow(
      `${zero} is not a regular file (a character device)`,
    );
    await expect(loadImage({ kind: 'file', path: zero }, jsImageDecoder, readFileLocation)).rejects.toMatchObject({
      reason: 'corrupt-image',
    });
  });

  it('keeps a directory a missing image (EISDIR)', async () => {
    await expect(readFileLocation({ path: folder })).rejects.toMatchObject({ code: 'EISDIR' });
    await expect(loadImage({ kind: 'file', path: folder }, jsImageDecoder, readFileLocation)).rejects.toMatchObject({
      reason: 'missing-image',
    });
  });
});

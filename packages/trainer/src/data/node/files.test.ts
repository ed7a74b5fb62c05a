// File access refuses what is not a regular file: a FIFO would block the read and /dev/zero never
// ends, so an image folder or a data file that holds one must fail (or be skipped), not hang.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { jsImageDecoder, loadImage } from '../images.js';
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

describe('Node file access', () => {
  it('reads regular files as before', async () => {
    expect(await readJson(plain)).toEqual({ ok: true });
    expect(Array.from(await readFileLocation({ path: plain, offset: 1, length: 4 }))).toEqual(
      Array.from(Buffer.from('"ok"')),
    );
    const src = await fileSource(plain);
    expect(src.size).toBe(12);
    await src.close?.();
  });

  it.runIf(fifoMade)('refuses a FIFO instead of waiting for a writer', async () => {
    await expect(readFileLocation({ path: fifo })).rejects.toThrow(`${fifo} is not a regular file (a FIFO)`);
    await expect(readJson(fifo)).rejects.toThrow(`cannot read ${fifo}: ${fifo} is not a regular file (a FIFO)`);
    await expect(fileSource(fifo)).rejects.toThrow(`cannot open ${fifo}: ${fifo} is not a regular file (a FIFO)`);
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

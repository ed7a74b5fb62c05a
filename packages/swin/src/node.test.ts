import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { readImage, sharpImageDecoder } from './node.js';

describe('image decoding in Node (sharp)', () => {
  it('decodes PNG exactly and JPEG approximately to 8-bit RGB', async () => {
    const raw = Buffer.from(Array.from({ length: 4 * 3 * 3 }, (_, i) => (i * 37) % 256));
    const png = await sharp(raw, { raw: { width: 4, height: 3, channels: 3 } })
      .png()
      .toBuffer();
    const img = await sharpImageDecoder.decode(png);
    expect([img.width, img.height, img.channels]).toEqual([4, 3, 3]);
    expect(Array.from(img.data)).toEqual(Array.from(raw));
    const rgba = await sharp(Buffer.alloc(2 * 2 * 4, 200), { raw: { width: 2, height: 2, channels: 4 } })
      .png()
      .toBuffer();
    expect((await sharpImageDecoder.decode(rgba)).channels).toBe(3);
    const dir = mkdtempSync(join(tmpdir(), 'fiber-img-'));
    writeFileSync(
      join(dir, 'x.jpg'),
      await sharp(Buffer.alloc(8 * 8 * 3, 128), { raw: { width: 8, height: 8, channels: 3 } })
        .jpeg({ quality: 95 })
        .toBuffer(),
    );
    const jpg = await readImage(join(dir, 'x.jpg'));
    expect(Math.max(...Array.from(jpg.data).map((v) => Math.abs(v - 128)))).toBeLessThanOrEqual(2);
    writeFileSync(join(dir, 'bad.png'), 'not an image');
    await expect(readImage(join(dir, 'bad.png'))).rejects.toThrow(/cannot decode image .*bad.png/);
    await expect(readImage(join(dir, 'missing.png'))).rejects.toThrow(/cannot read image .*missing.png: ENOENT/);
  });

  it("gives PIL's convert('RGB') pixels for CMYK JPEGs and 16-bit PNGs (Pillow 9.4 fixture)", async () => {
    // scripts/fixtures/make_pil_convert_fixture.py
    const dir = join(__dirname, '../../../fixtures/ops/pil-convert');
    const fx = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
    expect(Object.keys(fx.files)).toEqual([
      'cmyk.jpg',
      'cmyk.tif',
      'g16b.png',
      'g16t.png',
      'rgb16.png',
      'la16.png',
      'p3.jpg',
    ]);
    for (const [file, want] of Object.entries(fx.files) as [string, { mode: string; rgb: number[] }][]) {
      const img = await readImage(join(dir, file));
      expect(img.channels, file).toBe(3);
      expect(Array.from(img.data), `${file} (PIL mode ${want.mode})`).toEqual(want.rgb);
    }
    // sharp's own conversions differ: colour-managed CMYK and embedded profiles (P3), 16-bit greys
    // scaled instead of clipped (and a tRNS chunk read as alpha)
    for (const file of ['cmyk.jpg', 'cmyk.tif', 'p3.jpg']) {
      const managed = await sharp(readFileSync(join(dir, file)))
        .toColourspace('srgb')
        .raw()
        .toBuffer();
      expect(Array.from(managed), file).not.toEqual(fx.files[file].rgb);
    }
    for (const file of ['g16b.png', 'g16t.png']) {
      const scaled = await sharp(readFileSync(join(dir, file)))
        .removeAlpha()
        .toColourspace('srgb')
        .raw()
        .toBuffer();
      expect(Array.from(scaled), file).not.toEqual(fx.files[file].rgb);
    }
  });
});

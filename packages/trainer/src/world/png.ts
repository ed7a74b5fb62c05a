// A small synchronous PNG encoder (8-bit RGB / RGBA) in plain TypeScript, so a report can embed
// images as data URLs in browsers and Node alike: per-row adaptive filters, then zlib with one
// fixed-Huffman deflate block over LZ77 matches (hash chains, 32 KiB window). Flat synthetic
// images compress well with this; photographs would want dynamic Huffman tables.
import type { RawImage } from '@fiber-vl/swin';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function adler32(bytes: Uint8Array): number {
  let a = 1;
  let b = 0;
  for (let i = 0; i < bytes.length; ) {
    // 5552 bytes keep the sums below 2^32 between reductions (zlib's NMAX)
    const end = Math.min(bytes.length, i + 5552);
    for (; i < end; i++) {
      a += bytes[i];
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

class BitWriter {
  private buf = new Uint8Array(1 << 16);
  private pos = 0;
  private acc = 0;
  private n = 0;

  /** `count` bits of `value`, least significant first (deflate's order for everything but codes). */
  bits(value: number, count: number) {
    this.acc |= value << this.n;
    this.n += count;
    while (this.n >= 8) {
      this.byte(this.acc & 0xff);
      this.acc >>>= 8;
      this.n -= 8;
    }
  }

  byte(b: number) {
    if (this.pos === this.buf.length) {
      const bigger = new Uint8Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf[this.pos++] = b;
  }

  finish(): Uint8Array {
    if (this.n > 0) this.byte(this.acc & 0xff);
    this.acc = 0;
    this.n = 0;
    return this.buf.subarray(0, this.pos);
  }
}

const LEN_BASE = [
  3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258,
];
const LEN_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
  8193, 12289, 16385, 24577,
];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];

function reverseBits(code: number, length: number): number {
  let rev = 0;
  for (let i = 0; i < length; i++) rev |= ((code >> i) & 1) << (length - 1 - i);
  return rev;
}

/** Fixed Huffman codes (RFC 1951 §3.2.6), bit-reversed for the LSB-first writer: literal/length and distance. */
const LIT_LENGTH = Uint8Array.from({ length: 288 }, (_, s) => (s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8));
const LIT_CODE = Uint16Array.from({ length: 288 }, (_, s) =>
  reverseBits(s < 144 ? 0x30 + s : s < 256 ? 0x190 + s - 144 : s < 280 ? s - 256 : 0xc0 + s - 280, LIT_LENGTH[s]),
);
const DIST_CODE = Uint8Array.from({ length: 30 }, (_, d) => reverseBits(d, 5));

function literal(w: BitWriter, sym: number) {
  w.bits(LIT_CODE[sym], LIT_LENGTH[sym]);
}

/** Index of the last base <= v. */
function bucket(bases: readonly number[], v: number): number {
  let i = bases.length - 1;
  while (bases[i] > v) i--;
  return i;
}

const WINDOW = 32768;
const MAX_MATCH = 258;
const MAX_CHAIN = 32;

/** Raw deflate (one final fixed-Huffman block). */
export function deflateFixed(data: Uint8Array): Uint8Array {
  const w = new BitWriter();
  w.bits(1, 1); // BFINAL
  w.bits(1, 2); // BTYPE 01: fixed Huffman
  const head = new Int32Array(1 << 15).fill(-1);
  const prev = new Int32Array(WINDOW);
  // multiplicative hash of the next three bytes into 15 bits
  const hashAt = (i: number) => Math.imul((data[i] << 16) | (data[i + 1] << 8) | data[i + 2], 0x9e3779b1) >>> 17;
  const insert = (i: number) => {
    if (i + 2 >= data.length) return;
    const h = hashAt(i);
    prev[i % WINDOW] = head[h];
    head[h] = i;
  };
  let i = 0;
  while (i < data.length) {
    let bestLen = 0;
    let bestDist = 0;
    if (i + 2 < data.length) {
      let cand = head[hashAt(i)];
      const limit = Math.min(MAX_MATCH, data.length - i);
      for (let chain = 0; cand >= 0 && i - cand <= WINDOW && chain < MAX_CHAIN; chain++) {
        let len = 0;
        while (len < limit && data[cand + len] === data[i + len]) len++;
        if (len > bestLen) {
          bestLen = len;
          bestDist = i - cand;
          if (len === limit) break;
        }
        const next = prev[cand % WINDOW];
        if (next >= cand) break; // the slot was overwritten by a newer position
        cand = next;
      }
    }
    if (bestLen >= 3) {
      const li = bucket(LEN_BASE, bestLen);
      literal(w, 257 + li);
      w.bits(bestLen - LEN_BASE[li], LEN_EXTRA[li]);
      const di = bucket(DIST_BASE, bestDist);
      w.bits(DIST_CODE[di], 5);
      w.bits(bestDist - DIST_BASE[di], DIST_EXTRA[di]);
      for (let k = 0; k < bestLen; k++) insert(i + k);
      i += bestLen;
    } else {
      literal(w, data[i]);
      insert(i);
      i++;
    }
  }
  literal(w, 256); // end of block
  return w.finish();
}

/** zlib stream (RFC 1950): header, deflate, Adler-32. */
export function zlibFixed(data: Uint8Array): Uint8Array {
  const body = deflateFixed(data);
  const out = new Uint8Array(body.length + 6);
  out[0] = 0x78; // deflate, 32 KiB window
  out[1] = 0x01; // (0x7801 % 31 === 0), no dictionary
  out.set(body, 2);
  new DataView(out.buffer).setUint32(body.length + 2, adler32(data));
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Filtered scanlines: each row gets the filter with the smallest sum of |residual| (libpng's heuristic). */
function filterRows(image: RawImage): Uint8Array {
  const { width, height, channels: bpp, data } = image;
  const stride = width * bpp;
  const out = new Uint8Array(height * (stride + 1));
  const trial = new Uint8Array(stride);
  const zero = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const row = data.subarray(y * stride, (y + 1) * stride);
    const up = y > 0 ? data.subarray((y - 1) * stride, y * stride) : zero;
    let best = Infinity;
    for (let f = 0; f < 5; f++) {
      let cost = 0;
      for (let x = 0; x < stride; x++) {
        const a = x >= bpp ? row[x - bpp] : 0;
        const b = up[x];
        let pred = 0;
        if (f === 1) pred = a;
        else if (f === 2) pred = b;
        else if (f === 3) pred = (a + b) >> 1;
        else if (f === 4) pred = paeth(a, b, x >= bpp ? up[x - bpp] : 0);
        const r = (row[x] - pred) & 0xff;
        trial[x] = r;
        cost += r < 128 ? r : 256 - r;
      }
      if (cost < best) {
        best = cost;
        out[y * (stride + 1)] = f;
        out.set(trial, y * (stride + 1) + 1);
      }
    }
  }
  return out;
}

function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 12);
  const view = new DataView(out.buffer);
  view.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  view.setUint32(8 + body.length, crc32(out, 4, 8 + body.length));
  return out;
}

/** PNG bytes of an 8-bit RGB or RGBA image. */
export function encodePng(image: RawImage): Uint8Array {
  const { width, height, channels, data } = image;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new RangeError(`encodePng: width ${width} and height ${height} must be positive integers`);
  }
  if (channels !== 3 && channels !== 4)
    throw new RangeError(`encodePng: channels must be 3 (RGB) or 4 (RGBA), got ${channels}`);
  if (data.length !== width * height * channels) {
    throw new RangeError(
      `encodePng: data has ${data.length} bytes, expected ` +
        `${width} x ${height} x ${channels} = ${width * height * channels}`,
    );
  }
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr.set([8, channels === 3 ? 2 : 6, 0, 0, 0], 8); // bit depth, colour type, compression, filter, interlace
  const parts = [
    Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlibFixed(filterRows(image))),
    chunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

export function base64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    s += B64[(n >> 18) & 63] + B64[(n >> 12) & 63];
    s += i + 1 < bytes.length ? B64[(n >> 6) & 63] : '=';
    s += i + 2 < bytes.length ? B64[n & 63] : '=';
  }
  return s;
}

/** `data:image/png;base64,...` for an <img> in a self-contained HTML report. */
export function pngDataUrl(image: RawImage): string {
  return `data:image/png;base64,${base64(encodePng(image))}`;
}

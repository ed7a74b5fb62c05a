// Test-only helpers: the copies of the official fine-grained fixtures under fixtures/fiber-fine-post
// (provenance in that folder's README), read as plain Float32Arrays.
import { join } from 'node:path';
import { type RawTensor, SafetensorsFile } from '@fiber-vl/tensor-core';

export const FIXTURE_DIR = join(__dirname, '../../../fixtures/fiber-fine-post');

export interface Array32 {
  shape: number[];
  data: Float32Array;
}

/** Reads one fixture file (and closes it); `get(name)` gives an F32 tensor as a plain array. */
export async function openFixture(file: string): Promise<{ get(name: string): Promise<Array32>; keys(): string[] }> {
  const st = await SafetensorsFile.open(join(FIXTURE_DIR, file));
  const raws = new Map<string, RawTensor>();
  try {
    for (const name of st.keys()) raws.set(name, await st.readRaw(name));
  } finally {
    await st.close();
  }
  return {
    keys: () => [...raws.keys()],
    async get(name: string) {
      const raw = raws.get(name);
      if (!raw) throw new RangeError(`${file}: no tensor ${name}`);
      if (!(raw.data instanceof Float32Array)) throw new TypeError(`${file}: ${name} is ${raw.dtype}, expected F32`);
      return { shape: raw.shape, data: raw.data };
    },
  };
}

/** [C, H, W] (one image of an NCHW map) -> [H * W, C] (permute_and_flatten with A = 1). */
export function chwToHwc(data: Float32Array, c: number, h: number, w: number, image = 0): Float32Array {
  const out = new Float32Array(h * w * c);
  const base = image * c * h * w;
  for (let k = 0; k < c; k++) for (let p = 0; p < h * w; p++) out[p * c + k] = data[base + k * h * w + p];
  return out;
}

export function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

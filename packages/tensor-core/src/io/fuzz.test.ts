// Mutation fuzzing of the checkpoint readers. Seeded byte mutations (bit flips, interesting values,
// insertions, deletions, duplicated ranges) and truncations of small real files written by torch.save
// and by a reference-layout safetensors writer (fixtures/torch, scripts/fixtures/make_torch_fixtures.py),
// plus mutations of the pickle inside a re-zipped archive so that length-changing edits reach the
// unpickler. Every mutant must load or throw TorchCheckpointError / ZipError / SafetensorsError —
// never another error — within a time bound, without leaking tensors and with bounded memory.
//
// FIBER_FUZZ_ITERATIONS=N raises the number of mutants per seed file (default 800) for a long run.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../tf.js';
import { useBackend } from '../testing.js';
import { bufferSource } from './byte-source.js';
import { SafetensorsError, SafetensorsFile } from './safetensors.js';
import { TorchCheckpoint, TorchCheckpointError } from './torch.js';
import { ZipError } from './zip.js';
import { crc32, readStoredZip, writeStoredZip } from '../../test/zip-writer.js';

const dir = join(__dirname, '../../../../fixtures/torch');
const ITERATIONS = Number(process.env.FIBER_FUZZ_ITERATIONS) || 800;
/** Per-mutant limits: what a mutant may make the reader allocate. */
const LIMITS = { maxTensorBytes: 1 << 20, maxExpandedBytes: 1 << 20 };
const MAX_MS_PER_MUTANT = 2_000;

/** mulberry32: a small seeded generator, so that every run makes the same mutants. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)],
  };
}
type Rng = ReturnType<typeof rng>;

const INTERESTING_8 = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];
const INTERESTING_32 = [0, 1, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0xffff, 0x10000];

/** One mutation of `src` (a copy), focused on [lo, hi) half of the time; returns the mutant and what was done. */
function mutate(src: Uint8Array, r: Rng, [lo, hi]: [number, number]): { bytes: Uint8Array; what: string } {
  const at = (n = 1) => {
    const [a, b] = r.next() < 0.5 ? [lo, hi] : [0, src.length];
    return Math.max(0, Math.min(src.length - n, a + r.int(Math.max(1, b - a))));
  };
  const b = src.slice();
  const dv = new DataView(b.buffer);
  // a mutant of a mutant may be too short for an in-place edit: then bytes are inserted
  const op = r.int(8);
  switch (src.length < 8 ? 4 : op) {
    case 0: {
      const i = at();
      const bit = r.int(8);
      b[i] ^= 1 << bit;
      return { bytes: b, what: `flip bit ${bit} of byte ${i}` };
    }
    case 1: {
      const i = at();
      b[i] = r.pick(INTERESTING_8);
      return { bytes: b, what: `byte ${i} = 0x${b[i].toString(16)}` };
    }
    case 2: {
      const i = at(4);
      const v = r.pick(INTERESTING_32);
      dv.setUint32(i, v, true);
      return { bytes: b, what: `u32 at ${i} = 0x${v.toString(16)}` };
    }
    case 3: {
      const i = at(8);
      const v = r.pick([0n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 53n, 2n ** 32n]);
      dv.setBigUint64(i, v, true);
      return { bytes: b, what: `u64 at ${i} = ${v}` };
    }
    case 4: {
      const i = at();
      const n = 1 + r.int(16);
      const ins = Uint8Array.from({ length: n }, () => r.int(256));
      const out = new Uint8Array(src.length + n);
      out.set(src.subarray(0, i));
      out.set(ins, i);
      out.set(src.subarray(i), i + n);
      return { bytes: out, what: `insert ${n} bytes at ${i}` };
    }
    case 5: {
      const i = at();
      const n = Math.min(1 + r.int(16), src.length - i);
      const out = new Uint8Array(src.length - n);
      out.set(src.subarray(0, i));
      out.set(src.subarray(i + n), i);
      return { bytes: out, what: `delete ${n} bytes at ${i}` };
    }
    case 6: {
      const n = r.int(src.length);
      return { bytes: src.slice(0, n), what: `truncate to ${n} bytes` };
    }
    default: {
      const from = at();
      const to = at();
      const n = 1 + r.int(32);
      b.copyWithin(to, from, Math.min(src.length, from + n));
      return { bytes: b, what: `copy ${n} bytes from ${from} to ${to}` };
    }
  }
}

const TYPED = [TorchCheckpointError, ZipError, SafetensorsError];

/** Opens a mutant and reads every value; returns 'loaded' or the typed error's name (and message), throws anything else. */
async function exercise(
  bytes: Uint8Array,
  kind: 'torch' | 'safetensors',
  k: number,
): Promise<{ outcome: string; message?: string }> {
  try {
    if (kind === 'torch') {
      const ckpt = await TorchCheckpoint.fromSource(bufferSource(bytes, 'mutant.pth'), LIMITS);
      const sd = ckpt.stateDict();
      for (const [name, ref] of sd) await ckpt.readRaw(ref, name);
      if (k % 8 === 0) tf.dispose([...(await ckpt.readStateDict()).values()]);
      if (k % 8 === 4)
        for (const [name, ref] of sd) for await (const c of ckpt.readRawChunks(ref, name, { chunkBytes: 8 })) void c;
    } else {
      const f = await SafetensorsFile.fromBytes(bytes, 'mutant.safetensors', LIMITS);
      for (const name of f.keys()) await f.readRaw(name);
      if (k % 8 === 0) tf.dispose([...(await f.readAll()).values()]);
      if (k % 8 === 4)
        for (const name of f.keys()) for await (const c of f.readRawChunks(name, { chunkBytes: 8 })) void c;
    }
    return { outcome: 'loaded' };
  } catch (e) {
    if (TYPED.some((T) => e instanceof T)) return { outcome: (e as Error).name, message: (e as Error).message };
    throw e;
  }
}

/** The byte range of an entry's data in a stored zip (where mutations are aimed half of the time). */
function entryRange(zip: Uint8Array, suffix: string): [number, number] {
  const e = readStoredZip(zip).find((x) => x.name.endsWith(suffix))!;
  return [e.dataOffset, e.dataOffset + e.data.length];
}

interface Seed {
  file: string;
  kind: 'torch' | 'safetensors';
  /** Where half of the mutations go: the pickle, or the safetensors header. */
  focus: (bytes: Uint8Array) => [number, number];
}
const SEEDS: Seed[] = [
  { file: 'state_dict.pth', kind: 'torch', focus: (b) => entryRange(b, 'data.pkl') },
  { file: 'lightning.ckpt', kind: 'torch', focus: (b) => entryRange(b, 'data.pkl') },
  { file: 'expanded.pth', kind: 'torch', focus: (b) => entryRange(b, 'data.pkl') },
  { file: 'deflate.pth', kind: 'torch', focus: (b) => [b.length - 600, b.length] },
  {
    file: 'tiny.safetensors',
    kind: 'safetensors',
    focus: (b) => [0, 8 + Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true))],
  },
];

beforeAll(() => useBackend('cpu'));

describe('mutation fuzz of the checkpoint readers', () => {
  it.each(SEEDS)(
    '$file: every mutant loads or throws a typed error, quickly and without leaks',
    async ({ file, kind, focus }) => {
      const original = new Uint8Array(readFileSync(join(dir, file)));
      expect(await exercise(original, kind, 1)).toEqual({ outcome: 'loaded' });
      const range = focus(original);
      const tensorsBefore = tf.memory().numTensors;
      const heapBefore = process.memoryUsage().heapUsed;
      const outcomes: Record<string, number> = {};
      let slowest = 0;
      for (let k = 0; k < ITERATIONS; k++) {
        const seed = crc32(new TextEncoder().encode(file)) ^ k;
        const r = rng(seed);
        let { bytes, what } = mutate(original, r, range);
        if (r.next() < 0.3) {
          const again = mutate(bytes, r, range);
          bytes = again.bytes;
          what += `, then ${again.what}`;
        }
        const started = performance.now();
        let outcome: string;
        try {
          ({ outcome } = await exercise(bytes, kind, k));
        } catch (e) {
          throw new Error(
            `${file} mutant ${k} (seed ${seed}: ${what}) threw ${(e as Error).name}: ${(e as Error).message}`,
          );
        }
        const ms = performance.now() - started;
        if (ms > MAX_MS_PER_MUTANT)
          throw new Error(`${file} mutant ${k} (seed ${seed}: ${what}) took ${ms.toFixed(0)} ms`);
        slowest = Math.max(slowest, ms);
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      }
      expect(tf.memory().numTensors).toBe(tensorsBefore);
      expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(256 << 20);
      // the mutations reach both outcomes: some mutants still load, most are refused
      expect(outcomes.loaded ?? 0, JSON.stringify(outcomes)).toBeGreaterThan(0);
      expect(ITERATIONS - (outcomes.loaded ?? 0), JSON.stringify(outcomes)).toBeGreaterThan(ITERATIONS / 4);
    },
  );

  it.each(['state_dict.pth', 'lightning.ckpt'])(
    '%s: length-changing mutations of data.pkl inside a valid zip reach the unpickler',
    async (file) => {
      const entries = readStoredZip(new Uint8Array(readFileSync(join(dir, file))));
      const pkl = entries.find((e) => e.name.endsWith('data.pkl'))!;
      const outcomes: Record<string, number> = {};
      const messages = new Set<string>();
      const tensorsBefore = tf.memory().numTensors;
      for (let k = 0; k < ITERATIONS; k++) {
        const seed = 0x5eed ^ k;
        const r = rng(seed);
        const { bytes: mutated, what } = mutate(pkl.data, r, [0, pkl.data.length]);
        const zip = writeStoredZip(entries.map((e) => (e === pkl ? { ...e, data: mutated } : e)));
        const started = performance.now();
        let result: { outcome: string; message?: string };
        try {
          result = await exercise(zip, 'torch', k);
        } catch (e) {
          throw new Error(
            `${file} data.pkl mutant ${k} (seed ${seed}: ${what}) threw ${(e as Error).name}: ${(e as Error).message}`,
          );
        }
        expect(performance.now() - started).toBeLessThan(MAX_MS_PER_MUTANT);
        outcomes[result.outcome] = (outcomes[result.outcome] ?? 0) + 1;
        if (result.message) messages.add(result.message.replace(/\d+/g, 'N').slice(0, 60));
      }
      expect(tf.memory().numTensors).toBe(tensorsBefore);
      expect(outcomes.TorchCheckpointError, JSON.stringify(outcomes)).toBeGreaterThan(ITERATIONS / 4);
      expect(messages.size).toBeGreaterThan(5); // many different checks fire, not one catch-all
    },
  );

  it('handles pickles that stress the machine: 200,000 APPENDS items, an object bomb, deep nesting', async () => {
    const base = readStoredZip(new Uint8Array(readFileSync(join(dir, 'state_dict.pth'))));
    const withPickle = (pkl: Uint8Array) =>
      writeStoredZip(base.map((e) => (e.name.endsWith('data.pkl') ? { ...e, data: pkl } : e)));
    const open = (pkl: Uint8Array) => TorchCheckpoint.fromSource(bufferSource(withPickle(pkl), 'stress.pth'));
    const cat = (...parts: (number[] | Uint8Array)[]) => Uint8Array.from(parts.flatMap((p) => Array.from(p)));
    const repeat = (unit: number[], n: number) => {
      const out = new Uint8Array(unit.length * n);
      for (let i = 0; i < n; i++) out.set(unit, i * unit.length);
      return out;
    };
    // [1, 1, ..., 1] through one APPENDS (a spread of that many arguments overflows the call stack)
    const list = await open(cat([0x80, 2, 0x5d, 0x28], repeat([0x4b, 1], 200_000), [0x65, 0x2e]));
    expect((list.root as number[]).length).toBe(200_000);
    expect(() => list.stateDict()).toThrow(/the checkpoint is a tuple\/list, not a dict/);
    // 1.1M empty dicts appended to one list: refused at the object limit, not after exhausting the heap
    await expect(open(cat([0x80, 2, 0x5d, 0x28], repeat([0x7d], 1_100_000), [0x65, 0x2e]))).rejects.toThrow(
      /builds more than 1048576 objects/,
    );
    await expect(open(cat([0x80, 2], repeat([0x28], 100_000), [0x2e]))).rejects.toThrow(/more than 4096 nested MARKs/);
    // a list holding itself: loads (as Python would), and nothing here recurses into it
    const cyclic = await open(Uint8Array.from([0x80, 2, 0x5d, 0x71, 0, 0x68, 0, 0x61, 0x2e]));
    expect((cyclic.root as unknown[])[0]).toBe(cyclic.root);
  });
});

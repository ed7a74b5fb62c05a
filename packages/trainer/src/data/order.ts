// Deterministic epoch orders and per-sample random streams, both functions of (seed, epoch, ...)
// only: the same data position always gives the same sample, whichever thread prepares it.
import { Generator } from '@fiber-vl/tensor-core';

/** murmur3's 32-bit finaliser: a bijective mix. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Splits a safe integer into its low and high 32-bit words (seeds and indices may exceed 2^32). */
function words(x: number): [number, number] {
  if (!Number.isSafeInteger(x)) throw new RangeError(`expected a safe integer, got ${x}`);
  const lo = x >>> 0;
  const hi = Math.floor(x / 2 ** 32) >>> 0;
  return [lo, hi];
}

/**
 * A Generator whose whole 128-bit state is a hash of `parts` (a domain tag then integers), so
 * streams for different (seed, epoch, index) are independent (a 32-bit seed would collide among
 * millions of samples).
 */
export function derivedGenerator(...parts: number[]): Generator {
  const ws = parts.flatMap(words);
  const state = [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344];
  for (let k = 0; k < 4; k++) {
    let h = state[k];
    for (const w of ws) h = fmix32((h ^ w) + Math.imul(k + 1, 0x9e3779b9));
    state[k] = fmix32(h + ws.length);
  }
  if (!state.some((w) => w !== 0)) state[0] = 1; // xoshiro's one forbidden state
  return new Generator().setState(state);
}

const ORDER_TAG = 0x6f726472; // 'ordr'
const SAMPLE_TAG = 0x736d706c; // 'smpl'

/** The random stream of one sample: a function of (seed, epoch, source index) only. */
export function sampleGenerator(seed: number, epoch: number, index: number): Generator {
  return derivedGenerator(SAMPLE_TAG, seed, epoch, index);
}

export interface EpochOrderOptions {
  seed: number;
  epoch: number;
  shuffle?: boolean;
  /** This process's share, as torch's DistributedSampler: rank r takes positions r, r + W, r + 2W, ... */
  rank?: number;
  worldSize?: number;
}

/**
 * The order of one epoch: position p -> source index. Shuffled with a Fisher-Yates permutation
 * drawn from the project's Generator seeded by (seed, epoch). With W ranks every rank gets
 * ceil(N / W) positions, the permutation wrapping around to pad (DistributedSampler, drop_last=False).
 * Memory: 4 bytes per entry of the source, no records.
 */
export class EpochOrder {
  readonly length: number;
  private readonly perm: Uint32Array | undefined;
  private readonly rank: number;
  private readonly worldSize: number;

  constructor(
    readonly size: number,
    { seed, epoch, shuffle = true, rank = 0, worldSize = 1 }: EpochOrderOptions,
  ) {
    if (!Number.isInteger(size) || size < 0 || size > 0xffffffff)
      throw new RangeError(`EpochOrder: bad source size ${size}`);
    if (!Number.isInteger(worldSize) || worldSize < 1 || !Number.isInteger(rank) || rank < 0 || rank >= worldSize) {
      throw new RangeError(`EpochOrder: rank ${rank} is not in [0, worldSize ${worldSize})`);
    }
    if (!Number.isSafeInteger(epoch) || epoch < 0)
      throw new RangeError(`EpochOrder: epoch must be a non-negative integer, got ${epoch}`);
    this.rank = rank;
    this.worldSize = worldSize;
    this.length = size === 0 ? 0 : Math.ceil(size / worldSize);
    if (shuffle && size > 1) {
      const g = derivedGenerator(ORDER_TAG, seed, epoch);
      const p = new Uint32Array(size);
      for (let i = 0; i < size; i++) p[i] = i;
      for (let i = size - 1; i > 0; i--) {
        const j = g.nextInt(i + 1);
        const t = p[i];
        p[i] = p[j];
        p[j] = t;
      }
      this.perm = p;
    }
  }

  indexAt(position: number): number {
    if (!Number.isInteger(position) || position < 0 || position >= this.length) {
      throw new RangeError(`position ${position} outside the epoch [0, ${this.length})`);
    }
    const k = (position * this.worldSize + this.rank) % this.size;
    return this.perm ? this.perm[k] : k;
  }
}

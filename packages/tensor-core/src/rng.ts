// A seeded random generator that gives the same numbers on every backend: values are drawn in
// JS (xoshiro128**, seeded through splitmix32) and uploaded, never drawn by a backend kernel.
import { tf } from './tf.js';

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

// One counter per realm, not per copy of this module: a bundle (or an app with both the ESM and
// the CJS build) can hold two copies, and a skipInit of one must zero the draws of the other's
// Generators too. The default generator is shared the same way (below). The wasm thread pool
// stays one per copy, and a module of one copy cannot be a child of the other's (Module says so),
// so an app should still load one copy. The keys carry a version, so a future copy with another
// shape of state will not read this one's.
/** The realm's value under `key` if `valid` accepts it, else `make()`, stored there for the other copies. */
function realmShared<T>(key: string, valid: (x: unknown) => x is T, make: () => T): T {
  const realm = globalThis as Record<symbol, unknown>;
  const symbol = Symbol.for(key);
  const found = realm[symbol];
  if (valid(found)) return found;
  const value = make();
  realm[symbol] = value;
  return value;
}

const isSkipState = (x: unknown): x is { depth: number } =>
  typeof x === 'object' &&
  x !== null &&
  Number.isInteger((x as { depth?: unknown }).depth) &&
  (x as { depth: number }).depth >= 0;
const skipState = realmShared('@fiber-vl/tensor-core/skipInit@1', isSkipState, () => ({ depth: 0 }));

/**
 * Builds without initialising, as torch.nn.utils.skip_init: while `build` runs, every Generator's
 * `uniformArray` / `normalArray` (so `uniform`, `normal`, and the random `init` functions, through
 * which the layers draw their parameters; `truncNormal` checks the switch itself) gives zeros and
 * draws nothing, so the generators' states do not move. Other draws (`nextUint32`, `nextDouble`,
 * `nextNormal`, `nextInt`, `permutation`, `bernoulli`) are as usual. For a model whose every
 * parameter a strict checkpoint load then replaces: FIBER-B with the pre-training heads builds in
 * 0.4-1.8 s instead of 7-10 s on the cpu backend (the draws are done in JS). Everything else is
 * as usual (buffers, constants such as LayerNorm's weight or `init.constant`'s, shapes, names),
 * and after `build` returns, generators draw again, dropout masks included.
 *
 * `build` must be synchronous: a Promise (or any thenable) it returns is refused with a
 * TypeError. The refused build is not cancelled: what it runs after its first `await` draws as
 * usual.
 */
export function skipInit<T>(build: () => T): T {
  skipState.depth++;
  let out: T;
  try {
    out = build();
  } finally {
    skipState.depth--;
  }
  if (isThenable(out)) {
    // A native Promise's own rejection would be reported as unhandled on top of the error below,
    // which says why; another thenable's `then` is not called (it could run anything).
    if (out instanceof Promise) out.catch(() => undefined);
    throw new TypeError(
      'skipInit: build returned a Promise (or thenable); it must build synchronously (await outside it)',
    );
  }
  return out;
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return (
    (typeof x === 'object' || typeof x === 'function') &&
    x !== null &&
    typeof (x as { then?: unknown }).then === 'function'
  );
}

/**
 * Whether a `skipInit` build is running (for initialisers that draw other than by the arrays).
 * @internal
 */
export function initSkipped(): boolean {
  return skipState.depth > 0;
}

export class Generator {
  private s = new Uint32Array(4);
  /** Second Box-Muller output, returned by the next nextNormal(). */
  private spare: number | undefined;

  constructor(seed = 0) {
    this.manualSeed(seed);
  }

  /**
   * Re-seeds the generator (like torch.Generator.manual_seed: the seed is truncated to an integer
   * and must lie in [-2^63, 2^64); a negative one stands for its 64-bit two's complement). Distinct
   * integer seeds give distinct states: the low 32 bits seed splitmix32, the high ones are mixed
   * into the last word (seeds in [0, 2^32) draw what they always drew).
   */
  manualSeed(seed: number): this {
    if (typeof seed !== 'number' || !Number.isFinite(seed))
      throw new TypeError(`Generator seed must be a finite number, got ${String(seed)}`);
    const whole = Math.trunc(seed);
    if (whole < -(2 ** 63) || whole >= 2 ** 64)
      throw new RangeError(`Generator seed must be in [-2^63, 2^64), as torch's, got ${seed}`);
    // the two 32-bit halves of the 64-bit value, computed apart (2^64 - 1 is no double)
    const magnitude = Math.abs(whole);
    let high = Math.floor(magnitude / 2 ** 32);
    let low = magnitude - high * 2 ** 32;
    if (whole < 0) [low, high] = low === 0 ? [0, (2 ** 32 - high) % 2 ** 32] : [2 ** 32 - low, 2 ** 32 - 1 - high];
    const next = splitmix32(low);
    for (let i = 0; i < 4; i++) this.s[i] = next();
    this.s[3] ^= high;
    this.spare = undefined;
    return this;
  }

  /** The full state, to checkpoint and restore a training run exactly. */
  getState(): number[] {
    return Array.from(this.s);
  }
  setState(state: readonly number[]): this {
    if (state.length !== 4) throw new TypeError(`Generator state must have 4 words, got ${state.length}`);
    const bad = state.findIndex((v) => !(Number.isInteger(v) && v >= 0 && v < 2 ** 32));
    if (bad >= 0)
      throw new RangeError(`Generator state word ${bad} must be an integer in [0, 2^32), got ${String(state[bad])}`);
    // xoshiro's one fixed point: every draw would be 0 (and normal() would never return)
    if (state.every((v) => v === 0)) throw new RangeError('Generator state [0, 0, 0, 0] is not a xoshiro128** state');
    this.s.set(state);
    this.spare = undefined;
    return this;
  }

  /** Next 32 random bits (xoshiro128**). */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  nextDouble(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Standard normal double (Box-Muller, both outputs used). */
  nextNormal(): number {
    if (this.spare !== undefined) {
      const v = this.spare;
      this.spare = undefined;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.nextDouble();
    const v = this.nextDouble();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Integer in [0, n). */
  nextInt(n: number): number {
    if (!(n >= 1) || !Number.isInteger(n)) throw new RangeError(`nextInt needs a positive integer bound, got ${n}`);
    return this.below(n);
  }

  /** nextInt(n) for an `n` already known to be a positive integer. */
  private below(n: number): number {
    return Math.floor(this.nextDouble() * n);
  }

  /** `size` draws from U(low, high); zeros without drawing inside `skipInit`. */
  uniformArray(size: number, low = 0, high = 1): Float32Array {
    checkSize(size, 'uniformArray');
    // torch.Tensor.uniform_: finite bounds, from <= to
    if (!(Number.isFinite(low) && Number.isFinite(high) && low <= high))
      throw new RangeError(`uniform: need finite low <= high, got low ${low}, high ${high}`);
    const out = new Float32Array(size);
    if (skipState.depth > 0) return out;
    for (let i = 0; i < size; i++) out[i] = low + (high - low) * this.nextDouble();
    return out;
  }

  /** `size` draws from N(mean, std^2); zeros without drawing inside `skipInit`. */
  normalArray(size: number, mean = 0, std = 1): Float32Array {
    checkSize(size, 'normalArray');
    // torch.Tensor.normal_: "normal expects std >= 0.0"
    if (!(Number.isFinite(mean) && Number.isFinite(std) && std >= 0))
      throw new RangeError(`normal: need a finite mean and a finite std >= 0, got mean ${mean}, std ${std}`);
    const out = new Float32Array(size);
    if (skipState.depth > 0) return out;
    for (let i = 0; i < size; i++) out[i] = mean + std * this.nextNormal();
    return out;
  }

  /** U(low, high) tensor. */
  uniform(shape: number[], low = 0, high = 1): tf.Tensor {
    return tf.tensor(this.uniformArray(sizeOf(shape, 'uniform'), low, high), shape, 'float32');
  }

  /** N(mean, std^2) tensor. */
  normal(shape: number[], mean = 0, std = 1): tf.Tensor {
    return tf.tensor(this.normalArray(sizeOf(shape, 'normal'), mean, std), shape, 'float32');
  }

  /** A random permutation of 0..n-1 (Fisher-Yates), as a plain array. */
  permutation(n: number): number[] {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`permutation needs a non-negative integer, got ${n}`);
    if (n > MAX_ARRAY_LENGTH)
      throw new RangeError(`permutation(${n}): a JS array holds at most 2^32 - 1 = ${MAX_ARRAY_LENGTH} items`);
    const p = new Array<number>(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.below(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }

  /** Bernoulli(p) 0/1 mask as float32 (used by dropout). */
  bernoulli(shape: number[], p: number): tf.Tensor {
    const size = sizeOf(shape, 'bernoulli');
    if (!(p >= 0 && p <= 1)) throw new RangeError(`bernoulli: p must be in [0, 1], got ${p}`);
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) out[i] = this.nextDouble() < p ? 1 : 0;
    return tf.tensor(out, shape, 'float32');
  }
}

/** The most items a JS array can hold. */
const MAX_ARRAY_LENGTH = 2 ** 32 - 1;

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** The element count of `shape`, naming a dimension that is not a non-negative integer. */
function sizeOf(shape: number[], op: string): number {
  if (!Array.isArray(shape)) throw new TypeError(`${op}: shape must be a list of sizes, got ${typeof shape}`);
  for (const [i, d] of shape.entries())
    if (!Number.isSafeInteger(d) || d < 0)
      throw new RangeError(`${op}: shape [${shape.join(', ')}]: dimension ${i} is not a non-negative integer`);
  const size = shape.reduce((a, b) => a * b, 1);
  checkSize(size, op);
  return size;
}

function checkSize(size: number, op: string): void {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`${op}: ${size} is not an element count`);
}

const GENERATOR_METHODS = ['manualSeed', 'getState', 'setState', 'nextUint32', 'nextDouble', 'normalArray'] as const;
/** This copy's Generator, or another copy's (the same class, compiled twice: every method works on `this`). */
const isGenerator = (x: unknown): x is Generator =>
  x instanceof Generator ||
  (typeof x === 'object' && x !== null && GENERATOR_METHODS.every((m) => typeof Reflect.get(x, m) === 'function'));

/**
 * The process-wide generator used when none is passed (like torch's default generator): one per
 * realm, so that `manualSeed` seeds the draws of every copy of this package an app loads.
 */
export const defaultGenerator: Generator = realmShared(
  '@fiber-vl/tensor-core/defaultGenerator@1',
  isGenerator,
  () => new Generator(0),
);

/** Seeds the default generator (torch.manual_seed). */
export function manualSeed(seed: number): Generator {
  return defaultGenerator.manualSeed(seed);
}

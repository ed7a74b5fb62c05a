// The run's world keeps what it generates. A World lays out scene i of a split (then writes its
// captions, questions and expressions) on every call, and the run's stages draw each of its 3000
// train scenes again and again. Scenes, samples and NLVR2 pairs depend only on (world seed, split,
// index), so keeping them changes no value of the run. With the world's own speed-ups of the same
// day, a seed took 926 s where it took 984 s, old and new processes side by side (2026-12-04, seed
// 1, the same values bit for bit). The image pre-training's pool (40k scenes, 200k in preset base,
// each drawn ~1.4 times) is a plain World: kept as well, it added ~100 MB of peak RSS for ~10 s.
// The coarse model's pixels of a scene (rendered, resized and normalised: ~0.7 ms a scene at 64 px)
// are kept too, up to a byte budget: the coarse stages and fine-tunes draw ~60k train images a seed
// from 3000 scenes.
import { fiberImageTransform } from '@fiber-vl/swin';
import { type Nlvr2Pair, type Scene, type Split, World, type WorldConfig, type WorldSample } from '@fiber-vl/trainer';

/**
 * Bytes of coarse pixels a MemoWorld keeps by default, per world (the run has one per seed
 * process). The small preset's 3400 scenes at 64 px take 159 MiB (48 KiB each); at the base
 * preset's 128 px (192 KiB each) it holds the first ~1360 scenes drawn, of its 5000.
 */
export const PIXEL_BUDGET = 256 * 2 ** 20;

/**
 * Freezes `value` and everything it holds (plain objects and arrays; the world's values are JSON
 * data). An object already frozen is taken as frozen all through and not walked again: a sample's
 * scene is the kept one.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * A World whose scenes, samples and NLVR2 pairs are generated once and then returned from memory,
 * frozen: a caller that edits one fails at once (a TypeError) instead of changing what later stages
 * see. Memory grows with the scenes drawn (~1 KB a scene, ~3 KB a sample, as JSON). `image()`
 * renders again on every call; `pixelBatch()` keeps the coarse model's pixels up to a byte budget.
 */
export class MemoWorld extends World {
  // (set after World's constructor returns, which calls none of the methods below)
  private readonly scenes = new Map<string, Scene>();
  private readonly samplesKept = new Map<string, WorldSample>();
  private readonly pairs = new Map<string, Nlvr2Pair>();
  private readonly pixelsKept = new Map<string, Float32Array>();
  private pixelBytes = 0;

  /** `pixelBudget`: the bytes of coarse pixels kept (PIXEL_BUDGET by default). */
  constructor(
    config: Partial<WorldConfig> = {},
    private readonly pixelBudget = PIXEL_BUDGET,
  ) {
    super(config);
  }

  override scene(split: Split, index: number): Scene {
    return kept(this.scenes, split, index, () => super.scene(split, index));
  }

  override sample(split: Split, index: number): WorldSample {
    return kept(this.samplesKept, split, index, () => super.sample(split, index));
  }

  override nlvr2(split: Split, index: number): Nlvr2Pair {
    return kept(this.pairs, split, index, () => super.nlvr2(split, index));
  }

  /**
   * The scenes' images through `fiberImageTransform` at `size`, one after another in a new array
   * ([indices.length, 3, size, size] flattened): the pixels of `fiberPixelValues`. Each scene's are
   * kept while the kept pixels stay within the budget (past it, made anew on each call); the kept
   * arrays never leave the world.
   */
  pixelBatch(split: Split, indices: readonly number[], size: number): Float32Array {
    // every scene's pixels first: fiberImageTransform checks `size` before the batch is allocated
    const parts = indices.map((i) => this.pixels(split, i, size));
    const per = 3 * size * size;
    let out: Float32Array;
    try {
      out = new Float32Array(indices.length * per);
    } catch (e) {
      throw new RangeError(
        `MemoWorld.pixelBatch: ${indices.length} images of ${size}x${size} need a float32 batch larger than this runtime allocates (${(e as Error).message}); pass fewer images`,
      );
    }
    parts.forEach((p, b) => out.set(p, b * per));
    return out;
  }

  private pixels(split: Split, index: number, size: number): Float32Array {
    const key = `${split}/${index}/${size}`;
    const got = this.pixelsKept.get(key);
    if (got) return got;
    const made = fiberImageTransform(this.image(split, index), size, `${split} scene ${index}`);
    if (this.pixelBytes + made.byteLength <= this.pixelBudget) {
      this.pixelsKept.set(key, made);
      this.pixelBytes += made.byteLength;
    }
    return made;
  }
}

/** The value kept for (split, index), made (and frozen) on the first call; a call that throws keeps nothing. */
function kept<T>(memo: Map<string, T>, split: Split, index: number, make: () => T): T {
  const key = `${split}/${index}`;
  let value = memo.get(key);
  if (value === undefined) {
    value = deepFreeze(make());
    memo.set(key, value);
  }
  return value;
}

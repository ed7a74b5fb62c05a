// Swin Transformer v1 (Liu et al. 2021) with the module tree of timm 0.4.12 / Microsoft's
// swin_transformer.py, so that checkpoints load by name: patch_embed.proj, layers.2.blocks.14.attn.qkv,
// layers.0.downsample.reduction, norm, head, ...
//
// Two variants share the blocks:
// - 'classification' (timm; FIBER's coarse model): fixed input size, shift masks precomputed as the
//   `attn_mask` buffers of shifted blocks, final `norm` (+ optional `head`).
// - 'detection' (Microsoft's Swin for detection; FIBER's fine-grained model): any input size, padding
//   to whole windows, masks computed per forward, one LayerNorm per output stage (`norm{i}`).
//
// Extension point for fusion: WindowAttention.crossAttend(o, context, numWindows) runs on every
// window's projected output before the windows are merged; it returns `o` unless a subclass (the
// fusion package's image->text attention) overrides it. `context` is passed through untouched from
// SwinTransformer.forward, so a model built without fusion has exactly the plain keys.
import {
  Buffer,
  Conv2d,
  Dropout,
  GELU,
  Identity,
  LayerNorm,
  Linear,
  Module,
  ModuleList,
  Parameter,
  defaultGenerator,
  init,
  scaledDotProductAttention,
  tf,
  windowAttention,
  type Generator,
} from '@fiber-vl/tensor-core';
import { blockWindow, stageResolutions, validateSwinConfig, type SwinConfig } from './config.js';

/** Relative position index of a w x w window: (dy + w - 1) * (2w - 1) + (dx + w - 1), [w*w, w*w]. */
export function relativePositionIndex(w: number): Int32Array {
  const n = w * w;
  const out = new Int32Array(n * n);
  for (let i = 0; i < n; i++) {
    const [yi, xi] = [Math.floor(i / w), i % w];
    for (let j = 0; j < n; j++) {
      const [yj, xj] = [Math.floor(j / w), j % w];
      out[i * n + j] = (yi - yj + w - 1) * (2 * w - 1) + (xi - xj + w - 1);
    }
  }
  return out;
}

/**
 * The shifted-window mask of Swin: regions labelled by the slices (0, -w), (-w, -s), (-s, None) on
 * both axes of an H x W map; tokens of a window in different regions get -100. [nW, w*w, w*w].
 */
export function shiftWindowMask(H: number, W: number, w: number, s: number): Float32Array {
  const label = (p: number, size: number) => (p < size - w ? 0 : p < size - s ? 1 : 2);
  const nWy = H / w;
  const nWx = W / w;
  const n = w * w;
  const out = new Float32Array(nWy * nWx * n * n);
  for (let wy = 0; wy < nWy; wy++) {
    for (let wx = 0; wx < nWx; wx++) {
      const base = (wy * nWx + wx) * n * n;
      const regions = Array.from({ length: n }, (_, t) => label(wy * w + Math.floor(t / w), H) * 3 + label(wx * w + (t % w), W));
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[base + i * n + j] = regions[i] === regions[j] ? 0 : -100;
    }
  }
  return out;
}

/** What a block hands to WindowAttention.crossAttend: the caller's context plus the window layout. */
export interface WindowContext {
  /** Whatever was passed to SwinTransformer.forward({ context }). */
  context: unknown;
  batch: number;
  numWindows: number;
}

/** timm PatchEmbed: Conv2d(k = s = patch) -> flatten row-major -> LayerNorm. */
export class PatchEmbed extends Module {
  proj: Conv2d;
  norm?: LayerNorm;
  constructor(
    readonly patchSize: number,
    inChannels: number,
    readonly embedDim: number,
    { norm = true, eps = 1e-5, rng = defaultGenerator }: { norm?: boolean; eps?: number; rng?: Generator } = {},
  ) {
    super();
    this.proj = new Conv2d(inChannels, embedDim, patchSize, { stride: patchSize, rng });
    if (norm) this.norm = new LayerNorm(embedDim, eps);
  }
  /** [B, 3, H, W] -> tokens [B, H/p * W/p, C] (H and W multiples of the patch), row-major. */
  forward(x: tf.Tensor): tf.Tensor {
    const [B, , H, W] = x.shape;
    const p = this.patchSize;
    return tf.tidy(() => {
      const y = this.proj.forward(x); // [B, C, H/p, W/p]
      const t = tf.reshape(tf.transpose(y, [0, 2, 3, 1]), [B, (H / p) * (W / p), this.embedDim]);
      return this.norm ? this.norm.forward(t) : t;
    });
  }
}

/** timm Mlp: fc1 -> GELU -> fc2. */
export class Mlp extends Module {
  fc1: Linear;
  act = new GELU();
  fc2: Linear;
  drop: Dropout;
  constructor(dim: number, hidden: number, { drop = 0, rng = defaultGenerator }: { drop?: number; rng?: Generator } = {}) {
    super();
    this.fc1 = new Linear(dim, hidden, { rng });
    this.fc2 = new Linear(hidden, dim, { rng });
    this.drop = new Dropout(drop, rng);
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.drop.forward(this.fc2.forward(this.drop.forward(this.act.forward(this.fc1.forward(x))))));
  }
}

/** Window multi-head self-attention with relative position bias (timm WindowAttention). */
export class WindowAttention extends Module {
  relativePositionBiasTable: Parameter;
  relativePositionIndex: Buffer;
  qkv: Linear;
  proj: Linear;
  readonly headDim: number;
  readonly scale: number;
  constructor(
    readonly dim: number,
    readonly windowSize: number,
    readonly numHeads: number,
    { qkvBias = true, rng = defaultGenerator }: { qkvBias?: boolean; rng?: Generator } = {},
  ) {
    super();
    this.headDim = dim / numHeads;
    this.scale = this.headDim ** -0.5;
    const w = windowSize;
    this.relativePositionBiasTable = new Parameter(init.truncNormal([(2 * w - 1) ** 2, numHeads], { std: 0.02 }, rng));
    this.relativePositionIndex = new Buffer(tf.tensor(relativePositionIndex(w), [w * w, w * w], 'int32'));
    this.qkv = new Linear(dim, 3 * dim, { bias: qkvBias, rng });
    this.proj = new Linear(dim, dim, { rng });
  }

  /** [heads, N, N] relative position bias gathered from the table. */
  relativePositionBias(): tf.Tensor {
    const n = this.windowSize ** 2;
    return tf.tidy(() =>
      tf.transpose(tf.reshape(tf.gather(this.relativePositionBiasTable.value, tf.reshape(this.relativePositionIndex.value, [-1])), [n, n, this.numHeads]), [2, 0, 1]),
    );
  }

  /**
   * Hook for fusion: runs on the projected output of every window, [B*nW, N, C] (windows
   * batch-major), before the windows are merged. The plain backbone returns `o`.
   */
  crossAttend(o: tf.Tensor, _context: WindowContext | undefined): tf.Tensor {
    return o;
  }

  /** x: [B*nW, N, C]; mask: [nW, N, N] additive or undefined. */
  forward(x: tf.Tensor, mask: tf.Tensor | undefined, context?: WindowContext): tf.Tensor {
    const [Bw, N, C] = x.shape;
    return tf.tidy(() => {
      // [B*nW, N, 3, heads, hd] -> 3 x [B*nW, heads, N, hd]
      const qkv = tf.transpose(tf.reshape(this.qkv.forward(x), [Bw, N, 3, this.numHeads, this.headDim]), [2, 0, 3, 1, 4]);
      const [q, k, v] = tf.unstack(qkv, 0);
      const bias = tf.expandDims(this.relativePositionBias(), 0);
      let m: tf.Tensor | undefined;
      if (mask) {
        const nW = mask.shape[0];
        m = tf.tile(tf.expandDims(mask, 1), [Bw / nW, 1, 1, 1]); // [B*nW, 1, N, N], window order batch-major
      }
      const o = scaledDotProductAttention(q, k, v, { bias, mask: m, scale: this.scale }); // [B*nW, heads, N, hd]
      const out = this.proj.forward(tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [Bw, N, C]));
      return this.crossAttend(out, context);
    });
  }
}

/** A Swin block: x + attn(norm1(x)) over (shifted) windows, then x + mlp(norm2(x)). */
export class SwinTransformerBlock extends Module {
  norm1: LayerNorm;
  attn: WindowAttention;
  dropPath: Identity;
  norm2: LayerNorm;
  mlp: Mlp;
  attnMask?: Buffer;
  constructor(
    readonly dim: number,
    readonly numHeads: number,
    readonly windowSize: number,
    readonly shiftSize: number,
    /** Fixed [H, W] of the classification variant (masks precomputed); undefined = computed per input. */
    readonly inputResolution: [number, number] | undefined,
    { mlpRatio = 4, qkvBias = true, eps = 1e-5, rng = defaultGenerator, attention }: { mlpRatio?: number; qkvBias?: boolean; eps?: number; rng?: Generator; attention?: WindowAttention } = {},
  ) {
    super();
    this.norm1 = new LayerNorm(dim, eps);
    this.attn = attention ?? new WindowAttention(dim, windowSize, numHeads, { qkvBias, rng });
    this.dropPath = new Identity(); // stochastic depth is inactive in evaluation
    this.norm2 = new LayerNorm(dim, eps);
    this.mlp = new Mlp(dim, Math.floor(dim * mlpRatio), { rng });
    if (shiftSize > 0 && inputResolution) {
      const [H, W] = inputResolution;
      const nW = (H / windowSize) * (W / windowSize);
      const n = windowSize * windowSize;
      this.attnMask = new Buffer(tf.tensor(shiftWindowMask(H, W, windowSize, shiftSize), [nW, n, n]));
    }
  }

  /** x [B, H*W, C] -> [B, H*W, C]. */
  forward(x: tf.Tensor, H: number, W: number, context?: unknown): tf.Tensor {
    const [B, L, C] = x.shape;
    if (L !== H * W) throw new RangeError(`SwinTransformerBlock: ${L} tokens for a ${H}x${W} map`);
    const w = this.windowSize;
    const s = this.shiftSize;
    return tf.tidy(() => {
      let h = tf.reshape(this.norm1.forward(x), [B, H, W, C]);
      // The detection variant pads the map to whole windows (bottom / right).
      const Hp = Math.ceil(H / w) * w;
      const Wp = Math.ceil(W / w) * w;
      if (Hp !== H || Wp !== W) h = tf.pad(h, [[0, 0], [0, Hp - H], [0, Wp - W], [0, 0]]);
      // qkv and proj are per token, so they run on the whole map; the shift, the window partition,
      // the bias, the shift mask and the merge are folded into one windowAttention op.
      const attn = this.attn;
      const o = windowAttention(attn.qkv.forward(h), attn.relativePositionBias(), { numHeads: attn.numHeads, windowSize: w, shift: s, scale: attn.scale });
      let merged = attn.proj.forward(o); // [B, Hp, Wp, C]
      if (context !== undefined) {
        // crossAttend is per token too: the map is handed over as one "window" per image.
        const tokens = attn.crossAttend(tf.reshape(merged, [B, Hp * Wp, C]), { context, batch: B, numWindows: 1 });
        merged = tf.reshape(tokens, [B, Hp, Wp, C]);
      }
      if (Hp !== H || Wp !== W) merged = tf.slice(merged, [0, 0, 0, 0], [B, H, W, C]);
      const y = tf.add(x, tf.reshape(merged, [B, L, C]));
      return tf.add(y, this.mlp.forward(this.norm2.forward(y)));
    });
  }
}

/** timm PatchMerging: 2x2 neighbours (x0 [0::2,0::2], x1 [1::2,0::2], x2 [0::2,1::2], x3 [1::2,1::2]) -> LN(4C) -> Linear(4C, 2C). */
export class PatchMerging extends Module {
  reduction: Linear;
  norm: LayerNorm;
  constructor(
    readonly dim: number,
    { eps = 1e-5, rng = defaultGenerator }: { eps?: number; rng?: Generator } = {},
  ) {
    super();
    this.reduction = new Linear(4 * dim, 2 * dim, { bias: false, rng });
    this.norm = new LayerNorm(4 * dim, eps);
  }
  /** [B, H*W, C] -> [B, ceil(H/2)*ceil(W/2), 2C] (odd sizes are zero-padded, as the detection Swin does). */
  forward(x: tf.Tensor, H: number, W: number): tf.Tensor {
    const [B, , C] = x.shape;
    return tf.tidy(() => {
      let h = tf.reshape(x, [B, H, W, C]);
      if (H % 2 || W % 2) h = tf.pad(h, [[0, 0], [0, H % 2], [0, W % 2], [0, 0]]);
      const [Hp, Wp] = [H + (H % 2), W + (W % 2)];
      // [B, Hp/2, 2 (row parity), Wp/2, 2 (col parity), C]
      const g = tf.reshape(h, [B, Hp / 2, 2, Wp / 2, 2, C]);
      // order x0 (r0,c0), x1 (r1,c0), x2 (r0,c1), x3 (r1,c1): column parity outer, row parity inner
      const cat = tf.reshape(tf.transpose(g, [0, 1, 3, 4, 2, 5]), [B, (Hp / 2) * (Wp / 2), 4 * C]);
      return this.reduction.forward(this.norm.forward(cat));
    });
  }
}

/** One stage: blocks, then an optional PatchMerging. */
export class BasicLayer extends Module {
  blocks: ModuleList<SwinTransformerBlock>;
  downsample?: PatchMerging;
  constructor(blocks: SwinTransformerBlock[], downsample?: PatchMerging) {
    super();
    this.blocks = new ModuleList(blocks);
    if (downsample) this.downsample = downsample;
  }
}

export interface SwinOptions {
  variant?: 'classification' | 'detection';
  /** detection variant: stages whose output gets a LayerNorm `norm{i}` and is returned (default all). */
  outIndices?: number[];
  rng?: Generator;
  /** Builds the attention of block `block` of stage `stage` (fusion replaces some with fused ones). */
  attentionFactory?: (stage: number, block: number, dim: number, windowSize: number, numHeads: number) => WindowAttention | undefined;
}

export interface SwinOutput {
  /** Output of each stage after its PatchMerging (classification variant: the input of the next stage). */
  stages: tf.Tensor[];
  /** classification: final LayerNorm of the last stage, [B, N, C]; detection: undefined. */
  lastHiddenState?: tf.Tensor;
  /** detection: normed outputs of outIndices stages as [B, C, H, W] maps. */
  features?: tf.Tensor[];
  /** Every block output [stage][block], when `collect` is set. */
  blocks?: tf.Tensor[][];
  patchEmbed?: tf.Tensor;
  /** Token grid of the last stage. */
  grid: [number, number];
  /** classification head logits when numClasses > 0. */
  logits?: tf.Tensor;
}

/** The Swin Transformer backbone (and classifier). */
export class SwinTransformer extends Module {
  patchEmbed: PatchEmbed;
  posDrop: Dropout;
  layers: ModuleList<BasicLayer>;
  norm?: LayerNorm;
  head?: Linear;
  readonly variant: 'classification' | 'detection';
  readonly outIndices: number[];
  readonly numFeatures: number;

  constructor(
    readonly config: SwinConfig,
    { variant = 'classification', outIndices, rng = defaultGenerator, attentionFactory }: SwinOptions = {},
  ) {
    super();
    validateSwinConfig(config);
    this.variant = variant;
    const eps = config.layerNormEps;
    this.patchEmbed = new PatchEmbed(config.patchSize, config.inChannels, config.embedDim, { eps, rng });
    this.posDrop = new Dropout(0, rng);
    const res = stageResolutions(config);
    const stages = config.depths.map((depth, i) => {
      const dim = config.embedDim * 2 ** i;
      const blocks = Array.from({ length: depth }, (_, j) => {
        const { windowSize, shiftSize } =
          variant === 'classification' ? blockWindow(config, i, j) : { windowSize: config.windowSize, shiftSize: j % 2 ? Math.floor(config.windowSize / 2) : 0 };
        const attention = attentionFactory?.(i, j, dim, windowSize, config.numHeads[i]);
        return new SwinTransformerBlock(dim, config.numHeads[i], windowSize, shiftSize, variant === 'classification' ? [res[i], res[i]] : undefined, {
          mlpRatio: config.mlpRatio,
          qkvBias: config.qkvBias,
          eps,
          rng,
          attention,
        });
      });
      return new BasicLayer(blocks, i < config.depths.length - 1 ? new PatchMerging(dim, { eps, rng }) : undefined);
    });
    this.layers = new ModuleList(stages);
    this.numFeatures = config.embedDim * 2 ** (config.depths.length - 1);
    this.outIndices = outIndices ?? config.depths.map((_, i) => i);
    if (variant === 'classification') {
      this.norm = new LayerNorm(this.numFeatures, eps);
      if (config.numClasses > 0) this.head = new Linear(this.numFeatures, config.numClasses, { rng });
    } else {
      for (const i of this.outIndices) (this as unknown as Record<string, Module>)[`norm${i}`] = new LayerNorm(config.embedDim * 2 ** i, eps);
    }
  }

  /**
   * pixels [B, 3, H, W] (normalised). `collect` keeps every block output (for parity checks and
   * feature extraction); `context` is handed to every WindowAttention (fusion).
   */
  forward(pixels: tf.Tensor, { collect = false, context }: { collect?: boolean; context?: unknown } = {}): SwinOutput {
    if (pixels.rank !== 4 || pixels.shape[1] !== this.config.inChannels) {
      throw new RangeError(`SwinTransformer: expected pixels [B, ${this.config.inChannels}, H, W], got [${pixels.shape.join(', ')}]`);
    }
    const [, , Hin, Win] = pixels.shape;
    if (this.variant === 'classification' && (Hin !== this.config.imageSize || Win !== this.config.imageSize)) {
      throw new RangeError(`SwinTransformer (classification variant): built for ${this.config.imageSize}x${this.config.imageSize} images, got ${Hin}x${Win}`);
    }
    const p = this.config.patchSize;
    return tf.tidy(() => {
      const input =
        this.variant === 'detection' && (Hin % p || Win % p) ? tf.pad(pixels, [[0, 0], [0, 0], [0, (p - (Hin % p)) % p], [0, (p - (Win % p)) % p]]) : pixels;
      let [H, W] = [Math.ceil(Hin / p), Math.ceil(Win / p)];
      const patchEmbed = this.patchEmbed.forward(input);
      let x = this.posDrop.forward(patchEmbed);
      const out: SwinOutput = { stages: [], grid: [H, W], ...(collect ? { patchEmbed, blocks: [] } : {}) };
      const features: tf.Tensor[] = [];
      [...this.layers].forEach((layer, i) => {
        const outs: tf.Tensor[] = [];
        for (const block of layer.blocks) {
          x = block.forward(x, H, W, context);
          if (collect) outs.push(x);
        }
        out.blocks?.push(outs);
        if (this.variant === 'detection' && this.outIndices.includes(i)) {
          const norm = (this as unknown as Record<string, LayerNorm>)[`norm${i}`];
          features.push(tf.transpose(tf.reshape(norm.forward(x), [x.shape[0], H, W, x.shape[2] as number]), [0, 3, 1, 2]));
        }
        if (layer.downsample) {
          x = layer.downsample.forward(x, H, W);
          [H, W] = [Math.ceil(H / 2), Math.ceil(W / 2)];
        }
        out.stages.push(x);
      });
      out.grid = [H, W];
      if (this.variant === 'classification') {
        out.lastHiddenState = this.norm!.forward(x);
        if (this.head) out.logits = this.head.forward(tf.mean(out.lastHiddenState, 1));
      } else {
        out.features = features;
      }
      return out as unknown as tf.TensorContainer;
    }) as unknown as SwinOutput;
  }
}

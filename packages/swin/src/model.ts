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
// Steps (timm's forward_features, opened up): `embed` checks the input and runs the patch embedding,
// `steps` lists every block and stage end in order, `step` runs one of them on a `SwinState`,
// `stageOutput` / `finalNorm` give the features. `forward` is the one loop over those steps; a model
// that fuses Swin with another backbone (fusion, the fine-grained detector) drives the same steps
// instead of copying the loop.
//
// Extension point for fusion: WindowAttention.crossAttend(o, window) runs on every window's
// projected output before the windows are merged; it returns `o` unless a subclass (the fusion
// package's image->text attention) overrides it. The model is generic in the context type `Ctx`
// that a step hands to its block's attention, so a model built without fusion has exactly the
// plain keys and a fused model's hook receives its own typed context.
import {
  Buffer,
  Conv2d,
  DropPath,
  Dropout,
  GELU,
  LayerNorm,
  Linear,
  Module,
  ModuleList,
  Parameter,
  defaultGenerator,
  init,
  scaledDotProductAttention,
  tf,
  tidyOutput,
  windowAttention,
  type Generator,
} from '@fiber-vl/tensor-core';
import { blockWindow, dropPathRates, stageResolutions, validateSwinConfig, type SwinConfig } from './config.js';

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
      const regions = Array.from(
        { length: n },
        (_, t) => label(wy * w + Math.floor(t / w), H) * 3 + label(wx * w + (t % w), W),
      );
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) out[base + i * n + j] = regions[i] === regions[j] ? 0 : -100;
    }
  }
  return out;
}

/** What a block hands to WindowAttention.crossAttend: the step's context plus the window layout. */
export interface WindowContext<Ctx> {
  /** The context given to SwinTransformer.step / forward (fusion: the text states). */
  context: Ctx;
  batch: number;
  /** Windows per image; windows are batch-major in [B*nW, N, C]. */
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
  constructor(
    dim: number,
    hidden: number,
    { drop = 0, rng = defaultGenerator }: { drop?: number; rng?: Generator } = {},
  ) {
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
export class WindowAttention<Ctx = never> extends Module {
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
      tf.transpose(
        tf.reshape(
          tf.gather(this.relativePositionBiasTable.value, tf.reshape(this.relativePositionIndex.value, [-1])),
          [n, n, this.numHeads],
        ),
        [2, 0, 1],
      ),
    );
  }

  /**
   * Hook for fusion: runs on the projected output of every window, [B*nW, N, C] (windows
   * batch-major), before the windows are merged. The plain backbone returns `o`.
   */
  crossAttend(o: tf.Tensor, _window: WindowContext<Ctx> | undefined): tf.Tensor {
    return o;
  }

  /** x: [B*nW, N, C]; mask: [nW, N, N] additive or undefined. */
  forward(x: tf.Tensor, mask: tf.Tensor | undefined, window?: WindowContext<Ctx>): tf.Tensor {
    const [Bw, N, C] = x.shape;
    return tf.tidy(() => {
      // [B*nW, N, 3, heads, hd] -> 3 x [B*nW, heads, N, hd]
      const qkv = tf.transpose(
        tf.reshape(this.qkv.forward(x), [Bw, N, 3, this.numHeads, this.headDim]),
        [2, 0, 3, 1, 4],
      );
      const [q, k, v] = tf.unstack(qkv, 0);
      const bias = tf.expandDims(this.relativePositionBias(), 0);
      let m: tf.Tensor | undefined;
      if (mask) {
        const nW = mask.shape[0];
        m = tf.tile(tf.expandDims(mask, 1), [Bw / nW, 1, 1, 1]); // [B*nW, 1, N, N], window order batch-major
      }
      const o = scaledDotProductAttention(q, k, v, { bias, mask: m, scale: this.scale }); // [B*nW, heads, N, hd]
      const out = this.proj.forward(tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [Bw, N, C]));
      return this.crossAttend(out, window);
    });
  }
}

export interface SwinBlockOptions<Ctx> {
  mlpRatio?: number;
  qkvBias?: boolean;
  eps?: number;
  /** Stochastic depth of this block (active in training mode only). */
  dropPath?: number;
  rng?: Generator;
  /** The block's attention (fusion passes a fused one); default a plain WindowAttention. */
  attention?: WindowAttention<Ctx>;
}

/** A Swin block: x + attn(norm1(x)) over (shifted) windows, then x + mlp(norm2(x)). */
export class SwinTransformerBlock<Ctx = never> extends Module {
  norm1: LayerNorm;
  attn: WindowAttention<Ctx>;
  dropPath: DropPath;
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
    {
      mlpRatio = 4,
      qkvBias = true,
      eps = 1e-5,
      dropPath = 0,
      rng = defaultGenerator,
      attention,
    }: SwinBlockOptions<Ctx> = {},
  ) {
    super();
    this.norm1 = new LayerNorm(dim, eps);
    this.attn = attention ?? new WindowAttention<Ctx>(dim, windowSize, numHeads, { qkvBias, rng });
    this.dropPath = new DropPath(dropPath, rng);
    this.norm2 = new LayerNorm(dim, eps);
    this.mlp = new Mlp(dim, Math.floor(dim * mlpRatio), { rng });
    if (shiftSize > 0 && inputResolution) {
      const [H, W] = inputResolution;
      const nW = (H / windowSize) * (W / windowSize);
      const n = windowSize * windowSize;
      this.attnMask = new Buffer(tf.tensor(shiftWindowMask(H, W, windowSize, shiftSize), [nW, n, n]));
    }
  }

  /** x [B, H*W, C] -> [B, H*W, C]; `context` reaches the attention's crossAttend hook. */
  forward(x: tf.Tensor, H: number, W: number, context?: Ctx): tf.Tensor {
    const [B, L, C] = x.shape;
    if (L !== H * W) throw new RangeError(`SwinTransformerBlock: ${L} tokens for a ${H}x${W} map`);
    const w = this.windowSize;
    const s = this.shiftSize;
    return tf.tidy(() => {
      let h = tf.reshape(this.norm1.forward(x), [B, H, W, C]);
      // The detection variant pads the map to whole windows (bottom / right).
      const Hp = Math.ceil(H / w) * w;
      const Wp = Math.ceil(W / w) * w;
      if (Hp !== H || Wp !== W)
        h = tf.pad(h, [
          [0, 0],
          [0, Hp - H],
          [0, Wp - W],
          [0, 0],
        ]);
      // qkv and proj are per token, so they run on the whole map; the shift, the window partition,
      // the bias, the shift mask and the merge are folded into one windowAttention op.
      const attn = this.attn;
      const o = windowAttention(attn.qkv.forward(h), attn.relativePositionBias(), {
        numHeads: attn.numHeads,
        windowSize: w,
        shift: s,
        scale: attn.scale,
      });
      let merged = attn.proj.forward(o); // [B, Hp, Wp, C]
      if (context !== undefined) {
        // crossAttend is per token too: the map is handed over as one "window" per image.
        const tokens = attn.crossAttend(tf.reshape(merged, [B, Hp * Wp, C]), { context, batch: B, numWindows: 1 });
        merged = tf.reshape(tokens, [B, Hp, Wp, C]);
      }
      if (Hp !== H || Wp !== W) merged = tf.slice(merged, [0, 0, 0, 0], [B, H, W, C]);
      const y = tf.add(x, this.dropPath.forward(tf.reshape(merged, [B, L, C])));
      return tf.add(y, this.dropPath.forward(this.mlp.forward(this.norm2.forward(y))));
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
      if (H % 2 || W % 2)
        h = tf.pad(h, [
          [0, 0],
          [0, H % 2],
          [0, W % 2],
          [0, 0],
        ]);
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
export class BasicLayer<Ctx = never> extends Module {
  blocks: ModuleList<SwinTransformerBlock<Ctx>>;
  downsample?: PatchMerging;
  constructor(blocks: SwinTransformerBlock<Ctx>[], downsample?: PatchMerging) {
    super();
    this.blocks = new ModuleList(blocks);
    if (downsample) this.downsample = downsample;
  }
}

export interface SwinOptions<Ctx = never> {
  variant?: 'classification' | 'detection';
  /** detection variant: stages whose output gets a LayerNorm `norm{i}` and is returned (default all). */
  outIndices?: number[];
  rng?: Generator;
  /**
   * The official `frozen_stages` (GLIP / FIBER: `MODEL.BACKBONE.FREEZE_CONV_BODY_AT`, 2 in their
   * pre-training): >= 0 freezes the patch embedding, >= 2 also stages 0 .. frozenStages - 2 (see
   * Module.freeze: no gradients, eval mode while training). -1 (default): nothing frozen.
   */
  frozenStages?: number;
  /**
   * Builds the attention of block `block` of stage `stage` (fusion replaces some with fused ones).
   * What it returns belongs to the model; if the constructor fails (the factory throws, say), the
   * attentions built so far are disposed with the rest.
   */
  attentionFactory?: (
    stage: number,
    block: number,
    dim: number,
    windowSize: number,
    numHeads: number,
  ) => WindowAttention<Ctx> | undefined;
}

/** The running state between steps: tokens [B, H*W, C] on an H x W grid. */
export interface SwinState {
  hidden: tf.Tensor;
  grid: [number, number];
}

/** One step of the forward pass: a block, or the end of a stage (its PatchMerging, if any). */
export type SwinStep = { kind: 'block'; stage: number; block: number } | { kind: 'stageEnd'; stage: number };

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
export class SwinTransformer<Ctx = never> extends Module {
  patchEmbed: PatchEmbed;
  posDrop: Dropout;
  layers: ModuleList<BasicLayer<Ctx>>;
  norm?: LayerNorm;
  head?: Linear;
  readonly variant: 'classification' | 'detection';
  readonly outIndices: number[];
  readonly numFeatures: number;
  /** Every block and stage end, in execution order. */
  readonly steps: readonly SwinStep[];
  private readonly outNorms = new Map<number, LayerNorm>();

  constructor(
    readonly config: SwinConfig,
    {
      variant = 'classification',
      outIndices,
      rng = defaultGenerator,
      attentionFactory,
      frozenStages = -1,
    }: SwinOptions<Ctx> = {},
  ) {
    super();
    if (variant !== 'classification' && variant !== 'detection')
      throw new RangeError(`SwinTransformer: variant must be "classification" or "detection", got ${String(variant)}`);
    validateSwinConfig(config, variant);
    const stagesCount = config.depths.length;
    if (outIndices !== undefined) {
      if (variant !== 'detection')
        throw new RangeError('SwinTransformer: outIndices applies to the detection variant only');
      if (
        !Array.isArray(outIndices) ||
        !outIndices.length ||
        new Set(outIndices).size !== outIndices.length ||
        !outIndices.every((i) => Number.isInteger(i) && i >= 0 && i < stagesCount)
      )
        throw new RangeError(
          `SwinTransformer: outIndices must list distinct stages in [0, ${stagesCount - 1}], got ${JSON.stringify(outIndices)}`,
        );
    }
    if (!Number.isInteger(frozenStages) || frozenStages < -1 || frozenStages > config.depths.length + 1)
      throw new RangeError(
        `SwinTransformer: frozenStages must be an integer in [-1, ${config.depths.length + 1}], got ${frozenStages}`,
      );
    this.variant = variant;
    const eps = config.layerNormEps;
    // Blocks built before an attentionFactory throws are not registered yet: dispose them too.
    const built: Module[] = [];
    try {
      this.patchEmbed = new PatchEmbed(config.patchSize, config.inChannels, config.embedDim, { eps, rng });
      this.posDrop = new Dropout(0, rng);
      const res = stageResolutions(config);
      const rates = dropPathRates(config);
      let blockIndex = 0;
      const steps: SwinStep[] = [];
      const stages = config.depths.map((depth, i) => {
        const dim = config.embedDim * 2 ** i;
        const blocks = Array.from({ length: depth }, (_, j) => {
          const { windowSize, shiftSize } =
            variant === 'classification'
              ? blockWindow(config, i, j)
              : { windowSize: config.windowSize, shiftSize: j % 2 ? Math.floor(config.windowSize / 2) : 0 };
          const attention = attentionFactory?.(i, j, dim, windowSize, config.numHeads[i]);
          steps.push({ kind: 'block', stage: i, block: j });
          if (attention) built.push(attention);
          const block = new SwinTransformerBlock<Ctx>(
            dim,
            config.numHeads[i],
            windowSize,
            shiftSize,
            variant === 'classification' ? [res[i], res[i]] : undefined,
            {
              mlpRatio: config.mlpRatio,
              qkvBias: config.qkvBias,
              eps,
              dropPath: rates[blockIndex++],
              rng,
              attention,
            },
          );
          built.push(block);
          return block;
        });
        steps.push({ kind: 'stageEnd', stage: i });
        const merging = i < config.depths.length - 1 ? new PatchMerging(dim, { eps, rng }) : undefined;
        if (merging) built.push(merging);
        return new BasicLayer<Ctx>(blocks, merging);
      });
      this.layers = new ModuleList(stages);
      this.steps = steps;
      this.numFeatures = config.embedDim * 2 ** (config.depths.length - 1);
      this.outIndices = outIndices ?? config.depths.map((_, i) => i);
      if (variant === 'classification') {
        this.norm = new LayerNorm(this.numFeatures, eps);
        if (config.numClasses > 0) this.head = new Linear(this.numFeatures, config.numClasses, { rng });
      } else {
        for (const i of this.outIndices)
          this.outNorms.set(i, this.register(`norm${i}`, new LayerNorm(config.embedDim * 2 ** i, eps)));
      }
      // the official _freeze_stages (absolute position embeddings, frozen at >= 1, are not used here)
      if (frozenStages >= 0) this.patchEmbed.freeze();
      if (frozenStages >= 2) {
        this.posDrop.freeze();
        for (let i = 0; i < frozenStages - 1; i++) this.layers.at(i).freeze();
      }
    } catch (e) {
      for (const m of built) m.dispose();
      this.dispose();
      throw e;
    }
  }

  /**
   * First step: checks `pixels` ([B, C, H, W], normalised; the classification variant needs its
   * configured size) and embeds the patches. The detection variant pads H, W to the patch size.
   */
  embed(pixels: tf.Tensor): SwinState {
    const { inChannels, imageSize, patchSize: p } = this.config;
    if (pixels.rank !== 4 || pixels.shape[1] !== inChannels || pixels.shape[0] < 1) {
      throw new RangeError(
        `SwinTransformer: pixels must be [B, ${inChannels}, H, W] with B >= 1, got [${pixels.shape.join(', ')}]`,
      );
    }
    if (pixels.dtype !== 'float32')
      throw new TypeError(`SwinTransformer: pixels must be float32 (normalised), got ${pixels.dtype}`);
    const [, , Hin, Win] = pixels.shape;
    if (this.variant === 'classification' && (Hin !== imageSize || Win !== imageSize)) {
      throw new RangeError(
        `SwinTransformer (classification variant): pixels are ${Hin}x${Win}, but the model is built for ${imageSize}x${imageSize} images`,
      );
    }
    if (Hin < 1 || Win < 1) throw new RangeError(`SwinTransformer: pixels have an empty ${Hin}x${Win} image`);
    return tidyOutput(() => {
      const padded = Hin % p || Win % p;
      const input = padded
        ? tf.pad(pixels, [
            [0, 0],
            [0, 0],
            [0, (p - (Hin % p)) % p],
            [0, (p - (Win % p)) % p],
          ])
        : pixels;
      return {
        hidden: this.posDrop.forward(this.patchEmbed.forward(input)),
        grid: [Math.ceil(Hin / p), Math.ceil(Win / p)],
      };
    });
  }

  /** Runs one step; `context` reaches the block's attention (fusion). The input state is not disposed. */
  step(s: SwinStep, state: SwinState, context?: Ctx): SwinState {
    const [H, W] = state.grid;
    const layer = this.layers.at(s.stage);
    if (s.kind === 'block')
      return { hidden: layer.blocks.at(s.block).forward(state.hidden, H, W, context), grid: state.grid };
    if (!layer.downsample) return state;
    return { hidden: layer.downsample.forward(state.hidden, H, W), grid: [Math.ceil(H / 2), Math.ceil(W / 2)] };
  }

  /** A stage's output feature (call at its 'stageEnd' step, before `step`): detection: norm{i} as [B, C, H, W]. */
  stageOutput(stage: number, state: SwinState): tf.Tensor {
    const norm = this.outNorms.get(stage);
    if (!norm)
      throw new RangeError(
        `SwinTransformer: stage ${stage} has no output norm (variant ${this.variant}, outIndices ${this.outIndices.join(',')})`,
      );
    const [H, W] = state.grid;
    const [B, , C] = state.hidden.shape;
    return tf.tidy(() => tf.transpose(tf.reshape(norm.forward(state.hidden), [B, H, W, C]), [0, 3, 1, 2]));
  }

  /** classification variant: the final LayerNorm over the last stage's tokens. */
  finalNorm(state: SwinState): tf.Tensor {
    if (!this.norm) throw new Error('SwinTransformer: the detection variant has no final norm (use stageOutput)');
    return this.norm.forward(state.hidden);
  }

  /**
   * pixels [B, 3, H, W] (normalised). `collect` keeps every block output (for parity checks and
   * feature extraction); `context` is handed to every block's attention (fusion).
   */
  forward(pixels: tf.Tensor, { collect = false, context }: { collect?: boolean; context?: Ctx } = {}): SwinOutput {
    return tidyOutput(() => {
      let state = this.embed(pixels);
      const blocks: tf.Tensor[][] | undefined = collect ? this.config.depths.map(() => []) : undefined;
      const out: SwinOutput = { stages: [], grid: state.grid, ...(blocks ? { patchEmbed: state.hidden, blocks } : {}) };
      const features: tf.Tensor[] = [];
      for (const s of this.steps) {
        if (s.kind === 'stageEnd') {
          if (this.variant === 'detection' && this.outNorms.has(s.stage))
            features.push(this.stageOutput(s.stage, state));
          state = this.step(s, state);
          out.stages.push(state.hidden);
          continue;
        }
        state = this.step(s, state, context);
        blocks?.[s.stage].push(state.hidden);
      }
      out.grid = state.grid;
      if (this.variant === 'classification') {
        out.lastHiddenState = this.finalNorm(state);
        if (this.head) out.logits = this.head.forward(tf.mean(out.lastHiddenState, 1));
      } else {
        out.features = features;
      }
      return out;
    });
  }
}

// The VLDyHead of the fine-grained FIBER model (maskrcnn_benchmark `modeling/rpn/vldyhead.py` with
// FIBER's config: no early fusion in the head, dot-product token loss; fiber-spec §3.3). The module
// tree mirrors the official one, so the keys under `rpn.head` match the checkpoints by construction.
import {
  AdaptiveAvgPool2d,
  Conv2d,
  DeformConv2d,
  GroupNorm,
  Hardsigmoid,
  Identity,
  Linear,
  Module,
  ModuleList,
  Parameter,
  ReLU,
  Sequential,
  dcnMemoryView,
  defaultGenerator,
  interpolateBilinear,
  l2Normalize,
  linear,
  matmul,
  tf,
  type Generator,
} from '@fiber-vl/tensor-core';
import { FIBER_DYHEAD, validateDyHeadConfig, type DyHeadConfig } from './config.js';
import { initConvNormal } from './init.js';

const shapeOf = (t: tf.Tensor) => `[${t.shape.join(', ')}]`;
/** Official CLAMP_DOT_PRODUCT bound of the token logits. */
const DOT_PRODUCT_CLAMP = 50000;

/** maskrcnn_benchmark `Scale`: one learnable scalar multiplier (init 1). */
export class Scale extends Module {
  scale: Parameter;
  constructor(initValue = 1) {
    super();
    this.scale = new Parameter(tf.tensor1d([initValue]));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.mul(x, this.scale.value);
  }
}

/** Conv3x3Norm(deformable=True, bn_type=['gn', G]): modulated deformable 3x3 conv + GroupNorm. */
export class Conv3x3Norm extends Module {
  conv: DeformConv2d;
  bn: GroupNorm;
  constructor(
    channels: number,
    readonly stride: number,
    groups: number,
    eps: number,
    rng: Generator,
  ) {
    super();
    // ModulatedDeformConv.reset_parameters: weight U(±1/sqrt(C*9)), bias 0.
    this.conv = new DeformConv2d(channels, channels, 3, { stride, padding: 1, zeroBias: true, rng });
    this.bn = new GroupNorm(groups, channels, eps);
  }
  /**
   * x [B, C, H, W]; offset [B, 18, h, w] and mask [B, 9, h, w] of the level the DyConv is computing.
   * When this conv's output is not [h, w] (DyConv[0] on the coarser level), the official CUDA op
   * reads the offset/mask memory as if it were laid out for its output: `dcnMemoryView`.
   */
  forward(x: tf.Tensor, offset: tf.Tensor, mask: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const out = (size: number) => Math.floor((size - 1) / this.stride) + 1; // 3x3, padding 1
      const [, , h, w]: number[] = x.shape;
      const size: [number, number] = [out(h), out(w)];
      return this.bn.forward(this.conv.forward(x, dcnMemoryView(offset, size), dcnMemoryView(mask, size)));
    });
  }
}

/** DYReLU(C, C) with K2 and bias: coefficients from the pooled input, out = max(x a1 + b1, x a2 + b2). */
export class DyReLU extends Module {
  avgPool = new AdaptiveAvgPool2d(1);
  fc: Sequential;
  constructor(
    readonly channels: number,
    hidden: number,
    rng: Generator,
  ) {
    super();
    this.fc = new Sequential(
      new Linear(channels, hidden, { rng }),
      new ReLU(),
      new Linear(hidden, 4 * channels, { rng }),
      new Hardsigmoid(),
    );
  }
  /** x [B, C, H, W] -> same shape. */
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [b, c] = x.shape;
      const y = tf.reshape(this.fc.forward(tf.reshape(this.avgPool.forward(x), [b, c])), [b, 4 * c, 1, 1]);
      const [a1, b1, a2, b2] = tf.split(y, 4, 1);
      // lambda_a = 2, init_a = [1, 0], init_b = [0, 0]
      const slope1 = tf.add(tf.mul(tf.sub(a1, 0.5), 2), 1);
      const slope2 = tf.mul(tf.sub(a2, 0.5), 2);
      return tf.maximum(tf.add(tf.mul(x, slope1), tf.sub(b1, 0.5)), tf.add(tf.mul(x, slope2), tf.sub(b2, 0.5)));
    });
  }
}

/**
 * One DyConv block of the tower. For each level l (feature F_l [B, C, H_l, W_l]):
 * offsets/mask from `offset(F_l)`; DyConv[1](F_l), DyConv[2](F_{l-1}) at stride 2 (l > 0) and
 * DyConv[0](F_{l+1}) resized to F_l with align_corners bilinear (l < last), all with F_l's offsets;
 * scale-aware attention mean_k(t_k * h_sigmoid(AttnConv(t_k))); then DyReLU per level.
 */
export class DyConv extends Module {
  DyConv: ModuleList<Conv3x3Norm>;
  AttnConv: Sequential;
  hSigmoid = new Hardsigmoid();
  relu: DyReLU;
  offset: Conv2d;
  constructor(config: DyHeadConfig, rng: Generator) {
    super();
    const { channels: c, groupNormGroups: g, groupNormEps: eps } = config;
    this.DyConv = new ModuleList([1, 1, 2].map((stride) => new Conv3x3Norm(c, stride, g, eps, rng)));
    const attn = new Conv2d(c, 1, 1, { rng });
    initConvNormal(attn, 0.01, 0, rng);
    this.AttnConv = new Sequential(new AdaptiveAvgPool2d(1), attn, new ReLU());
    this.relu = new DyReLU(c, config.dyReluHidden, rng);
    this.offset = new Conv2d(c, 27, 3, { padding: 1, rng });
  }

  /** Levels [B, C, H_l, W_l] (finest first) -> the same shapes. */
  forward(features: readonly tf.Tensor[]): tf.Tensor[] {
    return tf.tidy(() => {
      const fused = features.map((feature, level) => {
        const [h, w] = feature.shape.slice(2);
        const offsetMask = this.offset.forward(feature); // [B, 27, H, W]
        const offset = tf.slice(offsetMask, [0, 0, 0, 0], [-1, 18, -1, -1]);
        const mask = tf.sigmoid(tf.slice(offsetMask, [0, 18, 0, 0], [-1, 9, -1, -1]));
        const branches = [this.DyConv.at(1).forward(feature, offset, mask)];
        if (level > 0) branches.push(this.DyConv.at(2).forward(features[level - 1], offset, mask));
        if (level < features.length - 1) {
          const coarse = this.DyConv.at(0).forward(features[level + 1], offset, mask);
          branches.push(interpolateBilinear(coarse, [h, w], { alignCorners: true }));
        }
        const weighted = branches.map((t) => tf.mul(t, this.hSigmoid.forward(this.AttnConv.forward(t))));
        return tf.div(tf.addN(weighted), branches.length);
      });
      return fused.map((x) => this.relu.forward(x));
    });
  }
}

/** Head outputs of one FPN level (a type, not an interface, so that tf.tidy can return it). */
export type DyHeadLevelOutput = {
  /** Output of each DyConv block, first to last, [B, C, H, W]; only the last one unless `allTowers`. */
  towers: tf.Tensor[];
  /** [B, numClasses - 1, H, W]: computed, unused by FIBER (its loss weight is 0). */
  clsLogits: tf.Tensor;
  /** [B, 4, H, W]: `scales[l] * bbox_pred(tower)`, BoxCoder deltas (10, 10, 5, 5 weights). */
  bboxReg: tf.Tensor;
  /** [B, 1, H, W] centerness logits. */
  centerness: tf.Tensor;
  /** [B, H*W, T] region-token alignment logits (queries in h, w order), clamped to ±50000. */
  dotProductLogits: tf.Tensor;
};

export type DyHeadOutput = {
  /** P3..P7, finest first. */
  levels: DyHeadLevelOutput[];
};

/**
 * VLDyHead: the DyConv tower, `cls_logits`, `bbox_pred` x `scales[l]`, `centerness` and the
 * dot-product token head: e = normalize(embedded), tokens = dot_product_projection_text(e / 2),
 * bias = e . bias_lang + bias0, logits = (tower [B, H*W, C]) . tokens^T / exp(log_scale) + bias.
 */
export class VLDyHead extends Module {
  dyheadTower: ModuleList<DyConv>;
  clsLogits: Conv2d;
  bboxPred: Conv2d;
  centerness: Conv2d;
  logScale: Parameter;
  dotProductProjectionImage = new Identity();
  dotProductProjectionText: Linear;
  biasLang: Parameter;
  bias0: Parameter;
  scales: ModuleList<Scale>;

  constructor(
    readonly config: DyHeadConfig = FIBER_DYHEAD,
    rng: Generator = defaultGenerator,
  ) {
    super();
    validateDyHeadConfig(config);
    const { channels: c, numClasses, langDim, priorProb, numLevels } = config;
    const prior = -Math.log((1 - priorProb) / priorProb);
    this.dyheadTower = new ModuleList(Array.from({ length: config.numConvs }, () => new DyConv(config, rng)));
    this.clsLogits = new Conv2d(c, numClasses - 1, 1, { rng });
    this.bboxPred = new Conv2d(c, 4, 1, { rng });
    this.centerness = new Conv2d(c, 1, 1, { rng });
    initConvNormal(this.clsLogits, 0.01, prior, rng);
    initConvNormal(this.bboxPred, 0.01, 0, rng);
    initConvNormal(this.centerness, 0.01, 0, rng);
    this.logScale = new Parameter(tf.tensor1d([config.logScale]));
    this.dotProductProjectionText = new Linear(langDim, c, { rng });
    this.biasLang = new Parameter(tf.zeros([langDim]));
    this.bias0 = new Parameter(tf.tensor1d([prior]));
    this.scales = new ModuleList(Array.from({ length: numLevels }, () => new Scale(1)));
  }

  /**
   * features: P3..P7, each [B, C, H_l, W_l]; embedded: the text features [B, T, langDim] with
   * padding positions zeroed (`hidden * mask`, T <= maxQueryLen).
   */
  forward(features: readonly tf.Tensor[], embedded: tf.Tensor, { allTowers = false } = {}): DyHeadOutput {
    this.check(features, embedded);
    return tf.tidy(() => {
      const towers: tf.Tensor[][] = features.map(() => []);
      let x: readonly tf.Tensor[] = features;
      const blocks = [...this.dyheadTower];
      blocks.forEach((block, k) => {
        x = block.forward(x);
        if (allTowers || k === blocks.length - 1) x.forEach((t, l) => towers[l].push(t));
      });
      const e = l2Normalize(embedded, -1);
      const tokens = this.dotProductProjectionText.forward(tf.div(e, 2)); // [B, T, C]
      const [b, t] = embedded.shape;
      const langBias = tf.add(
        tf.reshape(linear(e, tf.reshape(this.biasLang.value, [1, -1])), [b, 1, t]),
        this.bias0.value,
      );
      const tokensT = tf.transpose(tokens, [0, 2, 1]); // [B, C, T]
      const temperature = tf.exp(this.logScale.value);
      const levels = x.map((tower, l): DyHeadLevelOutput => {
        const [, c, h, w] = tower.shape;
        const queries = tf.reshape(tf.transpose(this.dotProductProjectionImage.forward(tower), [0, 2, 3, 1]), [
          b,
          h * w,
          c,
        ]);
        const logits = tf.add(tf.div(matmul(queries, tokensT), temperature), langBias);
        return {
          towers: towers[l],
          clsLogits: this.clsLogits.forward(tower),
          bboxReg: this.scales.at(l).forward(this.bboxPred.forward(tower)),
          centerness: this.centerness.forward(tower),
          dotProductLogits: tf.clipByValue(logits, -DOT_PRODUCT_CLAMP, DOT_PRODUCT_CLAMP),
        };
      });
      return { levels };
    });
  }

  private check(features: readonly tf.Tensor[], embedded: tf.Tensor): void {
    const { numLevels, channels, langDim, maxQueryLen } = this.config;
    if (features.length !== numLevels)
      throw new RangeError(`VLDyHead: expected ${numLevels} FPN levels, got ${features.length}`);
    const batch = features[0].shape[0];
    features.forEach((f, l) => {
      if (f.rank !== 4 || f.shape[0] !== batch || f.shape[1] !== channels) {
        throw new RangeError(`VLDyHead: level P${l + 3} must be [${batch}, ${channels}, H, W], got ${shapeOf(f)}`);
      }
    });
    const [eb, et, ed]: number[] = embedded.shape;
    if (embedded.rank !== 3 || eb !== batch || ed !== langDim || et > maxQueryLen) {
      throw new RangeError(
        `VLDyHead: embedded must be [${batch}, T <= ${maxQueryLen}, ${langDim}], got ${shapeOf(embedded)}`,
      );
    }
  }
}

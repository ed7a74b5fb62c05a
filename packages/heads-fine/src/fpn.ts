// The FPN of the fine-grained FIBER model (maskrcnn_benchmark `modeling/backbone/fpn.py` as built
// by `SWINT-FPN-RETINANET`, fiber-spec §3.2). Keys under `fusion_backbone.backbone.fpn`.
import {
  Conv2d,
  DropBlock2D,
  Module,
  defaultGenerator,
  interpolateNearest,
  tf,
  type Generator,
} from '@fiber-vl/tensor-core';
import { FIBER_DROP_BLOCK, FIBER_FPN, type FpnConfig } from './config.js';
import { initConvKaimingA1 } from './init.js';

const shapeOf = (t: tf.Tensor) => `[${t.shape.join(', ')}]`;

/** LastLevelP6P7: P6 = conv3x3 s2 (on P5 when in == out channels, else on C5), P7 = conv3x3 s2 on ReLU(P6). */
export class LastLevelP6P7 extends Module {
  p6: Conv2d;
  p7: Conv2d;
  /** Official `use_P5`: true for every FIBER config (the FPN passes in = out = BACKBONE.OUT_CHANNELS). */
  readonly usesP5: boolean;
  constructor(inChannels: number, outChannels: number, rng: Generator = defaultGenerator) {
    super();
    this.p6 = new Conv2d(inChannels, outChannels, 3, { stride: 2, padding: 1, rng });
    this.p7 = new Conv2d(outChannels, outChannels, 3, { stride: 2, padding: 1, rng });
    for (const c of [this.p6, this.p7]) initConvKaimingA1(c, rng);
    this.usesP5 = inChannels === outChannels;
  }
  forward(c5: tf.Tensor, p5: tf.Tensor): [tf.Tensor, tf.Tensor] {
    return tf.tidy(() => {
      const p6 = this.p6.forward(this.usesP5 ? p5 : c5);
      return [p6, this.p7.forward(tf.relu(p6))];
    });
  }
}

/**
 * FPN over C3-C5 (NCHW, strides 8/16/32) -> [P3, P4, P5, P6, P7] with `outChannels` each. Lateral
 * 1x1 convs `fpn_inner2..4`, 3x3 output convs `fpn_layer2..4`, top-down path by nearest resize to
 * the lateral's size, then `top_blocks`. No norm or activation inside (USE_GN / USE_RELU off). In
 * training mode the merged maps of P4 and P3 go through a DropBlock before their output conv (the
 * top-down path carries them undropped), as the official FPN with DROP_BLOCK on.
 */
export class FPN extends Module {
  fpnInner2: Conv2d;
  fpnLayer2: Conv2d;
  fpnInner3: Conv2d;
  fpnLayer3: Conv2d;
  fpnInner4: Conv2d;
  fpnLayer4: Conv2d;
  topBlocks: LastLevelP6P7;
  /** `drop_block`: no parameters, so no state-dict keys, as the official module. */
  dropBlock?: DropBlock2D;
  constructor(
    readonly config: FpnConfig = FIBER_FPN,
    rng: Generator = defaultGenerator,
  ) {
    super();
    const { inChannels, outChannels } = config;
    const lateral = (c: number) => new Conv2d(c, outChannels, 1, { rng });
    const output = () => new Conv2d(outChannels, outChannels, 3, { padding: 1, rng });
    this.fpnInner2 = lateral(inChannels[0]);
    this.fpnLayer2 = output();
    this.fpnInner3 = lateral(inChannels[1]);
    this.fpnLayer3 = output();
    this.fpnInner4 = lateral(inChannels[2]);
    this.fpnLayer4 = output();
    for (const c of [this.fpnInner2, this.fpnLayer2, this.fpnInner3, this.fpnLayer3, this.fpnInner4, this.fpnLayer4]) {
      initConvKaimingA1(c, rng);
    }
    this.topBlocks = new LastLevelP6P7(outChannels, outChannels, rng);
    const drop = config.dropBlock === undefined ? FIBER_DROP_BLOCK : config.dropBlock;
    if (drop) this.dropBlock = new DropBlock2D(drop.prob, drop.size, rng);
  }

  /** [C3, C4, C5], each [B, C_i, H_i, W_i] -> [P3, P4, P5, P6, P7], each [B, outChannels, h, w]. */
  forward(features: readonly tf.Tensor[]): tf.Tensor[] {
    const { inChannels } = this.config;
    if (features.length !== 3) throw new RangeError(`FPN: expected [C3, C4, C5], got ${features.length} maps`);
    features.forEach((f, i) => {
      if (f.rank !== 4 || f.shape[1] !== inChannels[i] || f.shape[0] !== features[0].shape[0]) {
        throw new RangeError(`FPN: C${i + 3} must be [B, ${inChannels[i]}, H, W] (same B for all), got ${shapeOf(f)}`);
      }
    });
    const [c3, c4, c5] = features;
    return tf.tidy(() => {
      let last = this.fpnInner4.forward(c5);
      const results = [this.fpnLayer4.forward(last)];
      for (const [c, inner, layer] of [
        [c4, this.fpnInner3, this.fpnLayer3],
        [c3, this.fpnInner2, this.fpnLayer2],
      ] as const) {
        const lateral = inner.forward(c);
        const [h, w] = lateral.shape.slice(2);
        const topDown = last.shape[2] === h && last.shape[3] === w ? last : interpolateNearest(last, [h, w]);
        last = tf.add(lateral, topDown);
        results.unshift(layer.forward(this.dropBlock ? this.dropBlock.forward(last) : last)); // identity in eval mode
      }
      return [...results, ...this.topBlocks.forward(c5, results[results.length - 1])];
    });
  }
}

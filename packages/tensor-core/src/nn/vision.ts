// Parameter-free layers and the deformable convolution of convolutional detection heads, with
// torch.nn / torchvision names so that a head written with them has the official module tree.
import { tf } from '../tf.js';
import { defaultGenerator, type Generator } from '../rng.js';
import { deformConv2d } from '../ops/deform-conv.js';
import { adaptiveAvgPool2d, hardSigmoid } from '../ops/vision.js';
import { fans, kaimingUniform, uniform } from './init.js';
import { biasBound, checkSizes } from './layers.js';
import { Module, Parameter, type UnaryModule } from './module.js';

/** torch.nn.ReLU. */
export class ReLU extends Module implements UnaryModule {
  forward(x: tf.Tensor): tf.Tensor {
    return tf.relu(x);
  }
}

/** torch.nn.Hardsigmoid: relu6(x + 3) / 6 (the `h_sigmoid` of DyHead / MobileNetV3 code). */
export class Hardsigmoid extends Module implements UnaryModule {
  forward(x: tf.Tensor): tf.Tensor {
    return hardSigmoid(x);
  }
}

/** torch.nn.AdaptiveAvgPool2d(outputSize) on [..., H, W]. */
export class AdaptiveAvgPool2d extends Module implements UnaryModule {
  constructor(readonly outputSize: number | [number, number]) {
    super();
  }
  forward(x: tf.Tensor): tf.Tensor {
    return adaptiveAvgPool2d(x, this.outputSize);
  }
}

type Pair = number | [number, number];

export interface DeformConv2dModuleOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  bias?: boolean;
  /** Initialise the bias to zeros (maskrcnn_benchmark's ModulatedDeformConv) instead of U(±1/sqrt(fan_in)). */
  zeroBias?: boolean;
  rng?: Generator;
}

/**
 * torchvision.ops.DeformConv2d / maskrcnn_benchmark ModulatedDeformConv: weight [out, in, kh, kw]
 * (U(±1/sqrt(fan_in))), bias [out]. `forward(x, offset, mask?)` runs `deformConv2d`.
 */
export class DeformConv2d extends Module {
  weight: Parameter;
  bias?: Parameter;
  readonly kernelSize: [number, number];
  readonly stride: Pair;
  readonly padding: Pair;
  readonly dilation: Pair;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    {
      stride = 1,
      padding = 0,
      dilation = 1,
      bias = true,
      zeroBias = false,
      rng = defaultGenerator,
    }: DeformConv2dModuleOptions = {},
  ) {
    super();
    checkSizes('DeformConv2d', 'inChannels', inChannels);
    checkSizes('DeformConv2d', 'outChannels', outChannels);
    checkSizes('DeformConv2d', 'kernelSize', kernelSize, { min: 1, pair: true });
    checkSizes('DeformConv2d', 'stride', stride, { min: 1, pair: true });
    checkSizes('DeformConv2d', 'padding', padding, { pair: true });
    checkSizes('DeformConv2d', 'dilation', dilation, { min: 1, pair: true });
    this.stride = stride;
    this.padding = padding;
    this.dilation = dilation;
    this.kernelSize = Array.isArray(kernelSize) ? kernelSize : [kernelSize, kernelSize];
    const shape = [outChannels, inChannels, ...this.kernelSize];
    this.weight = new Parameter(kaimingUniform(shape, Math.sqrt(5), rng));
    if (bias) {
      const bound = biasBound(fans(shape).fanIn);
      this.bias = new Parameter(zeroBias ? tf.zeros([outChannels]) : uniform([outChannels], -bound, bound, rng));
    }
  }
  /** x [N, in, H, W], offset [N, 2*kh*kw, Ho, Wo], mask [N, kh*kw, Ho, Wo] -> [N, out, Ho, Wo]. */
  forward(x: tf.Tensor, offset: tf.Tensor, mask?: tf.Tensor): tf.Tensor {
    const { stride, padding, dilation } = this;
    return deformConv2d(x, offset, this.weight.value, { bias: this.bias?.value, mask, stride, padding, dilation });
  }
}

// Official initialisations of the fine-grained head modules (maskrcnn_benchmark), applied after
// the tensor-core layers' PyTorch-default ones.
import { init, type tf, type Conv2d, type Generator, type Parameter } from '@fiber-vl/tensor-core';

/** Replaces a parameter's value (the tensor is disposed). */
export function assignParameter(p: Parameter, value: tf.Tensor): void {
  p.value.assign(value);
  value.dispose();
}

/** Conv weight ~ N(0, std^2), bias = `bias` (torch.nn.init.normal_ / constant_). */
export function initConvNormal(conv: Conv2d, std: number, bias: number, rng: Generator): void {
  assignParameter(conv.weight, init.normal(conv.weight.shape, 0, std, rng));
  if (conv.bias) assignParameter(conv.bias, init.constant(conv.bias.shape, bias));
}

/** maskrcnn_benchmark's conv_with_kaiming_uniform / LastLevelP6P7: kaiming_uniform_(a=1), bias 0. */
export function initConvKaimingA1(conv: Conv2d, rng: Generator): void {
  assignParameter(conv.weight, init.kaimingUniform(conv.weight.shape, 1, rng));
  if (conv.bias) assignParameter(conv.bias, init.constant(conv.bias.shape, 0));
}

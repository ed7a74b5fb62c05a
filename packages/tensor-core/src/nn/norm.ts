// Normalisation layers beyond LayerNorm (nn/layers.ts).
import { tf } from '../tf.js';
import { groupNorm } from '../ops/norm.js';
import { checkEps, checkSizes } from './layers.js';
import { Module, Parameter } from './module.js';

/** torch.nn.GroupNorm(numGroups, numChannels, eps, affine=True): weight (ones) and bias (zeros) [C]. */
export class GroupNorm extends Module {
  weight: Parameter;
  bias: Parameter;
  constructor(
    readonly numGroups: number,
    readonly numChannels: number,
    readonly eps = 1e-5,
  ) {
    super();
    checkSizes('GroupNorm', 'numChannels', numChannels);
    checkEps('GroupNorm', eps);
    if (!Number.isInteger(numGroups) || numGroups < 1 || numChannels % numGroups) {
      throw new RangeError(`GroupNorm: ${numChannels} channels do not split into ${numGroups} groups`);
    }
    this.weight = new Parameter(tf.ones([numChannels]));
    this.bias = new Parameter(tf.zeros([numChannels]));
  }
  /** x [N, C, ...] -> same shape. */
  forward(x: tf.Tensor): tf.Tensor {
    if (x.rank < 2 || x.shape[1] !== this.numChannels) {
      throw new RangeError(`GroupNorm: expected [N, ${this.numChannels}, ...], got [${x.shape.join(', ')}]`);
    }
    return groupNorm(x, this.numGroups, this.weight.value, this.bias.value, this.eps);
  }
}

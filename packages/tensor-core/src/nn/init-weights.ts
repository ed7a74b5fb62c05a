// torch's `module.apply(init_fn)` for the initialisation that BERT-style code gives the layers it
// adds on top of pre-trained backbones: FIBER's objectives.init_weights and HF transformers'
// _init_weights (N(0, 0.02)), timm's _init_vit_weights (trunc_normal_(std=0.02), whose bounds of
// ±2 are absolute, 100 std out: the same distribution at that std; a plain normal here, so at a std
// near 1 or above it differs from timm's, whose bounds then cut). The layers' own defaults are PyTorch's
// (kaiming-uniform Linear, N(0, 1) Embedding): a Linear's std is 1/sqrt(3 fan_in), 0.021 at
// width 768 (about these codes' 0.02) but 0.072 at width 64.
import { tf } from '../tf.js';
import { defaultGenerator, type Generator } from '../rng.js';
import { normal } from './init.js';
import { Embedding, LayerNorm, Linear } from './layers.js';
import { Module, TWO_COPIES_HINT, type Parameter } from './module.js';

export interface InitWeightsOptions {
  /** Standard deviation of the weights (BertConfig.initializer_range: 0.02). */
  std?: number;
  rng?: Generator;
}

/**
 * Re-initialises, in place, every Linear, Embedding and LayerNorm of `module` (itself included,
 * pre-order): weights N(0, std^2), Linear biases 0, LayerNorm weight 1 and bias 0. Other
 * parameters (gates, tables, free-standing biases) are left as they are, as the PyTorch function
 * leaves them; Embedding padding rows are not zeroed (FIBER's init_weights does not either).
 */
export function initWeights(module: Module, { std = 0.02, rng = defaultGenerator }: InitWeightsOptions = {}): void {
  if (!(std > 0) || !Number.isFinite(std))
    throw new RangeError(`initWeights: std must be a positive number, got ${std}`);
  // a model of another copy of this package: its layers would fail every instanceof below
  if (!(module instanceof Module)) {
    const given: unknown = module;
    const what = typeof given === 'object' && given !== null ? given.constructor.name : typeof given;
    throw new TypeError(
      `initWeights: ${what} is not a Module of this copy of @fiber-vl/tensor-core ${TWO_COPIES_HINT}`,
    );
  }
  for (const [, m] of module.namedModules()) {
    if (m instanceof Linear || m instanceof Embedding) {
      set(m.weight, normal(m.weight.shape, 0, std, rng));
      if (m instanceof Linear && m.bias) set(m.bias, tf.zeros(m.bias.shape));
    } else if (m instanceof LayerNorm) {
      set(m.weight, tf.ones(m.weight.shape));
      set(m.bias, tf.zeros(m.bias.shape));
    }
  }
}

function set(p: Parameter, value: tf.Tensor): void {
  try {
    p.value.assign(value);
  } finally {
    value.dispose();
  }
}

import { tf, type Parameter } from '@fiber-vl/tensor-core';

export interface ParamGroup {
  /** Named parameters (names as in the state dict). */
  params: [string, Parameter][];
  lr: number;
  weightDecay: number;
}

export interface AdamWOptions {
  betas?: [number, number];
  eps?: number;
  /**
   * 'torch': torch.optim.AdamW (decay p *= 1 - lr*wd before the step; fine-grained FIBER).
   * 'transformers': transformers.AdamW 4.x (decay p -= lr*wd*p after the step, eps added to the
   * uncorrected sqrt; coarse-grained FIBER).
   */
  variant?: 'torch' | 'transformers';
}

interface Moments {
  m: tf.Variable;
  v: tf.Variable;
}

/**
 * AdamW over fiber-vl Parameters with per-group lr / weight decay. `step` takes gradients by
 * parameter name (as tf.variableGrads returns them keyed by variable name, mapped by the caller).
 * The learning rate of each group can be scaled per step (schedules) with `lrScale`.
 */
export class AdamW {
  readonly betas: [number, number];
  readonly eps: number;
  readonly variant: 'torch' | 'transformers';
  private t = 0;
  private readonly state = new Map<string, Moments>();

  constructor(
    readonly groups: ParamGroup[],
    { betas = [0.9, 0.999], eps = 1e-8, variant = 'torch' }: AdamWOptions = {},
  ) {
    this.betas = betas;
    this.eps = eps;
    this.variant = variant;
    const seen = new Set<string>();
    for (const g of groups) {
      for (const [name] of g.params) {
        if (seen.has(name)) throw new Error(`AdamW: parameter "${name}" is in more than one group`);
        seen.add(name);
      }
    }
  }

  get stepCount(): number {
    return this.t;
  }

  /** One update. Parameters without a gradient (frozen or unused) are skipped. */
  step(grads: Map<string, tf.Tensor>, lrScale = 1): void {
    this.t++;
    const [b1, b2] = this.betas;
    const bc1 = 1 - b1 ** this.t;
    const bc2 = 1 - b2 ** this.t;
    for (const group of this.groups) {
      const lr = group.lr * lrScale;
      for (const [name, p] of group.params) {
        const g = grads.get(name);
        if (!g || !p.requiresGrad) continue;
        let s = this.state.get(name);
        if (!s) {
          // tf.variable shares the initial tensor's data without owning the tensor: free it
          const zeros = () => {
            const z = tf.zerosLike(p.value);
            const variable = tf.variable(z, false);
            z.dispose();
            return variable;
          };
          s = { m: zeros(), v: zeros() };
          this.state.set(name, s);
        }
        const { m, v } = s;
        tf.tidy(() => {
          let w: tf.Tensor = p.value;
          if (this.variant === 'torch' && group.weightDecay) w = tf.mul(w, 1 - lr * group.weightDecay);
          m.assign(tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1)));
          v.assign(tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2)));
          if (this.variant === 'torch') {
            const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(bc2)), this.eps);
            w = tf.sub(w, tf.mul(tf.div(m, denom), lr / bc1));
          } else {
            const denom = tf.add(tf.sqrt(v), this.eps);
            w = tf.sub(w, tf.mul(tf.div(m, denom), (lr * Math.sqrt(bc2)) / bc1));
            if (group.weightDecay) w = tf.sub(w, tf.mul(w, lr * group.weightDecay));
          }
          p.value.assign(w);
        });
      }
    }
  }

  dispose(): void {
    for (const { m, v } of this.state.values()) {
      m.dispose();
      v.dispose();
    }
    this.state.clear();
  }
}

/** Substrings that exempt a parameter from weight decay in coarse FIBER (plain substring match, spec §4.1). */
export const FIBER_NO_DECAY = ['bias', 'LayerNorm.bias', 'LayerNorm.weight', 'norm.bias', 'norm.weight', 'norm1.bias', 'norm1.weight', 'norm2.bias', 'norm2.weight'];
export const FIBER_HEAD_NAMES = ['vqa_classifier', 'nlvr2_classifier', 'mlm_score', 'itm_score'];
export const FIBER_CROSS_MODAL_NAMES = ['cross_modal', 'i2t', 't2i'];

/**
 * The coarse FIBER parameter groups (fiber_utils.set_schedule): decay / no-decay by substring,
 * lr x lrMultHead for heads, x lrMultCrossModal for fusion and cross-modal parameters.
 */
export function fiberCoarseParamGroups(
  named: [string, Parameter][],
  { lr, weightDecay = 0.01, lrMultHead = 5, lrMultCrossModal = 5 }: { lr: number; weightDecay?: number; lrMultHead?: number; lrMultCrossModal?: number },
): ParamGroup[] {
  const groups = new Map<string, ParamGroup>();
  for (const entry of named) {
    const [name] = entry;
    const noDecay = FIBER_NO_DECAY.some((s) => name.includes(s));
    const head = FIBER_HEAD_NAMES.some((s) => name.includes(s));
    const cross = !head && FIBER_CROSS_MODAL_NAMES.some((s) => name.includes(s));
    const mult = head ? lrMultHead : cross ? lrMultCrossModal : 1;
    const key = `${noDecay}/${mult}`;
    let g = groups.get(key);
    if (!g) {
      g = { params: [], lr: lr * mult, weightDecay: noDecay ? 0 : weightDecay };
      groups.set(key, g);
    }
    g.params.push(entry);
  }
  return [...groups.values()];
}

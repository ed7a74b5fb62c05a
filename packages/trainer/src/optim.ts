// AdamW as the two official FIBER code bases run it, their parameter groups, and full-model
// gradient-norm clipping.
//   coarse (fiber_utils.set_schedule): transformers' AdamW, six groups by plain substring rules;
//   fine (maskrcnn_benchmark solver/build.py): torch.optim.AdamW, one group per tensor.
// State is per parameter, as in both implementations: a parameter that gets no gradient in a step
// is not touched at all (no moment update, no step count, no weight decay).
import { adamwUpdate, tf, type Parameter } from '@fiber-vl/tensor-core';

export interface ParamGroup {
  /** Named parameters (names as in the state dict). */
  params: [string, Parameter][];
  lr: number;
  weightDecay: number;
  /** A label for logs and tables (e.g. 'head/no_decay'). */
  name?: string;
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

/** Per step scales of every group's lr and weight decay (schedules). */
export interface StepScales {
  lrScale?: number;
  weightDecayScale?: number;
}

interface Moments {
  step: number;
  m: tf.Variable;
  v: tf.Variable;
}

/** What AdamW needs to resume exactly: its moments (tensors) and per-parameter step counts. */
export interface AdamWState {
  /** `exp_avg.<name>` and `exp_avg_sq.<name>` for every parameter that has had a gradient. */
  tensors: Map<string, tf.Tensor>;
  /** Steps taken per parameter name (the bias corrections use them). */
  steps: Record<string, number>;
  /** Number of `step` calls. */
  calls: number;
}

/**
 * AdamW over fiber-vl Parameters with per-group lr / weight decay. `step` takes gradients by
 * parameter name; a parameter without one is skipped entirely, as torch / transformers skip a
 * parameter whose `.grad` is None.
 */
export class AdamW {
  readonly betas: [number, number];
  readonly eps: number;
  readonly variant: 'torch' | 'transformers';
  private readonly state = new Map<string, Moments>();
  private steps = 0;

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

  /** Number of `step` calls so far. */
  get stepCount(): number {
    return this.steps;
  }

  /** Names of every parameter the optimizer updates. */
  paramNames(): string[] {
    return this.groups.flatMap((g) => g.params.map(([n]) => n));
  }

  /**
   * One update. `scales` (or a plain lr factor, as before) multiplies each group's lr and weight
   * decay for this step (schedules). Gradients are not disposed.
   */
  step(grads: Map<string, tf.Tensor>, scales: StepScales | number = {}): void {
    const { lrScale = 1, weightDecayScale = 1 } = typeof scales === 'number' ? { lrScale: scales } : scales;
    this.steps++;
    const [b1, b2] = this.betas;
    for (const group of this.groups) {
      const lr = group.lr * lrScale;
      const wd = group.weightDecay * weightDecayScale;
      for (const [name, p] of group.params) {
        const g = grads.get(name);
        if (!g || !p.requiresGrad) continue;
        if (g.shape.join() !== p.shape.join())
          throw new RangeError(`AdamW: gradient of "${name}" has shape [${g.shape}], the parameter [${p.shape}]`);
        let s = this.state.get(name);
        if (!s) {
          s = { step: 0, m: ownedVariable(tf.zerosLike(p.value)), v: ownedVariable(tf.zerosLike(p.value)) };
          this.state.set(name, s);
        }
        s.step++;
        const { m, v } = s;
        const o = { variant: this.variant, lr, weightDecay: wd, beta1: b1, beta2: b2, eps: this.eps, step: s.step };
        tf.tidy(() => {
          // one kernel on wasm, the same float32 steps as the tfjs ops elsewhere (tensor-core)
          const [w2, m2, v2] = adamwUpdate(p.value, g, m, v, o);
          m.assign(m2);
          v.assign(v2);
          p.value.assign(w2);
        });
      }
    }
  }

  /** The state to checkpoint. The tensors are the live moments: do not dispose them. */
  getState(): AdamWState {
    const tensors = new Map<string, tf.Tensor>();
    const steps: Record<string, number> = {};
    for (const [name, s] of this.state) {
      tensors.set(`exp_avg.${name}`, s.m);
      tensors.set(`exp_avg_sq.${name}`, s.v);
      steps[name] = s.step;
    }
    return { tensors, steps, calls: this.steps };
  }

  /** Restores a state from `getState` (the tensors are copied; the caller keeps them). */
  setState(state: AdamWState): void {
    this.checkState(state);
    const { tensors, steps, calls } = state;
    this.dispose();
    for (const [name, step] of Object.entries(steps)) {
      this.state.set(name, {
        step,
        m: ownedVariable(tf.clone(tensors.get(`exp_avg.${name}`)!)),
        v: ownedVariable(tf.clone(tensors.get(`exp_avg_sq.${name}`)!)),
      });
    }
    this.steps = calls;
  }

  /** Throws what `setState` would throw for `state`, changing nothing. */
  checkState({ tensors, steps }: AdamWState): void {
    const byName = new Map(this.groups.flatMap((g) => g.params));
    for (const name of Object.keys(steps)) {
      const p = byName.get(name);
      if (!p)
        throw new Error(`AdamW.setState: the state has moments for "${name}", which is in no group of this optimizer`);
      const m = tensors.get(`exp_avg.${name}`);
      const v = tensors.get(`exp_avg_sq.${name}`);
      if (!m || !v) throw new Error(`AdamW.setState: exp_avg / exp_avg_sq of "${name}" missing`);
      for (const [k, t] of [
        ['exp_avg', m],
        ['exp_avg_sq', v],
      ] as const) {
        if (t.shape.join() !== p.shape.join())
          throw new RangeError(`AdamW.setState: ${k}.${name} has shape [${t.shape}], the parameter [${p.shape}]`);
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

/** A non-trainable variable that takes over `initial` (tf.variable shares its data; the tensor itself is freed). */
export function ownedVariable(initial: tf.Tensor): tf.Variable {
  const v = tf.variable(initial, false, undefined, initial.dtype);
  initial.dispose();
  return v;
}

/** Substrings that exempt a parameter from weight decay in coarse FIBER (plain substring match, spec §4.1). */
export const FIBER_NO_DECAY = [
  'bias',
  'LayerNorm.bias',
  'LayerNorm.weight',
  'norm.bias',
  'norm.weight',
  'norm1.bias',
  'norm1.weight',
  'norm2.bias',
  'norm2.weight',
];
export const FIBER_HEAD_NAMES = ['vqa_classifier', 'nlvr2_classifier', 'mlm_score', 'itm_score', 'snli_classifier'];
export const FIBER_CROSS_MODAL_NAMES = ['cross_modal', 'i2t', 't2i'];

export interface CoarseGroupOptions {
  lr: number;
  weightDecay?: number;
  lrMultHead?: number;
  lrMultCrossModal?: number;
  /**
   * Which names are cross-modal. Default: FIBER's substrings (`FIBER_CROSS_MODAL_NAMES`), as the
   * official code matches them; a model whose fusion parameters are named otherwise (a late-fusion
   * baseline, say) passes its own test. A name that is also a head is still in no group.
   */
  crossModal?: (name: string) => boolean;
}

const isFiberCrossModal = (name: string) => FIBER_CROSS_MODAL_NAMES.some((s) => name.includes(s));

/** Where fiber_utils.set_schedule puts one parameter name. */
export interface CoarseGroupOf {
  /** 'base' | 'head' | 'cross_modal', and whether weight decay applies. */
  kind: 'base' | 'head' | 'cross_modal';
  decay: boolean;
  lr: number;
  weightDecay: number;
  /** '<kind>/<decay|no_decay>'. */
  group: string;
}

/**
 * The group of a coarse parameter name, or undefined when the official code puts it in none (a
 * name with both a head and a cross-modal substring matches none of the six filters, so the
 * official optimizer never updates it).
 */
export function fiberCoarseGroupOf(
  name: string,
  { lr, weightDecay = 0.01, lrMultHead = 5, lrMultCrossModal = 5, crossModal = isFiberCrossModal }: CoarseGroupOptions,
): CoarseGroupOf | undefined {
  const decay = !FIBER_NO_DECAY.some((s) => name.includes(s));
  const head = FIBER_HEAD_NAMES.some((s) => name.includes(s));
  const cross = crossModal(name);
  if (head && cross) return undefined;
  const kind = head ? 'head' : cross ? 'cross_modal' : 'base';
  const mult = head ? lrMultHead : cross ? lrMultCrossModal : 1;
  return {
    kind,
    decay,
    lr: lr * mult,
    weightDecay: decay ? weightDecay : 0,
    group: `${kind}/${decay ? 'decay' : 'no_decay'}`,
  };
}

/**
 * The coarse FIBER parameter groups (fiber_utils.set_schedule): decay / no-decay by substring,
 * lr x lrMultHead for heads, x lrMultCrossModal for fusion and cross-modal parameters. Groups come
 * in the official order; parameters the official code leaves out (see fiberCoarseGroupOf) are left
 * out here too. Parameters with requiresGrad false are left out.
 */
export function fiberCoarseParamGroups(named: [string, Parameter][], options: CoarseGroupOptions): ParamGroup[] {
  const order = [
    'base/decay',
    'base/no_decay',
    'head/decay',
    'head/no_decay',
    'cross_modal/decay',
    'cross_modal/no_decay',
  ];
  const groups = new Map<string, ParamGroup>();
  for (const entry of named) {
    const [name, p] = entry;
    const g = fiberCoarseGroupOf(name, options);
    if (!g || !p.requiresGrad) continue;
    let group = groups.get(g.group);
    if (!group) {
      group = { params: [], lr: g.lr, weightDecay: g.weightDecay, name: g.group };
      groups.set(g.group, group);
    }
    group.params.push(entry);
  }
  return order.flatMap((k) => (groups.has(k) ? [groups.get(k)!] : []));
}

export interface FineGroupOptions {
  /** SOLVER.BASE_LR (pre-training 1e-4, fine-tunes 1e-5). */
  baseLr?: number;
  /** SOLVER.LANG_LR for names containing `language_backbone` (1e-5). */
  langLr?: number;
  /** SOLVER.WEIGHT_DECAY (pre-training 0.01, fine-tunes 1e-4). */
  weightDecay?: number;
  /** SOLVER.BIAS_LR_FACTOR for names containing `bias` (2). */
  biasLrFactor?: number;
  /** SOLVER.WEIGHT_DECAY_BIAS (0). */
  weightDecayBias?: number;
  /** SOLVER.BACKBONE_BODY_LR_FACTOR for `backbone.body` outside `language_backbone.body` (1). */
  backboneBodyLrFactor?: number;
  /** SOLVER.WEIGHT_DECAY_NORM_FACTOR for names containing `norm` / `Norm` (1). */
  weightDecayNormFactor?: number;
}

/** The lr and weight decay maskrcnn_benchmark's make_optimizer gives one parameter name. */
export function fiberFineGroupOf(
  name: string,
  {
    baseLr = 1e-4,
    langLr = 1e-5,
    weightDecay = 0.01,
    biasLrFactor = 2,
    weightDecayBias = 0,
    backboneBodyLrFactor = 1,
    weightDecayNormFactor = 1,
  }: FineGroupOptions = {},
): { lr: number; weightDecay: number } {
  let lr = baseLr;
  let wd = weightDecay;
  if (name.includes('language_backbone')) lr = langLr;
  if (name.includes('backbone.body') && !name.includes('language_backbone.body')) lr = baseLr * backboneBodyLrFactor;
  if (name.includes('bias')) {
    lr *= biasLrFactor;
    wd = weightDecayBias;
  }
  if (name.includes('norm') || name.includes('Norm')) wd *= weightDecayNormFactor;
  return { lr, weightDecay: wd };
}

/** The fine-grained groups: one per tensor, in parameter order, frozen parameters left out. */
export function fiberFineParamGroups(named: [string, Parameter][], options: FineGroupOptions = {}): ParamGroup[] {
  return named
    .filter(([, p]) => p.requiresGrad)
    .map((entry) => ({ params: [entry], ...fiberFineGroupOf(entry[0], options), name: entry[0] }));
}

/**
 * torch.nn.utils.clip_grad_norm_ (norm 2) over every gradient given: total = ||(||g_i||)_i||, and
 * when total > maxNorm every gradient is scaled by maxNorm / (total + 1e-6). Replaces the map's
 * tensors (the old ones are disposed) and returns the total norm before clipping. A NaN total
 * leaves the gradients as they are, as torch <= 1.12 (`if clip_coef < 1`; later versions scale
 * them by NaN); the Trainer skips such a step either way.
 */
export async function clipGradNorm(grads: Map<string, tf.Tensor>, maxNorm: number): Promise<number> {
  const total = await gradNorm(grads);
  const coef = maxNorm / (total + 1e-6);
  if (coef < 1) {
    for (const [k, g] of grads) {
      grads.set(k, tf.mul(g, coef));
      g.dispose();
    }
  }
  return total;
}

/**
 * The global L2 norm of a set of gradients (NaN / Infinity when any element is): the norm of the
 * per-tensor norms, as torch's. Each norm is sqrt(sum(g * g)): tf.norm takes pow(|g|, 2), whose
 * pow kernel made this 5-10% of a tiny model's training step on wasm.
 */
export async function gradNorm(grads: Map<string, tf.Tensor>): Promise<number> {
  if (grads.size === 0) return 0;
  const l2 = (x: tf.Tensor) => tf.sqrt(tf.sum(tf.square(x)));
  const t = tf.tidy(() => l2(tf.stack([...grads.values()].map(l2))));
  const [v] = await t.data();
  t.dispose();
  return v;
}

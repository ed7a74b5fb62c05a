// One training step, split into named loss terms. An objective adds its terms through
// `ctx.loss(name, fn)`: each term runs forward and backward at once and its gradients are added to
// the step's, so an objective can do asynchronous work between terms (coarse FIBER reads the ITC
// similarities to draw the ITM hard negatives) and only one term's graph is alive at a time. The
// sum of the terms' gradients is the gradient of the summed loss, as one backward would give.
import { tf, type Generator, type Module, type Parameter } from '@fiber-vl/tensor-core';

/**
 * An objective: adds its named loss terms for one (micro-)batch through `ctx.loss`. `afterStep`
 * runs after each applied optimizer step (e.g. coarse FIBER re-syncs rank_output to itm_score).
 * `stateful` lists state the objective owns that checkpoints must hold (e.g. the ITC queue).
 */
export interface Objective<M extends Module = Module, B = unknown> {
  (model: M, batch: B, ctx: StepContext): Promise<void>;
  afterStep?(model: M): void;
  stateful?: Record<string, Stateful>;
}

/** State outside the model and optimizer that a checkpoint holds (by name). */
export interface Stateful {
  /** New tensors (the caller disposes them). */
  getState(): Map<string, tf.Tensor>;
  /** Loads tensors from getState (the caller keeps them). */
  setState(state: Map<string, tf.Tensor>): Promise<void>;
}

export interface LossTermOutput<K extends Record<string, tf.Tensor>> {
  loss: tf.Tensor;
  /** Tensors to hand back to the objective (kept; the objective disposes them). */
  keep?: K;
}

export interface StepContextOptions {
  /** The parameters to differentiate (trainable ones). */
  params: [string, Parameter][];
  /** Named generators an objective may draw from (`ctx.rng(name)`). */
  rngs?: Record<string, Generator>;
  /** Multiplies every term before differentiation (1 / micro-batches for gradient accumulation). */
  scale?: number;
  /** Receives copies of tensors objectives report with `ctx.observe` (parity checks, debugging); owns them. */
  observer?: (name: string, t: tf.Tensor) => void;
}

/**
 * After a throw inside `tf.variableGrads`, tfjs-core leaves its tape set and the tensors it saved
 * for the backward pass kept (its own clean-up runs only after a backward): free them as it would.
 */
function releaseTape(): void {
  const state = tf.engine().state;
  if (state.gradientDepth !== 0 || !state.activeTape) return;
  for (const node of state.activeTape) tf.dispose(node.saved ?? []);
  state.activeTape = []; // tfjs sets null; an empty tape records nothing either (gradientDepth is 0)
}

/** Accumulates the gradients and loss values of one optimizer step (over all micro-batches). */
export class StepContext {
  /** Sum of d(scale * weight * loss)/d(param) over the terms so far, by parameter name. */
  readonly grads = new Map<string, tf.Tensor>();
  /** Loss values by term name (unweighted), summed over micro-batches and multiplied by `scale`. */
  readonly losses: Record<string, number> = {};
  /** The loss the gradients are of: the sum of scale * weight * value over the terms so far. */
  total = 0;
  /** Index of the micro-batch being run. */
  microBatch = 0;
  readonly scale: number;
  private readonly vars: tf.Variable[];
  private readonly nameOf = new Map<string, string>();
  private readonly undo: (() => void)[] = [];
  private readonly commits: (() => void)[] = [];

  constructor(private readonly options: StepContextOptions) {
    this.scale = options.scale ?? 1;
    const trainable = options.params.filter(([, p]) => p.requiresGrad);
    this.vars = trainable.map(([, p]) => p.value);
    for (const [name, p] of trainable) this.nameOf.set(p.value.name, name);
  }

  /** A generator registered with the trainer (checkpointed with it). */
  rng(name: string): Generator {
    const g = this.options.rngs?.[name];
    if (!g)
      throw new Error(
        `StepContext.rng: no generator named "${name}" (registered: ${Object.keys(this.options.rngs ?? {}).join(', ') || 'none'})`,
      );
    return g;
  }

  /** Hands a copy of `t` to the observer, if any (cheap no-op otherwise). */
  observe(name: string, t: tf.Tensor): void {
    if (this.options.observer) this.options.observer(name, tf.keep(tf.clone(t)));
  }

  /** Whether an observer listens (to skip work that only feeds `observe`). */
  get observing(): boolean {
    return this.options.observer !== undefined;
  }

  /**
   * Runs `fn` (a scalar loss, or `{ loss, keep }`) under the gradient tape, adds the gradients of
   * scale * weight * loss to the step's and returns the loss value (unscaled) and the kept tensors.
   * Parameters the loss does not reach get no gradient (and so no update, as in PyTorch).
   */
  async loss<K extends Record<string, tf.Tensor> = Record<string, never>>(
    name: string,
    fn: () => tf.Tensor | LossTermOutput<K>,
    { weight = 1 }: { weight?: number } = {},
  ): Promise<{ value: number; keep: K }> {
    let raw: tf.Tensor | undefined;
    let keep = {} as K;
    const f = weight * this.scale;
    let result: { value: tf.Scalar; grads: tf.NamedTensorMap };
    try {
      // a tidy around the tape: what the forward made before a throw is freed with it
      result = tf.tidy(() =>
        tf.variableGrads(() => {
          const out = fn();
          const loss = out instanceof tf.Tensor ? out : out.loss;
          if (!(out instanceof tf.Tensor) && out.keep) {
            keep = out.keep;
            for (const t of Object.values(keep)) tf.keep(t);
          }
          if (loss.size !== 1) throw new RangeError(`loss term "${name}" must be a scalar, got shape [${loss.shape}]`);
          raw = tf.keep(tf.reshape(loss, []));
          return (f === 1 ? raw : tf.mul(raw, f)) as tf.Scalar;
        }, this.vars),
      );
    } catch (e) {
      tf.dispose([raw, ...Object.values(keep)].filter((t): t is tf.Tensor => t !== undefined));
      releaseTape();
      if (e instanceof Error && /Cannot find a connection between any variable and the result/.test(e.message))
        throw new Error(`loss term "${name}": no trainable parameter reaches it`, { cause: e });
      throw e;
    }
    const { value, grads } = result;
    if (value !== raw) value.dispose();
    for (const [varName, g] of Object.entries(grads)) {
      if (!g) continue;
      const name = this.nameOf.get(varName)!;
      const prev = this.grads.get(name);
      if (prev) {
        this.grads.set(name, tf.add(prev, g));
        tf.dispose([prev, g]);
      } else this.grads.set(name, g);
    }
    const v = (await raw!.data())[0];
    raw!.dispose();
    this.losses[name] = (this.losses[name] ?? 0) + v * this.scale;
    this.total += v * f;
    return { value: v, keep };
  }

  /** Registers an undo for state changed during the step (run in reverse order if the step is skipped). */
  onSkip(undo: () => void): void {
    this.undo.push(undo);
  }

  /** Registers work to run once the step is applied (e.g. freeing what an undo would restore). */
  onCommit(commit: () => void): void {
    this.commits.push(commit);
  }

  /** Keeps the step's state changes. */
  commit(): void {
    for (const c of this.commits) c();
    this.commits.length = 0;
    this.undo.length = 0;
  }

  /** Reverts the step's state changes. */
  rollback(): void {
    for (const u of this.undo.reverse()) u();
    this.commits.length = 0;
    this.undo.length = 0;
  }

  /** Frees the gradients. */
  dispose(): void {
    tf.dispose([...this.grads.values()]);
    this.grads.clear();
  }
}

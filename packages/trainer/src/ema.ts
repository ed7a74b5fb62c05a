// Model EMA (maskrcnn_benchmark utils/ema.py, SOLVER.MODEL_EMA 0.999 in fine-grained FIBER): a
// shadow copy of the state dict updated after every optimizer step as
// ema = ema * decay + (1 - decay) * model. Integer buffers (index tables) are copied, not averaged.
// The Trainer updates it after applied steps only; the official loop (engine/trainer.py) updates it
// every iteration, also after one whose non-finite loss it zeroed or whose update the AMP scaler
// skipped, which pulls the average towards the unchanged weights once more.
import { tf, type Module } from '@fiber-vl/tensor-core';
import { ownedVariable } from './optim.js';

export class ModelEma {
  private readonly shadow = new Map<string, tf.Variable>();

  constructor(
    model: Module,
    readonly decay = 0.999,
  ) {
    if (!(decay >= 0 && decay <= 1)) throw new RangeError(`ModelEma: decay must be in [0, 1], got ${decay}`);
    for (const [k, t] of model.stateDict()) this.shadow.set(k, ownedVariable(tf.clone(t)));
  }

  /** ema = ema * decay + (1 - decay) * model, for every float tensor of the model's state dict. */
  update(model: Module): void {
    const current = model.stateDict();
    tf.tidy(() => {
      for (const [k, v] of this.shadow) {
        const cur = current.get(k);
        if (!cur) throw new Error(`ModelEma.update: the model has no "${k}" any more`);
        if (v.dtype === 'float32') v.assign(tf.add(tf.mul(v, this.decay), tf.mul(cur, 1 - this.decay)));
        else v.assign(cur);
      }
    });
  }

  /** The averaged state dict (official keys; live tensors, do not dispose). */
  stateDict(): Map<string, tf.Tensor> {
    return new Map(this.shadow);
  }

  /** Loads a state dict from `stateDict` (values copied; the caller keeps the tensors). */
  loadStateDict(dict: Map<string, tf.Tensor>): void {
    for (const [k, v] of this.shadow) {
      const t = dict.get(k);
      if (!t) throw new Error(`ModelEma.loadStateDict: "${k}" missing`);
      if (t.shape.join() !== v.shape.join())
        throw new RangeError(`ModelEma.loadStateDict: "${k}" has shape [${t.shape}], expected [${v.shape}]`);
      tf.tidy(() => v.assign(tf.cast(t, v.dtype)));
    }
  }

  /** Copies the averaged weights into a model (e.g. an evaluation copy). */
  copyTo(model: Module): void {
    model.loadStateDict(this.shadow);
  }

  dispose(): void {
    for (const v of this.shadow.values()) v.dispose();
    this.shadow.clear();
  }
}

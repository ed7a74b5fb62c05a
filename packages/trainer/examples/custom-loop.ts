import { Generator, initBackend, tf } from '@fiber-vl/tensor-core';
import { fiberConfig } from '@fiber-vl/fusion';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import {
  AdamW,
  ItcQueue,
  StepContext,
  clipGradNorm,
  coarsePretrainObjective,
  coarseSchedule,
  fiberCoarseParamGroups,
} from '@fiber-vl/trainer';

/** A hand-written pre-training loop over a tiny coarse FIBER and random data. */
export async function customLoop(steps = 3) {
  await initBackend({ backend: 'cpu' });
  const config = fiberConfig('tiny', {
    imageSize: 32,
    maxTextLen: 8,
    hiddenSize: 32,
    roberta: { vocabSize: 64, hiddenSize: 32, intermediateSize: 64, maxPositionEmbeddings: 12 },
  });
  // every generator the step draws from: dropout / drop-path, hard negatives, MLM masking
  const rngs = { model: new Generator(0), negatives: new Generator(1), mlm: new Generator(2) };
  const model = new FiberCoarseModel(config, 'pretrain', rngs.model).train();
  const queue = new ItcQueue({ hiddenSize: 32, size: 8, imageSize: 32, maxTextLen: 8 });
  const objective = coarsePretrainObjective({ queue, collator: { vocabSize: 64, maskId: 63, specialIds: [0, 1, 2] } });
  const optimizer = new AdamW(fiberCoarseParamGroups(model.namedParameters(), { lr: 1e-4 }), {
    betas: [0.9, 0.98],
    variant: 'transformers',
  });
  const schedule = coarseSchedule({ maxSteps: steps, warmupSteps: 1, lr: 1e-4 });
  const data = new Generator(3);
  const history: Record<string, number>[] = [];
  for (let step = 0; step < steps; step++) {
    const batch = {
      pixels: data.normal([2, 3, 32, 32]),
      textIds: tf.tensor2d(
        [
          [0, 5, 9, 2, 1, 1, 1, 1],
          [0, 7, 7, 12, 30, 2, 1, 1],
        ],
        [2, 8],
        'int32',
      ),
      textMasks: tf.tensor2d(
        [
          [1, 1, 1, 1, 0, 0, 0, 0],
          [1, 1, 1, 1, 1, 1, 0, 0],
        ],
        [2, 8],
        'int32',
      ),
    };
    const ctx = new StepContext({ params: model.namedParameters(), rngs });
    await objective(model, batch, ctx); // MLM, then ITC (+ queue update), then ITM on hard negatives
    const gradNorm = await clipGradNorm(ctx.grads, 5); // not in the official coarse recipe: your choice
    optimizer.step(ctx.grads, { lrScale: schedule.lr(step) });
    ctx.commit(); // keep the queue update (ctx.rollback() would undo it)
    objective.afterStep?.(model); // rank_output follows itm_score.fc row 1, as in the official model
    history.push({ step: step + 1, ...ctx.losses, gradNorm });
    ctx.dispose();
    tf.dispose([batch.pixels, batch.textIds, batch.textMasks]);
  }
  optimizer.dispose();
  queue.dispose();
  model.dispose();
  return history;
}

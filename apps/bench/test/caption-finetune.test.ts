// The caption fine-tune (micro preset) trains the fused layers and the heads and leaves the layers
// below the fusion as the coarse stage left them.
import { beforeAll, describe, expect, it } from 'vitest';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { Generator, initBackend, tf } from '@fiber-vl/tensor-core';
import { runModelConfig } from '../src/run/coarse-model.js';
import { fineTuneCaption } from '../src/run/coarse-tasks.js';
import { type RunContext, snapshotState } from '../src/run/context.js';
import { RUN_PRESETS } from '../src/run/presets.js';
import { seedContext } from '../src/run/seed.js';

let ctx: RunContext;
beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
  ctx = await seedContext(RUN_PRESETS.micro, 0, 0, () => {});
}, 60_000);

describe('fineTuneCaption', () => {
  it('keeps the layers below the fusion at the coarse weights and trains the rest', async () => {
    const config = runModelConfig(ctx.preset, ctx.tokenizer.vocabSize);
    const coarse = new FiberCoarseModel(config, 'pretrain', new Generator(4));
    const snapshot = snapshotState(coarse);
    coarse.dispose();
    // per parameter the coarse stage had: whether it trained, and how far it moved
    const moved = new Map<string, { trainable: boolean; change: number }>();
    const before = tf.memory().numTensors;
    try {
      const r = await fineTuneCaption(
        {
          ...ctx,
          stages: [],
          curves: [],
          onTrained: async (_ctx, stage, model) => {
            expect(stage).toBe('caption fine-tune');
            for (const [name, p] of model.namedParameters()) {
              const start = snapshot.get(name);
              if (!start) continue;
              const change = tf.tidy(() => tf.max(tf.abs(tf.sub(p.value, start))).dataSync()[0]);
              moved.set(name, { trainable: p.requiresGrad, change });
            }
          },
        },
        config,
        snapshot,
      );
      expect(r.captions).toHaveLength(ctx.preset.evalScenes);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      tf.dispose([...snapshot.values()]);
    }
    const frozen = [...moved].filter(([, m]) => !m.trainable);
    const trained = [...moved].filter(([, m]) => m.trainable);
    // the patch embedding, the first Swin stage and the word embeddings are below every fused pair
    for (const prefix of ['vit_model.patch_embed.', 'vit_model.layers.0.', 'text_transformer.embeddings.'])
      expect(
        frozen.some(([name]) => name.startsWith(prefix)),
        prefix,
      ).toBe(true);
    expect(frozen.filter(([, m]) => m.change !== 0)).toEqual([]);
    // the last Swin stage and the last text layer are fused and train
    for (const prefix of [`vit_model.layers.${config.swin.depths.length - 1}.`, 'mlm_score.'])
      expect(
        trained.some(([name, m]) => name.startsWith(prefix) && m.change > 0),
        prefix,
      ).toBe(true);
  }, 120_000);
});

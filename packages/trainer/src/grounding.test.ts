// The fine-grained grounding objective: one step through a StepContext equals the PyTorch ATSS loss
// step (fixtures/fiber-fine-post/atss-loss-step.safetensors, written by
// scripts/fixtures/make_fine_loss_fixture.py) in its loss and in the gradient of every head output;
// through the Trainer with a real tiny fine model its gradient reaches the backbone, and the tensor
// count stays flat across steps.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator, Module, ModuleList, Parameter, SafetensorsFile, tf } from '@fiber-vl/tensor-core';
import { expectNoTensorGrowth, maxAbsDiff, testBackends, useBackend } from '@fiber-vl/tensor-core/testing';
import { FIBER_ANCHORS, type FineTarget, createFiberFineModel } from '@fiber-vl/heads-fine';
import { fineGroundingObjective, type FineGroundingBatch } from './grounding.js';
import { Trainer } from './loop.js';
import { AdamW } from './optim.js';
import { StepContext } from './step.js';

const FIXTURE = join(__dirname, '../../../fixtures/fiber-fine-post/atss-loss-step.safetensors');
const LEVELS = 5;

/** One FPN level's head outputs as parameters, so that the objective's gradients are theirs. */
class LevelOutputs extends Module {
  bboxReg: Parameter;
  centerness: Parameter;
  dotProductLogits: Parameter;
  constructor(bboxReg: tf.Tensor, centerness: tf.Tensor, dotProductLogits: tf.Tensor) {
    super();
    this.bboxReg = new Parameter(bboxReg);
    this.centerness = new Parameter(centerness);
    this.dotProductLogits = new Parameter(dotProductLogits);
  }
}

/** A "model" whose forward returns the fixture's head outputs whatever the input (the loss half of a step). */
class FixtureHeads extends Module {
  readonly config = { anchors: FIBER_ANCHORS };
  levels: ModuleList<LevelOutputs>;
  constructor(levels: LevelOutputs[]) {
    super();
    this.levels = new ModuleList(levels);
  }
  forward() {
    return {
      head: {
        levels: [...this.levels].map((l) => ({
          bboxReg: l.bboxReg.value,
          centerness: l.centerness.value,
          dotProductLogits: l.dotProductLogits.value,
        })),
      },
    };
  }
}

async function readFixture() {
  const st = await SafetensorsFile.open(FIXTURE);
  const get = async (name: string) => Float64Array.from((await st.readRaw(name)).data, Number);
  const input = (name: string) => st.readTensor(`input.${name}`);
  const levels: LevelOutputs[] = [];
  for (let l = 0; l < LEVELS; l++)
    levels.push(
      new LevelOutputs(
        await input(`bbox_reg.${l}`),
        await input(`centerness.${l}`),
        await input(`dot_product_logits.${l}`),
      ),
    );
  const maskValues = await get('text_mask');
  const B = 3;
  const T = maskValues.length / B;
  const targets: FineTarget[] = [];
  for (let b = 0; b < B; b++)
    targets.push({ boxes: await get(`gt_boxes.${b}`), positiveMap: await get(`positive_map.${b}`) });
  const batch: FineGroundingBatch = {
    pixels: tf.zeros([B, 3, 128, 128]),
    textIds: tf.zeros([B, T], 'int32'),
    textMasks: tf.tensor2d(Array.from(maskValues), [B, T], 'int32'),
    targets,
  };
  const losses = new Map<string, number>();
  for (const k of ['total', 'dot_product_token', 'reg', 'centerness']) losses.set(k, (await get(`loss.${k}`))[0]);
  const grads = new Map<string, Float64Array>();
  for (let l = 0; l < LEVELS; l++)
    for (const name of ['bbox_reg', 'centerness', 'dot_product_logits'])
      grads.set(`levels.${l}.${name}`, await get(`grad.${name}.${l}`));
  await st.close();
  return { model: new FixtureHeads(levels), batch, losses, grads };
}

const { names } = await testBackends();

describe.each(names)('fineGroundingObjective on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('one step equals PyTorch: the total loss and the gradient of every head output', async () => {
    const { model, batch, losses, grads } = await readFixture();
    // kept and read after the step: WebGPU in Node cannot read a tensor synchronously
    const kept = new Map<string, tf.Tensor>();
    const ctx = new StepContext({ params: model.namedParameters(), observer: (name, t) => kept.set(name, t) });
    await fineGroundingObjective()(model, batch, ctx);
    const observed = new Map<string, number>();
    for (const [name, t] of kept) observed.set(name, (await t.data())[0]);
    tf.dispose([...kept.values()]);
    expect(Object.keys(ctx.losses)).toEqual(['atss']);
    const want = losses.get('total')!;
    expect(Math.abs(ctx.losses.atss - want) / Math.max(1, Math.abs(want))).toBeLessThan(1e-5);
    for (const part of ['dot_product_token', 'reg', 'centerness']) {
      const ref = losses.get(part)!;
      expect(Math.abs(observed.get(`atss.${part}`)! - ref) / Math.max(1, Math.abs(ref))).toBeLessThan(1e-5);
    }
    let worst = 0;
    for (const [name, ref] of grads) {
      const grad = ctx.grads.get(name);
      expect(grad, name).toBeDefined();
      worst = Math.max(worst, maxAbsDiff(await grad!.data(), ref));
    }
    expect(worst).toBeLessThan(1e-5);
    ctx.dispose();
    // the same loss through the Trainer (lr 0: the outputs stay as they are) keeps the tensor count flat
    const optimizer = new AdamW([{ params: model.namedParameters(), lr: 0, weightDecay: 0 }]);
    const trainer = new Trainer({ model, objective: fineGroundingObjective(), optimizer });
    const first = await trainer.trainStep([batch]);
    expect(Math.abs(first.loss - want) / want).toBeLessThan(1e-5);
    await expectNoTensorGrowth(() => trainer.trainStep([batch]));
    await expect(() =>
      fineGroundingObjective()(model, { ...batch, targets: batch.targets.slice(1) }, ctx),
    ).rejects.toThrow(/2 targets do not describe one batch/);
    optimizer.dispose();
    model.dispose();
    tf.dispose([batch.pixels, batch.textIds, batch.textMasks]);
  });
});

describe('fineGroundingObjective with a fine model', () => {
  beforeAll(() => useBackend('cpu'));

  it('trains the backbone through the head and does not leak across steps', async () => {
    const model = createFiberFineModel(
      'tiny',
      {
        swin: { embedDim: 16, depths: [1, 1, 1, 1], numHeads: [1, 1, 2, 2], dropPathRate: 0 },
        roberta: {
          vocabSize: 40,
          hiddenSize: 32,
          numHiddenLayers: 2,
          numAttentionHeads: 2,
          intermediateSize: 64,
          hiddenDropoutProb: 0,
          attentionProbsDropoutProb: 0,
        },
        numFuseBlock: 1,
        anchors: { sizes: [32, 64, 128, 256, 512] },
      },
      new Generator(3),
    );
    const L = model.config.backbone.maxQueryLen;
    const g = new Generator(5);
    const positiveMap = (tokens: number[]) => Array.from({ length: L }, (_, t) => (tokens.includes(t) ? 1 : 0));
    const batch: FineGroundingBatch = {
      pixels: g.normal([2, 3, 64, 64]),
      textIds: tf.tensor2d(
        [0, 1].map((b) => Array.from({ length: L }, (_, t) => (t < 6 ? (t * 7 + b) % 40 : 1))),
        [2, L],
        'int32',
      ),
      textMasks: tf.tensor2d(
        [0, 1].map(() => Array.from({ length: L }, (_, t) => (t < 6 ? 1 : 0))),
        [2, L],
        'int32',
      ),
      targets: [
        { boxes: [8, 10, 40, 44], positiveMap: positiveMap([1, 2]) },
        { boxes: [4, 4, 30, 28, 34, 30, 60, 62], positiveMap: [...positiveMap([1]), ...positiveMap([3, 4])] },
      ],
    };
    const params = model.namedParameters().filter(([, p]) => p.requiresGrad);
    const optimizer = new AdamW([{ params, lr: 1e-3, weightDecay: 0.01 }]);
    const trainer = new Trainer({ model, objective: fineGroundingObjective(), optimizer, clipGradNorm: 1 });
    let grads: string[] = [];
    const r = await trainer.trainStep([batch], { onGradients: (gs) => void (grads = [...gs.keys()]) });
    expect(r.skipped).toBe(false);
    expect(r.losses.atss).toBeGreaterThan(0);
    expect(grads.some((k) => k.startsWith('fusion_backbone.backbone.body.'))).toBe(true);
    expect(grads.some((k) => k.startsWith('fusion_backbone.language_backbone.'))).toBe(true);
    expect(grads.some((k) => k.startsWith('rpn.head.'))).toBe(true);
    await expectNoTensorGrowth(() => trainer.trainStep([batch]));
    optimizer.dispose();
    model.dispose();
    tf.dispose([batch.pixels, batch.textIds, batch.textMasks]);
  }, 60_000);
});

// Fine-grained checkpoints: .pth / safetensors round trips, the official DDP prefix, coarse-to-fine
// initialisation by the official suffix matching, and errors that name what does not fit.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator, bufferSource, serializeTorchCheckpoint, type tf } from '@fiber-vl/tensor-core';
import { useBackend } from '@fiber-vl/tensor-core/testing';
import { FiberCoarseBackbone, fiberConfig } from '@fiber-vl/fusion';
import { loadFiberFineCheckpoint, serializeFiberFineCheckpoint } from './checkpoint.js';
import { createFiberFineModel } from './model.js';

const tiny = (seed: number) => createFiberFineModel('tiny', { roberta: { vocabSize: 50 } }, new Generator(seed));
const same = async (a: Map<string, tf.Tensor>, b: Map<string, tf.Tensor>) => {
  for (const [k, t] of a) expect(Array.from(await b.get(k)!.data()), k).toEqual(Array.from(await t.data()));
};

describe('fine-grained checkpoints', () => {
  beforeAll(() => useBackend('cpu'));

  it.each(['pth', 'safetensors'] as const)('%s round trip: every tensor back, exactly', async (format) => {
    const a = tiny(1);
    const b = tiny(2);
    const r = await loadFiberFineCheckpoint(b, serializeFiberFineCheckpoint(a, format));
    expect([r.fromCoarse, r.missingKeys, r.unexpectedKeys, r.skipped]).toEqual([false, [], [], []]);
    expect(r.loaded).toBe(a.stateDict().size);
    await same(a.stateDict(), b.stateDict());
    a.dispose();
    b.dispose();
  });

  it('accepts a DDP (module.) state dict and refuses another model, naming the keys', async () => {
    const a = tiny(3);
    const ddp = new Map([...a.stateDict()].map(([k, t]) => [`module.${k}`, t]));
    const b = tiny(4);
    await loadFiberFineCheckpoint(b, bufferSource(serializeTorchCheckpoint(ddp, { wrapKey: 'model' })));
    await same(a.stateDict(), b.stateDict());
    const other = createFiberFineModel('tiny', { roberta: { vocabSize: 70 } });
    await expect(loadFiberFineCheckpoint(other, serializeFiberFineCheckpoint(a))).rejects.toThrow(
      /word_embeddings\.weight: model \[70, 64\], checkpoint .* \[50, 64\]/,
    );
    [a, b, other].forEach((m) => m.dispose());
  });

  it('reads bytes as it reads a path: the format from the first bytes, objects that are not tensors kept inert', async () => {
    const model = tiny(6);
    for (const file of ['lightning.ckpt', 'unexpected_global.pth']) {
      const path = join(__dirname, '../../../fixtures/torch', file);
      const fromPath = await loadFiberFineCheckpoint(model, path).catch((e: Error) => e.message);
      const fromBytes = await loadFiberFineCheckpoint(model, new Uint8Array(readFileSync(path))).catch(
        (e: Error) => e.message,
      );
      expect(typeof fromPath, file).toBe('string'); // neither is this model's checkpoint
      expect(
        String(fromBytes)
          .replaceAll('<bytes>', path)
          .replace(/^checkpoint:/, `${path}:`),
        file,
      ).toBe(fromPath);
    }
    model.dispose();
  });

  it('initialises the backbone from a coarse-grained model (official suffix matching); the head stays', async () => {
    const coarse = new FiberCoarseBackbone(
      fiberConfig('tiny', { roberta: { vocabSize: 50 }, swin: { windowSize: 4 } }),
      new Generator(5),
    );
    const fine = tiny(6);
    const headBefore = Array.from(await fine.rpn.head.bias0.value.data());
    const r = await loadFiberFineCheckpoint(
      fine,
      serializeTorchCheckpoint(coarse.stateDict(), { wrapKey: 'state_dict' }),
    );
    expect(r.fromCoarse).toBe(true);
    const fineDict = fine.stateDict();
    const coarseDict = coarse.stateDict();
    await same(
      new Map([
        [
          'fusion_backbone.backbone.body.layers.2.blocks.1.attn.qkv_text_i2t.weight',
          coarseDict.get('vit_model.layers.2.blocks.1.attn.qkv_text_i2t.weight')!,
        ],
      ]),
      fineDict,
    );
    await same(
      new Map([
        [
          'fusion_backbone.language_backbone.body.model.encoder.layer.3.crossattention_t2i.self.key.weight',
          coarseDict.get('text_transformer.encoder.layer.3.crossattention_t2i.self.key.weight')!,
        ],
      ]),
      fineDict,
    );
    // not in the coarse model: the FPN, the head, the stage output norms
    expect(r.missingKeys.some((k) => k.startsWith('rpn.head.'))).toBe(true);
    expect(r.missingKeys).toContain('fusion_backbone.backbone.body.norm1.weight');
    expect(r.missingKeys.filter((k) => k.startsWith('fusion_backbone.language_backbone'))).toEqual([]);
    expect(Array.from(await fine.rpn.head.bias0.value.data())).toEqual(headBefore);
    // coarse-only tensors (its heads' transforms, gates of unfused layers, the attention masks) are not used
    expect(r.unexpectedKeys).toContain('cross_modal_text_transform.weight');
    coarse.dispose();
    fine.dispose();
  });
});

// The models the main job trained, written for the demo page (apps/demo) and for anyone who wants to
// run them: one safetensors file per exported stage (official key names; the model's config, heads,
// answer vocabulary and pre-processing sizes in its metadata, so that the file alone is enough),
// the tokenizer as vocab.json + merges.txt, a few test images of the world with a question and a
// caption each, and models.json listing all of it. The first training seed writes them, each model
// as soon as its stage has trained (RunContext.onTrained), so a run that fails late keeps the others.
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { FiberFineModel } from '@fiber-vl/heads-fine';
import { mergesToText } from '@fiber-vl/roberta';
import { type Module, saveSafetensors } from '@fiber-vl/tensor-core';
import { encodePng } from '@fiber-vl/trainer';
import { SPECIAL_IDS, maskId } from './coarse-model.js';
import type { RunContext } from './context.js';
import { vqaExamples } from './data.js';

/** The trained stages that are written, by stage name, and their files. */
export const EXPORTED_STAGES: Readonly<Record<string, string>> = {
  'coarse pre-training': 'coarse-pretrain.safetensors',
  'vqa fine-tune': 'coarse-vqa.safetensors',
  'caption fine-tune': 'coarse-caption.safetensors',
  'fine-grained pre-training (from coarse)': 'fine.safetensors',
};

/** Test images written beside the models (images/test-<k>.png). */
export const EXPORTED_IMAGES = 4;

/** Safetensors metadata keys of an exported model (all values are JSON text except kind). */
export const MODEL_METADATA = {
  /** 'coarse' (FiberCoarseModel) or 'fine' (FiberFineModel) */
  kind: 'fiber-vl.kind',
  /** FiberCoarseConfig or FiberFineModelConfig */
  config: 'fiber-vl.config',
  /** coarse: CoarseHeadsConfig */
  heads: 'fiber-vl.heads',
  /** coarse with a VQA head: the answer of each label, in label order */
  answers: 'fiber-vl.answers',
  /** coarse: { beamSize, bos, pad, eos, mask }; fine: { minSize, maxSize } (FinePipelineOptions) */
  pipeline: 'fiber-vl.pipeline',
} as const;

export interface ExportedModel {
  file: string;
  stage: string;
  kind: 'coarse' | 'fine';
  bytes: number;
}

/** DIR/models.json */
export interface ExportedModels {
  preset: string;
  seed: number;
  tokenizer: { vocab: string; merges: string };
  models: ExportedModel[];
  /** Detection classes of the world; held-out ones were never boxed in training. */
  classes: { name: string; heldOut: boolean }[];
  images: { file: string; question: string; answer: string; caption: string }[];
}

function metadataOf(ctx: RunContext, model: Module): Record<string, string> | undefined {
  const json = JSON.stringify;
  if (model instanceof FiberCoarseModel) {
    const special = { ...SPECIAL_IDS, mask: maskId(ctx.tokenizer) };
    return {
      [MODEL_METADATA.kind]: 'coarse',
      [MODEL_METADATA.config]: json(model.config),
      [MODEL_METADATA.heads]: json(model.heads),
      ...(model.heads.vqaLabels > 0 && { [MODEL_METADATA.answers]: json(ctx.world.answerVocabulary) }),
      [MODEL_METADATA.pipeline]: json({ beamSize: ctx.preset.beamSize, ...special }),
    };
  }
  if (model instanceof FiberFineModel) {
    // the sizes the fine stage trains and evaluates at (fine-stage.ts)
    const size = ctx.preset.fineImageSize;
    return {
      [MODEL_METADATA.kind]: 'fine',
      [MODEL_METADATA.config]: json(model.config),
      [MODEL_METADATA.pipeline]: json({ minSize: size, maxSize: Math.round(size * 1.67) }),
    };
  }
  return undefined;
}

/**
 * The RunContext.onTrained hook that writes the exported stages' models into `dir` (created), with
 * the tokenizer, the test images and models.json (rewritten after each model).
 */
export function modelExporter(dir: string): NonNullable<RunContext['onTrained']> {
  const written: ExportedModel[] = [];
  let shared: Omit<ExportedModels, 'models'> | undefined;
  return async (ctx, stage, model) => {
    const file = EXPORTED_STAGES[stage];
    const metadata = file && metadataOf(ctx, model);
    if (!metadata) return;
    mkdirSync(join(dir, 'tokenizer'), { recursive: true });
    mkdirSync(join(dir, 'images'), { recursive: true });
    shared ??= writeShared(ctx, dir);
    await saveSafetensors(join(dir, file), model.stateDict(), { format: 'pt', source: 'fiber-vl', ...metadata });
    const bytes = statSync(join(dir, file)).size;
    written.push({ file, stage, kind: metadata[MODEL_METADATA.kind] === 'fine' ? 'fine' : 'coarse', bytes });
    const index: ExportedModels = { ...shared, models: written };
    writeFileSync(join(dir, 'models.json'), `${JSON.stringify(index, null, 2)}\n`);
    ctx.log(`[seed ${ctx.seed}] ${stage}: model written to ${join(dir, file)}`);
  };
}

/** The tokenizer files and the test images; returns their part of models.json. */
function writeShared(ctx: RunContext, dir: string): Omit<ExportedModels, 'models'> {
  const { world, tokenizer } = ctx;
  writeFileSync(join(dir, 'tokenizer', 'vocab.json'), JSON.stringify(Object.fromEntries(tokenizer.vocab)));
  writeFileSync(join(dir, 'tokenizer', 'merges.txt'), mergesToText(tokenizer.merges()));
  const n = Math.min(EXPORTED_IMAGES, world.size('test'));
  const images = Array.from({ length: n }, (_, k) => {
    const file = `images/test-${k}.png`;
    writeFileSync(join(dir, file), encodePng(world.image('test', k)));
    const [q] = vqaExamples(world, 'test', [k]);
    return { file, question: q.question, answer: q.answer, caption: world.sample('test', k).captions[0].text };
  });
  return {
    preset: ctx.preset.name,
    seed: ctx.seed,
    tokenizer: { vocab: 'tokenizer/vocab.json', merges: 'tokenizer/merges.txt' },
    classes: world.classes.map((c) => ({ name: c.name, heldOut: c.heldOut })),
    images,
  };
}

// Checkpoints for `fiber-bench eval`: the official files (Lightning `.ckpt`, maskrcnn_benchmark
// `.pth`) or the project's safetensors. The model is built from what the checkpoint holds: its
// kind (coarse `vit_model.*` / fine-grained `fusion_backbone.*`, `rpn.*`), its size (the preset whose
// Swin and text widths it has), its heads (coarse), its fusion version (fine: v3 has `norm_i2t_i`)
// and its vocabulary; then the package loaders load it strictly.
import { openSync, readSync, closeSync } from 'node:fs';
import {
  FIBER_FINE_PRESETS,
  FIBER_PRESETS,
  fiberConfig,
  loadFiberCheckpoint,
  type FiberPresetName,
} from '@fiber-vl/fusion';
import { FiberCoarseModel, type CoarseHeadsSelection } from '@fiber-vl/heads-coarse';
import { createFiberFineModel, loadFiberFineCheckpoint, type FiberFineModel } from '@fiber-vl/heads-fine';
import { maxInputLength, ROBERTA_BASE, type ByteLevelBpeTokenizer } from '@fiber-vl/roberta';
import { fiberCoarseWindowSize } from '@fiber-vl/swin';
import { SafetensorsFile, TorchCheckpoint, skipInit, type tf } from '@fiber-vl/tensor-core';
import { nonFiniteMessage, nonFiniteTensors } from '../finite.js';
import { EvalInputError, fail } from './errors.js';
import { requireFile } from './data.js';

export type Shapes = Map<string, number[]>;
export type CheckpointKind = 'coarse' | 'fine';

/** Tensor names and shapes of a checkpoint, without reading the tensors. */
export async function checkpointShapes(path: string): Promise<Shapes> {
  requireFile(path, 'checkpoint');
  const head = Buffer.alloc(2);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 2, 0);
  } finally {
    closeSync(fd);
  }
  try {
    if (head[0] === 0x50 && head[1] === 0x4b) {
      const ckpt = await TorchCheckpoint.open(path);
      try {
        return new Map([...ckpt.stateDict()].map(([k, ref]) => [k, ref.shape]));
      } finally {
        await ckpt.close();
      }
    }
    const file = await SafetensorsFile.open(path);
    try {
      return new Map(file.keys().map((k) => [k, file.info(k).shape]));
    } finally {
      await file.close();
    }
  } catch (e) {
    if (e instanceof EvalInputError) throw e;
    return fail(
      `checkpoint: ${path} is neither a torch.save checkpoint (.ckpt / .pth) nor safetensors (${(e as Error).message})`,
    );
  }
}

const unprefixed = (shapes: Shapes): string[] =>
  [...shapes.keys()].map((k) => (k.startsWith('module.') ? k.slice(7) : k));

/** Which FIBER model a state dict belongs to, from its key prefixes. */
export function checkpointKind(shapes: Shapes): CheckpointKind | undefined {
  const keys = unprefixed(shapes);
  if (keys.some((k) => k.startsWith('rpn.') || k.startsWith('fusion_backbone.'))) return 'fine';
  if (keys.some((k) => k.startsWith('vit_model.') || k.startsWith('text_transformer.'))) return 'coarse';
  return undefined;
}

/** The shape of the first key that ends with `suffix`. */
const shapeOf = (shapes: Shapes, suffix: string): number[] | undefined => {
  for (const [k, s] of shapes) if (k === suffix || k.endsWith(`.${suffix}`)) return s;
  return undefined;
};

/** The preset with this Swin embedding width and text width. */
function presetOf(
  shapes: Shapes,
  path: string,
  presets: Record<FiberPresetName, { swin: { embedDim: number }; roberta: { hiddenSize: number } }>,
): FiberPresetName {
  const patch = shapeOf(shapes, 'patch_embed.proj.weight')?.[0];
  const hidden = shapeOf(shapes, 'embeddings.word_embeddings.weight')?.[1];
  if (patch === undefined || hidden === undefined)
    fail(`${path}: no Swin patch embedding or text word embeddings in the checkpoint`);
  const found = (Object.keys(presets) as FiberPresetName[]).find(
    (p) => presets[p].swin.embedDim === patch && presets[p].roberta.hiddenSize === hidden,
  );
  if (!found) {
    const known = Object.entries(presets).map(([n, p]) => `${n} ${p.swin.embedDim}/${p.roberta.hiddenSize}`);
    fail(`${path}: Swin width ${patch} and text width ${hidden} match no FIBER preset (${known.join(', ')})`);
  }
  return found!;
}

/** Vocabulary size and position table length of the checkpoint's text embeddings. */
function textSizes(shapes: Shapes): { vocabSize: number; maxPositionEmbeddings: number } {
  return {
    vocabSize: shapeOf(shapes, 'embeddings.word_embeddings.weight')![0],
    maxPositionEmbeddings:
      shapeOf(shapes, 'embeddings.position_embeddings.weight')?.[0] ?? ROBERTA_BASE.maxPositionEmbeddings,
  };
}

/** The heads a coarse checkpoint has (the official task checkpoints each have their own set). */
export function coarseHeadsOf(shapes: Shapes): CoarseHeadsSelection {
  const has = (k: string) => shapes.has(k) || shapes.has(`module.${k}`);
  return {
    itc: has('temp'),
    itm: has('itm_score.fc.weight'),
    mlm: has('mlm_score.bias'),
    vqaLabels: (shapes.get('vqa_classifier.3.weight') ?? shapes.get('module.vqa_classifier.3.weight'))?.[0] ?? 0,
    nlvr2: has('nlvr2_classifier.0.weight'),
    caption: has('cross_modal_att_layers.0.weight'),
  };
}

export function headsText(h: CoarseHeadsSelection): string {
  const names = [
    h.itc && 'itc',
    h.itm && 'itm',
    h.mlm && 'mlm',
    h.vqaLabels && `vqa (${h.vqaLabels} answers)`,
    h.nlvr2 && 'nlvr2',
    h.caption && 'caption',
  ];
  return names.filter(Boolean).join(', ') || 'none';
}

const OFFICIAL = {
  coarse:
    'fiber_vqa.ckpt, fiber_nlvr2.ckpt, fiber_coco_caption.ckpt, fiber_{coco,f30k}_irtr_{itc,itm}.ckpt, ' +
    'fiber_pretrain.ckpt',
  fine: 'fiber_coarse_then_fine.pth, fiber_coco.pth, fiber_refcoco*.pth',
};

/** Fails unless the checkpoint is of `kind`; `task` and `wanted` name what the task needs. */
export function requireKind(path: string, shapes: Shapes, kind: CheckpointKind, task: string, wanted: string): void {
  const got = checkpointKind(shapes);
  if (got === kind) return;
  const what =
    got === 'fine'
      ? 'a fine-grained (detection / grounding) checkpoint'
      : got === 'coarse'
        ? 'a coarse-grained checkpoint'
        : 'not a FIBER checkpoint (no vit_model.*, text_transformer.* or fusion_backbone.* keys)';
  fail(`${path}: ${what}; --task ${task} needs ${wanted} (official: ${OFFICIAL[kind]})`);
}

export interface CoarseSetup {
  model: FiberCoarseModel;
  path: string;
  preset: FiberPresetName;
  heads: CoarseHeadsSelection;
  imageSize: number;
  maxTextLen: number;
  /** Relative-position tables resized from the checkpoint's resolution. */
  resized: number;
  description: string;
}

export interface CoarseRequest {
  /** The official image side of the task for FIBER-B (384 or 576); smaller presets use their own. */
  officialImageSize: number;
  imageSize?: number;
  /** Default 50 (the fine-tunes'), capped to what the checkpoint's position table allows. */
  maxTextLen?: number;
}

/**
 * Refuses loaded weights that hold NaN or Infinity: such a model evaluates without a word (empty
 * captions, every metric 0). Disposes the model when it refuses.
 */
async function requireFinite(path: string, model: { stateDict(): Map<string, tf.Tensor>; dispose(): void }) {
  const bad = await nonFiniteTensors(model);
  if (!bad.length) return;
  model.dispose();
  fail(
    `${path}: ${nonFiniteMessage(bad)}; the checkpoint is broken (fiber-bench inspect --verify counts them per tensor)`,
  );
}

/** Builds the coarse model the checkpoint describes, at the task's resolution, and loads it strictly. */
export async function loadCoarse(path: string, shapes: Shapes, req: CoarseRequest): Promise<CoarseSetup> {
  const preset = presetOf(shapes, path, FIBER_PRESETS);
  const heads = coarseHeadsOf(shapes);
  const text = textSizes(shapes);
  const longest = maxInputLength({ ...text, padTokenId: ROBERTA_BASE.padTokenId });
  const maxTextLen = req.maxTextLen ?? Math.min(50, longest);
  if (maxTextLen > longest)
    fail(`--max-text-len ${maxTextLen}: the checkpoint's position table allows at most ${longest} tokens`);
  const imageSize = req.imageSize ?? (preset === 'base' ? req.officialImageSize : FIBER_PRESETS[preset].imageSize);
  let config;
  try {
    config = fiberConfig(preset, { imageSize, maxTextLen, roberta: text });
  } catch (e) {
    return fail(`${path}: no FIBER-${preset} at ${imageSize} px with ${maxTextLen} tokens (${(e as Error).message})`);
  }
  // the strict load replaces every tensor: skipInit spares the random draws (FIBER-B with the
  // pre-training heads: 0.4-1.8 s instead of 7-10, cpu backend)
  const model = skipInit(() => new FiberCoarseModel(config, heads));
  let resized: number;
  try {
    resized = (await loadFiberCheckpoint(model, path, { strict: true })).resized.length;
  } catch (e) {
    model.dispose();
    return fail(
      `${path}: does not load into the coarse FIBER-${preset} it looks like (${(e as Error).message.split('\n')[0]})`,
    );
  }
  await requireFinite(path, model);
  model.eval();
  const window = fiberCoarseWindowSize(imageSize);
  const description =
    `coarse FIBER-${preset}, heads ${headsText(heads)}; ${imageSize} px (window ${window}), ${maxTextLen} tokens` +
    (resized ? `; ${resized} relative-position tables resized to window ${window}` : '');
  return { model, path, preset, heads, imageSize, maxTextLen, resized, description };
}

export interface FineSetup {
  model: FiberFineModel;
  path: string;
  preset: FiberPresetName;
  version: 'v2' | 'v3';
  minSize: number;
  maxSize: number;
  description: string;
}

export interface FineRequest {
  /** The version of the official checkpoints of the task (said when the checkpoint's differs). */
  officialVersion: 'v2' | 'v3';
  minSize?: number;
  maxSize?: number;
  maxQueryLen?: number;
}

/** Builds the fine-grained model the checkpoint describes (preset, v2 / v3 from its keys) and loads it strictly. */
export async function loadFine(path: string, shapes: Shapes, req: FineRequest): Promise<FineSetup> {
  const preset = presetOf(shapes, path, FIBER_FINE_PRESETS);
  const version: 'v2' | 'v3' = [...shapes.keys()].some((k) => k.includes('.norm_i2t_i.')) ? 'v3' : 'v2';
  const text = textSizes(shapes);
  const minSize = req.minSize ?? (preset === 'base' ? 800 : FIBER_FINE_PRESETS[preset].swin.imageSize);
  const maxSize = req.maxSize ?? (preset === 'base' ? 1333 : Math.round((minSize * 1333) / 800));
  if (!(minSize > 0 && maxSize >= minSize)) fail(`--min-size ${minSize} / --max-size ${maxSize}: need 0 < min <= max`);
  let model: FiberFineModel;
  try {
    const options = { version, roberta: text, ...(req.maxQueryLen ? { maxQueryLen: req.maxQueryLen } : {}) };
    model = skipInit(() => createFiberFineModel(preset, options)); // the strict load replaces every tensor
  } catch (e) {
    return fail(`${path}: no fine-grained FIBER-${preset} ${version} (${(e as Error).message})`);
  }
  try {
    await loadFiberFineCheckpoint(model, path, { strict: true });
  } catch (e) {
    model.dispose();
    return fail(
      `${path}: does not load into the fine-grained FIBER-${preset} ${version} it looks like ` +
        `(${(e as Error).message.split('\n')[0]})`,
    );
  }
  await requireFinite(path, model);
  model.eval();
  const note =
    version !== req.officialVersion ? ` (the official checkpoints of this task are ${req.officialVersion})` : '';
  const description =
    `fine-grained FIBER-${preset} ${version}${note}, detected from the checkpoint's keys (v3 has norm_i2t_i); ` +
    `images: shorter side ${minSize}, longer <= ${maxSize}; ${model.config.backbone.maxQueryLen}-token prompts`;
  return { model, path, preset, version, minSize, maxSize, description };
}

/** The tokenizer must have the checkpoint's vocabulary. */
export function checkTokenizer(tokenizer: ByteLevelBpeTokenizer, dir: string, vocabSize: number): void {
  if (tokenizer.vocabSize !== vocabSize) {
    fail(
      `--tokenizer ${dir}: ${tokenizer.vocabSize} tokens, but the checkpoint's text embeddings have ${vocabSize}; ` +
        `use the tokenizer the model was trained with (roberta-base for the official weights)`,
    );
  }
}

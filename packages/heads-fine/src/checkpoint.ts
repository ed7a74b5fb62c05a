// Fine-grained FIBER checkpoints in and out. In: the official `.pth` (maskrcnn_benchmark saves
// {"model": state_dict, ...}; a bare state dict and `module.` (DDP) prefixes are accepted), a
// coarse-grained checkpoint to start from (fiber_coarse_init.pt: `vit_model.*` / `text_transformer.*`
// keys), or safetensors. Keys are matched the way the official loader does
// (model_serialization.align_and_update_state_dicts): the coarse prefixes are dropped, every model
// key takes the longest loaded key it ends with, and tensors whose shape differs are skipped and
// reported. Out: `.pth` that torch.load and the official code read, or safetensors, official keys.
import {
  bufferSource,
  disposeOutput,
  serializeSafetensors,
  serializeTorchCheckpoint,
  type tf,
  type ByteSource,
  type LoadStateDictResult,
} from '@fiber-vl/tensor-core';
import { readCheckpointStateDict } from '@fiber-vl/fusion';
import type { FiberFineModel } from './model.js';

export interface FineAlignment {
  /** model key -> the loaded tensor it takes. */
  matched: Map<string, tf.Tensor>;
  /** model key -> loaded key, for keys matched through a suffix (not equal names). */
  renamed: Map<string, string>;
  /** Model keys a loaded key matched but with another shape (kept as they are, as the official loader does). */
  skipped: { key: string; from: string; model: number[]; loaded: number[] }[];
  /** Model keys no loaded key matched. */
  missing: string[];
  /** Loaded keys no model key took. */
  unused: string[];
}

/** Whether a state dict comes from the coarse-grained model (FIBERTransformerSS). */
export function isCoarseStateDict(keys: Iterable<string>): boolean {
  for (const k of keys) if (k.startsWith('vit_model.') || k.startsWith('text_transformer.')) return true;
  return false;
}

/** The official align_and_update_state_dicts over key names and shapes (no tensors copied). */
export function alignFineStateDict(
  model: Map<string, { shape: number[] }>,
  loaded: Map<string, tf.Tensor>,
): FineAlignment {
  // strip_prefix_if_present('module.'), then the coarse prefixes
  const all = [...loaded.keys()];
  const ddp = all.length > 0 && all.every((k) => k.startsWith('module.'));
  const renamedLoaded = new Map<string, { key: string; t: tf.Tensor }>();
  for (const [k, t] of loaded) {
    const name = (ddp ? k.slice('module.'.length) : k).replace('text_transformer.', '').replace('vit_model.', '');
    renamedLoaded.set(name, { key: k, t });
  }
  const loadedKeys = [...renamedLoaded.keys()].sort();
  const out: FineAlignment = { matched: new Map(), renamed: new Map(), skipped: [], missing: [], unused: [] };
  const used = new Set<string>();
  for (const key of [...model.keys()].sort()) {
    let best: string | undefined;
    for (const l of loadedKeys) if (key.endsWith(l) && (!best || l.length > best.length)) best = l;
    if (!best) {
      out.missing.push(key);
      continue;
    }
    const { key: from, t } = renamedLoaded.get(best)!;
    const want = model.get(key)!.shape;
    if (want.join() !== t.shape.join()) {
      out.skipped.push({ key, from, model: want, loaded: t.shape });
      continue;
    }
    out.matched.set(key, t);
    used.add(best);
    if (from !== key) out.renamed.set(key, from);
  }
  out.unused = loadedKeys.filter((l) => !used.has(l)).map((l) => renamedLoaded.get(l)!.key);
  return out;
}

export interface FineLoadResult extends LoadStateDictResult {
  /** Loaded from a coarse-grained checkpoint (the head and FPN stay as initialised). */
  fromCoarse: boolean;
  /** Matched keys whose shapes differ (not loaded). */
  skipped: FineAlignment['skipped'];
  /** How many model tensors were loaded. */
  loaded: number;
}

/** A path, a ByteSource or bytes: the format from the first bytes (fusion's reader, Lightning objects kept as inert stubs). */
function readStateDict(source: string | ByteSource | Uint8Array): Promise<Map<string, tf.Tensor>> {
  return readCheckpointStateDict(source instanceof Uint8Array ? bufferSource(source) : source);
}

/**
 * Loads a fine-grained checkpoint (or a coarse one to start fine-grained training from) into the
 * model. `strict` (default: true for fine-grained checkpoints, false for coarse ones) throws when a
 * model tensor finds no loaded tensor of its shape, naming them.
 */
export async function loadFiberFineCheckpoint(
  model: FiberFineModel,
  source: string | ByteSource | Uint8Array,
  { strict }: { strict?: boolean } = {},
): Promise<FineLoadResult> {
  const loaded = await readStateDict(source);
  try {
    const fromCoarse = isCoarseStateDict(loaded.keys());
    const ours = model.stateDict();
    const a = alignFineStateDict(ours, loaded);
    const name = typeof source === 'string' ? source : 'checkpoint';
    if (strict ?? !fromCoarse) {
      const problems = [
        ...a.missing.slice(0, 10).map((k) => `missing ${k}`),
        ...a.skipped
          .slice(0, 10)
          .map((s) => `${s.key}: model [${s.model.join(', ')}], checkpoint ${s.from} [${s.loaded.join(', ')}]`),
      ];
      if (problems.length) {
        throw new Error(
          `${name}: not a checkpoint of this fine-grained model (${a.missing.length} missing, ${a.skipped.length} with another shape): ${problems.join('; ')}`,
        );
      }
    }
    model.loadStateDict(a.matched, { strict: false });
    return { fromCoarse, skipped: a.skipped, missingKeys: a.missing, unexpectedKeys: a.unused, loaded: a.matched.size };
  } finally {
    disposeOutput(loaded);
  }
}

/** The model's state dict with the official keys as `.pth` bytes ({"model": ...}, torch.load reads it) or safetensors bytes. */
export function serializeFiberFineCheckpoint(model: FiberFineModel, format: 'pth' | 'safetensors' = 'pth'): Uint8Array {
  const dict = model.stateDict();
  return format === 'pth'
    ? serializeTorchCheckpoint(dict, { wrapKey: 'model' })
    : serializeSafetensors(dict, { format: 'pt', source: 'fiber-vl' });
}

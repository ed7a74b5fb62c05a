// Official FIBER checkpoints in and out, without Python: Lightning `.ckpt`, `.pth` (torch.save zip
// + safe pickle subset) or `.safetensors`. On the way in, the ITC queue buffers (training state)
// are dropped and the Swin relative-position tables are resized when the checkpoint was trained at
// another resolution (384 -> 576), as the official loader does. On the way out, the state dict is
// written as safetensors with the official key names.
import {
  SafetensorsFile,
  TorchCheckpoint,
  loadSafetensors,
  openFileSource,
  saveSafetensors,
  tf,
  type ByteSource,
  type Module,
  type LoadStateDictResult,
} from '@fiber-vl/tensor-core';
import { adaptSwinStateDict } from '@fiber-vl/swin';
import type { FiberCoarseBackbone } from './backbone.js';

/** Training-only buffers of FIBERTransformerSS that the official loader drops. */
export const FIBER_QUEUE_BUFFERS = [
  'image_queue',
  'text_queue',
  'image_input_queue',
  'text_input_queue',
  'text_input_mask_queue',
  'queue_ptr',
  'queue_total',
];

type Format = 'safetensors' | 'torch' | 'unknown';

/**
 * A file's format from its first bytes. Safetensors start with a little-endian u64 header length
 * (whose first byte may be anything, 0x80 or "P" included), then "{". A torch zip starts with
 * "PK\x03\x04" and has its compression method (0 or 8) at byte 8; a legacy pickle starts with
 * 0x80 and a protocol byte, and its byte 8 is never "{" either.
 */
async function sniffFormat(source: ByteSource): Promise<Format> {
  if (source.size < 9) return 'unknown';
  const head = await source.read(0, 9);
  const zip = head[0] === 0x50 && head[1] === 0x4b && head[2] === 3 && head[3] === 4;
  if (head[8] === 0x7b && !zip) return 'safetensors';
  return zip || head[0] === 0x80 ? 'torch' : 'unknown';
}

/**
 * Reads the state dict of a .ckpt / .pth / .bin / .safetensors file (tensors as float32 / int32 /
 * bool), or of a sharded safetensors `*.index.json`: a path (Node), or a ByteSource such as
 * `blobSource(file)` in a browser. The format comes from the first bytes, so a safetensors file
 * named `.bin` or a torch.save file named `.safetensors` reads as what it is; only bytes that are
 * neither go by the extension (for the error of the reader the name promises). Objects around the
 * state dict that are not tensors (a Lightning checkpoint's callbacks or hyper-parameter classes)
 * are kept as inert stubs rather than refused; they are never executed. On any failure the tensors
 * already read are disposed and the file is closed.
 */
export async function readCheckpointStateDict(
  source: string | ByteSource,
  filter: (name: string) => boolean = () => true,
): Promise<Map<string, tf.Tensor>> {
  if (typeof source === 'string') {
    if (source.endsWith('.json')) return loadSafetensors(source, filter);
    // the path's reader opens it again, so that a file that cannot be opened (or a path in a
    // browser) fails with that reader's typed error naming the path
    let format: Format = 'unknown';
    const file = await openFileSource(source).catch(() => undefined);
    if (file) {
      try {
        format = await sniffFormat(file);
      } finally {
        await file.close?.();
      }
    }
    if (format === 'safetensors' || (format === 'unknown' && source.endsWith('.safetensors')))
      return loadSafetensors(source, filter);
    const ckpt = await TorchCheckpoint.open(source, { unknownGlobals: 'stub' });
    try {
      return await ckpt.readStateDict(filter);
    } finally {
      await ckpt.close();
    }
  }
  let format = await sniffFormat(source);
  if (format === 'unknown') format = source.name.endsWith('.safetensors') ? 'safetensors' : 'torch';
  const reader =
    format === 'safetensors'
      ? await SafetensorsFile.fromSource(source)
      : await TorchCheckpoint.fromSource(source, { unknownGlobals: 'stub' });
  try {
    return reader instanceof SafetensorsFile ? await reader.readAll(filter) : await reader.readStateDict(filter);
  } finally {
    await reader.close();
  }
}

export interface FiberLoadResult extends LoadStateDictResult {
  /** Tables that were resized from another resolution. */
  resized: string[];
}

/**
 * Loads an official FIBER checkpoint into a FiberCoarseBackbone (or a model built on it, with
 * heads). `strict` (default true) refuses missing / unexpected keys, after the queue buffers and,
 * when tables were resized, the rebuilt index / mask buffers are set aside.
 */
export async function loadFiberCheckpoint(
  model: FiberCoarseBackbone & Module,
  source: string | ByteSource,
  { strict = true }: { strict?: boolean } = {},
): Promise<FiberLoadResult> {
  const dict = await readCheckpointStateDict(source, (k) => !FIBER_QUEUE_BUFFERS.includes(k));
  try {
    // in a tidy scope: tables resized before a later one fails are disposed with the scope
    let adapted: ReturnType<typeof adaptSwinStateDict> | undefined;
    const created = tf.tidy(() => (adapted = adaptSwinStateDict(model.vitModel, dict, 'vit_model.')).created);
    try {
      return { ...model.loadStateDict(adapted!.dict, { strict }), resized: adapted!.resized };
    } finally {
      tf.dispose(created);
    }
  } finally {
    tf.dispose([...dict.values()]);
  }
}

/** Writes the model's state dict with the official key names, for the PyTorch code to continue from. */
export async function exportFiberCheckpoint(
  model: Module,
  path: string,
  metadata: Record<string, string> = {},
): Promise<void> {
  await saveSafetensors(path, model.stateDict(), { format: 'pt', source: 'fiber-vl', ...metadata });
}

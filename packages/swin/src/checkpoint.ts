// Loading Swin checkpoints trained at another resolution, as FIBER's swin_adapt_position_encoding
// does: every relative_position_bias_table is resized bicubically from (2w-1)^2 to (2w'-1)^2 rows
// (w = image / 32), and the relative_position_index / attn_mask buffers of the checkpoint are
// dropped (the model rebuilds its own).
import { StateDictError, interpolateBicubic, tf } from '@fiber-vl/tensor-core';
import type { SwinTransformer } from './model.js';

/** Resizes one table [(2w-1)^2, heads] to [(2w'-1)^2, heads] (torch bicubic, align_corners=False). */
export function resizeRelativePositionTable(table: tf.Tensor, toSide: number): tf.Tensor {
  if (table.rank !== 2 || (table.shape[1] ?? 0) < 1)
    throw new RangeError(`relative_position_bias_table has shape [${table.shape}], not [(2w-1)^2, heads]`);
  const [rows, heads] = table.shape;
  const side = Math.round(Math.sqrt(rows));
  // 2w - 1 for a window w >= 1: odd and at least 1
  if (side * side !== rows || side % 2 !== 1)
    throw new RangeError(`relative_position_bias_table has ${rows} rows, not (2w-1)^2 for a window w >= 1`);
  if (!(Number.isInteger(toSide) && toSide % 2 === 1))
    throw new RangeError(`cannot resize relative_position_bias_table to ${toSide}^2 rows: the side must be 2w-1`);
  if (side === toSide) return tf.clone(table);
  return tf.tidy(() => {
    const maps = tf.reshape(tf.transpose(table), [heads, side, side]);
    const resized = interpolateBicubic(maps, [toSide, toSide]); // [heads, S', S']
    return tf.reshape(tf.transpose(resized, [1, 2, 0]), [toSide * toSide, heads]);
  });
}

/**
 * A checkpoint's relative_position_index must be the one Swin builds for the window: it indexes
 * the bias table, and a value out of range fails deep in a gather (or reads garbage on WebGPU).
 * Tensors of another shape are left to loadStateDict, which names the mismatch.
 */
function checkIndex(key: string, got: tf.Tensor, own: tf.Tensor): void {
  if (got.shape.join() !== own.shape.join()) return;
  const [a, b] = [got.dataSync(), own.dataSync()];
  const i = a.findIndex((v, j) => v !== b[j]);
  if (i >= 0)
    throw new StateDictError(
      `${key}: element ${i} is ${a[i]}, where the index Swin builds for this window has ${b[i]}; the checkpoint is corrupt`,
    );
}

/**
 * Returns a copy of `dict` ready for `model` when the checkpoint's window differs: tables resized to
 * the model's, buffers dropped. Tensors that are not changed are shared with `dict`; the new ones
 * are returned in `created` (dispose them after loading).
 */
export function adaptSwinStateDict(
  model: SwinTransformer,
  dict: Map<string, tf.Tensor>,
  prefix = '',
): { dict: Map<string, tf.Tensor>; created: tf.Tensor[]; resized: string[] } {
  const ours = model.stateDict();
  const out = new Map<string, tf.Tensor>();
  const created: tf.Tensor[] = [];
  const resized: string[] = [];
  const windowChanged = [...dict].some(
    ([k, t]) => k.endsWith('relative_position_bias_table') && ours.get(k.slice(prefix.length))?.shape[0] !== t.shape[0],
  );
  for (const [k, t] of dict) {
    if (windowChanged && (k.endsWith('relative_position_index') || k.endsWith('attn_mask'))) continue;
    const target = ours.get(k.slice(prefix.length));
    if (k.endsWith('relative_position_index') && target) checkIndex(k, t, target);
    if (k.endsWith('relative_position_bias_table') && target && target.shape[0] !== t.shape[0]) {
      let r: tf.Tensor;
      try {
        r = resizeRelativePositionTable(t, Math.round(Math.sqrt(target.shape[0])));
      } catch (e) {
        const expected = `[${target.shape}]`;
        const message = `${k}: ${(e as Error).message} (the model has ${expected})`;
        throw new StateDictError(message, [], [], [{ key: k, expected, got: `[${t.shape}]` }]);
      }
      created.push(r);
      resized.push(k);
      out.set(k, r);
    } else {
      out.set(k, t);
    }
  }
  if (windowChanged) {
    // the model keeps its own index and mask buffers
    for (const [k, t] of ours)
      if (k.endsWith('relative_position_index') || k.endsWith('attn_mask')) out.set(prefix + k, t);
  }
  return { dict: out, created, resized };
}

/** loadStateDict with FIBER's resolution adaptation (checkpoint keys optionally under `prefix`, e.g. "vit_model."). */
export function loadSwinCheckpoint(
  model: SwinTransformer,
  dict: Map<string, tf.Tensor>,
  { prefix = '', strict = true }: { prefix?: string; strict?: boolean } = {},
) {
  const adapted = adaptSwinStateDict(model, dict, prefix);
  const stripped = new Map<string, tf.Tensor>();
  for (const [k, t] of adapted.dict) {
    if (prefix && !k.startsWith(prefix)) continue;
    stripped.set(k.slice(prefix.length), t);
  }
  try {
    return { ...model.loadStateDict(stripped, { strict }), resized: adapted.resized };
  } finally {
    tf.dispose(adapted.created);
  }
}

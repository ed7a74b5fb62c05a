// Loading Swin checkpoints trained at another resolution, as FIBER's swin_adapt_position_encoding
// does: every relative_position_bias_table is resized bicubically from (2w-1)^2 to (2w'-1)^2 rows
// (w = image / 32), and the relative_position_index / attn_mask buffers of the checkpoint are
// dropped (the model rebuilds its own).
import { interpolateBicubic, tf } from '@fiber-vl/tensor-core';
import type { SwinTransformer } from './model.js';

/** Resizes one table [(2w-1)^2, heads] to [(2w'-1)^2, heads] (torch bicubic, align_corners=False). */
export function resizeRelativePositionTable(table: tf.Tensor, toSide: number): tf.Tensor {
  const [rows, heads] = table.shape;
  const side = Math.round(Math.sqrt(rows));
  if (side * side !== rows)
    throw new RangeError(`relative_position_bias_table has ${rows} rows, not a square (2w-1)^2`);
  if (side === toSide) return tf.clone(table);
  return tf.tidy(() => {
    const maps = tf.reshape(tf.transpose(table), [heads, side, side]);
    const resized = interpolateBicubic(maps, [toSide, toSide]); // [heads, S', S']
    return tf.reshape(tf.transpose(resized, [1, 2, 0]), [toSide * toSide, heads]);
  });
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
    if (k.endsWith('relative_position_bias_table') && target && target.shape[0] !== t.shape[0]) {
      const r = resizeRelativePositionTable(t, Math.round(Math.sqrt(target.shape[0])));
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

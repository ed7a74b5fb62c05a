// Helpers the tasks share: token tensors, stored-result checks, float32 vectors as base64, numbers
// as printed.
import type { ByteLevelBpeTokenizer } from '@fiber-vl/roberta';
import { tf } from '@fiber-vl/tensor-core';
import type { ImageRef } from '@fiber-vl/trainer';
import { fileStamp, tokenizerStamp } from '../data.js';
import type { EvalContext } from '../context.js';

/** Token ids and attention mask [B, L] of texts, padded to `maxLength` (truncated past it). */
export function textInputs(
  tokenizer: ByteLevelBpeTokenizer,
  texts: string[],
  maxLength: number,
): { ids: tf.Tensor2D; mask: tf.Tensor2D } {
  const enc = tokenizer.encodeBatch(texts, { maxLength, padding: 'max_length' });
  return {
    ids: tf.tensor2d(
      enc.map((e) => e.ids),
      [texts.length, maxLength],
      'int32',
    ),
    mask: tf.tensor2d(
      enc.map((e) => e.attentionMask),
      [texts.length, maxLength],
      'int32',
    ),
  };
}

/** The stored partial result, checked field by field (a damaged file is an error, not a wrong number). */
export function record(value: unknown, key: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new TypeError(`partial result ${key}: not an object`);
  return value as Record<string, unknown>;
}

export function numberField(o: Record<string, unknown>, field: string, key: string): number {
  const v = o[field];
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new TypeError(`partial result ${key}: "${field}" is not a number`);
  return v;
}

export function stringField(o: Record<string, unknown>, field: string, key: string): string {
  const v = o[field];
  if (typeof v !== 'string') throw new TypeError(`partial result ${key}: "${field}" is not a string`);
  return v;
}

export function numbersField(o: Record<string, unknown>, field: string, key: string): number[] {
  const v = o[field];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new TypeError(`partial result ${key}: "${field}" is not a list of numbers`);
  }
  return v;
}

/** A list of boxes (each `width` numbers). */
export function boxesField(o: Record<string, unknown>, field: string, key: string, width = 4): number[][] {
  const v = o[field];
  if (
    !Array.isArray(v) ||
    !v.every(
      (b) => Array.isArray(b) && b.length === width && b.every((x) => typeof x === 'number' && Number.isFinite(x)),
    )
  ) {
    throw new TypeError(`partial result ${key}: "${field}" is not a list of ${width}-number boxes`);
  }
  return v;
}

/** float32 values as base64 (exact and compact in the partial results). */
export function f32ToBase64(values: Float32Array): string {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');
}

export function base64ToF32(text: string, key: string): Float32Array {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.byteLength % 4) throw new TypeError(`partial result ${key}: not float32 data`);
  const out = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** The parts one after the other in one float32 array. */
export function concatF32(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Percent with two decimals, as the papers print. */
export const pct = (x: number): string => (100 * x).toFixed(2);

/** The fingerprint fields every task shares (what must not change between a run and its --resume). */
export function baseFingerprint(ctx: EvalContext, extra: Record<string, unknown>): Record<string, unknown> {
  const o = ctx.opts;
  return {
    task: o.task,
    checkpoint: fileStamp(o.checkpoint),
    tokenizer: o.tokenizer ? tokenizerStamp(o.tokenizer) : o.tokenizer,
    ...extra,
  };
}

/** Ids of the top score of each row of a [rows, cols] matrix (lowest index on ties). */
export function argmaxRows(data: Float32Array, cols: number): number[] {
  const out: number[] = [];
  for (let r = 0; r * cols < data.length; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (data[r * cols + c] > data[r * cols + best]) best = c;
    out.push(best);
  }
  return out;
}

/** An image ref read from a file (records of in-memory sources can hold pixels instead). */
export function refOf(image: ImageRef): string {
  if (typeof image !== 'string') throw new TypeError('expected an image path in a record read from a file');
  return image;
}

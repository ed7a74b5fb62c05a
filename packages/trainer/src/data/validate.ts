// Field access that names what is wrong, and the checks every reader shares: text, spans, boxes.
import type { Box, DetectionRecord, GroundingRecord, Span } from './records.js';
import { DataSkipError, type Skip } from './skips.js';

export type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A value as a message shows it: numbers as JS prints them (1e309 parses to Infinity, which JSON.stringify shows as null). */
export function shown(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  return JSON.stringify(v) ?? String(v);
}

export function field(obj: unknown, key: string, where: string): unknown {
  if (!isObject(obj)) throw new DataSkipError('malformed-record', `${where}: expected an object, got ${shown(obj)}`);
  if (!(key in obj)) throw new DataSkipError('malformed-record', `${where}: missing field "${key}"`);
  return obj[key];
}

export function str(obj: unknown, key: string, where: string): string {
  const v = field(obj, key, where);
  if (typeof v !== 'string')
    throw new DataSkipError('malformed-record', `${where}: field "${key}" must be a string, got ${shown(v)}`);
  return v;
}

export function num(obj: unknown, key: string, where: string): number {
  const v = field(obj, key, where);
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new DataSkipError('malformed-record', `${where}: field "${key}" must be a number, got ${shown(v)}`);
  return v;
}

export function arr(obj: unknown, key: string, where: string): unknown[] {
  const v = field(obj, key, where);
  if (!Array.isArray(v)) throw new DataSkipError('malformed-record', `${where}: field "${key}" must be an array`);
  return v;
}

/** The whole-file json's top-level array `key` (a wrong file is an error for the caller, not a skip). */
export function topArray(json: unknown, key: string, file: string): unknown[] {
  if (!isObject(json) || !Array.isArray(json[key]))
    throw new TypeError(`${file}: expected a json object with an array "${key}"`);
  return json[key] as unknown[];
}

/**
 * Refuses a whole-file list (COCO images or categories, VQA questions or annotations) in which two
 * entries have one `field` (default "id"), naming both: records are joined by these ids, and a
 * repeated one would give one entry's boxes or answers to another.
 */
export function requireUnique(list: readonly unknown[], name: string, key: string, field = 'id'): void {
  const first = new Map<number, number>();
  list.forEach((x, i) => {
    // an entry without a finite number there is the per-record checks' to skip, not a repeat
    const id = isObject(x) ? x[field] : undefined;
    if (typeof id !== 'number' || !Number.isFinite(id)) return;
    const j = first.get(id);
    if (j !== undefined)
      throw new TypeError(`${name}: ${key}[${i}] has the ${field} ${id} of ${key}[${j}]; ids must be unique`);
    first.set(id, i);
  });
}

/**
 * The longest text a record may hold, in UTF-16 units: far past any caption, question or grounding
 * text (RoBERTa reads at most 512 tokens), short of what exhausts memory where a text is handled
 * whole (a 150M-character caption aborted Node while a tokenizer was trained on the data).
 */
export const MAX_TEXT_LENGTH = 1 << 20;

export function requireText(text: string, where: string): string {
  if (text.length > MAX_TEXT_LENGTH)
    throw new DataSkipError(
      'malformed-record',
      `${where}: a text of ${text.length} characters, more than the ${MAX_TEXT_LENGTH} a record may hold`,
    );
  if (text.trim() === '') throw new DataSkipError('empty-text', `${where}: empty text`);
  return text;
}

/**
 * [start, end) pairs of integers inside the text, as JS string (UTF-16) indices. With `codePoints`
 * the file counts as Python does (MDETR's `tokens_positive`: code points), and a text with
 * characters outside the BMP (emoji) has its spans moved to the UTF-16 indices of the same characters.
 */
export function spansOf(v: unknown, text: string, where: string, { codePoints = false } = {}): Span[] {
  if (!Array.isArray(v))
    throw new DataSkipError('malformed-record', `${where}: spans must be an array of [start, end]`);
  // utf16[i]: where code point i starts (and, at the end, the text's length)
  let utf16: number[] | undefined;
  if (codePoints && /[\uD800-\uDFFF]/.test(text)) {
    utf16 = [];
    for (let i = 0; i < text.length; i += text.codePointAt(i)! > 0xffff ? 2 : 1) utf16.push(i);
    utf16.push(text.length);
  }
  const length = utf16 ? utf16.length - 1 : text.length;
  return v.map((s) => {
    if (!Array.isArray(s) || s.length !== 2 || !s.every((x) => Number.isInteger(x))) {
      throw new DataSkipError('malformed-record', `${where}: span ${JSON.stringify(s)} is not [start, end]`);
    }
    const [a, b] = s as [number, number];
    if (a < 0 || b <= a || b > length) {
      throw new DataSkipError(
        'span-outside-text',
        `${where}: span [${a}, ${b}) is not inside the ${length}-character text`,
      );
    }
    return utf16 ? [utf16[a], utf16[b]] : [a, b];
  });
}

/** COCO [x, y, w, h] (or [x1, y1, x2, y2]) as a continuous xyxy Box; a malformed value is a skip. */
export function boxOf(v: unknown, format: 'xywh' | 'xyxy', where: string): Box {
  if (!Array.isArray(v) || v.length !== 4 || !v.every((x) => typeof x === 'number')) {
    throw new DataSkipError('malformed-record', `${where}: box ${JSON.stringify(v)} is not 4 numbers`);
  }
  const [a, b, c, d] = v as number[];
  return format === 'xywh' ? [a, b, a + c, b + d] : [a, b, c, d];
}

/** What to do with a bad box: skip the whole record (grounding: the text points at it), or drop the box. */
export type BoxPolicy = 'skip-record' | 'drop-box';

/**
 * Checks boxes against an image size: a non-finite or empty box is 'degenerate-box', one with no
 * overlap 'box-outside-image'; both follow `policy`. Boxes partly outside are clipped to the image.
 * Returns the clipped boxes kept, their indices, and the drops.
 */
export function checkBoxes(
  boxes: readonly Box[],
  size: { width: number; height: number } | undefined,
  policy: BoxPolicy,
  where: string,
): { boxes: Box[]; keep: number[]; dropped: Skip[] } {
  const out: Box[] = [];
  const keep: number[] = [];
  const dropped: Skip[] = [];
  boxes.forEach((box, i) => {
    let [x1, y1, x2, y2] = box;
    let bad: Skip | undefined;
    if (!box.every(Number.isFinite) || x2 <= x1 || y2 <= y1) {
      bad = { reason: 'degenerate-box', detail: `${where}: box ${i} [${box.join(', ')}] has no area` };
    } else if (size && (x1 >= size.width || y1 >= size.height || x2 <= 0 || y2 <= 0)) {
      bad = {
        reason: 'box-outside-image',
        detail: `${where}: box ${i} [${box.join(', ')}] is outside the ${size.width}x${size.height} image`,
      };
    }
    if (bad) {
      if (policy === 'skip-record') throw new DataSkipError(bad.reason, bad.detail);
      dropped.push(bad);
      return;
    }
    if (size) {
      x1 = Math.max(0, x1);
      y1 = Math.max(0, y1);
      x2 = Math.min(size.width, x2);
      y2 = Math.min(size.height, y2);
    }
    out.push([x1, y1, x2, y2]);
    keep.push(i);
  });
  return { boxes: out, keep, dropped };
}

export const pick = <T>(xs: readonly T[] | undefined, keep: readonly number[]): T[] | undefined =>
  xs && keep.map((i) => xs[i]);

/**
 * checkBoxes on a grounding or detection record: the kept boxes with their spans / categories /
 * labels; a record left without boxes is skipped as 'no-valid-boxes'.
 */
export function checkRecordBoxes<R extends GroundingRecord | DetectionRecord>(
  record: R,
  size: { width: number; height: number } | undefined,
  policy: BoxPolicy,
  where: string,
): { record: R; dropped: Skip[] } {
  const { boxes, keep, dropped } = checkBoxes(record.boxes, size, policy, where);
  if (boxes.length === 0) {
    const why = dropped.length ? `all ${dropped.length} boxes were dropped (${dropped[0].reason})` : 'no boxes';
    throw new DataSkipError('no-valid-boxes', `${where}: ${why}`);
  }
  if (dropped.length === 0 && boxes.every((b, i) => b.every((v, k) => v === record.boxes[i][k])))
    return { record, dropped };
  const out =
    record.kind === 'grounding'
      ? { ...record, boxes, spans: pick(record.spans, keep)!, categories: pick(record.categories, keep) }
      : { ...record, boxes, labels: pick(record.labels, keep)! };
  if (out.kind === 'grounding' && out.categories === undefined) delete out.categories;
  return { record: out as R, dropped };
}

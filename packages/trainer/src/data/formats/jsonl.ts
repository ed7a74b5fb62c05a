// JSON-lines sources: NLVR2's `train.json` / `dev.json` and a generic
// {image, text[, boxes, phrases]} format. Lines come from memory or from a byte index of a file,
// so a large file is never held whole: only 12 bytes per line of offsets.
import type { ByteSource } from '@fiber-vl/tensor-core';
import type { Box, CaptionRecord, GroundingRecord, Nlvr2Record, Span } from '../records.js';
import { DataSkipError } from '../skips.js';
import {
  checkIndex,
  entryOf,
  failedEntry,
  idText,
  type Parsed,
  type RecordSource,
  readerOptions,
  withId,
} from '../source.js';
import type { ImageStore } from '../images.js';
import { boxOf, type BoxPolicy, checkRecordBoxes, field, isObject, requireText, spansOf, str } from '../validate.js';

/** Non-blank lines of a text, by index; `lineNumber` is the 1-based line in the file, for messages. */
export interface LineSource {
  readonly name: string;
  readonly length: number;
  line(index: number): string | Promise<string>;
  lineNumber(index: number): number;
  close?(): Promise<void>;
}

const isBlank = (s: string) => s.trim() === '';

/** Lines of a text in memory (CRLF or LF). */
export function textLines(text: string, name = '<jsonl>'): LineSource {
  const lines: string[] = [];
  const numbers: number[] = [];
  text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .forEach((l, i) => {
      const line = l.endsWith('\r') ? l.slice(0, -1) : l;
      if (isBlank(line)) return;
      lines.push(line);
      numbers.push(i + 1);
    });
  return { name, length: lines.length, line: (i) => lines[i], lineNumber: (i) => numbers[i] };
}

class Growable {
  data: Float64Array;
  length = 0;
  constructor(capacity = 1024) {
    this.data = new Float64Array(capacity);
  }
  push(v: number) {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
}

/**
 * Indexes the non-blank lines of a file (a Node file via `fileSource`, a browser File via
 * `blobSource`) in one pass of `chunkSize` reads; each line is read again when asked for.
 */
export async function indexLines(source: ByteSource, { chunkSize = 1 << 20 } = {}): Promise<LineSource> {
  const starts = new Growable();
  const ends = new Growable();
  const numbers = new Growable();
  let lineStart = 0;
  let lineNo = 1;
  let blank = true;
  for (let pos = 0; pos < source.size; pos += chunkSize) {
    const chunk = await source.read(pos, Math.min(chunkSize, source.size - pos));
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (b === 0x0a) {
        if (!blank) {
          starts.push(lineStart);
          ends.push(pos + i);
          numbers.push(lineNo);
        }
        lineStart = pos + i + 1;
        lineNo++;
        blank = true;
      } else if (b !== 0x20 && b !== 0x09 && b !== 0x0d) blank = false;
    }
  }
  if (!blank) {
    starts.push(lineStart);
    ends.push(source.size);
    numbers.push(lineNo);
  }
  // fatal: a line that is not UTF-8 is skipped, as Python's json reading refuses it, rather than
  // read with U+FFFD in place of its bytes
  const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  return {
    name: source.name,
    length: starts.length,
    async line(i) {
      const bytes = await source.read(starts.data[i], ends.data[i] - starts.data[i]);
      let decoded: string;
      try {
        decoded = text.decode(bytes);
      } catch (e) {
        // the decoder's refusal is a TypeError; anything else (a line past V8's longest string) says why
        const why = e instanceof TypeError ? 'not UTF-8 text' : (e as Error).message;
        throw new DataSkipError('malformed-record', `${source.name}:${numbers.data[i]}: ${why}`);
      }
      return decoded.replace(/^\uFEFF/, '').replace(/\r$/, '');
    },
    lineNumber: (i) => numbers.data[i],
    close: source.close ? () => source.close!() : undefined,
  };
}

/** `jsonlSource`'s options. */
export interface JsonlSourceOptions {
  /** Resolves the string image refs of the records. */
  images?: ImageStore;
  /**
   * The id of a line that is JSON but that `parse` rejects, so that the skip names the entry
   * (`SourceEntry.id`, the loader's `SkipEvent.id`): a string, or a finite number's decimal text;
   * anything else (a promise too), or an error it throws, gives none. Default: the object's `id`
   * field, else its `identifier` field (NLVR2's id). A line without either has none: its skip
   * names the line (`genericRecord` would have given its record the line's index).
   */
  idOf?(obj: unknown, index: number): string | number | undefined;
}

/** A rejected JSON line's default id: its `id` field, else NLVR2's `identifier`. */
const lineId = (obj: unknown) => (isObject(obj) ? (idText(obj.id) ?? idText(obj.identifier)) : undefined);

/**
 * Records parsed from json lines: a line that is not json, or that `parse` rejects, is a skip
 * naming the line (and, for a json line, carrying its id: see `JsonlSourceOptions.idOf`). The third
 * argument is the image store, or options with it and `idOf`.
 */
export function jsonlSource<R extends GroundingRecord | CaptionRecord | Nlvr2Record>(
  lines: LineSource,
  parse: (obj: unknown, where: string, index: number) => Parsed<R>,
  options?: ImageStore | JsonlSourceOptions,
): RecordSource<R> {
  const { images, idOf = lineId } = readerOptions(options, `jsonlSource(${lines.name})`);
  const source: RecordSource<R> = {
    name: lines.name,
    length: lines.length,
    images,
    async get(index) {
      checkIndex(source, index);
      const where = `${lines.name}:${lines.lineNumber(index)}`;
      let line: string;
      try {
        line = await lines.line(index);
      } catch (e) {
        if (!(e instanceof DataSkipError)) throw e;
        return failedEntry(e);
      }
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch (e) {
        return failedEntry(new DataSkipError('malformed-record', `${where}: not json (${(e as Error).message})`));
      }
      const entry = entryOf(() => parse(obj, where, index));
      return entry.ok ? entry : withId(entry, () => idOf(obj, index));
    },
    close: lines.close ? () => lines.close!() : undefined,
  };
  return source;
}

/**
 * One NLVR2 line (`{"identifier": "train-10171-0-0", "sentence", "label": "True", "directory": 79, ...}`)
 * with its images named as ViLT's write_nlvr2.py reads them, relative to the NLVR2 root:
 * `images/train/<directory>/<pair>-img0.png` for train, `<split>/<pair>-img0.png` for dev / test1.
 */
export function nlvr2Record(obj: unknown, where: string): Nlvr2Record {
  const identifier = str(obj, 'identifier', where);
  const parts = identifier.split('-');
  if (parts.length < 3)
    throw new DataSkipError(
      'malformed-record',
      `${where}: identifier "${identifier}" is not <split>-<set>-<pair>-<sentence>`,
    );
  const pair = parts.slice(0, -1).join('-');
  const split = parts[0];
  const label = field(obj, 'label', where);
  const truth =
    typeof label === 'boolean'
      ? label
      : typeof label === 'string'
        ? { true: true, false: false }[label.toLowerCase()]
        : undefined;
  if (truth === undefined)
    throw new DataSkipError('malformed-record', `${where}: label ${JSON.stringify(label)} is not "True" or "False"`);
  let dir = `${split}/`;
  if (split === 'train') {
    const d = field(obj, 'directory', where);
    if (typeof d !== 'number' && typeof d !== 'string')
      throw new DataSkipError('malformed-record', `${where}: "directory" must be a number or string`);
    dir = `images/train/${d}/`;
  }
  const text = requireText(str(obj, 'sentence', where), where);
  return {
    kind: 'nlvr2',
    id: identifier,
    images: [`${dir}${pair}-img0.png`, `${dir}${pair}-img1.png`],
    text,
    label: truth,
  };
}

export interface GenericJsonlOptions {
  /** How `boxes` are written: [x1, y1, x2, y2] (default) or COCO [x, y, w, h]. */
  boxFormat?: 'xyxy' | 'xywh';
  /** Prepended to `image`. */
  imagePrefix?: string;
  /** A degenerate box skips the record (default) or is dropped with its phrases. */
  boxPolicy?: BoxPolicy;
  /**
   * 'required': a line without `boxes` is skipped ('no-valid-boxes') instead of read as a caption
   * record, for a grounding stage that cannot use captions. Default 'optional'.
   */
  boxes?: 'optional' | 'required';
}

/**
 * The generic line: `{"image": "a.jpg", "text": "...", "id"?: "...", "boxes"?: [[x1, y1, x2, y2], ...],
 * "phrases"?: [[start, end], ...] or [[[start, end], ...], ...]}` with one phrase entry (a span or a
 * list of spans, character offsets into text) per box. Without boxes it is a caption record.
 */
export function genericRecord(
  options: GenericJsonlOptions = {},
): (obj: unknown, where: string, index: number) => Parsed<CaptionRecord | GroundingRecord> {
  const format = options.boxFormat ?? 'xyxy';
  return (obj, where, index) => {
    const image = (options.imagePrefix ?? '') + str(obj, 'image', where);
    const text = requireText(str(obj, 'text', where), where);
    const id =
      isObject(obj) && (typeof obj.id === 'string' || typeof obj.id === 'number') ? String(obj.id) : String(index);
    if (!isObject(obj) || obj.boxes === undefined) {
      if (options.boxes === 'required')
        throw new DataSkipError('no-valid-boxes', `${where}: no "boxes" (a caption line, where boxes are required)`);
      return { kind: 'caption', id, image, text };
    }
    const rawBoxes = obj.boxes;
    const rawPhrases = obj.phrases;
    if (!Array.isArray(rawBoxes) || !Array.isArray(rawPhrases) || rawBoxes.length !== rawPhrases.length) {
      throw new DataSkipError('malformed-record', `${where}: "boxes" and "phrases" must be arrays of the same length`);
    }
    const boxes: Box[] = rawBoxes.map((b, i) => boxOf(b, format, `${where} boxes[${i}]`));
    const spans: Span[][] = rawPhrases.map((p, i) => {
      const one = Array.isArray(p) && p.length === 2 && p.every((x) => typeof x === 'number');
      return spansOf(one ? [p] : p, text, `${where} phrases[${i}]`);
    });
    const record: GroundingRecord = { kind: 'grounding', id, image, text, boxes, spans };
    return checkRecordBoxes(record, undefined, options.boxPolicy ?? 'skip-record', where);
  };
}

// A RecordSource is an indexable list of entries: a record, or the reason it is unusable. Readers
// of whole-json formats hold their entries in memory; JSONL and tar sources read an entry from disk
// when it is asked for, through an index of byte offsets.
import type { DataRecord } from './records.js';
import { DataSkipError, skipOf, type Skip } from './skips.js';
import type { ImageStore } from './images.js';

/**
 * An entry: a record, with the boxes the reader dropped (scope 'box' skips) and, where its refs
 * need another store than its source's (concatSources), that store; or why it is unusable.
 */
export type SourceEntry<R extends DataRecord = DataRecord> =
  | { ok: true; record: R; dropped?: Skip[]; images?: ImageStore }
  | {
      ok: false;
      skip: Skip;
      /**
       * The id the record would have had, where the reader can tell it (COCO-style and VQA files,
       * Karpathy images, webdataset samples, a mapped record): a skip report can name the entry.
       */
      id?: string;
    };

export interface RecordSource<R extends DataRecord = DataRecord> {
  /** Names the source in skip reports (usually its file). */
  readonly name: string;
  readonly length: number;
  get(index: number): SourceEntry<R> | Promise<SourceEntry<R>>;
  /** Resolves the string image refs of this source's records (webdataset shards carry their own images). */
  readonly images?: ImageStore;
  close?(): Promise<void>;
}

export function checkIndex(source: { name: string; length: number }, index: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= source.length) {
    throw new RangeError(`${source.name}: index ${index} outside [0, ${source.length})`);
  }
}

/** `lazySource`'s options. */
export interface LazySourceOptions {
  /** Resolves the string image refs of the records. */
  images?: ImageStore;
  /**
   * The id of entry `index`, asked only when `parse(index)` throws, so that the skip names the
   * entry (`SourceEntry.id`, the loader's `SkipEvent.id`): a string, or a finite number's decimal
   * text. Synchronous and best effort: anything else it returns (a promise too), or an error it
   * throws, leaves the skip without an id.
   */
  idOf?(index: number): string | number | undefined;
}

/**
 * Entries computed by `parse(i)` on demand (a custom reader); a DataSkipError it throws becomes a
 * skip entry and any other error a 'malformed-record' skip naming the field. The fourth argument
 * is the image store, or options with it and `idOf`.
 */
export function lazySource<R extends DataRecord>(
  name: string,
  length: number,
  parse: (index: number) => Parsed<R>,
  options?: ImageStore | LazySourceOptions,
): RecordSource<R> {
  const { images, idOf } = readerOptions(options, `lazySource(${name})`);
  const source: RecordSource<R> = {
    name,
    length,
    images,
    get(index) {
      checkIndex(source, index);
      const entry = entryOf(() => parse(index));
      return entry.ok || !idOf ? entry : withId(entry, () => idOf(index));
    },
  };
  return source;
}

/** Whether a reader's last argument is the image store itself (the older form) rather than options. */
const isImageStore = (v: ImageStore | object | null | undefined): v is ImageStore =>
  typeof v === 'object' && v !== null && 'locate' in v && typeof v.locate === 'function';

/**
 * A reader's last argument, the image store itself (the older form) or options with it and `idOf`,
 * as options; an `idOf` that is not a function is a TypeError naming the reader (`where`).
 */
export function readerOptions<F extends (...args: never[]) => unknown>(
  options: ImageStore | { images?: ImageStore; idOf?: F } | null | undefined,
  where: string,
): { images?: ImageStore; idOf?: F } {
  const o: { images?: ImageStore; idOf?: F } = isImageStore(options) ? { images: options } : (options ?? {});
  if (o.idOf !== undefined && typeof o.idOf !== 'function')
    throw new TypeError(`${where}: idOf must be a function, got ${typeof o.idOf}`);
  return o;
}

/**
 * A failed entry with the id `idOf()` gives, where it gives one: a string or a finite number. An
 * error it throws, or a promise it returns (its rejection caught), gives none.
 */
export function withId<E extends { ok: false }>(entry: E, idOf: () => unknown): E & { id?: string } {
  let id: string | undefined;
  try {
    const v = idOf();
    if (v instanceof Promise) v.catch(() => {});
    else id = idText(v);
  } catch {
    // best effort: the skip is reported either way, by the reason and detail of the parse
  }
  return id === undefined ? entry : { ...entry, id };
}

/** What a reader's parse step returns: the record, or the record and the boxes it dropped. */
export type Parsed<R extends DataRecord> = R | { record: R; dropped: Skip[] };

/** `parse`'s record, or the skip entry of what it threw (carrying `id`, the entry's id where known). */
export function entryOf<R extends DataRecord>(parse: () => Parsed<R>, id?: string): SourceEntry<R> {
  try {
    const v = parse();
    if ('kind' in v) return { ok: true, record: v };
    return v.dropped.length ? { ok: true, record: v.record, dropped: v.dropped } : { ok: true, record: v.record };
  } catch (e) {
    return failedEntry(e, id);
  }
}

/**
 * The skip entry for an error thrown while parsing: a DataSkipError keeps its reason, others are
 * 'malformed-record'; `id` names the entry where the reader could read its id.
 */
export function failedEntry(e: unknown, id?: string): { ok: false; skip: Skip; id?: string } {
  const skip = skipOf(e);
  return {
    ok: false,
    skip: e instanceof DataSkipError ? skip : { reason: 'malformed-record', detail: skip.detail },
    ...(id === undefined ? {} : { id }),
  };
}

/** An id field as a record id: a string, or a finite number's decimal text; anything else is no id. */
export function idText(v: unknown): string | undefined {
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)) ? String(v) : undefined;
}

/** Records already in memory (a generated world, a test). */
export function arraySource<R extends DataRecord>(
  name: string,
  records: readonly R[],
  images?: ImageStore,
): RecordSource<R> {
  return lazySource(name, records.length, (i) => records[i], images);
}

/** The record type of a source. */
export type RecordOf<S> = S extends RecordSource<infer R> ? R : never;

/** Several sources one after another (e.g. VQA train + val, as FIBER fine-tunes on both). */
export function concatSources<S extends readonly RecordSource<DataRecord>[]>(
  name: string,
  sources: S,
): RecordSource<RecordOf<S[number]>> {
  const starts: number[] = [];
  let total = 0;
  for (const s of sources) {
    starts.push(total);
    total += s.length;
  }
  const owner = (index: number) => {
    let lo = 0;
    let hi = sources.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= index) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const source: RecordSource = {
    name,
    length: total,
    get(index) {
      checkIndex(source, index);
      const k = owner(index);
      const part = sources[k];
      const entry = part.get(index - starts[k]);
      const withStore = (e: SourceEntry): SourceEntry =>
        e.ok && !e.images && part.images ? { ...e, images: part.images } : e;
      return entry instanceof Promise ? entry.then(withStore) : withStore(entry);
    },
    async close() {
      await Promise.all(sources.map((s) => s.close?.()));
    },
  };
  // Each entry comes from one of the parts, so its record is of that part's type.
  return source as RecordSource<RecordOf<S[number]>>;
}

/** Each record through `fn` (e.g. detectionToGrounding); a DataSkipError from `fn` skips the record. */
export function mapSource<R extends DataRecord, S extends DataRecord>(
  source: RecordSource<R>,
  fn: (record: R, index: number) => Parsed<S>,
): RecordSource<S> {
  const mapped: RecordSource<S> = {
    name: source.name,
    length: source.length,
    images: source.images,
    async get(index) {
      const entry = await source.get(index);
      if (!entry.ok) return entry;
      const out = entryOf(() => fn(entry.record, index), entry.record.id);
      if (!out.ok) return out;
      const dropped = [...(entry.dropped ?? []), ...(out.dropped ?? [])];
      return { ...out, ...(dropped.length ? { dropped } : {}), ...(entry.images ? { images: entry.images } : {}) };
    },
    close: source.close ? () => source.close!() : undefined,
  };
  return mapped;
}

/** The same source, its string image refs resolved in `images` (e.g. the folder its json refers to). */
export function withImages<R extends DataRecord>(source: RecordSource<R>, images: ImageStore): RecordSource<R> {
  return {
    name: source.name,
    length: source.length,
    images,
    get: (index) => source.get(index),
    close: source.close ? () => source.close!() : undefined,
  };
}

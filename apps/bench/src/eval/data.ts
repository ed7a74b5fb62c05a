// Data files and images for `fiber-bench eval`: files that must exist (one clear error line when
// not), JSON reading, image loading through the trainer's readers (sharp or the pure-JS decoders),
// and the log of skipped samples.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageDecoder, RawImage } from '@fiber-vl/swin';
import {
  DataSkipError,
  loadImage,
  type DataRecord,
  type ImageStore,
  type RecordSource,
  type Skip,
  type SkipReason,
} from '@fiber-vl/trainer';
import { readFileLocation } from '@fiber-vl/trainer/node';
import { fail } from './errors.js';

/** The path, after checking that it is a file; `what` names it in the error ("VQA questions"). */
export function requireFile(path: string, what: string, hint = ''): string {
  if (!existsSync(path)) fail(`${what}: ${path} does not exist${hint ? ` (${hint})` : ''}`);
  if (!statSync(path).isFile()) fail(`${what}: ${path} is not a file`);
  return path;
}

export function requireDir(path: string, what: string, hint = ''): string {
  if (!existsSync(path)) fail(`${what}: ${path} does not exist${hint ? ` (${hint})` : ''}`);
  if (!statSync(path).isDirectory()) fail(`${what}: ${path} is not a folder`);
  return path;
}

export function readJsonFile(path: string, what: string): unknown {
  requireFile(path, what);
  try {
    return JSON.parse(readFileSync(path, 'utf8').replace(/^\uFEFF/, ''));
  } catch (e) {
    return fail(`${what}: ${path} is not valid JSON (${(e as Error).message})`);
  }
}

/** readJsonFile for the files whose top level is an object (every data set's annotations). */
export function readJsonObject(path: string, what: string): Record<string, unknown> {
  const json = readJsonFile(path, what);
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    fail(
      `${what}: ${path} holds ${json === null ? 'null' : Array.isArray(json) ? 'a list' : `a ${typeof json}`}, not a JSON object`,
    );
  return json as Record<string, unknown>;
}

const MiB = 1 << 20;

/**
 * SHA-256 of a file's bytes, or, past 4 MiB, of its first and last MiB and 32 evenly spaced 64 KiB
 * chunks between them, so that a checkpoint of gigabytes is not read whole on every run. A sample:
 * two fine-tunes that differ only in a small head, copied with the same size and time, can agree
 * on it.
 */
function contentDigest(path: string, size: number): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const take = (offset: number, length: number) => {
      const buf = Buffer.alloc(length);
      let done = 0;
      while (done < length) {
        const n = readSync(fd, buf, done, length - done, offset + done);
        if (n === 0) break;
        done += n;
      }
      hash.update(buf.subarray(0, done));
    };
    if (size <= 4 * MiB) take(0, size);
    else {
      take(0, MiB);
      const chunk = 64 << 10;
      for (let k = 1; k <= 32; k++) take(Math.floor((k * (size - 2 * MiB - chunk)) / 33) + MiB, chunk);
      take(size - MiB, MiB);
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex').slice(0, 32);
}

export interface FileStamp {
  path: string;
  bytes: number;
  mtimeMs: number;
  /** contentDigest: the bytes (a sample of them past 4 MiB). */
  sha256: string;
}

/** Size, modification time and a digest of the files a run reads, for the partial results' fingerprint. */
export function fileStamp(path: string): FileStamp {
  const s = statSync(path);
  return { path, bytes: s.size, mtimeMs: Math.round(s.mtimeMs), sha256: contentDigest(path, s.size) };
}

/** The stamps of --tokenizer's files: a tokenizer.json given by path, or a folder's vocab.json, merges.txt and tokenizer.json (those present). */
export function tokenizerStamp(dir: string): FileStamp[] {
  if (existsSync(dir) && statSync(dir).isFile()) return [fileStamp(dir)];
  return ['vocab.json', 'merges.txt', 'tokenizer.json']
    .map((f) => join(dir, f))
    .filter((f) => existsSync(f) && statSync(f).isFile())
    .map(fileStamp);
}

export interface SkippedItem extends Skip {
  key: string;
  /** The file's id of an entry its reader could not read, where it had one (SourceEntry's id). */
  id?: string;
}

/** Skipped samples: every one kept for the metrics file, a few per reason logged on stderr. */
export class SkipLog {
  readonly items: SkippedItem[] = [];
  private readonly logged = new Map<string, number>();

  constructor(
    private readonly log: (line: string) => void,
    private readonly perReason = 5,
  ) {}

  add(key: string, skip: Skip, id?: string): void {
    this.items.push({ key, ...skip, ...(id === undefined ? {} : { id }) });
    const n = (this.logged.get(skip.reason) ?? 0) + 1;
    this.logged.set(skip.reason, n);
    if (n <= this.perReason)
      this.log(`skipped ${key}${id === undefined ? '' : ` (id ${id})`}: ${skip.reason}: ${skip.detail}`);
    else if (n === this.perReason + 1) this.log(`(further '${skip.reason}' skips are only counted)`);
  }

  /**
   * Adds the items `keep` accepts (all by default) to `target`, which logs them as its own: a task
   * holds its reader's skips here, silently, until it knows which belong to its samples. Returns how
   * many it added.
   */
  replayInto(target: SkipLog, keep: (item: SkippedItem) => boolean = () => true): number {
    let n = 0;
    for (const item of this.items) {
      if (!keep(item)) continue;
      const { key, id, ...skip } = item;
      target.add(key, skip, id);
      n++;
    }
    return n;
  }

  counts(): Partial<Record<SkipReason, number>> {
    const out: Partial<Record<SkipReason, number>> = {};
    for (const s of this.items) out[s.reason] = (out[s.reason] ?? 0) + 1;
    return out;
  }

  /** "2 corrupt-image, 1 missing-image" or "none". */
  summary(): string {
    const c = Object.entries(this.counts());
    return c.length ? c.map(([r, n]) => `${n} ${r}`).join(', ') : 'none';
  }
}

/** Reads and decodes an image of a store; a missing or undecodable file is a DataSkipError. */
export async function readImage(store: ImageStore, ref: string, decoder: ImageDecoder): Promise<RawImage> {
  const loc = await store.locate(ref);
  if (!loc) throw new DataSkipError('missing-image', `${ref} is not in ${store.name}`);
  return loadImage(loc, decoder, readFileLocation);
}

/** The records of a source (the first `limit` entries), each through `keep`; unusable entries are logged as skips. */
export async function readSource<S extends DataRecord, R>(
  source: RecordSource<S>,
  keep: (record: S, index: number) => R,
  skips: SkipLog,
  limit = Infinity,
): Promise<R[]> {
  const out: R[] = [];
  const n = Math.min(source.length, limit);
  for (let i = 0; i < n; i++) {
    const entry = await source.get(i);
    if (entry.ok) out.push(keep(entry.record, i));
    else skips.add(`${source.name}#${i}`, entry.skip, entry.id);
  }
  return out;
}

/** Runs a reader over a whole file; a file of the wrong shape (a TypeError of the reader) is bad input. */
export function parseFile<T>(what: string, path: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof TypeError) return fail(`${what}: ${path}: ${e.message}`);
    throw e;
  }
}

// Shared by the data tests: the committed sample files and a way to read every entry of a source.
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { afterAll } from 'vitest';
import type { ByteSource } from '@fiber-vl/tensor-core';
import type { CaptionRecord, DataRecord, GroundingRecord, Nlvr2Record } from './records.js';
import type { Parsed, RecordSource, SourceEntry } from './source.js';
import type { ImageStore } from './images.js';
import * as files from './node/files.js';

// Sources over files hold a file handle until closed: the tests' are closed after each test file.
const opened: { close?(): Promise<void> }[] = [];
afterAll(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close?.()));
});

/** `fileSource`, closed after the test file. */
export async function fileSource(path: string): Promise<ByteSource> {
  const s = await files.fileSource(path);
  opened.push(s);
  return s;
}

/** `openJsonl`, closed after the test file. */
export async function openJsonl<R extends CaptionRecord | GroundingRecord | Nlvr2Record>(
  path: string,
  parse: (obj: unknown, where: string, index: number) => Parsed<R>,
  images?: ImageStore,
): Promise<RecordSource<R>> {
  const s = await files.openJsonl(path, parse, images);
  opened.push(s);
  return s;
}

export const FIXTURES = fileURLToPath(new URL('../../../../fixtures/data/', import.meta.url));
export const fixture = (...parts: string[]) => join(FIXTURES, ...parts);
export const fixtureJson = (...parts: string[]): unknown => JSON.parse(readFileSync(fixture(...parts), 'utf8'));
/** The built worker script (tests run after `npm run build`, which `npm test` does first). */
export const WORKER_URL = new URL('../../dist/data-worker.js', import.meta.url);

export async function entries<R extends DataRecord>(source: RecordSource<R>): Promise<SourceEntry<R>[]> {
  const out: SourceEntry<R>[] = [];
  for (let i = 0; i < source.length; i++) out.push(await source.get(i));
  return out;
}

/** Records and skip reasons of a source, in order. */
export async function split<R extends DataRecord>(source: RecordSource<R>): Promise<{ records: R[]; skips: string[] }> {
  const records: R[] = [];
  const skips: string[] = [];
  for (const e of await entries(source)) {
    if (e.ok) records.push(e.record);
    else skips.push(e.skip.reason);
  }
  return { records, skips };
}

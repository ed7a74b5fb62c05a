// Resumable partial results: one JSON line per finished (or skipped) item, appended to
// `<out>/<run>.partial.jsonl` after a header line with the run's fingerprint (task, split,
// checkpoint, data files, sizes). `--resume` reads them back and the run goes on with the items that
// are not there; a last line cut short by a kill is dropped. Every stage uses the stored (JSON) form
// of its results, so a resumed run gives exactly the results of an uninterrupted one.
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { SKIP_REASONS, type Skip } from '@fiber-vl/trainer';
import { fail } from './errors.js';

const FORMAT = 'fiber-bench eval partial results';

export type Stored = { value: unknown } | { skip: Skip };

export interface PartialLine {
  key: string;
  value?: unknown;
  skip?: Skip;
}

const reasons: readonly string[] = SKIP_REASONS;
const isSkip = (v: unknown): v is Skip =>
  typeof v === 'object' && v !== null && reasons.includes((v as Skip).reason) && typeof (v as Skip).detail === 'string';

const kind = (path: string) => (statSync(path).isDirectory() ? 'a folder' : 'not a regular file');

function openOrFail(path: string, flags: string): number {
  try {
    if (existsSync(path) && !statSync(path).isFile()) throw new Error(`it is ${kind(path)}`);
    return openSync(path, flags);
  } catch (e) {
    return fail(`${path}: cannot write the partial results (${(e as Error).message})`);
  }
}

export class PartialStore {
  private readonly entries = new Map<string, Stored>();

  private constructor(
    readonly path: string,
    private fd: number | undefined,
  ) {}

  /**
   * Opens the partial file of a run: with `resume`, reads what an earlier run with the same
   * fingerprint finished; otherwise starts a new file.
   */
  static open(
    path: string,
    fingerprint: Record<string, unknown>,
    resume: boolean,
  ): { store: PartialStore; note?: string } {
    mkdirSync(dirname(path), { recursive: true });
    const header = JSON.stringify({ format: FORMAT, version: 1, fingerprint });
    if (!resume || !existsSync(path)) {
      const fd = openOrFail(path, 'w');
      writeSync(fd, `${header}\n`);
      const note = resume ? `--resume: no partial results at ${path}, starting from the beginning` : undefined;
      return { store: new PartialStore(path, fd), note };
    }
    if (!statSync(path).isFile()) fail(`${path}: not a partial results file (${kind(path)}); rerun without --resume`);
    const text = readFileSync(path, 'utf8');
    const complete = text.slice(0, text.lastIndexOf('\n') + 1);
    const lines = complete.split('\n').filter(Boolean);
    let head: { format?: unknown; fingerprint?: unknown } | undefined;
    try {
      head = lines.length ? JSON.parse(lines[0]) : undefined;
    } catch {
      head = undefined;
    }
    if (head?.format !== FORMAT)
      fail(`${path}: not a partial results file of fiber-bench eval; rerun without --resume`);
    const theirs = (head!.fingerprint ?? {}) as Record<string, unknown>;
    const differ = Object.keys({ ...theirs, ...fingerprint }).filter(
      (k) => JSON.stringify(theirs[k]) !== JSON.stringify(fingerprint[k]),
    );
    if (differ.length) {
      const show = (v: unknown) => (JSON.stringify(v) ?? 'none').slice(0, 120);
      const what = differ.map((k) => `${k}: ${show(theirs[k])} then, ${show(fingerprint[k])} now`).join('; ');
      fail(`${path}: the partial results come from another run (${what}); rerun without --resume to start over`);
    }
    const store = new PartialStore(path, undefined);
    lines.slice(1).forEach((line, i) => {
      let obj: PartialLine;
      try {
        obj = JSON.parse(line);
      } catch (e) {
        return fail(`${path}: line ${i + 2} is not JSON (${(e as Error).message}); rerun without --resume`);
      }
      if (typeof obj?.key !== 'string' || (!('value' in obj) && !isSkip(obj.skip))) {
        fail(`${path}: line ${i + 2} is not a result line; rerun without --resume`);
      }
      store.entries.set(obj.key, obj.skip ? { skip: obj.skip } : { value: obj.value });
    });
    const fd = openOrFail(path, 'r+');
    // a line cut short by a kill is dropped, so that the next one starts on its own line
    if (complete.length < text.length) ftruncateSync(fd, Buffer.byteLength(complete));
    closeSync(fd);
    store.fd = openOrFail(path, 'a');
    return { store };
  }

  get(key: string): Stored | undefined {
    return this.entries.get(key);
  }

  /** Appends finished items (one write, so a kill leaves at most one partial line). */
  append(lines: PartialLine[]): void {
    if (!lines.length) return;
    if (this.fd === undefined) throw new Error(`${this.path}: the partial results file is closed`);
    writeSync(this.fd, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
    for (const l of lines) this.entries.set(l.key, l.skip ? { skip: l.skip } : { value: l.value });
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

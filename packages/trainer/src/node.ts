// `@fiber-vl/trainer/node`: the Node-only parts of the trainer: data loading from files (tar shards
// on disk, the worker-thread pool, sharp decoding), checkpoints and run folders on disk. Everything
// else is in the main entry, which runs in browsers.
//
//
// A checkpoint is a folder `checkpoints/step-00001000/` holding model.safetensors,
// optimizer.safetensors, state.safetensors and trainer.json. It is written as
// `checkpoints/.tmp-step-…` (every file fsynced, trainer.json last), the folder fsynced, then
// renamed into place and the parent fsynced: a folder named `step-*` is complete, whatever moment
// a kill hits. Older checkpoints beyond `keepLast` are renamed to `.del-*` and then removed, so a
// half-removed one is never mistaken for a complete one.
import { InThreadExecutor } from './data/loader.js';
import { type DecoderChoice, nodeImageDecoder, readFileLocation, readRegularTextSync } from './data/node/files.js';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { SafetensorsFile, tf, type Module } from '@fiber-vl/tensor-core';
import {
  CHECKPOINT_FILES,
  parseTrainerMeta,
  readCheckpointTensors,
  safetensorsChunks,
  type Checkpoint,
  type CheckpointFile,
  type CheckpointStore,
  type LoadedCheckpoint,
} from './checkpoint.js';
import { JsonlLogger, ProgressPrinter, combineLoggers, type ProgressPrinterOptions } from './log.js';
import type { FitLogger } from './loop.js';

/** Progress of a save, for logs (and for tests that interrupt a save at a chosen point). */
export type SaveEvent =
  | { phase: 'file'; file: CheckpointFile | 'trainer.json'; path: string }
  | { phase: 'renamed'; path: string }
  | { phase: 'pruned'; path: string }
  /** latest(): a checkpoint folder passed over, newer than the one resumed from. */
  | { phase: 'skipped'; path: string; reason: string };

export interface FileCheckpointStoreOptions {
  /** Complete checkpoints kept (newest first); default 3. */
  keepLast?: number;
  onEvent?: (e: SaveEvent) => void;
}

const INCOMPLETE = 'trainer.json missing or unreadable, or a file of another size than it lists';

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes a file and fsyncs it. */
async function writeDurable(path: string, chunks: AsyncIterable<Uint8Array> | Uint8Array[]): Promise<number> {
  const fh = await open(path, 'w');
  let bytes = 0;
  try {
    for await (const c of chunks) {
      let o = 0;
      while (o < c.byteLength) {
        const { bytesWritten } = await fh.write(c, o, c.byteLength - o);
        o += bytesWritten;
      }
      bytes += c.byteLength;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return bytes;
}

const STEP_DIR = /^step-(\d+)$/;

export class FileCheckpointStore implements CheckpointStore {
  readonly dir: string;
  readonly keepLast: number;
  private readonly onEvent?: (e: SaveEvent) => void;

  constructor(dir: string, { keepLast = 3, onEvent }: FileCheckpointStoreOptions = {}) {
    if (!(Number.isInteger(keepLast) && keepLast >= 1))
      throw new RangeError(`FileCheckpointStore: keepLast must be a positive integer, got ${keepLast}`);
    this.dir = resolve(dir);
    this.keepLast = keepLast;
    this.onEvent = onEvent;
    mkdirSync(this.dir, { recursive: true });
  }

  /** Complete checkpoint folders (by name), newest first. */
  list(): string[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((n) => STEP_DIR.test(n))
      .sort((a, b) => Number(STEP_DIR.exec(b)![1]) - Number(STEP_DIR.exec(a)![1]));
  }

  /** Removes what an interrupted save or prune left behind (`.tmp-*`, `.del-*`). */
  cleanup(): void {
    for (const n of readdirSync(this.dir))
      if (n.startsWith('.tmp-') || n.startsWith('.del-')) rmSync(join(this.dir, n), { recursive: true, force: true });
  }

  async save(cp: Checkpoint): Promise<string> {
    this.cleanup();
    const name = `step-${String(cp.meta.step).padStart(8, '0')}`;
    const tmp = join(this.dir, `.tmp-${name}-${process.pid}`);
    mkdirSync(tmp);
    const sizes: Partial<Record<CheckpointFile, number>> = {};
    for (const f of CHECKPOINT_FILES) {
      const path = join(tmp, f);
      const metadata: Record<string, string> =
        f === 'model.safetensors'
          ? { format: 'pt', source: 'fiber-vl trainer', step: String(cp.meta.step) }
          : { step: String(cp.meta.step) };
      sizes[f] = await writeDurable(
        path,
        safetensorsChunks(cp.files[f], { int64: f === 'model.safetensors', metadata }),
      );
      this.onEvent?.({ phase: 'file', file: f, path });
    }
    const metaPath = join(tmp, 'trainer.json');
    await writeDurable(metaPath, [
      new TextEncoder().encode(`${JSON.stringify({ ...cp.meta, files: sizes }, null, 1)}\n`),
    ]);
    this.onEvent?.({ phase: 'file', file: 'trainer.json', path: metaPath });
    fsyncPath(tmp);
    const final = join(this.dir, name);
    if (existsSync(final)) renameSync(final, join(this.dir, `.del-${name}-${process.pid}`)); // the same step saved again
    renameSync(tmp, final);
    fsyncPath(this.dir);
    this.onEvent?.({ phase: 'renamed', path: final });
    for (const old of this.list().slice(this.keepLast)) {
      const gone = join(this.dir, `.del-${old}`);
      renameSync(join(this.dir, old), gone);
      fsyncPath(this.dir);
      rmSync(gone, { recursive: true, force: true });
      this.onEvent?.({ phase: 'pruned', path: join(this.dir, old) });
    }
    this.cleanup();
    return final;
  }

  /** Reads and checks trainer.json and the file sizes of one checkpoint folder; undefined when incomplete. */
  private complete(path: string): ReturnType<typeof parseTrainerMeta> | undefined {
    const metaPath = join(path, 'trainer.json');
    if (!existsSync(metaPath)) return undefined;
    let meta;
    try {
      // a regular file only: a FIFO would block the resume for ever, /dev/zero never end
      meta = parseTrainerMeta(JSON.parse(readRegularTextSync(metaPath)), metaPath);
    } catch {
      return undefined;
    }
    // the folder is named after the step it saved
    const named = STEP_DIR.exec(basename(path));
    if (named && Number(named[1]) !== meta.step) return undefined;
    for (const f of CHECKPOINT_FILES) {
      const p = join(path, f);
      if (!existsSync(p) || statSync(p).size !== meta.files?.[f]) return undefined;
    }
    return meta;
  }

  /**
   * The newest complete checkpoint, read (the caller frees it with disposeLoaded); each newer folder
   * passed over is reported as a 'skipped' event. Saves are atomic, so an incomplete step folder was
   * damaged after the fact: when every one is, that is an error rather than a silent fresh start.
   */
  async latest(): Promise<LoadedCheckpoint | undefined> {
    const names = this.list();
    for (const name of names) {
      const path = join(this.dir, name);
      const meta = this.complete(path);
      if (meta) return this.load(path, meta);
      this.onEvent?.({ phase: 'skipped', path, reason: INCOMPLETE });
    }
    if (names.length)
      throw new Error(
        `${this.dir}: no checkpoint is complete (${names.join(', ')}: ${INCOMPLETE}); restore one, or remove them to start over`,
      );
    return undefined;
  }

  /** Reads a checkpoint folder. */
  async load(path: string, meta = this.complete(path)): Promise<LoadedCheckpoint> {
    if (!meta) throw new Error(`${path}: not a complete checkpoint (${INCOMPLETE})`);
    const files = {} as Record<CheckpointFile, Map<string, tf.Tensor>>;
    try {
      for (const f of CHECKPOINT_FILES) {
        const file = await SafetensorsFile.open(join(path, f));
        try {
          files[f] = await readCheckpointTensors(file);
        } finally {
          await file.close();
        }
      }
    } catch (e) {
      for (const m of Object.values(files)) tf.dispose([...m.values()]);
      throw e;
    }
    return { id: path, meta, files };
  }
}

/** Writes a model's state dict as safetensors (official keys, int buffers as I64), atomically. */
export async function saveModelSafetensors(
  model: Module,
  path: string,
  metadata: Record<string, string> = {},
): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeDurable(
    tmp,
    safetensorsChunks(model.stateDict(), { int64: true, metadata: { format: 'pt', ...metadata } }),
  );
  renameSync(tmp, path);
}

export interface RunFolderOptions {
  /** The resolved configuration of the run (written to config.json). */
  config: unknown;
  /** Continuing a run: keep the folder, cut log.jsonl back to `resumeStep` (see truncateLog). */
  resume?: boolean;
  keepLast?: number;
  onSaveEvent?: (e: SaveEvent) => void;
  /**
   * Top-level fields of `config` that a resume may change (e.g. the backend). Any other field that
   * differs from the run's config.json refuses the resume: the run would no longer be the one its
   * checkpoints come from (another batch, lr or step count is not the same run continued).
   */
  resumeMayChange?: readonly string[];
}

const shownSetting = (v: unknown) => (v === undefined ? 'none' : JSON.stringify(v)).slice(0, 80);

/** Refuses to resume with settings other than those in the run's config.json. */
function checkResumeConfig(dir: string, config: unknown, mayChange: readonly string[]): void {
  const path = join(dir, 'config.json');
  let stored: unknown;
  try {
    stored = JSON.parse(readRegularTextSync(path));
  } catch (e) {
    throw new Error(
      `${path}: cannot read the run's settings to check the resume against (${(e as Error).message}); start a new run in another folder`,
    );
  }
  const asRecord = (x: unknown): Record<string, unknown> =>
    typeof x === 'object' && x !== null && !Array.isArray(x) ? (x as Record<string, unknown>) : { value: x };
  const [then, now] = [asRecord(stored), asRecord(config)];
  const differ = [...new Set([...Object.keys(then), ...Object.keys(now)])].filter(
    (k) => !mayChange.includes(k) && JSON.stringify(then[k]) !== JSON.stringify(now[k]),
  );
  if (differ.length) {
    const what = differ.map((k) => `${k}: ${shownSetting(then[k])} then, ${shownSetting(now[k])} now`).join('; ');
    throw new Error(
      `${dir}: the run was started with other settings (${what}); resume with the same ones, or start a new run in another folder`,
    );
  }
}

/**
 * A run folder: `config.json` (the resolved config), `log.jsonl` (one record per step),
 * `checkpoints/` (a FileCheckpointStore) and `final/model.safetensors` at the end.
 */
export class RunFolder {
  readonly dir: string;
  readonly store: FileCheckpointStore;
  readonly logPath: string;

  constructor(
    dir: string,
    { config, resume = false, keepLast = 3, onSaveEvent, resumeMayChange = [] }: RunFolderOptions,
  ) {
    this.dir = resolve(dir);
    mkdirSync(this.dir, { recursive: true });
    this.logPath = join(this.dir, 'log.jsonl');
    const onEvent = (e: SaveEvent) => {
      if (e.phase === 'skipped') process.stderr.write(`note: ${e.path} is not a complete checkpoint (${e.reason})\n`);
      onSaveEvent?.(e);
    };
    this.store = new FileCheckpointStore(join(this.dir, 'checkpoints'), { keepLast, onEvent });
    const held = this.store.list().length > 0;
    if (!resume && held) {
      throw new Error(`${this.dir} already holds checkpoints; resume the run or choose another folder`);
    }
    if (resume && held) checkResumeConfig(this.dir, config, resumeMayChange);
    const configPath = join(this.dir, 'config.json');
    writeFileSync(`${configPath}.tmp`, `${JSON.stringify(config, null, 2)}\n`);
    renameSync(`${configPath}.tmp`, configPath);
    if (!resume) writeFileSync(this.logPath, '');
  }

  /**
   * Drops log records after `step` (written by a run that was killed after its last checkpoint),
   * so that a resumed run's log has each step once.
   */
  truncateLog(step: number): void {
    if (!existsSync(this.logPath)) return;
    const lines = readRegularTextSync(this.logPath)
      .split('\n')
      .filter((l) => l.trim());
    // the record's step, null for a record without one, undefined for a line that is not JSON
    const stepOf = (l: string): number | null | undefined => {
      try {
        const r: unknown = JSON.parse(l);
        const s = typeof r === 'object' && r !== null ? (r as { step?: unknown }).step : undefined;
        return typeof s === 'number' ? s : null;
      } catch {
        return undefined;
      }
    };
    const steps = lines.map(stepOf);
    const keep = steps.map((s) => s === null || (s !== undefined && s <= step));
    // a line that is not JSON goes with its place in the file: after the last record kept it is the
    // killed run's tail (a line cut by the kill); before it, it is the run's history and stays
    const lastKept = keep.lastIndexOf(true);
    const kept = lines.filter((_, i) => keep[i] || (steps[i] === undefined && i < lastKept));
    writeFileSync(this.logPath, kept.length ? `${kept.join('\n')}\n` : '');
  }

  /** JSONL step log appended to log.jsonl (and progress on stderr unless `progress` is false). */
  logger({ progress = true, ...options }: ProgressPrinterOptions & { progress?: boolean } = {}): FitLogger {
    const jsonl = new JsonlLogger((line) => writeFileSync(this.logPath, `${line}\n`, { flag: 'a' }));
    // a resumed run first drops the records its killed predecessor wrote after the checkpoint
    const truncate: FitLogger = { onStart: ({ step }) => this.truncateLog(step) };
    return progress ? combineLoggers(truncate, jsonl, consoleProgress(options)) : combineLoggers(truncate, jsonl);
  }

  /** Writes `final/model.safetensors` (official key layout). */
  async saveFinal(model: Module): Promise<string> {
    const dir = join(this.dir, 'final');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, 'model.safetensors');
    await saveModelSafetensors(model, path, { source: 'fiber-vl trainer' });
    return path;
  }
}

/** Progress on process.stderr: a live line on a terminal, plain lines otherwise. */
export function consoleProgress(options: ProgressPrinterOptions = {}): ProgressPrinter {
  return new ProgressPrinter(process.stderr, options);
}
export {
  fileKind,
  fileSource,
  readFileLocation,
  imageFolder,
  readJson,
  openJsonl,
  openTarShards,
  nodeImageDecoder,
  type DecoderChoice,
} from './data/node/files.js';
export { WorkerPool, type WorkerPoolOptions } from './data/node/pool.js';

/** Prepares samples in this thread, reading files from disk (sharp or the JS decoders). */
export async function nodeInThreadExecutor(decoder: DecoderChoice = 'auto'): Promise<InThreadExecutor> {
  return new InThreadExecutor({ decoder: await nodeImageDecoder(decoder), readFile: readFileLocation });
}

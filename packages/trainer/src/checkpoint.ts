// What a training checkpoint holds and how it is laid out, independent of where it is stored:
//   model.safetensors      the model's state dict in the official key layout (int buffers as I64,
//                          as PyTorch stores them), loadable by the official code and by
//                          `Module.loadStateDict`;
//   optimizer.safetensors  AdamW's moments (`exp_avg.<name>`, `exp_avg_sq.<name>`);
//   state.safetensors      the objectives' state (`<name>.<key>`, e.g. the ITC queue under its
//                          official buffer names) and the EMA weights (`ema.<key>`);
//   trainer.json           step, per-parameter optimizer steps, every generator's state, the data
//                          position, guard counters, the user's run info; written last.
// Stores: `MemoryCheckpointStore` here (browsers, tests); `FileCheckpointStore` in
// `@fiber-vl/trainer/node` (atomic folders on disk).
import {
  SafetensorsFile,
  encodeSafetensorsData as encode,
  rawToTensor,
  tf,
  type SafetensorsDType,
} from '@fiber-vl/tensor-core';
import type { DataPosition, JsonValue } from './source.js';

export const CHECKPOINT_FORMAT = 'fiber-vl-trainer-checkpoint';
export const CHECKPOINT_FILES = ['model.safetensors', 'optimizer.safetensors', 'state.safetensors'] as const;
export type CheckpointFile = (typeof CHECKPOINT_FILES)[number];

/** trainer.json. */
export interface TrainerMeta {
  format: typeof CHECKPOINT_FORMAT;
  version: 1;
  /** Optimizer steps taken (applied or skipped): the schedule position. */
  step: number;
  /** Non-finite steps in a row at the time of the checkpoint (guard). */
  consecutiveNonFinite: number;
  optimizer: { steps: Record<string, number>; calls: number };
  /** Generator states by name (Generator.getState()). */
  rngs: Record<string, number[]>;
  /** Where the data stood after the last batch of `step`. */
  data: DataPosition | null;
  /** Names of the stateful parts saved in state.safetensors. */
  stateful: string[];
  ema: boolean;
  /** Anything the caller wants kept with the checkpoint (e.g. the resolved config). */
  user?: JsonValue;
  /** Bytes of each tensor file, filled in by the store (a completeness check when loading). */
  files?: Partial<Record<CheckpointFile, number>>;
}

/** A checkpoint ready to write: trainer.json and the tensors of each file. */
export interface Checkpoint {
  meta: TrainerMeta;
  files: Record<CheckpointFile, Map<string, tf.Tensor>>;
  /** Tensors made for this checkpoint (snapshots); the rest are live model / optimizer tensors. */
  owned: tf.Tensor[];
}

/** A checkpoint read back; `disposeLoaded` frees its tensors. */
export interface LoadedCheckpoint {
  /** The store's name for it (a folder path on disk). */
  id: string;
  meta: TrainerMeta;
  files: Record<CheckpointFile, Map<string, tf.Tensor>>;
}

export function disposeLoaded(cp: LoadedCheckpoint): void {
  for (const f of CHECKPOINT_FILES) tf.dispose([...cp.files[f].values()]);
}

/** Where checkpoints live. `latest` returns the newest complete one (or undefined). */
export interface CheckpointStore {
  save(cp: Checkpoint): Promise<string>;
  latest(): Promise<LoadedCheckpoint | undefined>;
}

/** Checks a parsed trainer.json; throws naming the field that is wrong. */
export function parseTrainerMeta(json: unknown, where = 'trainer.json'): TrainerMeta {
  const m = json as Partial<TrainerMeta>;
  const bad = (field: string): never => {
    throw new Error(`${where}: ${field} is missing or malformed`);
  };
  if (!m || typeof m !== 'object') bad('the object');
  if (m.format !== CHECKPOINT_FORMAT) bad(`format (expected "${CHECKPOINT_FORMAT}")`);
  if (m.version !== 1) bad('version (expected 1)');
  if (!Number.isInteger(m.step) || m.step! < 0) bad('step');
  const count = (v: unknown, max = Number.MAX_SAFE_INTEGER) =>
    Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= max;
  // no more non-finite steps in a row than steps taken
  if (!count(m.consecutiveNonFinite, m.step)) bad('consecutiveNonFinite');
  if (
    !m.optimizer ||
    typeof m.optimizer.steps !== 'object' ||
    m.optimizer.steps === null ||
    Object.values(m.optimizer.steps).some((n) => !count(n)) ||
    !count(m.optimizer.calls)
  )
    bad('optimizer');
  // xoshiro128** states: four unsigned 32-bit words, not all zero (a generator that draws only 0)
  const word = (w: unknown) => Number.isInteger(w) && (w as number) >= 0 && (w as number) <= 0xffffffff;
  if (
    !m.rngs ||
    typeof m.rngs !== 'object' ||
    Object.values(m.rngs).some((s) => !Array.isArray(s) || s.length !== 4 || !s.every(word) || s.every((w) => w === 0))
  )
    bad('rngs');
  if (!Array.isArray(m.stateful)) bad('stateful');
  if (typeof m.ema !== 'boolean') bad('ema');
  return m as TrainerMeta;
}

function safetensorsDType(t: tf.Tensor, int64: boolean): SafetensorsDType {
  if (t.dtype === 'float32') return 'F32';
  if (t.dtype === 'int32') return int64 ? 'I64' : 'I32';
  if (t.dtype === 'bool') return 'BOOL';
  throw new TypeError(`checkpoint: tensor dtype ${t.dtype} cannot be stored`);
}

/**
 * safetensors bytes, chunk by chunk: the header, then each tensor's data read from the backend one
 * at a time (a multi-GB state never sits in memory twice). `int64` stores int32 tensors as I64.
 */
export async function* safetensorsChunks(
  tensors: Map<string, tf.Tensor>,
  { int64 = false, metadata }: { int64?: boolean; metadata?: Record<string, string> } = {},
): AsyncGenerator<Uint8Array> {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  const entries = [...tensors.entries()];
  const dtypes = entries.map(([, t]) => safetensorsDType(t, int64));
  entries.forEach(([name, t], i) => {
    const bytes = t.size * { F32: 4, I32: 4, I64: 8, BOOL: 1 }[dtypes[i] as 'F32' | 'I32' | 'I64' | 'BOOL'];
    header[name] = { dtype: dtypes[i], shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  });
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const head = new Uint8Array(8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true);
  head.set(json, 8);
  yield head;
  for (let i = 0; i < entries.length; i++) {
    const t = entries[i][1];
    const data = await t.data();
    yield dtypes[i] === 'F32'
      ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      : encode(dtypes[i], data as ArrayLike<number>);
  }
}

/** The tensors of one safetensors file of a checkpoint (I64 read back as int32). */
export async function readCheckpointTensors(file: SafetensorsFile): Promise<Map<string, tf.Tensor>> {
  const out = new Map<string, tf.Tensor>();
  try {
    for (const name of file.keys()) out.set(name, rawToTensor(await file.readRaw(name), `${file.name}: ${name}`));
  } catch (e) {
    tf.dispose([...out.values()]);
    throw e;
  }
  return out;
}

/** Keeps checkpoints in memory as safetensors bytes (browsers; tests). Keeps the last `keepLast`. */
export class MemoryCheckpointStore implements CheckpointStore {
  private readonly saved: { id: string; meta: string; files: Record<CheckpointFile, Uint8Array> }[] = [];

  constructor(readonly keepLast = 2) {}

  async save(cp: Checkpoint): Promise<string> {
    const files = {} as Record<CheckpointFile, Uint8Array>;
    const sizes: Partial<Record<CheckpointFile, number>> = {};
    for (const f of CHECKPOINT_FILES) {
      const chunks: Uint8Array[] = [];
      for await (const c of safetensorsChunks(cp.files[f], { int64: f === 'model.safetensors' }))
        chunks.push(c.slice());
      const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
      let o = 0;
      for (const c of chunks) {
        bytes.set(c, o);
        o += c.byteLength;
      }
      files[f] = bytes;
      sizes[f] = bytes.byteLength;
    }
    const id = `step-${cp.meta.step}`;
    const i = this.saved.findIndex((s) => s.id === id);
    if (i >= 0) this.saved.splice(i, 1);
    this.saved.push({ id, meta: JSON.stringify({ ...cp.meta, files: sizes }), files });
    while (this.saved.length > this.keepLast) this.saved.shift();
    return id;
  }

  async latest(): Promise<LoadedCheckpoint | undefined> {
    const last = this.saved[this.saved.length - 1];
    if (!last) return undefined;
    const files = {} as Record<CheckpointFile, Map<string, tf.Tensor>>;
    for (const f of CHECKPOINT_FILES)
      files[f] = await readCheckpointTensors(await SafetensorsFile.fromBytes(last.files[f], `${last.id}/${f}`));
    return { id: last.id, meta: parseTrainerMeta(JSON.parse(last.meta), `${last.id}/trainer.json`), files };
  }

  /** Ids of the checkpoints kept, oldest first. */
  ids(): string[] {
    return this.saved.map((s) => s.id);
  }
}

// Checkpoints in the page: a File the user picked or dropped, or a Blob fetched from /models/, read
// through blobSource slice by slice (never copied whole). First the tensor names and shapes (and
// safetensors metadata) say what the file is: a fiber-vl model written by `fiber-bench run` (its
// config in the metadata), an official FIBER-B coarse or fine-grained checkpoint (matched against
// the official state dicts by fusion's matchFiberCheckpoint, as `fiber-bench inspect` does), or
// neither. Then the packages' own loaders read it into the model built for it.
import {
  fiberConfig,
  loadFiberCheckpoint,
  matchFiberCheckpoint,
  validateFiberConfig,
  type FiberCheckpointMatch,
  type FiberCoarseConfig,
  type FiberCoarseHead,
} from '@fiber-vl/fusion';
import { FiberCoarseModel, type CoarseHeadsSelection } from '@fiber-vl/heads-coarse';
import {
  FiberFineModel,
  fiberFineModelConfig,
  loadFiberFineCheckpoint,
  validateFiberFineModelConfig,
  type FiberFineModelConfig,
  type FinePipelineOptions,
} from '@fiber-vl/heads-fine';
import {
  SafetensorsError,
  SafetensorsFile,
  TorchCheckpoint,
  TorchCheckpointError,
  ZipError,
  blobSource,
  skipInit,
  type ByteSource,
} from '@fiber-vl/tensor-core';

export type ModelKind = 'coarse' | 'fine';

/** What the page says when a file cannot be used; `reason` tells the UI which message it is. */
export class CheckpointError extends Error {
  constructor(
    readonly file: string,
    readonly reason: 'not-a-checkpoint' | 'wrong-kind' | 'unsupported',
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'CheckpointError';
  }
}

/** The coarse heads the page uses. */
export type CoarseTask = 'vqa' | 'caption' | 'itc' | 'itm';

export interface LoadedCoarse {
  kind: 'coarse';
  name: string;
  model: FiberCoarseModel;
  tasks: CoarseTask[];
  /** VQA answers in label order (fiber-vl models carry them; official checkpoints do not). */
  answers?: string[];
  beamSize: number;
  /** What the file is, in words. */
  about: string;
  ms: number;
}

export interface LoadedFine {
  kind: 'fine';
  name: string;
  model: FiberFineModel;
  pipeline: FinePipelineOptions;
  about: string;
  ms: number;
}

export type LoadedModel = LoadedCoarse | LoadedFine;

/** Safetensors metadata keys of a fiber-vl model (apps/bench/src/run/export-models.ts writes them). */
const META = {
  kind: 'fiber-vl.kind',
  config: 'fiber-vl.config',
  heads: 'fiber-vl.heads',
  answers: 'fiber-vl.answers',
  pipeline: 'fiber-vl.pipeline',
} as const;

interface Listing {
  tensors: { name: string; shape: number[] }[];
  metadata: Record<string, string>;
}

const READER_ERRORS = [SafetensorsError, TorchCheckpointError, ZipError];
const isReaderError = (e: unknown): e is Error => READER_ERRORS.some((T) => e instanceof T);
const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** The tensor names and shapes of a checkpoint, from its headers only. */
async function listTensors(source: ByteSource): Promise<Listing> {
  const head = await source.read(0, Math.min(16, source.size));
  // safetensors: a u64 header length (any first byte, even "P" or 0x80), then "{"; a zip has its
  // compression method at byte 8 (0 or 8), a torch pickle starts with 0x80
  const zip = head[0] === 0x50 && head[1] === 0x4b && head[2] === 3 && head[3] === 4;
  const safetensors = !zip && head.length >= 9 && head[8] === 0x7b;
  const torch = !safetensors && (zip || head[0] === 0x80);
  if (!torch && !safetensors)
    throw new CheckpointError(
      source.name,
      'not-a-checkpoint',
      'not a checkpoint: neither a PyTorch file (.ckpt / .pth) nor safetensors',
    );
  try {
    if (safetensors) {
      const f = await SafetensorsFile.fromSource(source);
      await f.close();
      return { tensors: [...f.tensors.values()].map((t) => ({ name: t.name, shape: t.shape })), metadata: f.metadata };
    }
    const ckpt = await TorchCheckpoint.fromSource(source, { unknownGlobals: 'stub' });
    try {
      return { tensors: [...ckpt.stateDict()].map(([name, ref]) => ({ name, shape: ref.shape })), metadata: {} };
    } finally {
      await ckpt.close();
    }
  } catch (e) {
    if (isReaderError(e)) throw new CheckpointError(source.name, 'not-a-checkpoint', `not a checkpoint: ${message(e)}`);
    throw e;
  }
}

/** A source that reports the fraction of its bytes read so far (re-reads count again, capped at 1). */
function withProgress(source: ByteSource, onProgress: (fraction: number) => void): ByteSource {
  let read = 0;
  return {
    name: source.name,
    size: source.size,
    async read(offset, length) {
      const bytes = await source.read(offset, length);
      read += bytes.byteLength;
      onProgress(Math.min(1, read / Math.max(1, source.size)));
      return bytes;
    },
  };
}

/** JSON text of a metadata field; the config validators check what it holds. */
function metaJson(file: string, metadata: Record<string, string>, key: string): unknown {
  const text = metadata[key];
  if (text === undefined) throw new CheckpointError(file, 'unsupported', `the metadata has no "${key}"`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(file, 'unsupported', `metadata "${key}" is not JSON: ${message(e)}`);
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** Top-level shape of a FiberCoarseConfig; validateFiberConfig then checks every field and names a bad one. */
function isCoarseConfig(v: unknown): v is FiberCoarseConfig {
  return (
    isRecord(v) &&
    isRecord(v.swin) &&
    isRecord(v.roberta) &&
    ['numFuseBlock', 'hiddenSize', 'maxTextLen'].every((k) => typeof v[k] === 'number')
  );
}

/** Top-level shape of a FiberFineModelConfig; validateFiberFineModelConfig checks the rest. */
function isFineConfig(v: unknown): v is FiberFineModelConfig {
  return isRecord(v) && ['backbone', 'fpn', 'head', 'anchors', 'postprocess'].every((k) => isRecord(v[k]));
}

function isHeads(v: unknown): v is CoarseHeadsSelection {
  return (
    isRecord(v) &&
    ['itc', 'itm', 'mlm', 'nlvr2', 'caption'].every((k) => typeof v[k] === 'boolean') &&
    typeof v.vqaLabels === 'number'
  );
}

function tasksOf(heads: CoarseHeadsSelection): CoarseTask[] {
  const tasks: CoarseTask[] = [];
  if (heads.vqaLabels > 0) tasks.push('vqa');
  if (heads.caption) tasks.push('caption');
  if (heads.itc) tasks.push('itc');
  if (heads.itm) tasks.push('itm');
  return tasks;
}

/** How the file will be built: a fiber-vl model from its metadata, or an official FIBER-B checkpoint. */
type Plan =
  | {
      kind: 'coarse';
      config: FiberCoarseConfig;
      heads: CoarseHeadsSelection;
      answers?: string[];
      beamSize: number;
      about: string;
    }
  | { kind: 'fine'; config: FiberFineModelConfig; pipeline: FinePipelineOptions; about: string };

function fiberVlPlan(file: string, metadata: Record<string, string>): Plan {
  const kind = metadata[META.kind];
  const config = metaJson(file, metadata, META.config);
  const pipeline = metaJson(file, metadata, META.pipeline);
  if (!isRecord(pipeline))
    throw new CheckpointError(file, 'unsupported', `metadata "${META.pipeline}" is not an object`);
  if (kind === 'coarse') {
    const heads = metaJson(file, metadata, META.heads);
    if (!isCoarseConfig(config) || !isHeads(heads))
      throw new CheckpointError(file, 'unsupported', 'the metadata does not hold a coarse config and heads');
    const answers = metadata[META.answers] === undefined ? undefined : metaJson(file, metadata, META.answers);
    if (answers !== undefined && !isStringArray(answers))
      throw new CheckpointError(file, 'unsupported', `metadata "${META.answers}" is not a list of strings`);
    const beamSize = typeof pipeline.beamSize === 'number' ? pipeline.beamSize : 5;
    const about = `fiber-vl coarse model (${config.swin.imageSize} px, hidden ${config.hiddenSize})`;
    return { kind, config: validateFiberConfig(config), heads, answers, beamSize, about };
  }
  if (kind === 'fine') {
    if (!isFineConfig(config))
      throw new CheckpointError(file, 'unsupported', 'the metadata does not hold a fine-grained config');
    const size = (k: string) => (typeof pipeline[k] === 'number' ? { [k]: pipeline[k] } : {});
    const about = `fiber-vl fine-grained model (input ${String(pipeline.minSize ?? 800)} px)`;
    return {
      kind,
      config: validateFiberFineModelConfig(config),
      pipeline: { ...size('minSize'), ...size('maxSize') },
      about,
    };
  }
  throw new CheckpointError(file, 'unsupported', `metadata "${META.kind}" is "${kind}", not coarse or fine`);
}

function officialPlan(file: string, match: FiberCheckpointMatch): Plan {
  const counts = `${match.matched} of ${match.expected} keys match, ${match.missing.length} missing, ${match.extra.length} extra`;
  if (match.verdict === 'none')
    throw new CheckpointError(file, 'not-a-checkpoint', `not a FIBER checkpoint (closest: ${match.model}; ${counts})`);
  if (match.verdict !== 'exact')
    throw new CheckpointError(
      file,
      'unsupported',
      `close to ${match.model} but not the same (${counts}, ${match.shapeMismatches.length} of another shape): the demo builds official FIBER-B checkpoints and fiber-vl safetensors (config in their metadata)`,
    );
  if (match.kind === 'fine')
    return {
      kind: 'fine',
      config: fiberFineModelConfig('base', { version: match.version }),
      pipeline: {},
      about: match.model,
    };
  const has = (h: FiberCoarseHead) => match.heads.includes(h);
  const heads: CoarseHeadsSelection = {
    itc: has('itc'),
    itm: has('itm'),
    mlm: has('mlm'),
    vqaLabels: match.vqaAnswers ?? 0,
    nlvr2: has('nlvr2'),
    caption: has('caption'),
  };
  const config = fiberConfig('base', { imageSize: match.imageSize ?? 384 });
  return { kind: 'coarse', config, heads, beamSize: 5, about: match.model };
}

export interface LoadOptions {
  /** Which model the slot takes: a file of the other kind is refused with a 'wrong-kind' error. */
  want: ModelKind;
  onProgress?: (fraction: number) => void;
}

/** Reads a checkpoint (File or Blob) into a new model of the kind `want`; nothing is left allocated on failure. */
export async function loadCheckpoint(
  file: Blob,
  name: string,
  { want, onProgress }: LoadOptions,
): Promise<LoadedModel> {
  const started = performance.now();
  const listing = await listTensors(blobSource(file, name));
  const plan = listing.metadata[META.kind]
    ? fiberVlPlan(name, listing.metadata)
    : officialPlan(name, matchFiberCheckpoint(listing.tensors));
  if (plan.kind !== want) {
    const needs =
      want === 'fine' ? 'a fine-grained one (detection / grounding)' : 'a coarse one (VQA, captions, ranking)';
    throw new CheckpointError(
      name,
      'wrong-kind',
      `is a ${plan.kind === 'fine' ? 'fine-grained' : 'coarse'} checkpoint (${plan.about}); this slot needs ${needs}`,
    );
  }
  const source = withProgress(blobSource(file, name), (f) => onProgress?.(f));
  if (plan.kind === 'fine') {
    // the strict loads below replace every tensor: skipInit spares the random draws (seconds for
    // FIBER-B)
    const model = skipInit(() => new FiberFineModel(plan.config));
    try {
      await loadFiberFineCheckpoint(model, source, { strict: true });
    } catch (e) {
      model.dispose();
      throw isReaderError(e) ? new CheckpointError(name, 'not-a-checkpoint', message(e)) : e;
    }
    onProgress?.(1);
    return { kind: 'fine', name, model, pipeline: plan.pipeline, about: plan.about, ms: performance.now() - started };
  }
  const tasks = tasksOf(plan.heads);
  if (!tasks.length)
    throw new CheckpointError(
      name,
      'unsupported',
      `has none of the heads the demo uses (vqa, caption, itc, itm); it has: ${
        Object.entries(plan.heads)
          .filter(([, v]) => v)
          .map(([k]) => k)
          .join(', ') || 'none'
      }`,
    );
  const model = skipInit(() => new FiberCoarseModel(plan.config, plan.heads));
  try {
    await loadFiberCheckpoint(model, source, { strict: true });
  } catch (e) {
    model.dispose();
    throw isReaderError(e) ? new CheckpointError(name, 'not-a-checkpoint', message(e)) : e;
  }
  onProgress?.(1);
  const { answers, beamSize, about } = plan;
  return { kind: 'coarse', name, model, tasks, answers, beamSize, about, ms: performance.now() - started };
}

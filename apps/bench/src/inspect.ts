// fiber-bench inspect: what a checkpoint holds (tensor names, dtypes, shapes, bytes), which official
// FIBER model and task heads it matches and what is missing or extra, and with --verify whether
// every value is finite. A file that cannot be read ends in one line naming it and the problem
// (exit 2), never a stack trace: the readers' typed errors carry the file and the field.
import { open, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import {
  DTYPE_BYTES,
  SafetensorsError,
  SafetensorsFile,
  ShardedSafetensors,
  TorchCheckpoint,
  TorchCheckpointError,
  ZipError,
  countNonFinite,
  type RawValues,
  type SafetensorsDType,
} from '@fiber-vl/tensor-core';
import { matchFiberCheckpoint, type FiberCheckpointMatch } from '@fiber-vl/fusion';
import { oneLine } from './one-line.js';

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Bytes in the file (for a view of a larger storage: the view's own elements). */
  bytes: number;
  /** Non-finite values (--verify only). */
  nonFinite?: number;
}

export interface InspectReport {
  file: string;
  format: string;
  count: number;
  bytes: number;
  tensors: TensorEntry[];
  fiber: FiberCheckpointMatch;
  verify?: { tensors: number; nonFinite: number; tensorsWithNonFinite: number };
}

export interface InspectOptions {
  verify?: boolean;
  /** Text output lists every tensor (default: groups, and the tensors themselves when there are at most 40). */
  all?: boolean;
  json?: boolean;
}

class InspectError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'InspectError';
  }
}

// ---- reading ----------------------------------------------------------------------------------

interface Listing {
  format: string;
  tensors: TensorEntry[];
  chunks(name: string): AsyncIterable<RawValues>;
  close(): Promise<void>;
}

/** What kind of file `path` is, from its first bytes (then its extension). */
async function sniff(path: string): Promise<'torch' | 'safetensors' | 'sharded'> {
  let info;
  try {
    info = await stat(path);
  } catch (e) {
    const code = typeof e === 'object' && e !== null && 'code' in e ? e.code : '';
    throw new InspectError(
      path,
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : `cannot read (${String(code)})`,
    );
  }
  if (info.isDirectory())
    throw new InspectError(path, "is a directory: give a checkpoint file or a sharded checkpoint's *.index.json");
  if (!info.isFile()) throw new InspectError(path, 'is not a regular file');
  const head = new Uint8Array(16);
  const handle = await open(path, 'r').catch(() => {
    throw new InspectError(path, 'cannot be opened');
  });
  try {
    await handle.read(head, 0, 16, 0);
  } finally {
    await handle.close();
  }
  const text = new TextDecoder().decode(head);
  // safetensors first: their u64 header length may start with 0x80 or "P"; a zip ("PK\x03\x04")
  // has its compression method (0 or 8) at byte 8, never "{"
  const zip = text.startsWith('PK\x03\x04');
  if (!zip && info.size >= 9 && head[8] === 0x7b /* { */) return 'safetensors';
  if (zip || head[0] === 0x80) return 'torch';
  if (/^\s*\{/.test(text)) return 'sharded';
  const ext = extname(path).toLowerCase();
  return ext === '.safetensors' ? 'safetensors' : ext === '.json' ? 'sharded' : 'torch';
}

async function openCheckpoint(path: string): Promise<Listing> {
  const kind = await sniff(path);
  if (kind === 'torch') {
    // objects around the state dict (Lightning callbacks, hyper-parameter classes) stay inert stubs
    const ckpt = await TorchCheckpoint.open(path, { unknownGlobals: 'stub' });
    try {
      const sd = ckpt.stateDict();
      const tensors = [...sd].map(([name, ref]) => ({
        name,
        dtype: ref.dtype,
        shape: ref.shape,
        bytes: ref.numel * DTYPE_BYTES[ref.dtype],
      }));
      return {
        format: 'PyTorch (torch.save zip)',
        tensors,
        chunks: (name) => ckpt.readRawChunks(sd.get(name)!, name),
        close: () => ckpt.close(),
      };
    } catch (e) {
      await ckpt.close();
      throw e;
    }
  }
  if (kind === 'safetensors') {
    const f = await SafetensorsFile.open(path);
    const tensors = [...f.tensors.values()].map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      bytes: t.dataOffsets[1] - t.dataOffsets[0],
    }));
    return { format: 'safetensors', tensors, chunks: (name) => f.readRawChunks(name), close: () => f.close() };
  }
  const s = await ShardedSafetensors.open(path);
  try {
    const tensors: TensorEntry[] = [];
    for (const name of s.keys()) {
      const t = await s.info(name);
      tensors.push({ name, dtype: t.dtype, shape: t.shape, bytes: t.dataOffsets[1] - t.dataOffsets[0] });
    }
    const shards = new Set(s.weightMap.values()).size;
    return {
      format: `sharded safetensors (${shards} shard${shards === 1 ? '' : 's'})`,
      tensors,
      chunks: (name) => s.readRawChunks(name),
      close: () => s.close(),
    };
  } catch (e) {
    await s.close();
    throw e;
  }
}

/** Lists (and with `verify`, reads every value of) one checkpoint. */
export async function inspectCheckpoint(path: string, { verify = false }: InspectOptions = {}): Promise<InspectReport> {
  const listing = await openCheckpoint(path);
  try {
    const { tensors } = listing;
    const report: InspectReport = {
      file: path,
      format: listing.format,
      count: tensors.length,
      bytes: tensors.reduce((a, t) => a + t.bytes, 0),
      tensors,
      fiber: matchFiberCheckpoint(tensors),
    };
    if (verify) {
      for (const t of tensors) {
        let bad = 0;
        for await (const chunk of listing.chunks(t.name)) bad += countNonFinite(chunk);
        t.nonFinite = bad;
      }
      const flagged = tensors.filter((t) => t.nonFinite);
      report.verify = {
        tensors: tensors.length,
        nonFinite: flagged.reduce((a, t) => a + t.nonFinite!, 0),
        tensorsWithNonFinite: flagged.length,
      };
    }
    return report;
  } finally {
    await listing.close();
  }
}

// ---- output -----------------------------------------------------------------------------------

const mib = (n: number) =>
  n >= 2 ** 30
    ? `${(n / 2 ** 30).toFixed(2)} GiB`
    : n >= 2 ** 20
      ? `${(n / 2 ** 20).toFixed(2)} MiB`
      : n >= 1024
        ? `${(n / 1024).toFixed(1)} KiB`
        : `${n} B`;
const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Summary groups: keys by their first segment, large groups split by the second (numbers as "*"). */
function groupTensors(tensors: readonly TensorEntry[]): Map<string, { n: number; bytes: number }> {
  const segments = (name: string, n: number) =>
    name
      .split('.')
      .slice(0, n)
      .map((s) => (/^\d+$/.test(s) ? '*' : s))
      .join('.');
  const sizes = new Map<string, number>();
  for (const t of tensors) sizes.set(segments(t.name, 1), (sizes.get(segments(t.name, 1)) ?? 0) + 1);
  const groups = new Map<string, { n: number; bytes: number }>();
  for (const t of tensors) {
    const first = segments(t.name, 1);
    const key = sizes.get(first)! > 100 && t.name.includes('.') ? segments(t.name, 2) : first;
    const g = groups.get(key) ?? { n: 0, bytes: 0 };
    g.n++;
    g.bytes += t.bytes;
    groups.set(key, g);
  }
  return groups;
}

function listSome(title: string, items: string[], limit = 20): string[] {
  if (!items.length) return [];
  const more = items.length > limit ? [`      ... and ${items.length - limit} more (--json lists all)`] : [];
  return [`    ${title} (${items.length}):`, ...items.slice(0, limit).map((i) => `      ${i}`), ...more];
}

export function formatReport(r: InspectReport, { all = false }: InspectOptions = {}): string {
  const dtypes = new Map<string, number>();
  for (const t of r.tensors) dtypes.set(t.dtype, (dtypes.get(t.dtype) ?? 0) + 1);
  const lines = [
    `${r.file}`,
    `  format: ${r.format}, ${r.count} tensors, ${mib(r.bytes)} (${[...dtypes].map(([d, n]) => `${d} ${n}`).join(', ')})`,
  ];
  const f = r.fiber;
  const heads = f.heads.length
    ? `; heads: ${f.heads.map((h) => (h === 'vqa' && f.vqaAnswers ? `vqa (${f.vqaAnswers} answers)` : h)).join(', ')}`
    : '';
  const prefix = f.strippedPrefix ? ` (keys prefixed "${f.strippedPrefix}")` : '';
  const summary = `${f.matched} of ${f.expected} FIBER keys with the same shape, ${f.missing.length} missing, ${f.extra.length} extra, ${f.shapeMismatches.length} of other shape`;
  if (f.verdict === 'exact') lines.push(`  model: ${f.model}${prefix}: exact match${heads}`);
  else if (f.verdict === 'same-keys')
    lines.push(
      `  model: ${f.model}${prefix}: every key, ${f.shapeMismatches.length} of other shape (another size?)${heads}`,
    );
  else if (f.verdict === 'closest') lines.push(`  model: closest is ${f.model}${prefix}: ${summary}${heads}`);
  else lines.push(`  model: not a FIBER checkpoint (closest: ${f.model}, ${summary})`);
  if (f.verdict !== 'none') {
    lines.push(...listSome('missing', f.missing));
    lines.push(...listSome('extra', f.extra));
    lines.push(
      ...listSome(
        'other shape',
        f.shapeMismatches.map((m) => `${m.name}: ${shapeText(m.shape)}, FIBER has ${shapeText(m.expected)}`),
      ),
    );
  }
  const listAll = all || r.count <= 40;
  if (!listAll || all) {
    const groups = groupTensors(r.tensors);
    const width = Math.min(48, Math.max(...[...groups.keys()].map((k) => k.length), 8));
    lines.push('  tensors by module:');
    for (const [g, { n, bytes }] of groups)
      lines.push(
        `    ${g.padEnd(width)}  ${String(n).padStart(5)} tensor${n === 1 ? ' ' : 's'}  ${mib(bytes).padStart(10)}`,
      );
  }
  if (listAll) {
    lines.push('  tensors:');
    for (const t of r.tensors) {
      const nf = t.nonFinite ? `  ${t.nonFinite} non-finite` : '';
      lines.push(`    ${t.name}  ${t.dtype} ${shapeText(t.shape)}  ${mib(t.bytes)}${nf}`);
    }
  } else lines.push(`  (${r.count} tensors: --all lists each one, --json prints them all)`);
  if (r.verify) {
    const v = r.verify;
    if (!v.nonFinite) lines.push(`  verify: read every value of ${v.tensors} tensors: all finite`);
    else {
      lines.push(`  verify: ${v.nonFinite} non-finite values in ${v.tensorsWithNonFinite} of ${v.tensors} tensors:`);
      for (const t of r.tensors.filter((x) => x.nonFinite).slice(0, 20))
        lines.push(`    ${t.name}: ${t.nonFinite} of ${t.shape.reduce((a, b) => a * b, 1)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** One line: the file and the problem (typed reader errors already start with the file). */
function problemLine(file: string, e: unknown): string {
  const typed = [InspectError, TorchCheckpointError, ZipError, SafetensorsError].some((T) => e instanceof T);
  let message = e instanceof Error ? e.message : String(e);
  if (!typed && e instanceof Error) message = `internal error (${e.name}): ${message}`;
  message = oneLine(message);
  return message.startsWith(file) ? message : `${file}: ${message}`;
}

/**
 * `fiber-bench inspect FILE... [--verify] [--json] [--all]`: exit 0 when every file reads (and,
 * with --verify, every value is finite), 1 when --verify finds non-finite values, 2 when a file
 * cannot be read (one line on stderr for each).
 */
export async function runInspect(
  files: string[],
  options: InspectOptions,
  out: { stdout: (s: string) => void; stderr: (s: string) => void } = {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
  },
): Promise<number> {
  if (!files.length) {
    out.stderr('usage: fiber-bench inspect FILE... [--verify] [--json] [--all]\n');
    return 2;
  }
  let code = 0;
  const results: (InspectReport | { file: string; error: string })[] = [];
  for (const file of files) {
    try {
      const report = await inspectCheckpoint(file, options);
      results.push(report);
      if (!options.json) out.stdout(formatReport(report, options));
      if (report.verify?.nonFinite) code = Math.max(code, 1);
    } catch (e) {
      const line = problemLine(file, e);
      results.push({ file, error: line });
      out.stderr(`fiber-bench inspect: ${line}\n`);
      code = 2;
    }
  }
  if (options.json) out.stdout(`${JSON.stringify(files.length === 1 ? results[0] : results)}\n`);
  return code;
}

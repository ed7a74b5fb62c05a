// The PyTorch side of the side-by-side benchmarks: reference/torch_fiber_ref.py (shipped with the
// bench) run by a python that has torch, with torch, OpenBLAS and OpenMP pinned to our thread count.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ReferenceOptions {
  /** Path of torch_fiber_ref.py (default: the copy shipped in apps/bench/reference). */
  script?: string;
  /** Python with torch (default: /usr/bin/python3, then python3). */
  python?: string;
  /** OPENBLAS_CORETYPE (default: SkylakeX where the CPU has AVX-512, which OpenBLAS 0.3.21 may not detect). */
  coretype?: string;
}

export interface ReferenceRun {
  median_s: number;
  min_s: number;
  times_s: number[];
  threads: number;
  [key: string]: unknown;
}

/** The shipped script: next to dist/cli.js at ../reference, or ../../reference from src. */
export function defaultReferenceScript(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    join(here, '..', 'reference', 'torch_fiber_ref.py'),
    join(here, '..', '..', 'reference', 'torch_fiber_ref.py'),
  ];
  return candidates.find((p) => existsSync(p)) ?? candidates[0];
}

function findPython(preferred?: string): string | undefined {
  for (const py of [preferred, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p)) {
    const r = spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
    if (r.status === 0) return py;
  }
  return undefined;
}

function hasAvx512(): boolean {
  try {
    return /\bavx512f\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
}

/** Runs the reference with `args` at `threads` threads; undefined (logged) where it cannot run. */
export function torchReference(
  args: string[],
  threads: number,
  opts: ReferenceOptions,
  log: (l: string) => void,
): ReferenceRun | undefined {
  const script = opts.script ?? defaultReferenceScript();
  if (!existsSync(script)) {
    log(`PyTorch reference: ${script} not found (--reference-script PATH)`);
    return undefined;
  }
  const python = findPython(opts.python);
  if (!python) {
    log('PyTorch reference: no python with torch found (Debian: apt-get install python3-torch libopenblas0-pthread)');
    return undefined;
  }
  const coretype = opts.coretype ?? (hasAvx512() ? 'SkylakeX' : undefined);
  const argv = [script, ...args, '--threads', String(threads), ...(coretype ? ['--coretype', coretype] : [])];
  try {
    const out = execFileSync(python, argv, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 16 << 20,
    });
    const parsed = JSON.parse(out.trim().split('\n').pop() ?? '') as ReferenceRun;
    log(`PyTorch reference: ${args.join(' ')}: median ${(parsed.median_s * 1000).toFixed(0)} ms`);
    return parsed;
  } catch (e) {
    log(
      `PyTorch reference failed (${python} ${argv.join(' ')}): ${(e as Error).message.split('\n').slice(0, 3).join(' ')}`,
    );
    return undefined;
  }
}

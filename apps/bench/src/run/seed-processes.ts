// The training seeds of `fiber-bench run` and `fiber-bench tune` run in child processes of the
// bundled CLI, several at once (one wasm thread each). Each child writes its result as JSON to a
// file of a temporary folder; the parent reads it back. A child that fails, or a signal that stops
// the parent (SIGINT, SIGTERM, SIGHUP), stops the others rather than leaving them to train on.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { constants, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { intArg } from '../train/args.js';

/** Bounds of --seeds (and --jobs) and --seed, for `run` and `tune`. */
export const MAX_SEEDS = 64;
export const MAX_SEED = 2 ** 32 - 1;

/**
 * The training seeds S, S+1, ..., S+N-1 of `--seed S --seeds N`; a RangeError when the last is past
 * MAX_SEED, the largest seed a seed process takes (the generators' range).
 */
export function trainingSeeds(seed: number, seeds: number): number[] {
  const last = seed + seeds - 1;
  if (last > MAX_SEED)
    throw new RangeError(
      `--seed ${seed} with --seeds ${seeds}: the training seeds run to ${last}, past the largest seed, 2^32 - 1 (${MAX_SEED})`,
    );
  return Array.from({ length: seeds }, (_, i) => seed + i);
}

/**
 * `--seed S --seeds N` of `run` and `tune`: each within its bounds, and the last training seed
 * (S + N - 1) within MAX_SEED. An error names the option.
 */
export function seedOptions(seedText: string, seedsText: string): { seed: number; seeds: number } {
  const seeds = intArg('seeds', seedsText, 1, MAX_SEEDS);
  const seed = intArg('seed', seedText, 0, MAX_SEED);
  trainingSeeds(seed, seeds);
  return { seed, seeds };
}

/** `--jobs J`: how many seed processes run at once, else one per core; never more than the seeds. */
export function jobsOption(jobsText: string | undefined, seeds: number): number {
  const jobs = jobsText === undefined ? cpus().length : intArg('jobs', jobsText, 1, MAX_SEEDS);
  return Math.max(1, Math.min(seeds, jobs));
}

/** The key of a number JSON has not (NaN, ±Infinity) in a seed process's result. */
const NON_FINITE = '$nonFinite';

/**
 * A seed process's result as JSON, its NaN and infinities kept as `{"$nonFinite": "NaN"}` (JSON
 * has none: `JSON.stringify` writes null, which a mean over seeds would read as 0).
 */
export function encodeSeedResult(value: unknown): string {
  return JSON.stringify(value, (_, v) =>
    typeof v === 'number' && !Number.isFinite(v) ? { [NON_FINITE]: String(v) } : v,
  );
}

/** `encodeSeedResult`'s text read back, its NaN and infinities numbers again. */
export function decodeSeedResult(text: string): unknown {
  return JSON.parse(text, (_, v) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
    const keys = Object.keys(v);
    const n = v[NON_FINITE];
    return keys.length === 1 && (n === 'NaN' || n === 'Infinity' || n === '-Infinity') ? Number(n) : v;
  });
}

/** The signals that stop a command (its seed processes with it). */
const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Runs `fn` over items with at most `jobs` at once; results in item order. After a failure no new item starts. */
export async function pool<T, R>(items: readonly T[], jobs: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  await Promise.all(
    Array.from({ length: Math.min(jobs, items.length) }, async () => {
      while (next < items.length && !failed) {
        const k = next++;
        try {
          out[k] = await fn(items[k]);
        } catch (e) {
          failed = true;
          throw e;
        }
      }
    }),
  );
  return out;
}

/**
 * Runs a child process of the CLI per seed, at most `jobs` at once, with the arguments
 * `childArgs(seed, resultFile)`: the child writes its result to `resultFile` (`encodeSeedResult`). The results,
 * in seed order. `command` names the command in the line a stop signal prints
 * (`fiber-bench <command>: SIGINT: stopped the seed processes`).
 */
export async function runSeedProcesses<R>(
  command: string,
  seeds: readonly number[],
  jobs: number,
  childArgs: (seed: number, resultFile: string) => string[],
): Promise<R[]> {
  const dir = mkdtempSync(join(tmpdir(), `fiber-bench-${command}-`));
  const children = new Set<ChildProcess>();
  const stopChildren = () => {
    for (const c of children) c.kill('SIGTERM');
  };
  // `on`, not `once`: Ctrl-C under `npm run bench` delivers SIGINT twice (the terminal's to the
  // process group, and scripts/run.mjs passes its own on); the second must not kill the exit
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    stopChildren();
    rmSync(dir, { recursive: true, force: true });
    const code = 128 + (constants.signals[signal] ?? 0);
    process.exitCode = code;
    // exit once the line is written (process.exit drops what a pipe has not taken yet), or after
    // 2 s if stderr is a pipe nobody reads
    process.stderr.write(`fiber-bench ${command}: ${signal}: stopped the seed processes\n`, () => process.exit(code));
    setTimeout(() => process.exit(code), 2000).unref();
  };
  const runOne = (seed: number) => {
    const file = join(dir, `seed-${seed}.json`);
    // the bundled CLI: this module is a chunk beside dist/cli.js
    const argv = [fileURLToPath(new URL('./cli.js', import.meta.url)), ...childArgs(seed, file)];
    return new Promise<R>((resolvePromise, reject) => {
      const child = spawn(process.execPath, argv, { stdio: ['ignore', 'inherit', 'inherit'] });
      children.add(child);
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        children.delete(child);
        if (code !== 0) reject(new Error(`seed ${seed}: the child process failed (${signal ?? `exit ${code}`})`));
        else {
          try {
            resolvePromise(decodeSeedResult(readFileSync(file, 'utf8')) as R);
          } catch (e) {
            reject(new Error(`seed ${seed}: unreadable result ${file}: ${(e as Error).message}`));
          }
        }
      });
    });
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  try {
    return await pool(seeds, jobs, runOne);
  } catch (e) {
    stopChildren();
    throw e;
  } finally {
    // once stopping, the handlers stay until the exit, so that a second signal cannot kill it first
    if (!stopping) for (const s of STOP_SIGNALS) process.off(s, onSignal);
    rmSync(dir, { recursive: true, force: true });
  }
}

#!/usr/bin/env node
// Entry point of every root npm script. It bootstraps what a fresh machine lacks, then runs the
// command: pnpm at the version pinned in package.json (installed into .tools/ with npm), the
// workspace install from the frozen lockfile, the build of every package (turbo), and finally
//   test         tsc --noEmit over every package, biome ci (format + lint), all vitest projects, then a
//                one-line summary "N passed, N failed, N skipped"
//   lint         biome check (format + lint) with the arguments after `--` (`--write .` fixes)
//   bench        the main job: `fiber-bench run` with the arguments after `--` (preset small, 2 seeds, wasm)
//   fiber-bench  the bench CLI with the arguments after `--`
//   fiber-metrics the eval-metrics CLI with the arguments after `--`
//   demo         the demo page (apps/demo) on Vite's dev server, with the COOP/COEP headers wasm
//                threads need; arguments after `--` go to Vite (e.g. `--port 8080`)
//   build        only the bootstrap and build
//   changeset    the changesets CLI
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, mkdirSync, rmSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runChild, signalStatus, stopSignal } from './child.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [cmd = 'test', ...args] = process.argv.slice(2);
const log = (msg) => process.stderr.write(`[fiber-vl] ${msg}\n`);

// Bootstrap output (npm, pnpm, turbo) goes to stderr, so that a command's stdout is only its own
// (`npm run -s fiber-bench -- coarse --json > results.json` gives clean JSON).
const BOOTSTRAP_STDIO = ['inherit', 2, 2];

// Each step runs as a child that gets the signals sent to this script (scripts/child.mjs). After a
// stop signal no further step starts, even when the step that got it exits 0 or its status is not
// checked (the clang install below).
async function run(bin, argv, opts = {}) {
  const status = await runChild(bin, argv, { cwd: root, stdio: BOOTSTRAP_STDIO, env: process.env, ...opts });
  const stop = stopSignal();
  if (stop) {
    log(`stopped by ${stop}`);
    process.exit(status === 0 ? signalStatus(stop) : status);
  }
  return status;
}
async function mustRun(bin, argv, opts) {
  const status = await run(bin, argv, opts);
  if (status !== 0) {
    log(`failed (exit ${status}): ${bin} ${argv.join(' ')}`);
    process.exit(status);
  }
}

// 1. pnpm at the pinned version.
const pinned = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager; // "pnpm@X.Y.Z"
const pnpmVersion = pinned.split('@')[1];
const tools = join(root, '.tools');
const pnpmBin = join(tools, 'node_modules', 'pnpm', 'bin', 'pnpm.mjs');
const pnpmPkg = join(tools, 'node_modules', 'pnpm', 'package.json');
if (!existsSync(pnpmPkg) || JSON.parse(readFileSync(pnpmPkg, 'utf8')).version !== pnpmVersion) {
  log(`installing pnpm@${pnpmVersion} into .tools/`);
  rmSync(tools, { recursive: true, force: true });
  mkdirSync(tools, { recursive: true });
  await mustRun('npm', [
    'install',
    '--prefix',
    tools,
    '--no-save',
    '--no-audit',
    '--no-fund',
    '--loglevel=error',
    `pnpm@${pnpmVersion}`,
  ]);
}
const pnpm = (argv, opts) => mustRun(process.execPath, [pnpmBin, ...argv], opts);
// turbo looks pnpm up on PATH; the workspace's own binaries come next.
process.env.PATH = [join(tools, 'node_modules', '.bin'), join(root, 'node_modules', '.bin'), process.env.PATH].join(
  delimiter,
);
process.env.TURBO_TELEMETRY_DISABLED = '1';
process.env.DO_NOT_TRACK = '1';

// 2. clang + wasm-ld for tensor-core's WebAssembly kernels (packages/tensor-core/wasm/*.c). The
// build needs a clang with the wasm32 target; on Debian/Ubuntu it is installed here when missing.
function hasWasmClang() {
  const names = [process.env.FIBER_CLANG, ...[21, 20, 19, 18, 17, 16, 15].map((v) => `clang-${v}`), 'clang'].filter(
    Boolean,
  );
  return names.some((c) => {
    const r = spawnSync(c, ['--print-targets'], { encoding: 'utf8' });
    return r.status === 0 && /\bwasm32\b/.test(r.stdout);
  });
}
if (!hasWasmClang()) {
  const apt = spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).status === 0;
  if (apt && process.getuid?.() === 0) {
    log('installing clang-19 and lld-19 (apt-get) for the wasm kernels');
    await run('sh', [
      '-c',
      'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang-19 lld-19 >/dev/null',
    ]);
  } else {
    log(
      'no clang with the wasm32 target found: install clang + lld (e.g. apt-get install clang-19 lld-19) or set FIBER_CLANG',
    );
  }
}

// 3. The workspace, exactly as locked.
log('pnpm install --frozen-lockfile');
await pnpm(['install', '--frozen-lockfile', '--reporter=append-only'], { env: { ...process.env, CI: 'true' } });

// 4. Build every package (turbo caches what did not change).
const turbo = join(root, 'node_modules', '.bin', 'turbo');
log('building packages');
await mustRun(turbo, ['run', 'build', '--output-logs=errors-only', '--log-order=grouped']);

// CLIs run in the folder npm was called from, so that relative file arguments work.
const userCwd = process.env.INIT_CWD ?? process.cwd();
const bench = (argv) =>
  mustRun(process.execPath, [join(root, 'apps', 'bench', 'dist', 'cli.js'), ...argv], {
    cwd: userCwd,
    stdio: 'inherit',
  });
const metrics = (argv) =>
  mustRun(process.execPath, [join(root, 'packages', 'eval-metrics', 'dist', 'cli.js'), ...argv], {
    cwd: userCwd,
    stdio: 'inherit',
  });

async function test(args) {
  // tsup builds without type checks, so the types are checked here: the packages, bench and the
  // browser tests as one program (tsconfig.check.json: the declarations they share are read once,
  // not once per package), then the demo with its own lib. `turbo run typecheck` checks each
  // package alone, as its `typecheck` script does.
  log('type-checking packages');
  const tsc = join(root, 'node_modules', '.bin', 'tsc');
  await mustRun(tsc, ['-p', 'tsconfig.check.json']);
  await mustRun(tsc, ['--noEmit', '-p', join('apps', 'demo')]);
  log('formatting and lint: biome ci (`npm run lint -- --write .` applies the fixes)');
  await mustRun(join(root, 'node_modules', '.bin', 'biome'), ['ci', '.'], { stdio: 'inherit' });
  const report = join(root, 'node_modules', '.cache', 'vitest-report.json');
  mkdirSync(dirname(report), { recursive: true });
  rmSync(report, { force: true });
  const status = await run(
    join(root, 'node_modules', '.bin', 'vitest'),
    ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...args],
    { stdio: 'inherit' },
  );
  if (existsSync(report)) {
    const r = JSON.parse(readFileSync(report, 'utf8'));
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`\n${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  }
  process.exit(status);
}

switch (cmd) {
  case 'build':
    break;
  case 'bench':
    await bench(['run', ...args]);
    break;
  case 'fiber-bench':
    await bench(args);
    break;
  case 'fiber-metrics':
    await metrics(args);
    break;
  case 'demo': {
    const models = process.env.FIBER_DEMO_MODELS ?? join(root, 'bench-results', 'models');
    log(
      existsSync(join(models, 'models.json'))
        ? `bench-trained models: ${models}`
        : `no bench-trained models in ${models} (npm run bench writes them); the page also takes checkpoint files`,
    );
    log(
      'demo: Vite dev server with Cross-Origin-Opener-Policy / Cross-Origin-Embedder-Policy (wasm threads); open the URL below',
    );
    const vite = join(root, 'apps', 'demo', 'node_modules', 'vite', 'bin', 'vite.js');
    await mustRun(process.execPath, [vite, '--config', join(root, 'apps', 'demo', 'vite.config.ts'), ...args], {
      stdio: 'inherit',
    });
    break;
  }
  case 'changeset':
    await mustRun(join(root, 'node_modules', '.bin', 'changeset'), args, { stdio: 'inherit' });
    break;
  case 'test':
    await test(args);
    break;
  case 'lint':
    await mustRun(join(root, 'node_modules', '.bin', 'biome'), ['check', ...(args.length ? args : ['.'])], {
      stdio: 'inherit',
    });
    break;
  default:
    log(`unknown command "${cmd}" (expected test, lint, bench, demo, fiber-bench, fiber-metrics, build or changeset)`);
    process.exit(2);
}

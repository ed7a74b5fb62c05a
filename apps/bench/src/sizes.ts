// `fiber-bench sizes`: what a user downloads. For each published package: its packed tarball
// (bytes, unpacked bytes, files, from `npm pack`), and the disk size of a fresh `npm install` of
// that package (with its dependencies, from the registry; optional peers such as webgpu and sharp
// not installed) into an empty app, plus the install of every model package together.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PackSize {
  package: string;
  tarballBytes: number;
  unpackedBytes: number;
  files: number;
}
export interface InstallSize {
  install: string;
  bytes?: number;
  packages?: number;
  seconds?: number;
  error?: string;
}

const PUBLISHED = ['tensor-core', 'swin', 'roberta', 'fusion', 'heads-coarse', 'heads-fine', 'trainer', 'eval-metrics'];

function duBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += duBytes(p);
    else if (e.isFile()) total += statSync(p).size;
  }
  return total;
}

/** Packs every published package (pnpm pack rewrites workspace:^ to versions) into `outDir`. */
function packAll(
  root: string,
  outDir: string,
  log: (l: string) => void,
): { sizes: PackSize[]; tarballs: Map<string, string> } {
  const pnpm = join(root, '.tools', 'node_modules', 'pnpm', 'bin', 'pnpm.mjs');
  const sizes: PackSize[] = [];
  const tarballs = new Map<string, string>();
  for (const name of PUBLISHED) {
    const dir = join(root, 'packages', name);
    log(`packing @fiber-vl/${name} ...`);
    const out = execFileSync(process.execPath, [pnpm, 'pack', '--pack-destination', outDir, '--json'], {
      cwd: dir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const info = JSON.parse(out) as { filename: string; files: { path: string }[] };
    const file = info.filename.startsWith('/') ? info.filename : join(outDir, info.filename);
    const unpacked = info.files.reduce((n, f) => n + statSync(join(dir, f.path)).size, 0);
    sizes.push({
      package: `@fiber-vl/${name}`,
      tarballBytes: statSync(file).size,
      unpackedBytes: unpacked,
      files: info.files.length,
    });
    tarballs.set(name, file);
  }
  return { sizes, tarballs };
}

/** npm install of `wanted` (and the tarballs they depend on) into a new empty app. */
function freshInstall(
  packagesDir: string,
  label: string,
  wanted: string[],
  tarballs: Map<string, string>,
  log: (l: string) => void,
): InstallSize {
  const app = mkdtempSync(join(tmpdir(), 'fiber-vl-install-'));
  try {
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'fresh-app', private: true, type: 'module' }));
    // the @fiber-vl dependencies of the wanted packages come from the local tarballs too
    const needed = new Set<string>();
    const visit = (name: string) => {
      if (needed.has(name)) return;
      needed.add(name);
      const pkg = JSON.parse(readFileSync(join(packagesDir, name, 'package.json'), 'utf8')) as {
        dependencies?: Record<string, string>;
      };
      for (const dep of Object.keys(pkg.dependencies ?? {}))
        if (dep.startsWith('@fiber-vl/')) visit(dep.slice('@fiber-vl/'.length));
    };
    wanted.forEach(visit);
    log(`npm install ${label} into an empty app ...`);
    const t0 = performance.now();
    const r = spawnSync(
      'npm',
      ['install', '--no-audit', '--no-fund', '--loglevel=error', ...[...needed].map((n) => tarballs.get(n)!)],
      { cwd: app, encoding: 'utf8' },
    );
    const seconds = (performance.now() - t0) / 1000;
    if (r.status !== 0)
      return {
        install: label,
        error: (r.stderr || r.stdout || `npm exited ${r.status}`).trim().split('\n').slice(-3).join(' '),
      };
    const modules = join(app, 'node_modules');
    const lock = JSON.parse(readFileSync(join(app, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, unknown>;
    };
    return { install: label, bytes: duBytes(modules), packages: Object.keys(lock.packages).length - 1, seconds };
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
}

export function runSizes(
  root: string,
  { install = true, log = (l: string) => process.stderr.write(`${l}\n`) } = {},
): { packs: PackSize[]; installs: InstallSize[] } {
  const packagesDir = join(root, 'packages');
  const outDir = mkdtempSync(join(tmpdir(), 'fiber-vl-pack-'));
  try {
    const { sizes, tarballs } = packAll(root, outDir, log);
    const installs: InstallSize[] = [];
    if (install) {
      installs.push(freshInstall(packagesDir, '@fiber-vl/tensor-core', ['tensor-core'], tarballs, log));
      installs.push(freshInstall(packagesDir, '@fiber-vl/eval-metrics', ['eval-metrics'], tarballs, log));
      installs.push(
        freshInstall(
          packagesDir,
          'the six model packages',
          ['tensor-core', 'swin', 'roberta', 'fusion', 'heads-coarse', 'heads-fine'],
          tarballs,
          log,
        ),
      );
      installs.push(freshInstall(packagesDir, 'every published package', PUBLISHED, tarballs, log));
    }
    return { packs: sizes, installs };
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

const mb = (b: number) => (b / 1e6).toFixed(2);

export function sizesMarkdown({ packs, installs }: { packs: PackSize[]; installs: InstallSize[] }): string {
  const rows = packs.map((p) => `| ${p.package} | ${mb(p.tarballBytes)} | ${mb(p.unpackedBytes)} | ${p.files} |`);
  const inst = installs.map((i) =>
    i.error
      ? `| ${i.install} | failed: ${i.error} | | |`
      : `| ${i.install} | ${mb(i.bytes!)} | ${i.packages} | ${i.seconds!.toFixed(1)} |`,
  );
  return [
    '| package | tarball MB | unpacked MB | files |',
    '|---|---|---|---|',
    ...rows,
    '',
    '| fresh npm install (optional peers not installed) | node_modules MB | packages | seconds |',
    '|---|---|---|---|',
    ...inst,
  ].join('\n');
}

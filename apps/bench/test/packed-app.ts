// A user's app with the published packages installed: every package is packed by pnpm (the tool
// that publishes them, so `workspace:^` ranges become real versions) and its tarball unpacked into
// node_modules/@fiber-vl/<name> of an empty app in the OS temp folder. Outside the repository,
// Node and TypeScript find only what the app's node_modules holds: the tarballs' contents, the
// third-party packages they declare (linked from the workspace's install, at the declared version,
// hoisted as npm would) and what a user adds themselves (`userDeps`). A file the tarball lacks, a
// dependency a package imports without declaring, or a range pnpm left unrewritten fails here, where
// workspace links would hide it.
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';

export const root = join(__dirname, '../../..');
/** Every published package: the folders under packages/ whose package.json is not private. */
export const packageNames: string[] = readdirSync(join(root, 'packages')).filter((name) => {
  const manifest = join(root, 'packages', name, 'package.json');
  return existsSync(manifest) && !JSON.parse(readFileSync(manifest, 'utf8')).private;
});

export interface PackageJson {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  bin?: Record<string, string>;
  exports?: Record<string, unknown>;
  imports?: Record<string, unknown>;
  sideEffects?: unknown;
  license?: string;
  engines?: Record<string, string>;
}

export interface PackedPackage {
  /** `tensor-core`, ... */
  name: string;
  tarball: string;
  /** the unpacked package in the app's node_modules */
  dir: string;
  /** package.json as published */
  manifest: PackageJson;
  /** every path in the tarball, relative to the package root */
  files: string[];
}

export interface PackedApp {
  dir: string;
  packages: PackedPackage[];
  /** third-party package name -> the workspace folder it was linked from */
  linked: Map<string, string>;
  remove(): void;
}

function pnpm(args: string[], cwd: string): string {
  const bin = join(root, '.tools', 'node_modules', 'pnpm', 'bin', 'pnpm.mjs');
  if (!existsSync(bin)) throw new Error(`pnpm is not bootstrapped at ${bin}: run \`npm run build\` once`);
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pnpm ${args.join(' ')} in ${cwd} failed (${r.status}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** The workspace's tsc on the project in `dir` (run from `dir`, so packages resolve from there). */
export function runTsc(dir: string, ...args: string[]): SpawnSyncReturns<string> {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  return spawnSync(process.execPath, [tsc, '-p', dir, ...args], { cwd: dir, encoding: 'utf8' });
}

function tar(args: string[]): string {
  const r = spawnSync('tar', args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`tar ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** The installed copy of `dep` that the workspace gave package `from` (pnpm links each direct dependency). */
function workspaceCopy(dep: string, from: string[]): string | undefined {
  for (const dir of from) {
    const p = join(dir, 'node_modules', dep);
    if (existsSync(join(p, 'package.json'))) return realpathSync(p);
  }
  return undefined;
}

function link(appModules: string, name: string, target: string, type: 'dir' | 'file' = 'dir'): void {
  const at = join(appModules, name);
  mkdirSync(dirname(at), { recursive: true });
  symlinkSync(target, at, type === 'dir' ? 'junction' : 'file');
}

/**
 * Packs every package and installs the tarballs into a new app under the OS temp folder.
 * `userDeps` are packages the user installs themselves (e.g. `@types/node`), linked from the workspace.
 */
export function buildPackedApp(userDeps: string[] = []): PackedApp {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'fiber-vl-user-app-')));
  // inside the repository, Node and TypeScript would find the workspace's node_modules from the app
  if (!relative(realpathSync(root), dir).startsWith('..')) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`the OS temp folder ${tmpdir()} is inside the repository: set TMPDIR to a folder outside ${root}`);
  }
  try {
    const tarballs = join(dir, '.tarballs');
    const modules = join(dir, 'node_modules');
    mkdirSync(tarballs, { recursive: true });
    const packages: PackedPackage[] = [];
    for (const name of packageNames) {
      const src = join(root, 'packages', name);
      const version = JSON.parse(readFileSync(join(src, 'package.json'), 'utf8')).version;
      pnpm(['pack', '--pack-destination', tarballs], src);
      const tarball = join(tarballs, `fiber-vl-${name}-${version}.tgz`);
      if (!existsSync(tarball))
        throw new Error(`pnpm pack wrote no ${tarball} (found ${readdirSync(tarballs).join(', ')})`);
      const target = join(modules, '@fiber-vl', name);
      mkdirSync(target, { recursive: true });
      tar(['-xzf', tarball, '-C', target, '--strip-components=1']);
      const files = tar(['-tzf', tarball])
        .split('\n')
        .filter(Boolean)
        .map((f) => f.replace(/^package\//, ''));
      const manifest: PackageJson = JSON.parse(readFileSync(join(target, 'package.json'), 'utf8'));
      packages.push({ name, tarball, dir: target, manifest, files });
    }

    // Third-party dependencies, hoisted to the app's node_modules as npm does; declared optional peers
    // are installed too (a user who wants sharp or webgpu adds them).
    const linked = new Map<string, string>();
    const wanted = new Map<string, { range: string; by: string }>();
    for (const p of packages) {
      const deps = { ...p.manifest.peerDependencies, ...p.manifest.dependencies };
      for (const [dep, range] of Object.entries(deps)) {
        if (dep.startsWith('@fiber-vl/')) continue;
        const seen = wanted.get(dep);
        if (seen && seen.range !== range)
          throw new Error(
            `${dep}: ${seen.by} wants ${seen.range}, @fiber-vl/${p.name} wants ${range}; one copy cannot serve both`,
          );
        wanted.set(dep, { range, by: `@fiber-vl/${p.name}` });
        if (linked.has(dep)) continue;
        const copy = workspaceCopy(dep, [join(root, 'packages', p.name)]);
        if (!copy) {
          if (p.manifest.peerDependenciesMeta?.[dep]?.optional) continue;
          throw new Error(`@fiber-vl/${p.name} depends on ${dep}, which the workspace did not install for it`);
        }
        const version = JSON.parse(readFileSync(join(copy, 'package.json'), 'utf8')).version;
        if (/^\d+\.\d+\.\d+$/.test(range) && version !== range)
          throw new Error(`@fiber-vl/${p.name} pins ${dep}@${range}, the workspace has ${version}`);
        link(modules, dep, copy);
        linked.set(dep, copy);
      }
    }
    for (const dep of userDeps) {
      const copy = workspaceCopy(dep, [root, join(root, 'apps', 'bench')]);
      if (!copy) throw new Error(`the workspace has no ${dep} to give the app`);
      if (!linked.has(dep)) link(modules, dep, copy);
      linked.set(dep, copy);
    }

    // npm links each package's bin into node_modules/.bin.
    for (const p of packages)
      for (const [bin, file] of Object.entries(p.manifest.bin ?? {}))
        link(join(modules, '.bin'), bin, join(p.dir, file), 'file');

    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify(
        {
          name: 'fiber-vl-user-app',
          private: true,
          type: 'module',
          dependencies: Object.fromEntries(packages.map((p) => [p.manifest.name, p.manifest.version])),
        },
        null,
        2,
      ),
    );
    return { dir, packages, linked, remove: () => rmSync(dir, { recursive: true, force: true }) };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

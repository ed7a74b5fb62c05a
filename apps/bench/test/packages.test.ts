// Every published package, packed by pnpm and installed from its tarball into an empty app outside
// the repository (./packed-app.ts): the tarball holds what its exports, bin and imports point at,
// ranges are real versions, every package it imports is declared, and it loads from ESM and CJS in
// a plain Node process (not through vitest's resolver), exactly as a user's install would.
import { execFileSync, spawnSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPackedApp, type PackedApp, type PackedPackage, packageNames, root, runTsc } from './packed-app.js';

let app: PackedApp;
beforeAll(() => {
  app = buildPackedApp(['@types/node']); // what a Node user of the /node entries has
}, 120_000);
afterAll(() => app?.remove());
const packed = (name: string): PackedPackage => app.packages.find((p) => p.name === name)!;

/** The specifiers of a package's entries: `@fiber-vl/swin`, `@fiber-vl/swin/node`, ... */
const entriesOf = (p: PackedPackage): string[] =>
  Object.keys(p.manifest.exports ?? {})
    .filter((k) => k !== './package.json')
    .map((k) => `@fiber-vl/${p.name}${k.slice(1)}`);

/** Writes `files` and a tsconfig listing them into a folder of the app and runs tsc there. */
function typecheck(folder: string, files: Record<string, string>, compilerOptions: Record<string, unknown>) {
  const dir = join(app.dir, folder);
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: Object.keys(files) }));
  try {
    const r = runTsc(dir);
    return { output: r.stdout + r.stderr, status: r.status };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every string an exports / imports map points at ("./dist/index.js", ...). */
function targets(map: unknown): string[] {
  if (typeof map === 'string') return [map];
  // 'fiber-vl-source' is the workspace's own condition (its tests read src/); users never set it
  if (map && typeof map === 'object')
    return Object.entries(map).flatMap(([k, v]) => (k === 'fiber-vl-source' ? [] : targets(v)));
  return [];
}

/** The package a bare specifier names: `@scope/name/sub` -> `@scope/name`, `name/sub` -> `name`. */
function packageOf(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** Bare specifiers of static imports, re-exports, dynamic imports and requires in built JS / .d.ts. */
function bareImports(code: string): Set<string> {
  const out = new Set<string>();
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)(["'])([^"'\n]+)\1/gm;
  for (const m of code.matchAll(re)) if (!m[2]!.startsWith('.')) out.add(m[2]!);
  return out;
}

function runIn(dir: string, args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: dir, encoding: 'utf8' });
}

it('finds every published package under packages/', () => {
  expect(packageNames.length).toBeGreaterThanOrEqual(8);
  expect(app.packages.map((p) => p.name)).toEqual(packageNames);
});

describe.each(packageNames)('@fiber-vl/%s, packed and installed', (name) => {
  it('has real version ranges, its README and every file its manifest points at', () => {
    const p = packed(name);
    const m = p.manifest;
    expect(m.name).toBe(`@fiber-vl/${name}`);
    const exports = m.exports as Record<string, { import: { default: string }; require: { default: string } }>;
    expect(exports['.']!.import.default).toBe('./dist/index.js');
    expect(exports['.']!.require.default).toBe('./dist/index.cjs');
    expect(m.sideEffects).toBeDefined();
    expect(p.files).toContain('README.md');
    // the licence its manifest names, as a file (a link to the repository's in the source tree)
    expect(m.license).toBe('Apache-2.0');
    expect(p.files).toContain('LICENSE');
    expect(readFileSync(join(p.dir, 'LICENSE'), 'utf8')).toMatch(/Apache License\s+Version 2\.0, January 2004/);
    expect(m.engines).toEqual({ node: '>=20' });
    expect(p.files.filter((f) => f.startsWith('src/') || /\.test\.|\/test\//.test(f))).toEqual([]);
    const pointed = [...targets(m.exports), ...targets(m.imports), ...Object.values(m.bin ?? {})];
    expect(pointed.length).toBeGreaterThan(2);
    for (const t of pointed)
      expect(p.files, `${t} is named in package.json but not packed`).toContain(t.replace(/^\.\//, ''));
    for (const t of Object.values(m.bin ?? {}))
      expect(readFileSync(join(p.dir, t), 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
    const source = JSON.parse(readFileSync(join(root, 'packages', name, 'package.json'), 'utf8'));
    if (Object.values<string>(source.dependencies ?? {}).some((r) => r.startsWith('workspace:')))
      expect(source.scripts?.prepack, 'the npm pack guard').toBe('node ../../scripts/prepack.mjs');
    const fields = ['dependencies', 'peerDependencies', 'optionalDependencies', 'devDependencies'] as const;
    for (const field of fields)
      for (const [dep, range] of Object.entries(m[field] ?? {})) {
        expect(range, `${field}.${dep}`).not.toMatch(/^(workspace|link|file):/);
        if (dep.startsWith('@fiber-vl/'))
          expect(range, `${field}.${dep}`).toBe(`^${packed(dep.slice(10)).manifest.version}`);
      }
  });

  it('declares every package its built code and declarations import', () => {
    const p = packed(name);
    const m = p.manifest;
    const declared = new Set([...Object.keys(m.dependencies ?? {}), ...Object.keys(m.peerDependencies ?? {})]);
    const builtins = new Set(builtinModules);
    const undeclared = new Map<string, string>();
    const built = p.files.filter((f) => /^dist\/.*\.(js|cjs|mjs|d\.ts|d\.cts)$/.test(f));
    expect(built.length).toBeGreaterThan(3);
    for (const f of built)
      for (const spec of bareImports(readFileSync(join(p.dir, f), 'utf8'))) {
        if (spec.startsWith('#')) {
          expect(m.imports?.[spec], `${f} imports ${spec}, which package.json "imports" lacks`).toBeDefined();
          continue;
        }
        const dep = packageOf(spec.replace(/^node:/, ''));
        if (builtins.has(dep) || declared.has(dep)) continue;
        undeclared.set(dep, f);
      }
    expect(Object.fromEntries(undeclared)).toEqual({});
  });

  it('every entry imports from ESM and requires from CJS with the same exports', () => {
    const entries = entriesOf(packed(name));
    expect(entries).toContain(`@fiber-vl/${name}`);
    for (const entry of entries) {
      const esm = runIn(app.dir, [
        '--input-type=module',
        '-e',
        `import * as m from '${entry}'; console.log(JSON.stringify(Object.keys(m).sort()))`,
      ]);
      const cjs = runIn(app.dir, ['-e', `console.log(JSON.stringify(Object.keys(require('${entry}')).sort()))`]);
      const esmKeys = JSON.parse(esm.trim().split('\n').at(-1)!);
      expect(esmKeys.length, entry).toBeGreaterThan(0);
      expect(JSON.parse(cjs.trim().split('\n').at(-1)!), entry).toEqual(esmKeys);
    }
  });
});

describe('packing with npm', () => {
  it('is refused where npm would publish "workspace:^" ranges as they are', () => {
    const r = spawnSync('npm', ['pack', '--dry-run'], {
      cwd: join(root, 'packages', 'fusion'),
      encoding: 'utf8',
      // as under `npm test`, whose pnpm and turbo pass a pnpm user agent down to this process
      env: {
        ...process.env,
        npm_config_loglevel: 'error',
        npm_config_user_agent: 'pnpm/12.4.2 npm/? node/? linux x64',
      },
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('@fiber-vl/fusion: npm would pack these ranges unchanged');
    expect(r.stderr).toContain('dependencies.@fiber-vl/tensor-core: "workspace:^"');
    expect(r.stderr).toContain('npm run changeset -- publish');
  });
});

describe('the installed tensor-core runs in plain Node', () => {
  it.each(['esm', 'cjs'])('%s: wasm backend, gradients and chained ops work', (kind) => {
    const code = `
      const { tf, initBackend, gelu } = M;
      initBackend({ backend: 'wasm' }).then(async (info) => {
        const g = tf.grad((x) => tf.sum(gelu(x)))(tf.tensor1d([0, 1]));
        const chained = tf.tensor1d([1, 2]).square().sum().dataSync()[0];
        console.log(JSON.stringify({ backend: info.name, threads: info.threads, grad: Array.from(await g.data()), chained }));
      });`;
    const src =
      kind === 'esm'
        ? `import * as M from '@fiber-vl/tensor-core';${code}`
        : `const M = require('@fiber-vl/tensor-core');${code}`;
    const out = runIn(app.dir, kind === 'esm' ? ['--input-type=module', '-e', src] : ['-e', src]);
    const r = JSON.parse(out.trim().split('\n').at(-1)!);
    expect(r.backend).toBe('wasm');
    expect(r.chained).toBe(5);
    expect(r.grad[0]).toBeCloseTo(0.5, 6);
    expect(r.grad[1]).toBeCloseTo(1.0833154705876864, 5);
  });
});

describe('the installed fiber-metrics CLI', () => {
  it('runs from node_modules/.bin with the Meteor data its package ships', () => {
    const dir = join(app.dir, 'captions');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'refs.json'),
      JSON.stringify({
        annotations: [
          { image_id: 1, caption: 'a small red triangle left of a striped square' },
          { image_id: 1, caption: 'a red triangle next to a square' },
          { image_id: 2, caption: 'two blue circles on a green background' },
        ],
      }),
    );
    writeFileSync(
      join(dir, 'preds.json'),
      JSON.stringify([
        { image_id: 1, caption: 'a red triangle left of a square' },
        { image_id: 2, caption: 'blue circles on a green background' },
      ]),
    );
    const bin = join(app.dir, 'node_modules', '.bin', 'fiber-metrics');
    const r = spawnSync(bin, ['caption', '--refs', join(dir, 'refs.json'), '--preds', join(dir, 'preds.json')], {
      cwd: app.dir,
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const scores = JSON.parse(r.stdout);
    // METEOR needs the WordNet/stem data under the package's data/ folder
    expect(scores.METEOR_no_paraphrase).toBeGreaterThan(0.3);
    expect(scores.BLEU_4).toBeGreaterThan(0);
    const bad = spawnSync(bin, ['caption', '--refs', join(dir, 'preds.json'), '--preds', join(dir, 'preds.json')], {
      cwd: app.dir,
      encoding: 'utf8',
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^fiber-metrics: .*preds\.json: expected a COCO captions file/);
  });
});

describe('TypeScript users of the published declarations', () => {
  const strict = { strict: true, noEmit: true, target: 'es2022' };
  // tfjs' declarations need the DOM lib and skipLibCheck (see the last test)
  const withDom = { lib: ['es2022', 'dom'], types: [], skipLibCheck: true };

  it('resolve every entry under node16 from ESM (.mts) and CJS (.cts) files', () => {
    const entries = app.packages.flatMap(entriesOf);
    expect(entries.length).toBeGreaterThan(12);
    const use = (load: (e: string, i: number) => string) =>
      entries.map((e, i) => `${load(e, i)}\nexport const n${i}: number = Object.keys(m${i}).length;`).join('\n');
    const r = typecheck(
      'types-node16',
      {
        'esm.mts': use((e, i) => `import * as m${i} from '${e}';`),
        'cjs.cts': use((e, i) => `import m${i} = require('${e}');`),
      },
      { ...strict, ...withDom, module: 'node16', moduleResolution: 'node16' },
    );
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  it('resolve every entry under the legacy node10 resolution too (typesVersions for the subpaths)', () => {
    const entries = app.packages.flatMap(entriesOf);
    const r = typecheck(
      'types-node10',
      {
        'user.ts': entries
          .map((e, i) => `import * as m${i} from '${e}';\nexport const n${i}: number = Object.keys(m${i}).length;`)
          .join('\n'),
      },
      { ...strict, ...withDom, module: 'commonjs', moduleResolution: 'node10', ignoreDeprecations: '5.0' },
    );
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  it('see the chained ops tensor-core registers (x.mean(), x.square(), ...)', () => {
    const r = typecheck(
      'types-check',
      {
        'user.ts': [
          "import { tf, initBackend, type BackendInfo } from '@fiber-vl/tensor-core';",
          'export async function main(): Promise<BackendInfo> {',
          '  const info = await initBackend({ backend: "cpu" });',
          '  const x: tf.Tensor2D = tf.ones([2, 3]);',
          '  const y: tf.Tensor = x.mean(1).square().reshape([2, 1]).add(tf.scalar(1));',
          '  y.dispose();',
          '  return info;',
          '}',
        ].join('\n'),
      },
      { ...strict, ...withDom, module: 'esnext', moduleResolution: 'bundler' },
    );
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  it("under a Node-only tsconfig (es2022 + @types/node) without skipLibCheck, only tfjs' and @webgpu/types' own declarations fail", () => {
    // tfjs-core's .d.ts use DOM types and @types/long's global `Long` (types: ['node'] hides it); the READMEs say to
    // use skipLibCheck. This checks that none of the errors is in these packages' declarations.
    const entries = app.packages.flatMap(entriesOf);
    const r = typecheck(
      'types-node-only',
      { 'user.mts': entries.map((e, i) => `export * as m${i} from '${e}';`).join('\n') },
      { ...strict, module: 'node16', lib: ['es2022'], types: ['node'] },
    );
    const errors = r.output.split('\n').filter((l) => /error TS\d+/.test(l));
    expect(errors.length).toBeGreaterThan(0); // tfjs' own (if this fails, tfjs fixed them: drop the README note)
    expect(
      errors.filter(
        (l) => !/node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?(@tensorflow\/tfjs-core|@webgpu\/types)\//.test(l),
      ),
    ).toEqual([]);
  });
});

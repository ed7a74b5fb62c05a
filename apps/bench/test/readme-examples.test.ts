// Every TypeScript example in the READMEs (root, packages, apps) type-checks against the packages as
// a user installs them (packed by pnpm into an app outside the repository: ./packed-app.ts) and runs.
// A block fenced as ```ts is type-checked and run (from the repository root, so that fixture paths
// resolve); one fenced as ```ts browser is browser-only code (bundler setup, DOM) and one fenced as
// ```ts no-run needs files a user has and this repository cannot ship (an official checkpoint,
// roberta-base's vocabulary): both are type-checked only.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { transformSync } from 'esbuild';
import { buildPackedApp, root, runTsc } from './packed-app.js';

// The user adds Node's types and, for the bundler example, Vite.
const app = buildPackedApp(['@types/node', 'vite']);
const work = join(app.dir, 'readme-examples');
mkdirSync(work, { recursive: true });
afterAll(() => app.remove());

interface Example {
  readme: string;
  index: number;
  run: boolean;
  code: string;
  file: string;
}

const readmes = [
  'README.md',
  ...readdirSync(join(root, 'packages')).map((p) => `packages/${p}/README.md`),
  ...readdirSync(join(root, 'apps')).map((a) => `apps/${a}/README.md`),
].filter((f) => existsSync(join(root, f)));

const examples: Example[] = [];
for (const readme of readmes) {
  const text = readFileSync(join(root, readme), 'utf8');
  const re = /^```(ts|typescript)( browser| no-run)?\n([\s\S]*?)^```/gm;
  let m: RegExpExecArray | null;
  let i = 0;
  while ((m = re.exec(text))) {
    const file = join(work, `${readme.replace(/[/.]/g, '_')}_${i}.mts`);
    // a module of its own (top-level await, no global clash between examples)
    writeFileSync(file, `${m[3]}\nexport {};\n`);
    examples.push({ readme, index: i++, run: !m[2], code: m[3], file });
  }
}

describe('README examples', () => {
  it('every example type-checks against the installed packages', () => {
    writeFileSync(
      join(work, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: 'esnext',
          moduleResolution: 'bundler',
          target: 'es2022',
          lib: ['es2022', 'dom'],
          types: ['node'],
          skipLibCheck: true,
        },
        include: ['*.mts'],
      }),
    );
    const r = runTsc(work);
    const out = (r.stdout + r.stderr).replaceAll(`${work}/`, '');
    expect(out, out).toBe('');
    expect(r.status).toBe(0);
    expect(examples.length).toBeGreaterThan(10);
    // the declarations read are the installed ones, not the workspace's
    const files = runTsc(work, '--listFilesOnly');
    const ours = files.stdout.split('\n').filter((f) => f.includes('@fiber-vl/'));
    expect(ours.length).toBeGreaterThan(8);
    expect(ours.filter((f) => !f.startsWith(join(app.dir, 'node_modules', '@fiber-vl')))).toEqual([]);
  }, 300_000);

  it.each(examples.filter((e) => e.run).map((e) => [`${e.readme} #${e.index + 1}`, e] as const))(
    '%s runs',
    (_, e) => {
      const js = transformSync(readFileSync(e.file, 'utf8'), { loader: 'ts', format: 'esm', target: 'es2022' }).code;
      const out = e.file.replace(/\.mts$/, '.mjs');
      writeFileSync(out, js);
      const r = spawnSync(process.execPath, [out], {
        cwd: root,
        encoding: 'utf8',
        env: { ...process.env, FIBER_BACKEND: process.env.FIBER_BACKEND ?? 'wasm' },
        timeout: 240_000,
      });
      expect(r.status, `${relative(root, e.file)} failed:\n${r.stderr.slice(-3000)}`).toBe(0);
    },
    300_000,
  );
});

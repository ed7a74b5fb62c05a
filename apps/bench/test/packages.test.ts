// Every published package builds to ESM + CJS + .d.ts and loads from both module systems, in a
// plain Node process (not through vitest's resolver), exactly as a user's install would.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(__dirname, '../../..');
const packages = ['tensor-core', 'swin', 'roberta', 'fusion', 'heads-coarse', 'heads-fine', 'trainer', 'eval-metrics'];

describe.each(packages)('@fiber-vl/%s', (name) => {
  const dir = join(root, 'packages', name);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));

  it('declares an exports map, files, sideEffects and a README', () => {
    expect(pkg.name).toBe(`@fiber-vl/${name}`);
    expect(pkg.exports['.'].import.default).toBe('./dist/index.js');
    expect(pkg.exports['.'].require.default).toBe('./dist/index.cjs');
    expect(pkg.files).toContain('dist');
    expect(pkg.sideEffects).toBeDefined();
    expect(existsSync(join(dir, 'README.md'))).toBe(true);
    for (const f of ['index.js', 'index.cjs', 'index.d.ts', 'index.d.cts'])
      expect(existsSync(join(dir, 'dist', f)), `dist/${f}`).toBe(true);
  });

  it('imports from ESM and requires from CJS with the same exports', () => {
    const esm = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import * as m from '@fiber-vl/${name}'; console.log(JSON.stringify(Object.keys(m).sort()))`,
      ],
      {
        cwd: join(root, 'apps', 'bench'),
        encoding: 'utf8',
      },
    );
    const cjs = execFileSync(
      process.execPath,
      ['-e', `console.log(JSON.stringify(Object.keys(require('@fiber-vl/${name}')).sort()))`],
      {
        cwd: join(root, 'apps', 'bench'),
        encoding: 'utf8',
      },
    );
    const esmKeys = JSON.parse(esm.trim().split('\n').at(-1)!);
    expect(esmKeys.length).toBeGreaterThan(0);
    expect(JSON.parse(cjs.trim().split('\n').at(-1)!)).toEqual(esmKeys);
  });
});

describe('the built tensor-core runs in plain Node', () => {
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
    const out = execFileSync(process.execPath, kind === 'esm' ? ['--input-type=module', '-e', src] : ['-e', src], {
      cwd: join(root, 'apps', 'bench'),
      encoding: 'utf8',
    });
    const r = JSON.parse(out.trim().split('\n').at(-1)!);
    expect(r.backend).toBe('wasm');
    expect(r.chained).toBe(5);
    expect(r.grad[0]).toBeCloseTo(0.5, 6);
    expect(r.grad[1]).toBeCloseTo(1.0833154705876864, 5);
  });
});

describe('TypeScript users of the published declarations', () => {
  it('see the chained ops tensor-core registers (x.mean(), x.square(), ...)', () => {
    const dir = join(root, 'apps', 'bench', '.types-check');
    mkdirSync(dir, { recursive: true });
    try {
      writeFileSync(
        join(dir, 'user.ts'),
        [
          "import { tf, initBackend, type BackendInfo } from '@fiber-vl/tensor-core';",
          'export async function main(): Promise<BackendInfo> {',
          '  const info = await initBackend({ backend: "cpu" });',
          '  const x: tf.Tensor2D = tf.ones([2, 3]);',
          '  const y: tf.Tensor = x.mean(1).square().reshape([2, 1]).add(tf.scalar(1));',
          '  y.dispose();',
          '  return info;',
          '}',
        ].join('\n'),
      );
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            noEmit: true,
            module: 'esnext',
            moduleResolution: 'bundler',
            target: 'es2022',
            lib: ['es2022', 'dom'],
            types: [],
            skipLibCheck: true,
          },
          files: ['user.ts'],
        }),
      );
      const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
      const r = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' });
      expect(r.stdout + r.stderr).toBe('');
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

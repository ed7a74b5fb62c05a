// Every package's main entry bundles for browsers with a plain esbuild call and a plain Vite
// library build: no aliases, no Node built-ins, no polyfills. tfjs-core is bundled once (the
// tensor-core files themselves stay small: the gradient / chained-op registration comes from
// tfjs-core's own ESM files, shared with the rest of it).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { build as esbuild } from 'esbuild';
import { build as viteBuild } from 'vite';

const bench = join(__dirname, '..');
const packages = ['tensor-core', 'swin', 'roberta', 'fusion', 'heads-coarse', 'heads-fine', 'trainer', 'eval-metrics'];
const tmp = join(bench, '.browser-bundles');
mkdirSync(tmp, { recursive: true });
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const entry = (name: string) => {
  const file = join(tmp, `${name}.mjs`);
  writeFileSync(file, `import * as m from '@fiber-vl/${name}';\nglobalThis.fiber = m;\n`);
  return file;
};

describe.each(packages)('@fiber-vl/%s main entry in a browser bundle', (name) => {
  it('esbuild --bundle --platform=browser', async () => {
    const r = await esbuild({
      entryPoints: [entry(name)],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
      outdir: tmp,
    });
    expect(r.errors).toEqual([]);
    const inputs = Object.keys(r.metafile.inputs);
    expect(
      inputs.filter(
        (i) => i.startsWith('node:') || /platform-node|node-file-source|wasm-threads-node|webgpu-node/.test(i),
      ),
    ).toEqual([]);
    const code = r.outputFiles.find((f) => f.path.endsWith('.js'))!.text;
    expect(code).not.toMatch(/from ["']node:|require\(["']node:/);
    if (name === 'tensor-core') {
      const out = Object.values(r.metafile.outputs)[0];
      const own = Object.entries(out.inputs).filter(([k]) => k.includes('packages/tensor-core/dist'));
      const ownBytes = own.reduce((n, [, v]) => n + v.bytesInOutput, 0);
      // the WebAssembly kernels ship inside the JS as base64 (four builds: SIMD / relaxed SIMD, with
      // and without threads); counted apart, as `fiber-bench bundle-sizes` does
      const embeddedWasm = [...code.matchAll(/"AGFzbQ[A-Za-z0-9+/=]*"/g)].reduce((n, m) => n + m[0].length, 0);
      expect(embeddedWasm).toBeGreaterThan(0);
      // tensor-core's own code only (~205 KB unminified on 2026-12-02): a bundled copy of tfjs-core's
      // engine and ops would add ~150 KB more
      expect(ownBytes - embeddedWasm).toBeLessThan(260_000);
      expect(inputs.filter((i) => i.endsWith('tfjs-core/dist/engine.js'))).toHaveLength(1);
    }
  });

  it('vite build (library mode)', async () => {
    // Vite swaps a Node built-in for an empty "browser external" module instead of failing, so
    // record who imports one: tfjs' own guarded Node paths are fine, ours are not.
    const nodeImports: string[] = [];
    const builtin = /^(node:|(fs|fs\/promises|path|os|url|module|worker_threads|child_process|crypto|util|stream)$)/;
    const out = await viteBuild({
      root: tmp,
      configFile: false,
      logLevel: 'silent',
      plugins: [
        {
          name: 'record-node-imports',
          enforce: 'pre',
          resolveId: (source, importer) => void (builtin.test(source) && nodeImports.push(`${importer} -> ${source}`)),
        },
      ],
      build: { write: false, lib: { entry: entry(name), formats: ['es'], fileName: name }, minify: false },
    });
    const outputs = (Array.isArray(out) ? out : [out]).flatMap((o) => ('output' in o ? o.output : []));
    expect(outputs.map((o) => ('code' in o ? o.code : '')).join('\n').length).toBeGreaterThan(100);
    expect(nodeImports.filter((i) => /packages\/[^/]+\/dist|fiber-vl/.test(i))).toEqual([]);
  });
});

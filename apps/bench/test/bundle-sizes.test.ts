// `fiber-bench bundle-sizes --json`: only JSON on stdout, a browser bundle per package with its
// initial and lazy sizes, and the wasm binaries listed apart.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { BundleSizes } from '../src/bundle-sizes.js';

it('bundle-sizes --json: every package bundled for the browser, wasm binaries apart', () => {
  const r = spawnSync(process.execPath, [join(__dirname, '../dist/cli.js'), 'bundle-sizes', '--json'], {
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  const report = JSON.parse(r.stdout) as BundleSizes & { command: string };
  expect(report.command).toBe('bundle-sizes');
  expect(report.bundles.map((b) => b.package)).toEqual(
    ['tensor-core', 'swin', 'roberta', 'fusion', 'heads-coarse', 'heads-fine', 'trainer', 'eval-metrics'].map(
      (n) => `@fiber-vl/${n}`,
    ),
  );
  for (const b of report.bundles) {
    expect(b.initial.gzipBytes, b.package).toBeGreaterThan(1000);
    expect(b.initial.gzipBytes, b.package).toBeLessThan(b.initial.bytes);
    expect(b.fiberVlBytes, b.package).toBeGreaterThan(0);
  }
  // tfjs-backend-webgpu is imported by initBackend only when WebGPU is asked for
  const core = report.bundles[0];
  expect(core.lazy.holds).toContain('@tensorflow/tfjs-backend-webgpu');
  expect(report.bundles.at(-1)!.dependencies.map((d) => d.name)).not.toContain('@tensorflow/tfjs-core');
  expect(
    report.wasm
      .filter((w) => w.source === '@tensorflow/tfjs-backend-wasm')
      .map((w) => w.file)
      .sort(),
  ).toEqual(['tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm', 'tfjs-backend-wasm.wasm']);
  expect(report.wasm.filter((w) => w.source === '@fiber-vl/tensor-core').map((w) => w.file)).toEqual([
    'kernels simd',
    'kernels relaxed',
    'kernels threadsSimd',
    'kernels threadsRelaxed',
  ]);
  for (const w of report.wasm) expect(w.bytes, w.file).toBeGreaterThan(w.gzipBytes);
}, 180_000);

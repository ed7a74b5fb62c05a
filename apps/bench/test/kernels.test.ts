// fiber-bench kernels: --only takes several comma-separated prefixes (the single-thread wasm pass
// asks for the GEMMs and the window attention together).
import { describe, expect, it } from 'vitest';
import { runKernels } from '../src/kernels.js';

describe('runKernels', () => {
  it('keeps the cases whose kernel name starts with any of the comma-separated prefixes', async () => {
    const run = await runKernels({
      backends: ['cpu'],
      only: 'layer norm, window attention',
      maxCaseSeconds: 0.2, // on cpu the window attention cases are skipped by their estimate (0.3-1.4 s)
      minSeconds: 0.01,
      log: () => {},
    });
    const kernels = new Set(run.results.map((r) => r.kernel));
    expect([...kernels].sort()).toEqual([
      'layer norm',
      'window attention (Swin-B/384 stage 1)',
      'window attention (Swin-B/384 stage 3)',
    ]);
    expect(run.results.filter((r) => r.kernel === 'layer norm').every((r) => r.ms > 0 && !r.skipped)).toBe(true);
    expect(run.results.filter((r) => r.kernel.startsWith('window')).every((r) => r.skipped)).toBe(true);
  });
});

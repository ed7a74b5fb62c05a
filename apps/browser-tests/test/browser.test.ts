// Every package in a real Chromium: the test page (page/) built by Vite, served by `vite preview` on
// 127.0.0.1 with COOP/COEP headers, driven by puppeteer-core. Skipped, with the reason printed,
// where no Chromium is installed (FIBER_CHROMIUM overrides /usr/bin/chromium).
//
// WebGPU runs on SwiftShader here (a CPU emulation compiling a shader per op shape: minutes), so by
// default it runs the coarse fused pass of set A and the fine-grained chain of fine-a (backbone +
// FPN + head) while wasm runs every fixture. FIBER_BROWSER_WEBGPU=full runs every fixture on
// WebGPU too (budget half an hour on 2 cores); FIBER_BROWSER_WEBGPU=off skips WebGPU.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'puppeteer-core';
import { chromiumUnavailable, runSuite, startHarness, summary, type Harness } from './harness.js';
import type { SuiteParams, SuiteResult } from '../page/protocol.js';

const configFile = fileURLToPath(new URL('../vite.config.ts', import.meta.url));
const unavailable = chromiumUnavailable();
const webgpuMode = process.env.FIBER_BROWSER_WEBGPU ?? 'quick';
if (!['quick', 'full', 'off'].includes(webgpuMode))
  throw new Error(`FIBER_BROWSER_WEBGPU="${webgpuMode}": expected quick, full or off`);

/** A suite's result as an assertion: no error, at least `minChecks` checks, none failed. */
function expectPassed(r: SuiteResult, minChecks = 1) {
  expect(r.error).toBeUndefined();
  expect(r.checks.filter((c) => !c.ok)).toEqual([]);
  expect(r.checks.length).toBeGreaterThanOrEqual(minChecks);
}

if (unavailable) {
  process.stderr.write(`[browser-tests] skipped: ${unavailable}\n`);
  describe.skip(`browser tests (skipped: ${unavailable})`, () => {
    it('runs the packages in Chromium', () => {});
  });
} else {
  describe('fiber-vl in Chromium', () => {
    let harness: Harness | undefined;
    let page: Page;
    beforeAll(async () => {
      harness = await startHarness({ configFile });
      page = await harness.open('/');
    });
    afterAll(() => harness?.close());

    const run = async (name: string, params: SuiteParams = {}) => {
      const r = await runSuite(page, name, params);
      process.stderr.write(`${summary(r)}\n`);
      return r;
    };

    describe('wasm', () => {
      it('runs SIMD with threads and fiber-vl kernels when the page is cross-origin isolated', async () => {
        const r = await run('backend', { backend: 'wasm' });
        expectPassed(r);
        const { backend, crossOriginIsolated, hardwareConcurrency } = r.info as {
          backend: { name: string; simd: boolean; threads: number; kernels: { threads?: number; error?: string } };
          crossOriginIsolated: boolean;
          hardwareConcurrency: number;
        };
        process.stderr.write(
          `[browser] wasm: ${backend.threads} threads (${hardwareConcurrency} logical cores), ` +
            `kernels ${JSON.stringify(backend.kernels)}\n`,
        );
        expect(crossOriginIsolated).toBe(true);
        expect(backend).toMatchObject({ name: 'wasm', simd: true });
        expect(backend.kernels.error).toBeUndefined();
        // every core (up to the 8 pthread workers of tfjs' threaded build): more than one thread
        // wherever the machine has more than one core
        expect(backend.threads).toBe(Math.min(hardwareConcurrency, 8));
        expect(backend.kernels.threads).toBe(backend.threads);
        if (hardwareConcurrency > 1) expect(backend.threads).toBeGreaterThan(1);
      });

      it.each(['set-a', 'set-b'])(
        'coarse FIBER parity on %s: every output the harness computes within 1e-4',
        async (set) => {
          expectPassed(await run('coarse', { backend: 'wasm', set }), 60);
        },
      );

      it('fine-grained parity on fine-a: the whole model, every output and intermediate', async () => {
        expectPassed(await run('fine', { backend: 'wasm', fixture: 'fine-a' }), 94);
      });

      it('fine-grained parity on tiny_fine_head: the head on given P3-P7', async () => {
        expectPassed(await run('fine', { backend: 'wasm', fixture: 'tiny_fine_head' }), 50);
      });
    });

    describe('webgpu', () => {
      let noWebGpu: string | undefined = webgpuMode === 'off' ? 'FIBER_BROWSER_WEBGPU=off' : undefined;
      const full = webgpuMode === 'full';

      it('has an adapter (SwiftShader without a GPU) and computes a matmul', async (ctx) => {
        if (noWebGpu) ctx.skip(noWebGpu);
        const r = await run('backend', { backend: 'webgpu' });
        if (r.error?.includes('BackendUnavailableError')) {
          noWebGpu = `no WebGPU in this Chromium: ${r.error.split('\n')[0]}`;
          process.stderr.write(`[browser-tests] webgpu skipped: ${noWebGpu}\n`);
          ctx.skip(noWebGpu);
        }
        expectPassed(r);
        const { backend } = r.info as {
          backend: { name: string; adapter: { vendor: string; architecture: string; description: string } };
        };
        process.stderr.write(`[browser] webgpu adapter: ${JSON.stringify(backend.adapter)}\n`);
        expect(backend.name).toBe('webgpu');
        expect(backend.adapter.vendor || backend.adapter.architecture || backend.adapter.description).not.toBe('');
      });

      const coarse = full
        ? [
            { set: 'set-a', only: '', passes: 'every pass' },
            { set: 'set-b', only: '', passes: 'every pass' },
          ]
        : [{ set: 'set-a', only: 'fused.', passes: 'the fused pass and its ITM, VQA and MLM heads' }];
      it.for(coarse)(
        'coarse FIBER parity on $set: $passes',
        { timeout: full ? 1_800_000 : 600_000 },
        async ({ set, only }, ctx) => {
          if (noWebGpu) ctx.skip(noWebGpu);
          expectPassed(await run('coarse', { backend: 'webgpu', set, only }), only ? 7 : 60);
        },
      );

      it.for(full ? ['fine-a', 'tiny_fine_head'] : ['fine-a'])(
        'fine-grained parity on %s',
        { timeout: full ? 1_800_000 : 600_000 },
        async (fixture, ctx) => {
          if (noWebGpu) ctx.skip(noWebGpu);
          expectPassed(await run('fine', { backend: 'webgpu', fixture }), 50);
        },
      );
    });

    it('reads .pth / .ckpt / safetensors from File and Blob sources; path loaders say they need Node', async () => {
      expectPassed(await run('io'), 16);
    });

    it('decodes images to the official pixel_values; trains and runs the BPE tokenizer', async () => {
      expectPassed(await run('inputs'), 8);
    });

    it('trainer: world images through PNG, AdamW, and training steps with tfjs gradients on wasm', async () => {
      const r = await run('trainer', { backend: 'wasm' });
      expectPassed(r, 4);
      expect(r.info.tensorsLeft).toBe(0);
    });

    it("runs @fiber-vl/eval-metrics' browser entry on its public fixtures", async () => {
      expectPassed(await run('metrics'), 20);
    });
  });
}

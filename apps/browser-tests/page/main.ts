// The test page: registers every suite on window.fiberTests for the driver (test/harness.ts).
// Opened by hand (`npm run dev -w @fiber-vl/browser-tests`), `?run=all&backend=wasm` runs them all.
import { backendSuite } from './suites/backend.js';
import { coarseSuite } from './suites/coarse.js';
import { fineSuite } from './suites/fine.js';
import { inputsSuite } from './suites/inputs.js';
import { ioSuite } from './suites/io.js';
import { metricsSuite } from './suites/metrics.js';
import { trainerSuite } from './suites/trainer.js';
import type { Check, FiberTestsApi, SuiteParams, SuiteResult } from './protocol.js';

type Suite = (params: SuiteParams) => Promise<{ checks: Check[]; info: Record<string, unknown> }>;

const SUITES: Record<string, Suite> = {
  backend: backendSuite,
  coarse: coarseSuite,
  fine: fineSuite,
  inputs: inputsSuite,
  io: ioSuite,
  metrics: metricsSuite,
  trainer: trainerSuite,
};

const log = document.getElementById('log')!;

async function run(name: string, params: SuiteParams = {}): Promise<SuiteResult> {
  const suite = SUITES[name];
  const t0 = performance.now();
  const done = (r: Omit<SuiteResult, 'suite' | 'params' | 'ms'>): SuiteResult => {
    const result = { suite: name, params, ms: performance.now() - t0, ...r };
    const status = `${result.ok ? 'ok  ' : 'FAIL'} ${name} ${JSON.stringify(params)}`;
    const error = r.error ? `: ${r.error}` : '';
    log.textContent += `${status} (${result.ms.toFixed(0)} ms, ${r.checks.length} checks)${error}\n`;
    return result;
  };
  if (!suite)
    return done({
      ok: false,
      checks: [],
      info: {},
      error: `unknown suite "${name}" (known: ${Object.keys(SUITES).join(', ')})`,
    });
  try {
    const { checks, info } = await suite(params);
    return done({ ok: checks.length > 0 && checks.every((c) => c.ok), checks, info });
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    return done({ ok: false, checks: [], info: {}, error: `${err.name}: ${err.message}\n${err.stack ?? ''}` });
  }
}

const api: FiberTestsApi = { suites: Object.keys(SUITES), run };
window.fiberTests = api;

const query = new URLSearchParams(location.search);
if (query.get('run') === 'all') {
  const backend = query.get('backend') ?? 'wasm';
  (async () => {
    await run('backend', { backend });
    for (const set of ['set-a', 'set-b']) await run('coarse', { backend, set });
    for (const fixture of ['fine-a', 'tiny_fine_head']) await run('fine', { backend, fixture });
    await run('io');
    await run('inputs');
    await run('metrics');
    await run('trainer', { backend });
  })();
}

// Drives a Vite-built page in Debian's Chromium with puppeteer-core (no browser download):
// build the page, serve it with `vite preview` on 127.0.0.1 (COOP/COEP headers from the config),
// launch Chromium headless with WebGPU enabled, and run the page's suites. A demo page test can
// reuse it: `startHarness({ configFile: '<app>/vite.config.ts' })`, then `harness.open('/path')`.
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { build, preview, type PreviewServer } from 'vite';
import type { SuiteParams, SuiteResult } from '../page/protocol.js';

/** The Chromium to drive: FIBER_CHROMIUM, else Debian's. */
export const CHROMIUM = process.env.FIBER_CHROMIUM ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here, or undefined when they can. */
export function chromiumUnavailable(path = CHROMIUM): string | undefined {
  try {
    accessSync(path, constants.X_OK);
    return undefined;
  } catch {
    return `no Chromium executable at ${path} (install Debian's chromium, or set FIBER_CHROMIUM to a Chromium binary)`;
  }
}

/** Flags known to work headless on a machine without a GPU; WebGPU then runs on SwiftShader (Vulkan on the CPU). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--enable-unsafe-webgpu',
];

export interface Harness {
  /** The server's origin, e.g. http://127.0.0.1:4173 */
  url: string;
  browser: Browser;
  /** A new tab on `path`, once `ready` (a page expression, e.g. 'window.x !== undefined') is true. */
  open(path: string, ready?: string): Promise<Page>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  configFile: string;
  /** Extra Chromium flags. */
  args?: string[];
  /** Page console lines of these types are copied to stderr (default: error). */
  console?: string[];
}

export async function startHarness({
  configFile,
  args = [],
  console: echo = ['error'],
}: HarnessOptions): Promise<Harness> {
  let server: PreviewServer | undefined;
  let browser: Browser | undefined;
  const profile = mkdtempSync(join(tmpdir(), 'fiber-chromium-'));
  const close = async () => {
    const proc = browser?.process();
    await browser?.close().catch(() => undefined);
    if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await server?.close();
    rmSync(profile, { recursive: true, force: true });
  };
  try {
    await build({ configFile, logLevel: 'warn' });
    server = await preview({ configFile, logLevel: 'warn', preview: { port: 0, strictPort: false, open: false } });
    const url = server.resolvedUrls?.local[0]?.replace(/\/$/, '');
    if (!url) throw new Error('vite preview did not report its URL');
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      userDataDir: profile,
      args: [...CHROMIUM_ARGS, ...args],
      // SwiftShader WebGPU runs whole suites inside one page.evaluate
      protocolTimeout: 1_800_000,
    });
    const b = browser;
    return {
      url,
      browser: b,
      // a string is evaluated as an expression: '() => ...' would be a function, truthy at once
      async open(path, ready = 'window.fiberTests !== undefined') {
        const page = await b.newPage();
        page.on('console', (m) => echo.includes(m.type()) && process.stderr.write(`[page ${m.type()}] ${m.text()}\n`));
        page.on('pageerror', (e) =>
          process.stderr.write(`[page error] ${e instanceof Error ? e.message : String(e)}\n`),
        );
        await page.goto(`${url}${path}`, { waitUntil: 'load' });
        await page.waitForFunction(ready, { timeout: 60_000 });
        return page;
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Runs one suite of the test page (page/main.ts) and returns its result. */
export function runSuite(page: Page, name: string, params: SuiteParams = {}): Promise<SuiteResult> {
  return page.evaluate((n, p) => window.fiberTests!.run(n, p), name, params);
}

/** One line for the test log: the worst check and the time. */
export function summary(r: SuiteResult): string {
  const finite = r.checks.filter((c) => Number.isFinite(c.maxAbsError));
  const worst = [...r.checks].sort((a, b) => (b.relError ?? b.maxAbsError) - (a.relError ?? a.maxAbsError))[0];
  const maxAbs = Math.max(0, ...finite.map((c) => c.maxAbsError));
  const failed = r.checks.filter((c) => !c.ok).length;
  return (
    `[browser] ${r.suite} ${JSON.stringify(r.params)}: ${r.checks.length} checks, ${failed} failed, ` +
    `max abs error ${maxAbs.toExponential(2)}` +
    `${worst ? ` (worst: ${worst.name})` : ''}, ${(r.ms / 1000).toFixed(1)} s${r.error ? `\n  error: ${r.error}` : ''}`
  );
}

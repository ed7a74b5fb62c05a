// The demo page in Chromium (puppeteer-core, the browser tests' harness): built by Vite, served by
// `vite preview` with the COOP/COEP headers and a folder of bench-format models (test/bench-models.ts)
// at /models/. It loads the bench-trained models, refuses a file that is not a checkpoint, a torch
// checkpoint that is not FIBER's, a checkpoint of the wrong kind and a file that is not an image, answers a question, draws detection
// boxes for a class list, captions the image and ranks texts, each inference leaving no tensor behind;
// the screenshot is test-results/browser/demo.png. Skipped, with the reason, without Chromium.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumUnavailable, type Harness, startHarness } from '../../browser-tests/test/harness.js';
import { writeBenchModels } from './bench-models.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const repo = join(here, '../../..');
const configFile = join(here, '../vite.config.ts');
const screenshot = join(here, '../test-results/browser/demo.png');
const unavailable = chromiumUnavailable();

/** Waits until no task runs, then returns the text of a status line. */
async function settled(page: Page, statusId: string): Promise<string> {
  await page.waitForFunction(() => document.body.dataset.busy === undefined, { timeout: 120_000 });
  return page.$eval(`#${statusId}`, (e) => e.textContent ?? '');
}

/** The "tf tensors: N before, M after" of a status line. */
function tensorCounts(status: string): [number, number] {
  const m = /tf tensors: (\d+) before, (\d+) after/.exec(status);
  if (!m) throw new Error(`no tensor counts in "${status}"`);
  return [Number(m[1]), Number(m[2])];
}

async function upload(
  page: Page,
  selector: 'input#coarse-files' | 'input#fine-file' | 'input#image-file',
  ...files: string[]
) {
  const input = await page.$(selector);
  if (!input) throw new Error(`no ${selector}`);
  await input.uploadFile(...files);
}

if (unavailable) {
  process.stderr.write(`[demo] skipped: ${unavailable}\n`);
  describe.skip(`demo page (skipped: ${unavailable})`, () => {
    it('drives the demo in Chromium', () => {});
  });
} else {
  describe('demo page in Chromium (wasm)', () => {
    let harness: Harness | undefined;
    let page: Page;
    let work: string;
    const previous = process.env.FIBER_DEMO_MODELS;

    beforeAll(async () => {
      work = mkdtempSync(join(tmpdir(), 'fiber-demo-'));
      await writeBenchModels(join(work, 'models'));
      writeFileSync(join(work, 'notes.txt'), 'not a checkpoint, not an image\n'.repeat(4));
      process.env.FIBER_DEMO_MODELS = join(work, 'models');
      harness = await startHarness({ configFile, console: ['error', 'warn', 'log'] });
      page = await harness.open('/?backend=wasm', 'document.body.dataset.ready !== undefined');
    });
    afterAll(async () => {
      await harness?.close();
      if (previous === undefined) delete process.env.FIBER_DEMO_MODELS;
      else process.env.FIBER_DEMO_MODELS = previous;
      rmSync(work, { recursive: true, force: true });
    });

    it('starts wasm with threads (cross-origin isolated) and offers the bench-trained models', async () => {
      expect(await page.evaluate(() => document.body.dataset.ready)).toBe('true');
      const backend = await page.$eval('#backend', (e) => e.textContent ?? '');
      expect(backend).toMatch(/^Backend: WebAssembly \(SIMD, \d+ threads?\)$/);
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
      expect(await page.$eval('#bench', (e) => (e as HTMLElement).hidden)).toBe(false);
    });

    it('loads the bench-trained models and tokenizer', async () => {
      await page.click('#use-bench');
      await page
        .waitForFunction(() => document.querySelectorAll('#loaded li').length === 5, { timeout: 60_000 })
        .catch(async (e) => {
          throw new Error(`${e}: ${await page.$eval('#load-status', (x) => x.textContent)}`);
        });
      expect(await settled(page, 'load-status')).toMatch(/^Loaded 4 models in /);
    });

    it('says what is wrong with a file that is not a checkpoint and with a checkpoint of the wrong kind', async () => {
      await upload(page, 'input#fine-file', join(work, 'notes.txt'));
      await page.waitForFunction(() => document.querySelector('#load-status')?.classList.contains('error'));
      expect(await page.$eval('#load-status', (e) => e.textContent)).toMatch(
        /^Not a checkpoint: notes\.txt: not a checkpoint/,
      );
      await upload(page, 'input#fine-file', join(work, 'models', 'coarse-vqa.safetensors'));
      await page.waitForFunction(() => document.querySelector('#load-status')?.textContent?.startsWith('Wrong kind'));
      expect(await page.$eval('#load-status', (e) => e.textContent)).toMatch(
        /coarse-vqa\.safetensors: is a coarse checkpoint .*this slot needs a fine-grained one/,
      );
      // a PyTorch checkpoint that is not FIBER's (a Lightning .ckpt of two of its head tensors)
      await upload(page, 'input#coarse-files', join(repo, 'fixtures/torch/lightning.ckpt'));
      await page.waitForFunction(() =>
        document.querySelector('#load-status')?.textContent?.startsWith('Not a checkpoint: lightning.ckpt'),
      );
      expect(await page.$eval('#load-status', (e) => e.textContent)).toMatch(
        /lightning\.ckpt: not a FIBER checkpoint \(closest: .*; 2 of 708 keys match, 704 missing/,
      );
      // the models loaded before are still there
      expect(await page.$$eval('#loaded li', (l) => l.length)).toBe(5);
    });

    it('says when an image cannot be decoded, then takes a PNG', async () => {
      await upload(page, 'input#image-file', join(work, 'notes.txt'));
      await page.waitForFunction(() => document.querySelector('#image-status')?.classList.contains('error'));
      expect(await page.$eval('#image-status', (e) => e.textContent)).toMatch(/^Cannot decode notes\.txt as an image/);
      await upload(page, 'input#image-file', join(work, 'models', 'images', 'test-2.png'));
      await page.waitForFunction(() => document.querySelector('#image-status')?.textContent?.startsWith('test-2.png'));
    });

    it('answers a question: top-5 answers with scores, no tensor left behind', async () => {
      await page.type('#question', 'what shape is the spotted object?');
      await page.click('#ask');
      const status = await settled(page, 'vqa-status');
      const answers = await page.$$eval('#vqa-answers li', (l) => l.map((e) => e.textContent ?? ''));
      expect(answers, status).toHaveLength(5);
      for (const a of answers) expect(a).toMatch(/^\S.* — \d\.\d{3}$/);
      const [before, after] = tensorCounts(status);
      expect(after).toBe(before);
    });

    it('draws one box element per detection of a class list over the image', async () => {
      await page.$eval('#prompt', (e) => {
        (e as HTMLInputElement).value = 'circle, square, triangle';
      });
      await page.$eval('#min-score', (e) => {
        (e as HTMLInputElement).value = '0'; // untrained weights: every score is low
      });
      await page.click('#find');
      const status = await settled(page, 'detect-status');
      const boxes = await page.$$eval('#boxes .box', (l) =>
        l.map((e) => ({ label: (e as HTMLElement).dataset.label, width: e.getBoundingClientRect().width })),
      );
      expect(boxes.length, status).toBeGreaterThan(0);
      expect(boxes.length).toBeLessThanOrEqual(10);
      for (const b of boxes) expect(['circle', 'square', 'triangle']).toContain(b.label);
      expect(status).toMatch(new RegExp(`^${boxes.length} box`));
      const [before, after] = tensorCounts(status);
      expect(after).toBe(before);
    });

    it('captions the image by beam search and ranks texts by ITC and ITM', async () => {
      await page.click('#describe');
      const captionStatus = await settled(page, 'caption-status');
      expect(captionStatus).toMatch(/^beam 2, \d+ tokens, streamed over [1-9]\d* steps/);
      await page.click('#rank-texts');
      const rankStatus = await settled(page, 'rank-status');
      const rows = await page.$$eval('#rank-table tbody tr', (l) =>
        l.map((r) => [...r.querySelectorAll('td')].map((c) => c.textContent ?? '')),
      );
      expect(rows, rankStatus).toHaveLength(4);
      for (const [, itc, itm] of rows) {
        expect(Number(itc)).toBeGreaterThanOrEqual(-1);
        expect(Number(itm)).toBeGreaterThanOrEqual(0);
      }
      for (const s of [captionStatus, rankStatus]) {
        const [before, after] = tensorCounts(s);
        expect(after).toBe(before);
      }
    });

    it('saves a screenshot with the boxes drawn', async () => {
      mkdirSync(join(here, '../test-results/browser'), { recursive: true });
      await page.setViewport({ width: 1100, height: 1400 });
      await page.screenshot({ path: screenshot, fullPage: true });
    });
  });
}

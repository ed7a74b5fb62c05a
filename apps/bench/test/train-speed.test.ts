// `fiber-bench train-speed`: a model whose training state cannot fit the wasm heap is reported as
// not run, with the reason, instead of starting a step that never ends (tfjs-backend-wasm's threaded
// build spins when its heap runs out). The tiny model's step runs and is timed.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const cli = join(__dirname, '../dist/cli.js');

describe('fiber-bench train-speed', () => {
  it('reports FIBER-B on wasm as not run (over the 4 GiB heap) and times the tiny step', () => {
    const r = spawnSync(
      process.execPath,
      [cli, 'train-speed', '--backends', 'wasm', '--models', 'fiber-b-384,tiny', '--json'],
      { encoding: 'utf8', timeout: 120_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as {
      command: string;
      results: { backend: string; model: string; ms?: number; skipped?: string }[];
    };
    expect(report.command).toBe('train-speed');
    const [big, tiny] = report.results;
    expect(big.model).toBe('fiber-b-384');
    expect(big.ms).toBeUndefined();
    expect(big.skipped).toMatch(/need 4\.\d GiB, over the 4 GiB wasm heap/);
    expect(tiny.model).toBe('tiny');
    expect(tiny.skipped).toBeUndefined();
    expect(tiny.ms).toBeGreaterThan(0);
  }, 180_000);

  it('refuses a model name it does not know (another name ran FIBER-B/384 under it)', () => {
    const r = spawnSync(process.execPath, [cli, 'train-speed', '--models', 'tiny,small'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--models: unknown model "small" (one of tiny, fiber-b-384)');
  });
});

// fiber-bench parity on the repository's copies of the official fixtures (coarse set B, the
// fine-grained model and head): passes, and a folder whose expected output was tampered with fails
// with exit code 1.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SafetensorsFile, serializeSafetensors } from '@fiber-vl/tensor-core';
import { writeFileSync } from 'node:fs';

const root = join(__dirname, '../../..');
const cli = join(root, 'apps/bench/dist/cli.js');
const setB = join(root, 'fixtures/fiber/set-b');

describe('fiber-bench parity', () => {
  it('passes on the official fixture and prints a table', () => {
    const r = spawnSync(
      process.execPath,
      [cli, 'parity', setB, '--backends', 'cpu', '--out-dir', mkdtempSync(join(tmpdir(), 'parity-'))],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\| caption\.beam5_ids \| 0\.00e\+0 \| 0 \| ok \|/);
    expect(r.stdout).toMatch(/\| fused\.cls_feats \| \d\.\d\de-\d+ \| 0\.0001 \| ok \|/);
    expect(r.stdout).toContain('parity OK on cpu');
  }, 300_000);

  it.each([
    [
      'fine-grained model (set A tiny_fine)',
      'fixtures/fiber/fine-a',
      94,
      /\| head\.dot_product_logits\.P3 \| \d\.\d\de-\d+ \| 0\.0001 \| ok \|/,
    ],
    [
      'fine-grained head (set B tiny_fine_head)',
      'fixtures/fiber-fine/tiny_fine_head',
      50,
      /\| act\.dyhead_tower\.5\.level4 \| \d\.\d\de-\d+ \| 0\.0001 \| ok \|/,
    ],
  ])('recognises a %s folder and passes on it', (_, folder, count, row) => {
    const r = spawnSync(
      process.execPath,
      [cli, 'parity', join(root, folder), '--backends', 'cpu', '--out-dir', mkdtempSync(join(tmpdir(), 'parity-'))],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(row);
    expect(r.stdout).toContain(`${count} of ${count} tensors within tolerance on cpu.`);
  });

  it('fails with exit code 1 when an expected tensor differs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parity-bad-'));
    for (const f of ['config.json', 'model.safetensors', 'inputs.safetensors'])
      copyFileSync(join(setB, f), join(dir, f));
    const src = await SafetensorsFile.open(join(setB, 'outputs.safetensors'));
    const raw = await src.readRaw('vqa.logits');
    const tampered = Float32Array.from(raw.data as Float32Array, (v, i) => (i === 0 ? v + 0.01 : v));
    writeFileSync(
      join(dir, 'outputs.safetensors'),
      serializeSafetensors({ 'vqa.logits': { dtype: 'F32', shape: raw.shape, data: tampered } }),
    );
    await src.close();
    const r = spawnSync(process.execPath, [cli, 'parity', dir, '--backends', 'cpu', '--out-dir', dir], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/\| vqa\.logits \| 1\.0\de-2 \| 0\.0001 \| FAIL \|/);
    expect(r.stdout).toContain('parity FAILED');
    // --json: the same verdict as one JSON document on stdout (it was ignored)
    const json = spawnSync(process.execPath, [cli, 'parity', dir, '--backends', 'cpu', '--json'], { encoding: 'utf8' });
    expect(json.status).toBe(1);
    const report = JSON.parse(json.stdout) as { ok: boolean; reports: { backend: string; ok: boolean }[] };
    expect([report.ok, report.reports.map((x) => [x.backend, x.ok])]).toEqual([false, [['cpu', false]]]);
  });

  it('without a folder is bad usage: one line, exit 2', () => {
    const r = spawnSync(process.execPath, [cli, 'parity'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('parity: a fixture folder is required');
  });
});

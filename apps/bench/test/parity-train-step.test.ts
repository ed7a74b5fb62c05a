// fiber-bench parity on a coarse pre-training step folder (the repository's subset of
// ../shared/fixtures/fiber/train-step/tiny_coarse_step): recognised from config.json, passes, and
// fails with exit code 1 when an expected tensor differs.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SafetensorsFile, serializeSafetensors } from '@fiber-vl/tensor-core';

const root = join(__dirname, '../../..');
const cli = join(root, 'apps/bench/dist/cli.js');
const dir = join(root, 'fixtures/train-step/tiny_coarse_step');

describe('fiber-bench parity on a train-step folder', () => {
  it('replays the steps and passes every tensor (wasm), to a slow reader too', () => {
    // through a pipe read late: the 200 kB report must arrive whole before the process exits
    const out = mkdtempSync(join(tmpdir(), 'parity-ts-'));
    const r = spawnSync(
      'bash',
      [
        '-c',
        'set -o pipefail; "$@" | { sleep 1; cat; }',
        'bash',
        process.execPath,
        cli,
        'parity',
        dir,
        '--backends',
        'wasm',
        '--out-dir',
        out,
      ],
      { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\| step2\.loss\.total \| \d\.\d\de[-+]\d+ \| 0\.0001 \| ok \|/);
    expect(r.stdout).toMatch(/\| grad\.temp \| \d\.\d\de[-+]\d+ \| 0\.00001 abs or 0\.0001 rel \| ok \|/);
    expect(r.stdout).toMatch(/\| queue_after_step2\.queue_total \| 0\.00e\+0 \| 0 \| ok \|/);
    expect(r.stdout).toMatch(/1878 of 1878 tensors within tolerance on wasm/);
    expect(r.stdout).toContain('parity OK on wasm');
  }, 600_000);

  it('fails with exit code 1 when an expected tensor differs', async () => {
    const bad = mkdtempSync(join(tmpdir(), 'parity-ts-bad-'));
    for (const f of ['config.json', 'model.safetensors', 'inputs.safetensors'])
      copyFileSync(join(dir, f), join(bad, f));
    const src = await SafetensorsFile.open(join(dir, 'outputs.safetensors'));
    const raw = await src.readRaw('param_after_step1.itm_score.fc.bias');
    const tampered = Float32Array.from(raw.data as Float32Array, (v, i) => (i === 0 ? v + 1e-3 : v));
    writeFileSync(
      join(bad, 'outputs.safetensors'),
      serializeSafetensors({
        'param_after_step1.itm_score.fc.bias': { dtype: 'F32', shape: raw.shape, data: tampered },
      }),
    );
    await src.close();
    const r = spawnSync(process.execPath, [cli, 'parity', bad, '--backends', 'wasm', '--out-dir', bad], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(
      /\| param_after_step1\.itm_score\.fc\.bias \| 1\.0\de-3 \| 0\.00001 abs or 0\.0001 rel \| FAIL \|/,
    );
    expect(r.stdout).toContain('parity FAILED');
  }, 600_000);
});

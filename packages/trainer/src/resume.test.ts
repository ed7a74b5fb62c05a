// Bit-exact resume: a run killed with SIGKILL at chosen points of a save (mid-save, after the
// rename, while pruning) and at random times, resumed each time from the newest complete
// checkpoint, ends with the same bytes as an uninterrupted run: final model, optimizer state, ITC
// queue, generators, and one log record per step with the same losses. Child processes run
// test/resume-child.mjs on the built package (npm test builds first).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Generator } from '@fiber-vl/tensor-core';
import { testBackends } from '@fiber-vl/tensor-core/testing';

const child = join(__dirname, '../test/resume-child.mjs');
const STEPS = 6;
const { names } = await testBackends();
const backends = names.filter((n) => n === 'cpu' || n === 'wasm');

/** Runs the child; kills it after `killAfterMs` if given. Resolves with its exit code / signal. */
function runChild(
  dir: string,
  backend: string,
  kill?: string,
  killAfterMs?: number,
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [child, dir, backend, String(STEPS), ...(kill ? [kill] : [])], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => p.kill('SIGKILL'), killAfterMs);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const checkpoints = (dir: string) =>
  readdirSync(join(dir, 'checkpoints'))
    .filter((n) => n.startsWith('step-'))
    .sort();
const logSteps = (dir: string) =>
  readFileSync(join(dir, 'log.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { step?: number; losses?: Record<string, unknown>; checkpoint?: string })
    .filter((r) => r.losses)
    .map((r) => ({ step: r.step, losses: r.losses }));

describe.each(backends)('resume after SIGKILL (%s)', (backend) => {
  it('killed mid-save, after a rename, while pruning and at random times: the same bytes as an uninterrupted run', async () => {
    const ref = mkdtempSync(join(tmpdir(), `resume-ref-${backend}-`));
    const r0 = await runChild(ref, backend);
    expect(r0.code, r0.stderr).toBe(0);

    const dir = mkdtempSync(join(tmpdir(), `resume-${backend}-`));
    // a save of step 3 killed after its model file and again after its optimizer file: the run
    // resumes from step 2, losing only the step being saved
    let r = await runChild(dir, backend, 'file@3:model.safetensors');
    expect(r.signal).toBe('SIGKILL');
    expect(checkpoints(dir)).toEqual(['step-00000001', 'step-00000002']);
    r = await runChild(dir, backend, 'file@3:optimizer.safetensors');
    expect(r.signal).toBe('SIGKILL');
    expect(checkpoints(dir)).toEqual(['step-00000001', 'step-00000002']);
    expect(readdirSync(join(dir, 'checkpoints')).some((n) => n.startsWith('.tmp-'))).toBe(true); // the half-written save
    // killed right after the rename of step 4 (before pruning), then in the save of step 5
    // between pruning step 3 and step 2
    r = await runChild(dir, backend, 'renamed@4');
    expect(r.signal).toBe('SIGKILL');
    expect(checkpoints(dir)).toEqual(['step-00000002', 'step-00000003', 'step-00000004']);
    r = await runChild(dir, backend, 'pruned@3');
    expect(r.signal).toBe('SIGKILL');
    expect(checkpoints(dir)).toEqual(['step-00000002', 'step-00000004', 'step-00000005']);
    // random kills (seeded), then a run to the end
    const rng = new Generator(backend === 'cpu' ? 11 : 12);
    for (let i = 0; i < 2; i++) {
      r = await runChild(dir, backend, undefined, 1500 + rng.nextInt(4000));
      if (r.code === 0) break;
    }
    if (r.code !== 0) r = await runChild(dir, backend);
    expect(r.code, r.stderr).toBe(0);

    // the same bytes: final model, and every file of the last checkpoint
    expect(
      readFileSync(join(dir, 'final/model.safetensors')).equals(readFileSync(join(ref, 'final/model.safetensors'))),
    ).toBe(true);
    const last = `checkpoints/step-0000000${STEPS}`;
    for (const f of ['model.safetensors', 'optimizer.safetensors', 'state.safetensors', 'trainer.json']) {
      expect(readFileSync(join(dir, last, f)).equals(readFileSync(join(ref, last, f))), f).toBe(true);
    }
    // one log record per step, with the uninterrupted run's losses
    expect(logSteps(dir)).toEqual(logSteps(ref));
    expect(logSteps(dir).map((x) => x.step)).toEqual([1, 2, 3, 4, 5, 6]);
  }, 900_000);
});

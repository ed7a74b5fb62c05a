// What a person sees: the progress line (TTY: rewritten in place; otherwise plain lines), the JSONL
// step log, and the run folder (resolved config, log cut back on resume, final model).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Generator, Linear, initBackend, loadSafetensors, tf } from '@fiber-vl/tensor-core';
import { JsonlLogger, ProgressPrinter, formatDuration, formatProgress, type TextSink } from './log.js';
import type { StepResult } from './loop.js';
import { FileCheckpointStore, RunFolder } from './node.js';

const result = (step: number, extra: Partial<StepResult> = {}): StepResult => ({
  step,
  losses: { itc: 1.5, itm: 0.69, mlm: 4.2 },
  loss: 6.39,
  lr: 1e-5,
  gradNorm: 2,
  skipped: false,
  ...extra,
});

function sink(isTTY: boolean): TextSink & { text: string } {
  return {
    text: '',
    isTTY,
    columns: 200,
    write(s: string) {
      this.text += s;
    },
  };
}

describe('progress output', () => {
  it('formats step, loss per objective, lr, it/s and ETA', () => {
    expect(
      formatProgress({
        step: 120,
        totalSteps: 1000,
        losses: { itc: 1.234, itm: 0.6925 },
        lr: 1e-5,
        itPerSecond: 2.3,
        etaSeconds: 380,
      }),
    ).toBe('step  120/1000 | itc 1.2340 itm 0.6925 | lr 1.00e-5 | 2.30 it/s | ETA 6m20s');
    expect([formatDuration(12), formatDuration(3725), formatDuration(NaN)]).toEqual(['12s', '1h02m', '?']);
  });

  it('on a TTY rewrites one line in place; checkpoints and the end get their own lines', () => {
    let t = 0;
    const out = sink(true);
    const p = new ProgressPrinter(out, { now: () => (t += 500) });
    p.onStart({ step: 0, totalSteps: 3 });
    p.onStep(result(1), { totalSteps: 3 });
    p.onStep(result(2), { totalSteps: 3 });
    p.onCheckpoint('/run/checkpoints/step-00000002', 2);
    p.onStep(result(3), { totalSteps: 3 });
    p.onEnd({ step: 3, seconds: 1.5 });
    const lines = out.text.split('\n');
    expect(lines[0]).toBe('\r\x1b[2Ktraining 3 steps');
    expect(lines[1]).toMatch(
      /^\r\x1b\[2Kstep 1\/3 .*\r\x1b\[2Kstep 2\/3 \| itc 1\.5000 itm 0\.6900 mlm 4\.2000 \| lr 1\.00e-5 \| 2\.00 it\/s \| ETA 1s$/,
    );
    expect(lines[2]).toBe('\r\x1b[2Kcheckpoint at step 2: /run/checkpoints/step-00000002');
    expect(lines[3]).toMatch(/^\r\x1b\[2Kstep 3\/3 .*ETA 0s$/);
    expect(lines[4]).toBe('\r\x1b[2Kdone: step 3 in 2s');
  });

  it('without a TTY prints plain lines every N steps, the first, the last and every skipped step', () => {
    const out = sink(false);
    const p = new ProgressPrinter(out, { every: 5, now: () => 0 });
    p.onStart({ step: 0, totalSteps: 12, resumedFrom: undefined });
    for (let s = 1; s <= 12; s++)
      p.onStep(result(s, s === 7 ? { skipped: true, reason: 'non-finite loss itc=NaN' } : {}), { totalSteps: 12 });
    const steps = out.text
      .split('\n')
      .filter((l) => l.startsWith('step'))
      .map((l) => Number(/step +(\d+)/.exec(l)![1]));
    expect(steps).toEqual([1, 5, 7, 10, 12]);
    expect(out.text).toContain('SKIPPED (non-finite loss itc=NaN)');
    expect(out.text).not.toContain('\r');
  });

  it('JSONL: one record per step with its losses and lr', () => {
    const lines: string[] = [];
    new JsonlLogger((l) => lines.push(l)).onStep(
      result(4, { losses: { itc: NaN }, loss: NaN, skipped: true, reason: 'x' }),
      { totalSteps: 9, seconds: 1.25 },
    );
    expect(JSON.parse(lines[0])).toEqual({
      step: 4,
      loss: 'NaN',
      losses: { itc: 'NaN' },
      lr: 1e-5,
      grad_norm: 2,
      skipped: true,
      reason: 'x',
      time: 1.25,
    });
  });
});

describe('RunFolder', () => {
  it('writes the resolved config, cuts the log back to the resumed step, refuses to overwrite a run, saves the final model', async () => {
    await initBackend({ backend: 'cpu' });
    const dir = mkdtempSync(join(tmpdir(), 'run-'));
    const run = new RunFolder(dir, { config: { task: 'pretrain-coarse', lr: 1e-5 } });
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).toEqual({ task: 'pretrain-coarse', lr: 1e-5 });
    const log = run.logger({ progress: false });
    for (let s = 1; s <= 5; s++) log.onStep!(result(s), { totalSteps: 5, seconds: s });
    // a line garbled by hand between steps 1 and 2 (history: kept), and one cut by a kill after step 5
    const written = readFileSync(join(dir, 'log.jsonl'), 'utf8').split('\n');
    written.splice(1, 0, 'garbled by hand');
    writeFileSync(join(dir, 'log.jsonl'), `${written.join('\n')}{"step": 6, "los`);
    const resumed = new RunFolder(dir, { config: { task: 'pretrain-coarse', lr: 1e-5 }, resume: true });
    resumed.logger({ progress: false }).onStart!({ step: 3, totalSteps: 5 });
    const lines = readFileSync(join(dir, 'log.jsonl'), 'utf8').trim().split('\n');
    expect(lines[1]).toBe('garbled by hand');
    expect(lines.filter((_, i) => i !== 1).map((l) => JSON.parse(l).step)).toEqual([1, 2, 3]);
    const m = new Linear(3, 2, { rng: new Generator(1) });
    const path = await run.saveFinal(m);
    expect(existsSync(path)).toBe(true);
    const back = await loadSafetensors(path);
    expect(Array.from(await back.get('weight')!.data())).toEqual(Array.from(await m.weight.value.data()));
    tf.dispose([...back.values()]);
    m.dispose();
    // a folder with checkpoints is not started over by accident
    const store = new FileCheckpointStore(join(dir, 'checkpoints'));
    mkdirSync(join(store.dir, 'step-00000001'));
    expect(() => new RunFolder(dir, { config: {} })).toThrow(
      /already holds checkpoints; resume the run or choose another folder/,
    );
  });

  it('resumes only with the settings the run was started with (but those it may change), from a readable config.json', () => {
    const dir = mkdtempSync(join(tmpdir(), 'run-'));
    const config = { task: 'vqa', batch: 8, steps: 100, backend: 'wasm' };
    new RunFolder(dir, { config });
    mkdirSync(join(dir, 'checkpoints', 'step-00000004'));
    expect(() => new RunFolder(dir, { config: { ...config, batch: 3, steps: 2 }, resume: true })).toThrow(
      `${dir}: the run was started with other settings (batch: 8 then, 3 now; steps: 100 then, 2 now); resume with the same ones`,
    );
    expect(() => new RunFolder(dir, { config: { ...config, backend: 'cpu' }, resume: true })).toThrow('backend');
    new RunFolder(dir, { config: { ...config, backend: 'cpu' }, resume: true, resumeMayChange: ['backend'] });
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).backend).toBe('cpu');
    writeFileSync(join(dir, 'config.json'), 'null');
    expect(() => new RunFolder(dir, { config, resume: true })).toThrow('the run was started with other settings');
    rmSync(join(dir, 'config.json'));
    expect(() => new RunFolder(dir, { config, resume: true })).toThrow(
      `${join(dir, 'config.json')}: cannot read the run's settings to check the resume against`,
    );
    // without a checkpoint there is nothing to continue: the resume starts the run
    const fresh = mkdtempSync(join(tmpdir(), 'run-'));
    new RunFolder(fresh, { config, resume: true });
    expect(JSON.parse(readFileSync(join(fresh, 'config.json'), 'utf8'))).toEqual(config);
  });

  it.skipIf(process.platform === 'win32')('refuses a log.jsonl that is a FIFO instead of waiting on it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'run-'));
    const config = { task: 'vqa' };
    const run = new RunFolder(dir, { config });
    rmSync(join(dir, 'log.jsonl'));
    execFileSync('mkfifo', [join(dir, 'log.jsonl')]);
    expect(() => run.truncateLog(3)).toThrow(`${join(dir, 'log.jsonl')} is not a regular file`);
  });
});

describe('FileCheckpointStore.latest', () => {
  it('reports the newer folders it passes over, and refuses when no checkpoint is complete', async () => {
    await initBackend({ backend: 'cpu' });
    const dir = mkdtempSync(join(tmpdir(), 'store-'));
    const events: string[] = [];
    const store = new FileCheckpointStore(dir, { onEvent: (e) => events.push(`${e.phase} ${e.path}`) });
    expect(await store.latest()).toBeUndefined(); // an empty store: a fresh start
    mkdirSync(join(dir, 'step-00000002'));
    mkdirSync(join(dir, 'step-00000004'));
    await expect(store.latest()).rejects.toThrow(
      `${dir}: no checkpoint is complete (step-00000004, step-00000002: trainer.json missing or unreadable`,
    );
    expect(events).toEqual([`skipped ${join(dir, 'step-00000004')}`, `skipped ${join(dir, 'step-00000002')}`]);
  });
});

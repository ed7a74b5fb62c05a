// A small training run for the resume test (packages/trainer/src/resume.test.ts): the tiny coarse
// FIBER pre-training recipe on random data, checkpointing every step into a run folder and
// resuming from the newest complete checkpoint. Runs the built package (dist).
//   node resume-child.mjs DIR BACKEND STEPS [KILL]
// KILL = '<phase>@<step>[:<file>]' makes the process SIGKILL itself at that point of a save, e.g.
// 'file@3:optimizer.safetensors' (the save of step 3, after its optimizer file), 'renamed@4' (the
// save of step 4, right after the rename), 'pruned@3' (right after removing checkpoint 3).
import { initBackend } from '@fiber-vl/tensor-core';
import { fit } from '@fiber-vl/trainer';
import { RunFolder } from '@fiber-vl/trainer/node';
import { tinyCoarseSetup } from '@fiber-vl/trainer/testing';

const [dir, backend, stepsArg, kill] = process.argv.slice(2);
await initBackend({ backend, threads: 1 });
const [phase, rest] = kill ? kill.split('@') : [];
const [killStep, killFile] = rest ? rest.split(':') : [];
const onSaveEvent = (e) => {
  if (!kill || e.phase !== phase) return;
  const m = /step-(\d+)/.exec(e.path);
  if (!m || Number(m[1]) !== Number(killStep)) return;
  if (phase === 'file' && !e.path.endsWith(killFile)) return;
  process.kill(process.pid, 'SIGKILL');
};
const setup = tinyCoarseSetup({ seed: 0 });
const run = new RunFolder(dir, {
  config: { recipe: 'tiny coarse pre-training', backend, steps: Number(stepsArg) },
  resume: true,
  keepLast: 2,
  onSaveEvent,
});
const r = await fit(setup.trainer, {
  data: setup.data,
  steps: Number(stepsArg),
  store: run.store,
  checkpointEvery: 1,
  resume: true,
  logger: run.logger({ progress: false }),
  user: { backend },
});
await run.saveFinal(setup.model);
process.stdout.write(`${JSON.stringify({ done: r.step, resumedFrom: r.resumedFrom ?? null })}\n`);

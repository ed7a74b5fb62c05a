import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import './scripts/test/tmpdir.js'; // one temporary folder per run, removed at exit

// Two test files at a time even on 2 cores (vitest's default there is one): most files spend
// their time in single-threaded JavaScript or waiting on child processes. Measured on the 2-core
// dev machine, apps/bench's files took 325 s one at a time and 209 s two at a time. At most 4,
// so that the heavy wasm files do not crowd a large machine's memory.
const maxWorkers = Math.min(4, Math.max(2, availableParallelism() - 1));
// Each worker's wasm backend (and the CLIs the tests spawn) gets its share of the cores rather than
// every core: two pools of 2 threads on 2 cores spin against each other (the trainer's learning
// checks took 80 s beside train-step.test.ts with 2 threads, 56 s with 1). The share follows
// maxWorkers above, not a --maxWorkers given on the command line; a FIBER_WASM_THREADS set outside wins.
process.env.FIBER_WASM_THREADS ||= String(Math.max(1, Math.floor(availableParallelism() / maxWorkers)));

// One vitest run over every package; each package's own vitest.config.ts names its project.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*'],
    maxWorkers,
  },
});

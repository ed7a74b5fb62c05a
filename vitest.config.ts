import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// One vitest run over every package; each package's own vitest.config.ts names its project.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*'],
    // Two test files at a time even on 2 cores (vitest's default there is one): most files spend
    // their time in single-threaded JavaScript or waiting on child processes. Measured on the 2-core
    // dev machine, apps/bench's files took 325 s one at a time and 209 s two at a time. At most 4,
    // so that the heavy wasm files do not crowd a large machine's memory.
    maxWorkers: Math.min(4, Math.max(2, availableParallelism() - 1)),
  },
});

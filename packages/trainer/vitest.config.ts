import { defineConfig } from 'vitest/config';
import '../../scripts/test/tmpdir.js'; // one temporary folder per run, removed at exit

export default defineConfig({
  test: {
    name: 'trainer',
    setupFiles: ['../../scripts/test/file-handles.ts'],
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});

import { defineConfig } from 'vitest/config';
import '../../scripts/test/tmpdir.js'; // one temporary folder per run, removed at exit

export default defineConfig({
  test: {
    name: 'demo',
    setupFiles: ['../../scripts/test/file-handles.ts'],
    include: ['test/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});

import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import '../../scripts/test/tmpdir.js'; // one temporary folder per run, removed at exit

export default defineConfig({
  // tests run the sources in Node: the package.json "imports" map points #platform at dist files
  resolve: { alias: { '#platform': fileURLToPath(new URL('./src/platform/node.ts', import.meta.url)) } },
  test: {
    name: 'tensor-core',
    setupFiles: ['../../scripts/test/file-handles.ts'],
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});

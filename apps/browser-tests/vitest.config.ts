import { defineConfig } from 'vitest/config';
import '../../scripts/test/tmpdir.js'; // one temporary folder per run, removed at exit

export default defineConfig({
  test: {
    name: 'browser-tests',
    setupFiles: ['../../scripts/test/file-handles.ts'],
    include: ['test/**/*.test.ts'],
    // one Chromium for the whole file; SwiftShader WebGPU compiles a shader per op shape
    testTimeout: 300_000,
    hookTimeout: 180_000,
  },
});

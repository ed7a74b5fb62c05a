// The browser test page: page/index.html built with the packages' browser entries. `vite` serves it
// for manual runs (http://127.0.0.1:5173/?run=all runs every suite and prints the results); the
// tests build it and serve dist/ with `vite preview` (test/harness.ts).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { crossOriginIsolation, serveFolders, tfjsWasmFiles } from './vite-plugins.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const repo = fileURLToPath(new URL('../..', import.meta.url));

export default defineConfig({
  root: `${here}page`,
  base: '/',
  logLevel: 'warn',
  plugins: [
    crossOriginIsolation(),
    tfjsWasmFiles(here),
    serveFolders({
      '/fixtures/': `${repo}fixtures`,
      '/metrics-fixtures/': `${repo}packages/eval-metrics/test/fixtures`,
      '/meteor-en/': `${repo}packages/eval-metrics/data/meteor-en`,
    }),
  ],
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
  build: {
    outDir: `${here}dist`,
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    // readable stack traces in test failures; the bundle-size numbers come from `fiber-bench bundle-sizes`
    minify: false,
    chunkSizeWarningLimit: 8000,
  },
});

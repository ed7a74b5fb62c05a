// The demo page (page/index.html) built from the packages' browser entries. `npm run demo` (root)
// serves it with `vite` on 127.0.0.1; the test (test/demo.test.ts) builds it and serves dist/ with
// `vite preview`. Both send the cross-origin isolation headers (threads for wasm), serve
// tfjs-backend-wasm's binaries at /wasm/ and the folder of bench-trained models at /models/:
// FIBER_DEMO_MODELS, else the repository's bench-results/models (written by `npm run bench`).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { crossOriginIsolation, serveFolders, tfjsWasmFiles } from '../browser-tests/vite-plugins.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const repo = fileURLToPath(new URL('../..', import.meta.url));

/** The folder the page offers "use the bench-trained model" from. */
export const modelsDir = process.env.FIBER_DEMO_MODELS ?? `${repo}bench-results/models`;

export default defineConfig({
  root: `${here}page`,
  base: '/',
  plugins: [crossOriginIsolation(), tfjsWasmFiles(here), serveFolders({ '/models/': modelsDir })],
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
  build: {
    outDir: `${here}dist`,
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    // minifying breaks tfjs-backend-wasm's thread workers (their source is a stringified function that refers to names the minifier renames)
    minify: false,
    chunkSizeWarningLimit: 8000,
  },
});

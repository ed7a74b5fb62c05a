import { defineConfig } from 'tsup';
import { libConfig } from '../../tsup.base';

export default defineConfig([
  // The library: a browser-safe main entry and the Node helpers.
  libConfig({
    entry: { index: 'src/index.ts', node: 'src/node.ts', spice: 'src/spice-entry.ts' },
    shims: true,
  }),
  // The CLI (ESM, Node only).
  {
    entry: ['src/cli.ts'],
    format: ['esm'],
    target: 'node20',
    platform: 'node',
    sourcemap: true,
    clean: false,
    banner: { js: '#!/usr/bin/env node' },
  },
]);

import { defineConfig } from 'tsup';
import { libConfig } from '../../tsup.base';

// A browser-safe main entry; `node` (checkpoint folders, run folders) and `testing` (the official
// train-step fixture harness) are Node entries.
export default defineConfig(libConfig({ entry: { index: 'src/index.ts', node: 'src/node.ts', testing: 'src/testing.ts' }, splitting: true }));

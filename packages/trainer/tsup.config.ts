import { defineConfig } from 'tsup';
import { libConfig } from '../../tsup.base';

// A browser-safe main entry; `node` (files, tar shards, the worker pool, checkpoint and run folders)
// and `testing` (the official train-step fixture harness) are Node entries. `data-worker` is the
// worker-thread script of WorkerPool; shims give the CJS build an import.meta.url to find it.
export default defineConfig(
  libConfig({
    entry: {
      index: 'src/index.ts',
      node: 'src/node.ts',
      testing: 'src/testing.ts',
      'data-worker': 'src/data/node/worker.ts',
    },
    shims: true,
    external: ['sharp'],
  }),
);

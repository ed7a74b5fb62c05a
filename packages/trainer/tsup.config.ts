import { defineConfig } from 'tsup';
import { libConfig } from '../../tsup.base';

// `data-worker` is the worker-thread script of WorkerPool; shims give the CJS build an import.meta.url to find it.
export default defineConfig(
  libConfig({ entry: { index: 'src/index.ts', node: 'src/node.ts', 'data-worker': 'src/data/node/worker.ts' }, shims: true, external: ['sharp'] }),
);

// The Node platform: files through node:fs, WebGPU through Dawn (the optional `webgpu` package),
// wasm threads through worker_threads. tfjs-core's Node entry registers neither gradients nor
// chained ops and its ESM files cannot be loaded by Node (extensionless imports), so the build
// bundles those two registration modules into this file (they register into tfjs-core's global
// registries; the engine stays the one in @tensorflow/tfjs-core).
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { besidePath, fileSource, readTextFile, writeBytes } from '../io/node-file-source.js';
import { installNodeWebGpu } from '../backends/webgpu-node.js';
import { withNodeWasmThreads } from '../backends/wasm-threads-node.js';
import type { Platform } from './types.js';

export const platform: Platform = {
  name: 'node',
  env: (name) => process.env[name],
  cores: () => availableParallelism(),
  fileSource: (path) => fileSource(path),
  readTextFile,
  writeFile: writeBytes,
  siblingPath: besidePath,
  installWebGpu: async () => {
    const got = await installNodeWebGpu();
    return 'reason' in got ? got : { icd: got.icd };
  },
  withWasmThreads: (tfCore, threads, init) => withNodeWasmThreads(tfCore, threads, init),
  spawnWorker: (source) => {
    // Eval workers are CommonJS; a parent `--input-type=module` would break them.
    const execArgv = process.execArgv.filter((a) => !a.startsWith('--input-type'));
    const port =
      "const { parentPort } = require('node:worker_threads');\n" +
      "const fiberPort = { post: (m) => parentPort.postMessage(m), once: (f) => parentPort.once('message', f) };\n";
    const w = new Worker(port + source, { eval: true, execArgv });
    w.unref(); // an idle pool must not keep Node alive
    return {
      post: (m) => w.postMessage(m),
      terminate: () => void w.terminate(),
      onceMessage: () =>
        new Promise((resolve, reject) => {
          w.once('message', resolve);
          w.once('error', reject);
        }),
    };
  },
  enableRelaxedSimd: async () => {
    try {
      setFlagsFromString('--experimental-wasm-relaxed-simd');
      return true;
    } catch {
      return false;
    }
  },
};

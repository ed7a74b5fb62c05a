// Multi-threaded SIMD wasm in Node.
//
// tfjs-backend-wasm 4.22 ships a pthreads build but never uses it in Node: its feature flag says
// "no threads" for Node, its pthread workers are created from `blob:` URLs (Node's Worker cannot
// load those: ERR_WORKER_PATH), and the C++ side caps the pool at half the logical cores. This
// shim fixes the three for the duration of backend initialisation:
//   1. WASM_HAS_MULTITHREAD_SUPPORT is forced on;
//   2. worker_threads.Worker is wrapped so that a `blob:` worker becomes an eval worker that
//      runs the package's own worker script (wasm-out/*.worker.js) and maps the main-script
//      blob back to wasm-out/tfjs-backend-wasm-threaded-simd.js;
//   3. os.cpus() reports twice the cores while the pool is sized, so that the requested thread
//      count is not halved.
// Workers are unref'ed (and never re-ref'ed) so that an idle pool does not keep Node alive.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as os from 'node:os';
import type * as workerThreads from 'node:worker_threads';

const workerSource = `
const { workerData } = require('worker_threads');
let importScriptsImpl;
Object.defineProperty(globalThis, 'importScripts', {
  configurable: true,
  get() { return importScriptsImpl; },
  set(f) { importScriptsImpl = (url) => f(String(url).startsWith('blob:') ? workerData.mainScript : url); },
});
const contents = require(workerData.workerScript).wasmWorkerContents;
(0, eval)(contents.split(String.fromCharCode(10)).join(String.fromCharCode(92, 110)));
`;

/**
 * Runs `init` (which must call tf.setBackend('wasm')) with the patches above in place.
 * `threads` is the pool size the backend should get.
 */
export async function withNodeWasmThreads<T>(
  tf: typeof import('@tensorflow/tfjs-core'),
  threads: number,
  init: () => Promise<T>,
): Promise<T> {
  const require = createRequire(import.meta.url);
  const wasmOut = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'wasm-out');
  const workerData = {
    workerScript: join(wasmOut, 'tfjs-backend-wasm-threaded-simd.worker.js'),
    mainScript: join(wasmOut, 'tfjs-backend-wasm-threaded-simd.js'),
  };
  const wt = require('node:worker_threads') as typeof workerThreads;
  const nodeOs = require('node:os') as typeof os;
  const OriginalWorker = wt.Worker;
  class PthreadWorker extends OriginalWorker {
    constructor(filename: string | URL, options?: workerThreads.WorkerOptions) {
      if (String(filename).startsWith('blob:')) {
        // The worker source is CommonJS: drop a parent `--input-type=module`, which eval workers inherit.
        const execArgv = (options?.execArgv ?? process.execArgv).filter((a) => !a.startsWith('--input-type'));
        super(workerSource, { ...options, eval: true, workerData, execArgv });
        this.unref();
      } else {
        super(filename, options);
      }
    }
    override ref(): void {
      // An idle pthread pool must not keep the process alive.
    }
  }
  const originalCpus = nodeOs.cpus;
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  (wt as { Worker: typeof OriginalWorker }).Worker = PthreadWorker;
  (nodeOs as { cpus: typeof os.cpus }).cpus = () => {
    const cpus = originalCpus();
    const wanted = Math.max(1, threads) * 2;
    return Array.from({ length: wanted }, (_, i) => cpus[i % cpus.length]);
  };
  try {
    return await init();
  } finally {
    (wt as { Worker: typeof OriginalWorker }).Worker = OriginalWorker;
    (nodeOs as { cpus: typeof os.cpus }).cpus = originalCpus;
  }
}

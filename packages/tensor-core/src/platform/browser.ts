// The browser platform: no file system, no Dawn; wasm threads come from tfjs-backend-wasm's own
// pthreads build when the page is cross-origin isolated. tfjs-core's gradients and chained ops are
// imported from its ESM files, so the user's bundler shares them with the rest of tfjs-core.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
import { NodeOnlyError, type Platform } from './types.js';

const noFiles = (what: string) => () =>
  Promise.reject(
    new NodeOnlyError(what, 'pass a File or Blob through blobSource(file), or bytes through bufferSource(bytes)'),
  );

export const platform: Platform = {
  name: 'browser',
  env: () => undefined,
  cores: () => (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1,
  fileSource: noFiles('reading a file by path'),
  readTextFile: noFiles('reading a file by path'),
  writeFile: () =>
    Promise.reject(
      new NodeOnlyError(
        'writing a file by path',
        'serialise to bytes (serializeSafetensors) and offer them as a download',
      ),
    ),
  siblingPath: (file, relative) => new URL(relative, new URL(file, 'file:///')).pathname,
  installWebGpu: async (): Promise<{ icd?: string } | { reason: string }> =>
    (globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu
      ? {}
      : { reason: 'navigator.gpu is missing (this browser has no WebGPU, or it is disabled)' },
  // tfjs-backend-wasm's C++ side caps its thread pool at half the logical cores (one thread on a
  // 2-core machine) whatever setThreadsCount asked for; it reads navigator.hardwareConcurrency once,
  // while the backend initialises, so report twice the wanted count for that moment. At most the 8
  // pthread workers its threaded build starts up front: more would be spawned while the page's
  // thread blocks in the pool's creation.
  withWasmThreads: async (_tf, threads, init) => {
    const nav = (globalThis as { navigator?: object }).navigator;
    if (!nav) return init();
    const reported = 2 * Math.min(threads, 8);
    Object.defineProperty(nav, 'hardwareConcurrency', { configurable: true, get: () => reported });
    try {
      return await init();
    } finally {
      Reflect.deleteProperty(nav, 'hardwareConcurrency');
    }
  },
  spawnWorker: (source) => {
    const port =
      'const fiberPort = { post: (m) => self.postMessage(m), ' +
      'once: (f) => { self.onmessage = (e) => { self.onmessage = null; f(e.data); }; } };\n';
    const url = URL.createObjectURL(new Blob([port + source], { type: 'text/javascript' }));
    const w = new Worker(url);
    return {
      post: (m) => w.postMessage(m),
      terminate: () => w.terminate(),
      onceMessage: () =>
        new Promise((resolve, reject) => {
          w.onmessage = (e: MessageEvent) => resolve(e.data as { ready?: boolean; error?: string });
          w.onerror = (e) => reject(new Error(e.message));
        }),
    };
  },
  enableRelaxedSimd: async () => false,
};

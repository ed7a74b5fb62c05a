// What tensor-core needs from its host. Two implementations: `node.ts` (files, Dawn WebGPU, wasm
// threads through worker_threads) and `browser.ts`. The package.json `imports` map picks one by
// export condition (`#platform`: "node" or "default"), so the main entry bundles for browsers
// with no Node built-in in sight, and Node users get the file loaders.
import type { tf } from '../tf.js';
import type { ByteSource } from '../io/byte-source.js';

/** A worker thread running a classic script given as source text (wasm kernel pool). */
export interface WorkerHandle {
  post(message: unknown): void;
  terminate(): void;
  onceMessage(): Promise<{ ready?: boolean; error?: string }>;
}

export interface Platform {
  readonly name: 'node' | 'browser';
  /** An environment variable (Node) or undefined. */
  env(name: string): string | undefined;
  /** Logical cores available to this process / page. */
  cores(): number;
  /** Random access to a file by path (Node only; browsers pass a Blob to `blobSource`). */
  fileSource(path: string): Promise<ByteSource>;
  /** A whole small UTF-8 text file; over `maxBytes` or invalid UTF-8 is refused. */
  readTextFile(path: string, maxBytes: number): Promise<string>;
  writeFile(path: string, bytes: Uint8Array): Promise<void>;
  /** Resolves `relative` against the folder of `file` (sharded checkpoints' shards). */
  siblingPath(file: string, relative: string): string;
  /** Makes `navigator.gpu` available (Node: Dawn); resolves with why not when it cannot. */
  installWebGpu(): Promise<{ icd?: string } | { reason: string }>;
  /** Runs `init` (which calls tf.setBackend('wasm')) so that the wasm backend gets `threads` threads. */
  withWasmThreads<T>(tfCore: typeof tf, threads: number, init: () => Promise<T>): Promise<T>;
  /**
   * Starts a worker on `source` (Node: a worker_threads eval worker, unref'ed; browsers: a Blob URL
   * Worker), defining for it `fiberPort`: `post(message)` to the parent, `once(handler)` for the
   * first message from it.
   */
  spawnWorker(source: string): WorkerHandle;
  /** Turns on WebAssembly relaxed SIMD where the runtime has it behind a flag (Node 20); true if it may now validate. */
  enableRelaxedSimd(): Promise<boolean>;
}

/** What reading or writing a file by path throws in a browser, naming what to do instead. */
export class NodeOnlyError extends Error {
  /**
   * The Node and browser platform files are bundled apart from the main entry, each with its own
   * copy of this class, so `instanceof NodeOnlyError` goes by the error's name: an error from any
   * copy matches (within one realm: an error passed to a worker arrives as a plain Error).
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // a subclass keeps the ordinary prototype check
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class instanceof asks about (this one or a subclass)
    if (this !== NodeOnlyError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return value instanceof Error && value.name === 'NodeOnlyError';
  }

  constructor(what: string, instead: string) {
    super(`${what} needs Node.js (file paths do not exist in browsers); ${instead}`);
    this.name = 'NodeOnlyError';
  }
}

// The threads that run fiber-vl's wasm kernels. Every thread (the caller's and each worker) has an
// instance of the kernel module on the memory of tfjs-backend-wasm, with a stack of its own, and
// runs its share of an op: fk_run(args, tid, nt). Workers sleep on a control word (Atomics.wait)
// between ops; the caller runs share 0 itself, then waits for the others (spinning where the
// thread may not block, as on a browser's main thread).
import { platform } from '#platform';
import type { WorkerHandle } from '../platform/types.js';

/** The exports of the kernel module (wasm/dispatch.c). */
export interface KernelExports {
  fk_run(args: number, tid: number, nt: number): void;
  fk_set_stack(top: number): void;
  fk_abi(): number;
  fk_gemm_scratch(): number;
  fk_attention_scratch(tokens: number, headDim: number): number;
}

const EXPORT_NAMES = ['fk_run', 'fk_set_stack', 'fk_abi', 'fk_gemm_scratch', 'fk_attention_scratch'] as const;

function isKernelExports(e: WebAssembly.Exports): e is WebAssembly.Exports & KernelExports {
  return EXPORT_NAMES.every((name) => typeof e[name] === 'function');
}

/** What the pool needs from tfjs-backend-wasm's module: its memory and its allocator. */
export interface HostHeap {
  memory: WebAssembly.Memory;
  malloc(bytes: number): number;
  free(ptr: number): void;
}

// Control words (Int32Array on a SharedArrayBuffer): generation, args pointer, thread count,
// workers still running, error flag.
const GEN = 0;
const ARGS = 1;
const THREADS = 2;
const PENDING = 3;
const ERROR = 4;
const STACK_BYTES = 256 * 1024;
const SPIN = 20000;

// Runs in each worker (a Node worker_threads eval worker or a browser Worker from a Blob URL);
// `fiberPort` (post, once) is defined by the platform's spawnWorker, so no Node code ships to browsers.
const WORKER_SOURCE = `
'use strict';
const post = (m) => fiberPort.post(m);
const start = async (msg) => {
  const ctrl = new Int32Array(msg.ctrl);
  let exports;
  try {
    exports = (await WebAssembly.instantiate(msg.module, { env: { memory: msg.memory } })).exports;
    exports.fk_set_stack(msg.stackTop);
  } catch (e) {
    post({ error: String(e && e.message || e) });
    return;
  }
  let gen = Atomics.load(ctrl, ${GEN});
  post({ ready: true });
  for (;;) {
    for (let i = 0; i < ${SPIN} && Atomics.load(ctrl, ${GEN}) === gen; i++);
    // run only for a new generation, whatever woke the wait
    while (Atomics.load(ctrl, ${GEN}) === gen) Atomics.wait(ctrl, ${GEN}, gen);
    gen = Atomics.load(ctrl, ${GEN});
    const args = Atomics.load(ctrl, ${ARGS});
    if (args === 0) return;
    try {
      exports.fk_run(args, msg.tid, Atomics.load(ctrl, ${THREADS}));
    } catch (e) {
      Atomics.store(ctrl, ${ERROR}, 1);
    }
    if (Atomics.sub(ctrl, ${PENDING}, 1) === 1) Atomics.notify(ctrl, ${PENDING});
  }
};
fiberPort.once(start);
`;

/** Whether this thread may block in Atomics.wait (not a browser's main thread). */
function canBlock(ctrl: Int32Array): boolean {
  try {
    Atomics.wait(ctrl, ERROR, 1, 0); // returns 'not-equal' at once where waiting is allowed
    return true;
  } catch {
    return false;
  }
}

export class KernelPool {
  private readonly ctrl: Int32Array;
  private readonly canWait: boolean;
  private scratch = 0;
  private scratchFloats = 0;
  private readonly argsPtr: number;
  private readonly stacks: number[] = [];

  private constructor(
    readonly exports: KernelExports,
    private readonly heap: HostHeap,
    private readonly workers: WorkerHandle[],
    ctrl: Int32Array,
  ) {
    this.ctrl = ctrl;
    this.canWait = canBlock(ctrl);
    this.argsPtr = heap.malloc(256);
  }

  /** Threads that share an op (the caller's included). */
  get threads(): number {
    return this.workers.length + 1;
  }

  /**
   * Instantiates `module` on the host memory in this thread and in `threads - 1` workers (which
   * needs a shared memory; with a private one the pool has this thread only).
   */
  static async create(module: WebAssembly.Module, heap: HostHeap, threads: number): Promise<KernelPool> {
    const shared = typeof SharedArrayBuffer !== 'undefined' && heap.memory.buffer instanceof SharedArrayBuffer;
    const nWorkers = shared ? Math.max(0, threads - 1) : 0;
    const instance = await WebAssembly.instantiate(module, { env: { memory: heap.memory } });
    const exports = instance.exports;
    if (!isKernelExports(exports)) throw new Error('fiber-vl wasm kernels: the module lacks the fk_* exports');
    const ctrl = new Int32Array(shared ? new SharedArrayBuffer(32) : new ArrayBuffer(32));
    const stackOf = () => {
      const base = heap.malloc(STACK_BYTES);
      if (!base) throw new Error('fiber-vl wasm kernels: out of memory for a thread stack');
      return base;
    };
    const mainStack = stackOf();
    exports.fk_set_stack(mainStack + STACK_BYTES);
    const workers: WorkerHandle[] = [];
    const stacks = [mainStack];
    try {
      for (let tid = 1; tid <= nWorkers; tid++) {
        const w = platform.spawnWorker(WORKER_SOURCE);
        workers.push(w);
        const stack = stackOf();
        stacks.push(stack);
        const reply = w.onceMessage();
        w.post({ module, memory: heap.memory, ctrl: ctrl.buffer, tid, stackTop: stack + STACK_BYTES });
        const r = await reply;
        if (!r.ready)
          throw new Error(`fiber-vl wasm kernels: worker ${tid} failed to start: ${r.error ?? 'unknown error'}`);
      }
    } catch (e) {
      workers.forEach((w) => w.terminate());
      stacks.forEach((s) => heap.free(s));
      throw e;
    }
    const pool = new KernelPool(exports, heap, workers, ctrl);
    pool.stacks.push(...stacks);
    return pool;
  }

  /** Makes sure every thread has `floats` of scratch; returns the scratch base (bytes). */
  ensureScratch(floats: number): number {
    if (floats > this.scratchFloats) {
      if (this.scratch) this.heap.free(this.scratch);
      const want = Math.ceil(floats / 16) * 16;
      this.scratch = this.heap.malloc(want * 4 * this.threads);
      if (!this.scratch)
        throw new Error(`fiber-vl wasm kernels: out of memory for ${want * 4 * this.threads} bytes of scratch`);
      this.scratchFloats = want;
    }
    return this.scratch;
  }

  /**
   * Runs op `op` with integer arguments `args` (floats as their bit patterns, pointers as byte
   * offsets) on `threads` threads (at most the pool size) and `scratchFloats` of scratch each.
   */
  run(op: number, args: ArrayLike<number>, { threads = this.threads, scratchFloats = 0 } = {}): void {
    const nt = Math.max(1, Math.min(threads, this.threads));
    const scratch = this.ensureScratch(Math.max(16, scratchFloats));
    const view = new Int32Array(this.heap.memory.buffer, this.argsPtr, 64);
    view[0] = op;
    view[1] = scratch;
    view[2] = this.scratchFloats;
    for (let i = 0; i < args.length; i++) view[3 + i] = args[i];
    if (nt === 1) {
      this.exports.fk_run(this.argsPtr, 0, 1);
      return;
    }
    const c = this.ctrl;
    Atomics.store(c, ARGS, this.argsPtr);
    Atomics.store(c, THREADS, nt);
    Atomics.store(c, ERROR, 0);
    Atomics.store(c, PENDING, this.workers.length);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    let error: unknown;
    try {
      this.exports.fk_run(this.argsPtr, 0, nt);
    } catch (e) {
      error = e;
    }
    for (let spins = 0; ; spins++) {
      const pending = Atomics.load(c, PENDING);
      if (pending === 0) break;
      if (pending < 0) {
        // seen once (a 1-worker pool, 2 cores starved by other processes): waiting for 0 would hang
        Atomics.store(c, PENDING, 0);
        throw new Error(`fiber-vl wasm kernels: op ${op}: a worker finished more often than it was started`);
      }
      if (this.canWait && spins > SPIN) Atomics.wait(c, PENDING, pending, 50);
    }
    if (error) throw error;
    if (Atomics.load(c, ERROR)) throw new Error(`fiber-vl wasm kernels: op ${op} failed in a worker`);
  }

  /** Stops the workers and frees what the pool allocated on the host heap. */
  dispose(): void {
    if (this.workers.length) {
      Atomics.store(this.ctrl, ARGS, 0);
      Atomics.add(this.ctrl, GEN, 1);
      Atomics.notify(this.ctrl, GEN);
      this.workers.forEach((w) => w.terminate());
    }
    for (const s of this.stacks) this.heap.free(s);
    if (this.scratch) this.heap.free(this.scratch);
    this.heap.free(this.argsPtr);
  }
}

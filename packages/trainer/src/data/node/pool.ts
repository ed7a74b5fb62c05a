// A pool of worker threads that prepare samples (read, decode, augment) off the training thread.
// Each worker takes one task at a time; tasks wait in a bounded queue. Results go back by task,
// so the loader can deliver them in order whatever the workers' timing. A worker that dies fails
// only its own task (as a skip) and is replaced.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { SampleExecutor } from '../loader.js';
import type { SampleResult, SampleTask } from '../pipeline.js';
import type { DecoderChoice } from './files.js';

export interface WorkerPoolOptions {
  /** Worker threads; default min(4, CPUs - 1), at least 1. */
  workers?: number;
  decoder?: DecoderChoice;
  /** Tasks waiting for a worker before `run` itself waits; default 4 per worker. */
  maxQueue?: number;
  /** The worker script; default the package's `data-worker.js` beside this module. */
  workerUrl?: URL;
}

interface Pending {
  id: number;
  task: SampleTask;
  resolve: (r: SampleResult) => void;
}

interface Slot {
  worker: Worker;
  busy?: Pending;
}

interface Reply {
  id: number;
  result: SampleResult;
}

export class WorkerPool implements SampleExecutor {
  readonly size: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private readonly spaceWaiters: (() => void)[] = [];
  private readonly maxQueue: number;
  private readonly url: URL;
  private readonly decoder: DecoderChoice;
  private nextId = 0;
  private closed = false;

  constructor(options: WorkerPoolOptions = {}) {
    this.size = options.workers ?? Math.max(1, Math.min(4, availableParallelism() - 1));
    if (!(Number.isInteger(this.size) && this.size >= 1))
      throw new RangeError(`WorkerPool: workers must be a positive integer, got ${options.workers}`);
    this.maxQueue = options.maxQueue ?? 4 * this.size;
    this.url = options.workerUrl ?? new URL('./data-worker.js', import.meta.url);
    this.decoder = options.decoder ?? 'auto';
    for (let i = 0; i < this.size; i++) this.slots.push(this.spawn());
  }

  async run(task: SampleTask): Promise<SampleResult> {
    while (this.queue.length >= this.maxQueue && !this.closed)
      await new Promise<void>((r) => this.spaceWaiters.push(r));
    if (this.closed) throw new Error('WorkerPool is closed');
    return new Promise<SampleResult>((resolve) => {
      this.queue.push({ id: this.nextId++, task, resolve });
      this.dispatch();
    });
  }

  /** Terminates the workers; tasks not finished resolve as skips. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const fail = (p: Pending) =>
      p.resolve({ ok: false, skip: { reason: 'pipeline-error', detail: 'the worker pool was closed' }, dropped: [] });
    this.queue.splice(0).forEach(fail);
    this.spaceWaiters.splice(0).forEach((w) => w());
    await Promise.all(
      this.slots.map(async (s) => {
        if (s.busy) fail(s.busy);
        s.busy = undefined;
        await s.worker.terminate();
      }),
    );
  }

  private spawn(): Slot {
    const worker = new Worker(this.url, { workerData: { decoder: this.decoder } });
    const slot: Slot = { worker };
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const p = slot.busy;
      if (!p || p.id !== reply.id) return;
      slot.busy = undefined;
      worker.unref();
      p.resolve(reply.result);
      this.dispatch();
    });
    let dead = false;
    const died = (why: string) => {
      if (this.closed || dead) return;
      dead = true;
      const p = slot.busy;
      slot.busy = undefined;
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots[i] = this.spawn();
      p?.resolve({ ok: false, skip: { reason: 'pipeline-error', detail: `worker died: ${why}` }, dropped: [] });
      this.dispatch();
    };
    worker.on('error', (e) => died(e.message));
    worker.on('exit', (code) => died(`exit code ${code}`));
    return slot;
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.busy || this.queue.length === 0) continue;
      const p = this.queue.shift()!;
      slot.busy = p;
      // A busy worker keeps the process alive until its result is back; an idle one does not.
      slot.worker.ref();
      slot.worker.postMessage({ id: p.id, task: p.task });
      this.spaceWaiters.shift()?.();
    }
  }
}

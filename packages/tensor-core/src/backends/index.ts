import { tf } from '../tf.js';
import { quietCpuBackend } from './cpu.js';
import * as tfWasm from '@tensorflow/tfjs-backend-wasm';
import { registerFallbackKernels } from './fallback-kernels.js';
import { replaceCpuKernels } from './cpu-kernels.js';
import { platform } from '#platform';
import { initWasmKernels, type WasmKernelInfo } from '../kernels/wasm.js';
import { registerWebGpuKernels } from '../kernels/webgpu.js';

export type BackendName = 'webgpu' | 'wasm' | 'cpu';
export const BACKEND_NAMES: readonly BackendName[] = ['webgpu', 'wasm', 'cpu'];

export interface InitBackendOptions {
  /** Which backend to use; 'auto' (default) picks the fastest that works. `FIBER_BACKEND` overrides 'auto'. */
  backend?: BackendName | 'auto';
  /** wasm: pool size (default: `FIBER_WASM_THREADS`, else every core). 1 disables threads. */
  threads?: number;
  /** wasm in browsers: folder (URL) that serves the tfjs-backend-wasm .wasm files. */
  wasmPath?: string;
  /** auto mode: accept a software WebGPU adapter (SwiftShader), which is slower than wasm. Default false. */
  allowSoftwareWebGpu?: boolean;
}

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for CPU implementations of WebGPU (SwiftShader, fallback adapters). */
  software: boolean;
}

export interface BackendInfo {
  name: BackendName;
  /** wasm: SIMD and thread count actually in use. */
  simd?: boolean;
  threads?: number;
  /** wasm: fiber-vl's own kernels (GEMM, window attention, LayerNorm, GELU), or why they did not start. */
  kernels?: WasmKernelInfo | { error: string };
  /** webgpu: the adapter and its optional features (e.g. 'shader-f16'). */
  adapter?: AdapterDescription;
  features?: string[];
  /** The Vulkan ICD that was forced to get an adapter (Node on a machine without a GPU). */
  vulkanIcd?: string;
  /** Why faster backends were not chosen (auto mode). */
  skipped: { backend: BackendName; reason: string }[];
}

export class BackendUnavailableError extends Error {
  constructor(
    readonly backend: BackendName,
    readonly reason: string,
  ) {
    super(`fiber-vl: backend "${backend}" is not available: ${reason}`);
    this.name = 'BackendUnavailableError';
  }
}

// tfjs' cpu backend prints a "use tfjs-node" banner on first use in Node; tfjs-node cannot be
// installed here (it downloads libtensorflow), so re-register the cpu backend without it.
tf.removeBackend('cpu');
tf.registerBackend('cpu', () => quietCpuBackend(), 1);
replaceCpuKernels();
const ready = new Map<BackendName, Promise<BackendInfo>>();

function describeAdapter(adapter: GPUAdapter, icd?: string): AdapterDescription {
  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  const software =
    !!icd || text.includes('swiftshader') || (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    software,
  };
}

async function initWebGpu(): Promise<BackendInfo> {
  const got = await platform.installWebGpu();
  if ('reason' in got) throw new BackendUnavailableError('webgpu', got.reason);
  const icd = got.icd;
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) throw new BackendUnavailableError('webgpu', 'navigator.gpu is missing (this runtime has no WebGPU)');
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new BackendUnavailableError('webgpu', 'navigator.gpu.requestAdapter() returned null');
  // tfjs-backend-webgpu registers itself only if navigator.gpu exists when it is imported.
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) {
    throw new BackendUnavailableError('webgpu', 'tfjs-backend-webgpu failed to initialise (see the warning above)');
  }
  registerWebGpuKernels();
  return {
    name: 'webgpu',
    adapter: describeAdapter(adapter, icd),
    features: [...adapter.features].map(String).sort(),
    vulkanIcd: icd,
    skipped: [],
  };
}

/**
 * `FIBER_WASM_THREADS`: the wasm pool size where `threads` is not given (e.g. 1 in each of several
 * processes that share the cores). Read where wasm may start, before any backend does, so that a
 * bad value throws rather than making auto mode skip wasm. Exported for the tests, not from the package.
 */
export function readEnvThreads(): number | undefined {
  const env = platform.env('FIBER_WASM_THREADS');
  if (env === undefined || env === '') return undefined;
  const n = Number(env);
  if (!Number.isInteger(n) || n < 1) throw new Error(`fiber-vl: FIBER_WASM_THREADS="${env}" is not a positive integer`);
  return n;
}

async function initWasm(opts: InitBackendOptions): Promise<BackendInfo> {
  const threads = Math.max(1, Math.floor(opts.threads ?? platform.cores()));
  if (opts.wasmPath) tfWasm.setWasmPaths(opts.wasmPath);
  tfWasm.setThreadsCount(threads);
  const set = () => tf.setBackend('wasm');
  const ok = threads > 1 ? await platform.withWasmThreads(tf, threads, set) : await set();
  if (!ok)
    throw new BackendUnavailableError(
      'wasm',
      'tfjs-backend-wasm failed to initialise (is the .wasm file reachable? see wasmPath)',
    );
  registerFallbackKernels('wasm');
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) as boolean;
  let kernels: BackendInfo['kernels'];
  try {
    // Without SIMD the kernel module cannot compile; the tfjs kernels remain.
    kernels = simd ? await initWasmKernels(tfWasm.getThreadsCount()) : { error: 'no WebAssembly SIMD' };
  } catch (e) {
    kernels = { error: (e as Error).message };
  }
  return { name: 'wasm', simd, threads: tfWasm.getThreadsCount(), kernels, skipped: [] };
}

async function initOne(name: BackendName, opts: InitBackendOptions): Promise<BackendInfo> {
  let p = ready.get(name);
  if (!p) {
    p =
      name === 'webgpu'
        ? initWebGpu()
        : name === 'wasm'
          ? initWasm(opts)
          : tf.setBackend('cpu').then(() => ({ name: 'cpu' as const, skipped: [] }));
    ready.set(name, p);
    p.catch(() => ready.delete(name));
  }
  const info = await p;
  await tf.setBackend(name);
  return { ...info, skipped: [] };
}

function readEnvBackend(): BackendName | undefined {
  const env = platform.env('FIBER_BACKEND');
  if (!env || env === 'auto') return undefined;
  if (!BACKEND_NAMES.includes(env as BackendName)) {
    throw new Error(`fiber-vl: FIBER_BACKEND="${env}" is not one of ${BACKEND_NAMES.join(', ')}, auto`);
  }
  return env as BackendName;
}

/**
 * Makes a backend current and tells what it got. With 'auto' the order is a hardware WebGPU
 * adapter, then wasm (SIMD, threaded where possible), then cpu. A named backend that cannot start
 * throws a BackendUnavailableError that says why.
 *
 * @example
 * const info = await initBackend();            // or { backend: 'wasm', threads: 2 }
 * console.log(info.name, info.threads ?? info.adapter?.description);
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  const { backend, threads } = options;
  // checked before any backend starts (a name outside the list used to start cpu, then fail in tfjs)
  if (backend !== undefined && backend !== 'auto' && !BACKEND_NAMES.includes(backend))
    throw new RangeError(
      `initBackend: backend ${JSON.stringify(backend)} is not one of ${BACKEND_NAMES.join(', ')}, auto`,
    );
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1))
    throw new RangeError(
      `initBackend: threads must be a positive integer, got ${typeof threads === 'number' ? threads : JSON.stringify(threads)}`,
    );
  const requested = options.backend && options.backend !== 'auto' ? options.backend : readEnvBackend();
  if (options.threads === undefined && (!requested || requested === 'wasm'))
    options = { ...options, threads: readEnvThreads() };
  if (requested) return initOne(requested, options);
  const skipped: BackendInfo['skipped'] = [];
  for (const name of BACKEND_NAMES) {
    try {
      const info = await initOne(name, options);
      if (name === 'webgpu' && info.adapter?.software && !options.allowSoftwareWebGpu) {
        skipped.push({
          backend: name,
          reason: `software adapter (${info.adapter.description || info.adapter.vendor || 'SwiftShader'}) is slower than wasm`,
        });
        continue;
      }
      return { ...info, skipped };
    } catch (e) {
      skipped.push({ backend: name, reason: e instanceof BackendUnavailableError ? e.reason : String(e) });
    }
  }
  throw new Error(`fiber-vl: no backend could start: ${skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')}`);
}

/** Every backend that starts in this runtime, in preference order (probes each once). */
export async function availableBackends(): Promise<{
  available: BackendInfo[];
  unavailable: { backend: BackendName; reason: string }[];
}> {
  const options: InitBackendOptions = { threads: readEnvThreads() };
  const current = tf.getBackend();
  const available: BackendInfo[] = [];
  const unavailable: { backend: BackendName; reason: string }[] = [];
  for (const name of BACKEND_NAMES) {
    try {
      available.push(await initOne(name, options));
    } catch (e) {
      unavailable.push({ backend: name, reason: e instanceof BackendUnavailableError ? e.reason : String(e) });
    }
  }
  if (current) await tf.setBackend(current);
  return { available, unavailable };
}

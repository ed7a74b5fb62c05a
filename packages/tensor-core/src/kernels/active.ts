// Which of fiber-vl's kernel sets the op entry points route to: the wasm kernels (kernels/wasm.ts)
// or the WGSL kernels (kernels/webgpu.ts), both registered under the same kernel names.
import { wasmKernelsActive } from './wasm.js';
import { MAX_WINDOW_TOKENS, webgpuKernelsActive } from './webgpu.js';

/** Whether the current backend runs fiber-vl's kernels now (wasm or webgpu, started and enabled). */
export function fiberKernelsActive(): boolean {
  return wasmKernelsActive() || webgpuKernelsActive();
}

/** Whether the fused window attention kernel runs for windows of n = w * w tokens. */
export function windowAttentionKernelActive(n: number): boolean {
  return wasmKernelsActive() || (webgpuKernelsActive() && n <= MAX_WINDOW_TOKENS);
}

// Which backend runs, and how: the WebGPU adapter, or wasm's SIMD / thread count and fiber-vl's
// kernel pool (threads need the page to be cross-origin isolated). A small matmul checks the
// backend computes: against a float64 product in JS.
import { matmul, tf, type BackendName } from '@fiber-vl/tensor-core';
import { compareTensor } from '../check.js';
import { useBackend } from '../fixtures.js';
import type { Check, SuiteParams } from '../protocol.js';

export async function backendSuite(params: SuiteParams): Promise<{ checks: Check[]; info: Record<string, unknown> }> {
  const backend = params.backend as BackendName;
  const info = await useBackend(backend);
  // 6.3 MFLOP: above the size where fiber-vl's wasm kernels share a product among their threads
  const [m, k, n] = [128, 256, 96];
  const a = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i * 0.37));
  const b = Float32Array.from({ length: k * n }, (_, i) => Math.cos(i * 0.11));
  const want = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
      want[i * n + j] = s;
    }
  }
  const [ta, tb] = [tf.tensor2d(a, [m, k]), tf.tensor2d(b, [k, n])];
  const product = matmul(ta, tb);
  const checks = [
    await compareTensor(
      `matmul [${m},${k}]x[${k},${n}] on ${tf.getBackend()}`,
      product,
      { dtype: 'F32', shape: [m, n], data: want },
      { tolerance: 1e-3 },
    ),
  ];
  tf.dispose([ta, tb, product]);
  return {
    checks,
    info: {
      backend: info,
      tfBackend: tf.getBackend(),
      crossOriginIsolated: globalThis.crossOriginIsolated === true,
      sharedArrayBuffer: typeof SharedArrayBuffer !== 'undefined',
      hardwareConcurrency: navigator.hardwareConcurrency,
      userAgent: navigator.userAgent,
    },
  };
}

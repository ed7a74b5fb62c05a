// Kernels a backend lacks, run on the cpu backend's implementation.
//
// tfjs-backend-wasm 4.22 has no kernel for several ops that training needs: the weight gradient
// of conv2d (Conv2DBackpropFilter), the gradient of gather/embedding (UnsortedSegmentSum), einsum
// and the depthwise-conv backprops. Rather than fail, we register for each one a kernel that
// copies the inputs to a private cpu backend, runs tfjs' cpu kernel, and copies the outputs back.
// Correct everywhere; as fast as the cpu backend for those few ops.
import { tf } from '../tf.js';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { quietCpuBackend } from './cpu.js';

type KernelFuncArgs = Parameters<tf.KernelFunc>[0];
let cpu: MathBackendCPU | undefined;

function runOnCpu(kernelName: string, { inputs, attrs, backend }: KernelFuncArgs): tf.TensorInfo | tf.TensorInfo[] {
  cpu ??= quietCpuBackend();
  const kernel = tf.getKernel(kernelName, 'cpu');
  if (!kernel) throw new Error(`fiber-vl: no cpu kernel "${kernelName}" to fall back on`);
  const target = backend as tf.KernelBackend;
  const cpuInputs: Record<string, tf.TensorInfo> = {};
  for (const [key, info] of Object.entries(inputs as Record<string, tf.TensorInfo>)) {
    const values = target.readSync(info.dataId) as tf.backend_util.BackendValues;
    cpuInputs[key] = { dataId: cpu.write(values, info.shape, info.dtype), shape: info.shape, dtype: info.dtype };
  }
  try {
    const out = kernel.kernelFunc({ inputs: cpuInputs, attrs, backend: cpu });
    const outs = Array.isArray(out) ? out : [out];
    const moved = outs.map((o) => {
      const values = cpu!.readSync(o.dataId) as tf.backend_util.BackendValues;
      cpu!.disposeData(o.dataId, true);
      return { dataId: target.write(values, o.shape, o.dtype), shape: o.shape, dtype: o.dtype };
    });
    return Array.isArray(out) ? moved : moved[0];
  } finally {
    for (const info of Object.values(cpuInputs)) cpu.disposeData(info.dataId, true);
  }
}

const registered = new Set<string>();

/**
 * UnsortedSegmentSum (the gradient of every gather: embeddings, relative-position tables) as one
 * scatter-add pass, O(N * inner). tfjs-cpu's kernel, which the generic fallback would run, builds a
 * mask per segment (O(segments * N)) and took half a second per embedding gradient.
 */
export function unsortedSegmentSum({ inputs, attrs, backend }: KernelFuncArgs): tf.TensorInfo {
  const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = (attrs as { numSegments: number }).numSegments;
  const target = backend as tf.KernelBackend;
  const values = target.readSync(x.dataId) as Float32Array | Int32Array;
  const ids = target.readSync(segmentIds.dataId) as Int32Array;
  const n = ids.length;
  const inner = n === 0 ? 0 : values.length / n;
  const shape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const out = x.dtype === 'int32' ? new Int32Array(numSegments * inner) : new Float32Array(numSegments * inner);
  for (let i = 0; i < n; i++) {
    const seg = ids[i];
    if (seg < 0 || seg >= numSegments) continue; // TF drops out-of-range ids
    const o = seg * inner;
    const s = i * inner;
    for (let j = 0; j < inner; j++) out[o + j] += values[s + j];
  }
  return { dataId: target.write(out, shape, x.dtype), shape, dtype: x.dtype };
}

/** Kernels registered on `backendName` ahead of the generic fallbacks, because theirs would be slow. */
const DIRECT: Record<string, tf.KernelFunc> = { UnsortedSegmentSum: unsortedSegmentSum };

/** Registers a cpu fallback for every kernel that `backendName` lacks and the cpu backend has. */
export function registerFallbackKernels(backendName: string): string[] {
  const have = new Set(tf.getKernelsForBackend(backendName).map((k) => k.kernelName));
  const added: string[] = [];
  for (const { kernelName } of tf.getKernelsForBackend('cpu')) {
    if (have.has(kernelName) || registered.has(`${backendName}/${kernelName}`)) continue;
    const direct = DIRECT[kernelName];
    tf.registerKernel({ kernelName, backendName, kernelFunc: direct ?? ((args) => runOnCpu(kernelName, args)) });
    registered.add(`${backendName}/${kernelName}`);
    added.push(kernelName);
  }
  return added;
}

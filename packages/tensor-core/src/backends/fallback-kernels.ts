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

/** Registers a cpu fallback for every kernel that `backendName` lacks and the cpu backend has. */
export function registerFallbackKernels(backendName: string): string[] {
  const have = new Set(tf.getKernelsForBackend(backendName).map((k) => k.kernelName));
  const added: string[] = [];
  for (const { kernelName } of tf.getKernelsForBackend('cpu')) {
    if (have.has(kernelName) || registered.has(`${backendName}/${kernelName}`)) continue;
    tf.registerKernel({ kernelName, backendName, kernelFunc: (args) => runOnCpu(kernelName, args) });
    registered.add(`${backendName}/${kernelName}`);
    added.push(kernelName);
  }
  return added;
}

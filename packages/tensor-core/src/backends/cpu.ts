import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

/** A MathBackendCPU that does not print tfjs' "use tfjs-node" banner on first use in Node. */
export function quietCpuBackend(): MathBackendCPU {
  const backend = new MathBackendCPU();
  (backend as unknown as { firstUse: boolean }).firstUse = false;
  return backend;
}

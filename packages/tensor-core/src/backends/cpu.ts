import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

/** A MathBackendCPU that does not print tfjs' "use tfjs-node" banner on first use in Node. */
export function quietCpuBackend(): MathBackendCPU {
  const backend = new MathBackendCPU();
  // `firstUse` is private in MathBackendCPU's typings; it only gates the console banner.
  Reflect.set(backend, 'firstUse', false);
  return backend;
}

// tfjs-backend-cpu kernels that fiber-vl replaces because tfjs' own are pathologically slow at model
// size. Measured on one FIBER-B train step at 96 px (fused forward + backward): UnsortedSegmentSum
// (every gather's gradient; tfjs builds a mask per segment, and the word embeddings have 50,265)
// 334 s of 459 s; Transpose (tfjs computes every element's coordinates in fresh arrays) 35 s.
import { tf } from '../tf.js';
import { reduceTranspose } from '../kernels/transpose-plan.js';
import { unsortedSegmentSum } from './fallback-kernels.js';

type KernelFuncArgs = Parameters<tf.KernelFunc>[0];
type Values = Float32Array | Int32Array;

/** x transposed by `perm`, element by element along the reduced axes (the innermost as a run or a strided loop). */
export function transposeValues(values: Values, shape: readonly number[], perm: readonly number[]): Values {
  const n = values.length;
  const out = values instanceof Int32Array ? new Int32Array(n) : new Float32Array(n);
  if (n === 0) return out;
  const { shape: dims, inStrides } = reduceTranspose(shape, perm);
  const rank = dims.length;
  const inner = dims[rank - 1];
  const step = inStrides[rank - 1];
  const index = new Array<number>(rank).fill(0);
  let base = 0;
  for (let o = 0; o < n; o += inner) {
    if (step === 1) out.set(values.subarray(base, base + inner), o);
    else for (let j = 0, src = base; j < inner; j++, src += step) out[o + j] = values[src];
    // the next position of the outer axes (an odometer, last axis fastest)
    for (let d = rank - 2; d >= 0; d--) {
      base += inStrides[d];
      if (++index[d] < dims[d]) break;
      base -= inStrides[d] * dims[d];
      index[d] = 0;
    }
  }
  return out;
}

function transposeKernel(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelFuncArgs) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype !== 'float32' && x.dtype !== 'int32') return original(args);
    const perm = (args.attrs as { perm: number[] }).perm;
    const backend = args.backend as tf.KernelBackend;
    const values = transposeValues(backend.readSync(x.dataId) as Values, x.shape, perm);
    const shape = perm.map((a) => x.shape[a]);
    return { dataId: backend.write(values, shape, x.dtype), shape, dtype: x.dtype };
  };
}

/** Registers fiber-vl's UnsortedSegmentSum and Transpose on the cpu backend (once; tfjs' Transpose stays for other dtypes). */
export function replaceCpuKernels(): void {
  if (hasScatterAddSegmentSum('cpu')) return; // already replaced: Transpose is wrapped once
  if (tf.getKernel('UnsortedSegmentSum', 'cpu')) tf.unregisterKernel('UnsortedSegmentSum', 'cpu');
  tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'cpu', kernelFunc: unsortedSegmentSum });
  const transpose = tf.getKernel('Transpose', 'cpu');
  if (transpose) {
    tf.unregisterKernel('Transpose', 'cpu');
    tf.registerKernel({ ...transpose, kernelFunc: transposeKernel(transpose.kernelFunc) });
  }
}

/** Whether `backendName` runs fiber-vl's scatter-add for UnsortedSegmentSum (for tests). */
export function hasScatterAddSegmentSum(backendName: string): boolean {
  return tf.getKernel('UnsortedSegmentSum', backendName)?.kernelFunc === unsortedSegmentSum;
}

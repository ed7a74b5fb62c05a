// The boxes tfjs' Slice, Unpack and SplitV cut out of a tensor, and a box of a row-major tensor
// walked run by run: shared by the wasm copy kernels and the cpu ones.
import { tf } from '../tf.js';

/** The kernels that copy boxes out of their input. */
export type BoxKernel = 'Slice' | 'Unpack' | 'SplitV';

/** A box of a tensor, [begin, begin + extent) on every axis, and the shape of the output holding it. */
export interface Box {
  begin: number[];
  extent: number[];
  shape: number[];
}

/** The name of the kernel's input (Unpack's is `value`). */
export const boxKernelInput = (kernel: BoxKernel) => (kernel === 'Unpack' ? 'value' : 'x');

/**
 * The boxes `kernel` cuts out of x, its attrs parsed as tfjs parses them (one for Slice, checked
 * against x's shape, which tfjs' wasm Slice does not do; one per output for Unpack and SplitV).
 */
export function kernelBoxes(kernel: BoxKernel, x: tf.TensorInfo, attrs: tf.NamedAttrMap): Box[] {
  if (kernel === 'Slice') {
    const [begin, extent] = tf.slice_util.parseSliceParams(
      x,
      (attrs.begin ?? []) as number | number[],
      attrs.size as number | number[] | undefined,
    );
    tf.slice_util.assertParamsValid(x, begin, extent);
    return [{ begin, extent, shape: extent }];
  }
  const axis = tf.util.parseAxisParam((attrs.axis ?? 0) as number, x.shape)[0];
  const at = (start: number, length: number) => ({
    begin: x.shape.map((_, a) => (a === axis ? start : 0)),
    extent: x.shape.map((d, a) => (a === axis ? length : d)),
  });
  if (kernel === 'Unpack') {
    const shape = x.shape.filter((_, a) => a !== axis);
    return Array.from({ length: x.shape[axis] }, (_, i) => ({ ...at(i, 1), shape }));
  }
  const sizes = tf.backend_util.prepareSplitSize(x, (attrs.numOrSizeSplits ?? 1) as number | number[], axis);
  let start = 0;
  return sizes.map((s) => {
    const box = at(start, s);
    start += s;
    return { ...box, shape: box.extent };
  });
}

/**
 * Calls `copy(from, to, length)` for each contiguous run of the box [begin, begin + extent) of a
 * row-major tensor of `shape`, in order: `from` is the run's flat offset in the tensor, `to` its
 * offset in the box. A run is the innermost axes the box covers whole and the first one it does not.
 */
export function forEachBoxRun(
  shape: readonly number[],
  begin: readonly number[],
  extent: readonly number[],
  copy: (from: number, to: number, length: number) => void,
): void {
  const rank = shape.length;
  const total = extent.reduce((p, d) => p * d, 1);
  if (total === 0) return;
  const strides = new Array<number>(rank);
  for (let a = rank - 1, st = 1; a >= 0; a--) {
    strides[a] = st;
    st *= shape[a];
  }
  let k = rank - 1;
  let run = 1;
  for (; k >= 0; k--) {
    run *= extent[k];
    if (extent[k] !== shape[k]) break;
  }
  let from = 0;
  for (let a = 0; a < rank; a++) from += begin[a] * strides[a];
  const index = new Array<number>(Math.max(k, 0)).fill(0);
  for (let to = 0; to < total; to += run) {
    copy(from, to, run);
    // the next run: an odometer over the axes before k, last fastest
    for (let a = k - 1; a >= 0; a--) {
      from += strides[a];
      if (++index[a] < extent[a]) break;
      from -= strides[a] * extent[a];
      index[a] = 0;
    }
  }
}

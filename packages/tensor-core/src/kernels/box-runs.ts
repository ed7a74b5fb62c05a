// A box of a row-major tensor walked run by run, shared by the wasm copy kernels (Slice, Unpack,
// SplitV) and the cpu ones.

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

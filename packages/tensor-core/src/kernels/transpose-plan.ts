// A transpose reduced to its smallest form, shared by the wasm Transpose kernel and the cpu one.

/**
 * A transpose in its smallest form: unit axes dropped and input axes that stay neighbours merged.
 * `shape` is the reduced output shape; `inStrides[i]` the input stride (elements) of output axis i.
 * E.g. [1024, 4, 3, 2, 16] by [2, 0, 3, 1, 4] stays rank 5; [B, 1, N, C] by [0, 2, 1, 3] is a copy.
 */
export function reduceTranspose(
  shape: readonly number[],
  perm: readonly number[],
): { shape: number[]; inStrides: number[] } {
  const strides = new Array<number>(shape.length);
  for (let a = shape.length - 1, s = 1; a >= 0; a--) {
    strides[a] = s;
    s *= shape[a];
  }
  const out: number[] = [];
  const inStrides: number[] = [];
  let last = -2; // the input axis that ended the previous group
  for (const a of perm) {
    if (shape[a] === 1) continue;
    // a continues the previous group when every axis between the two is a unit axis
    let next = last + 1;
    while (next < a && shape[next] === 1) next++;
    if (out.length && next === a) {
      out[out.length - 1] *= shape[a];
      inStrides[inStrides.length - 1] = strides[a];
    } else {
      out.push(shape[a]);
      inStrides.push(strides[a]);
    }
    last = a;
  }
  if (!out.length) return { shape: [1], inStrides: [1] };
  return { shape: out, inStrides };
}

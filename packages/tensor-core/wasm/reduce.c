// Sum over a middle block of axes without a transpose: out[o, k] = sum over r of x[o, r, k]
// (tfjs Sum with its reduced axes contiguous and not the innermost: a bias gradient sums [rows, C]
// over the rows). tfjs-backend-wasm transposes the reduced axes innermost first, then sums each
// output over r = 0, 1, ... from 0; here every lane accumulates its column in the same order, so
// the result has the same bits.
#include "fk.h"

// Columns [k0, k1) of out[o, :] = sum over r < R of x[o, r, :], 16 at a time (one cache line of
// each row).
static void sum_columns(const f32* x, f32* out, uint32_t R, uint32_t inner, uint32_t k0, uint32_t k1) {
  uint32_t k = k0;
  for (; k + 16 <= k1; k += 16) {
    v128_t s0 = wasm_f32x4_splat(0.f), s1 = s0, s2 = s0, s3 = s0;
    const f32* p = x + k;
    for (uint32_t r = 0; r < R; r++, p += inner) {
      s0 = wasm_f32x4_add(s0, wasm_v128_load(p));
      s1 = wasm_f32x4_add(s1, wasm_v128_load(p + 4));
      s2 = wasm_f32x4_add(s2, wasm_v128_load(p + 8));
      s3 = wasm_f32x4_add(s3, wasm_v128_load(p + 12));
    }
    wasm_v128_store(out + k, s0);
    wasm_v128_store(out + k + 4, s1);
    wasm_v128_store(out + k + 8, s2);
    wasm_v128_store(out + k + 12, s3);
  }
  for (; k + 4 <= k1; k += 4) {
    v128_t s = wasm_f32x4_splat(0.f);
    const f32* p = x + k;
    for (uint32_t r = 0; r < R; r++, p += inner) s = wasm_f32x4_add(s, wasm_v128_load(p));
    wasm_v128_store(out + k, s);
  }
  for (; k < k1; k++) {
    f32 s = 0.f;
    const f32* p = x + k;
    for (uint32_t r = 0; r < R; r++, p += inner) s += *p;
    out[k] = s;
  }
}

// args: x, out, outer, R (reduced), inner. Split over (outer row, block of 64 columns).
void fk_sum_middle(const i32* a, int tid, int nt) {
  const f32* x = ptr_f32(a[0]);
  f32* y = ptr_f32(a[1]);
  uint32_t outer = (uint32_t)a[2], R = (uint32_t)a[3], inner = (uint32_t)a[4];
  const uint32_t block = 64;
  uint32_t blocks = (inner + block - 1) / block, units = outer * blocks;
  uint32_t u0 = share_begin(units, tid, nt), u1 = share_begin(units, tid + 1, nt);
  for (uint32_t u = u0; u < u1; u++) {
    uint32_t o = u / blocks, b = u % blocks;
    uint32_t k0 = b * block, k1 = imin((int)inner, (int)(k0 + block));
    sum_columns(x + (size_t)o * R * inner, y + (size_t)o * inner, R, inner, k0, k1);
  }
}

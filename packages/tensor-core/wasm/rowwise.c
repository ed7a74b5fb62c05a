// Row-wise and element-wise kernels: LayerNorm over the last axis, exact (erf) GELU.
#include "fk.h"

static inline f32 hsum4(v128_t v) {
  v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
  return wasm_f32x4_extract_lane(v, 0);
}

// args: x [rows, dim], weight [dim] or 0, bias [dim] or 0, out [rows, dim], rows, dim, eps (f32 bits)
// Two passes (mean, then the biased variance of x - mean), as torch does.
void fk_layer_norm(const i32* a, int tid, int nt) {
  const f32* x = ptr_f32(a[0]);
  const f32* gamma = a[1] ? ptr_f32(a[1]) : 0;
  const f32* beta = a[2] ? ptr_f32(a[2]) : 0;
  f32* out = ptr_f32(a[3]);
  int rows = a[4], dim = a[5];
  f32 eps = bits_f32(a[6]);
  int per = (rows + nt - 1) / nt, r0 = tid * per, r1 = imin(rows, r0 + per);
  for (int r = r0; r < r1; r++) {
    const f32* xr = x + (size_t)r * dim;
    f32* yr = out + (size_t)r * dim;
    v128_t acc = wasm_f32x4_splat(0.f);
    int j = 0;
    for (; j + 4 <= dim; j += 4) acc = wasm_f32x4_add(acc, wasm_v128_load(xr + j));
    f32 sum = hsum4(acc);
    for (; j < dim; j++) sum += xr[j];
    f32 mean = sum / dim;
    v128_t vm = wasm_f32x4_splat(mean);
    acc = wasm_f32x4_splat(0.f);
    for (j = 0; j + 4 <= dim; j += 4) {
      v128_t d = wasm_f32x4_sub(wasm_v128_load(xr + j), vm);
      acc = MADD(d, d, acc);
    }
    f32 ss = hsum4(acc);
    for (; j < dim; j++) ss += (xr[j] - mean) * (xr[j] - mean);
    f32 rstd = 1.f / __builtin_sqrtf(ss / dim + eps);
    v128_t vr = wasm_f32x4_splat(rstd);
    for (j = 0; j + 4 <= dim; j += 4) {
      v128_t y = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(xr + j), vm), vr);
      if (gamma) y = wasm_f32x4_mul(y, wasm_v128_load(gamma + j));
      if (beta) y = wasm_f32x4_add(y, wasm_v128_load(beta + j));
      wasm_v128_store(yr + j, y);
    }
    for (; j < dim; j++) {
      f32 y = (xr[j] - mean) * rstd;
      if (gamma) y *= gamma[j];
      if (beta) y += beta[j];
      yr[j] = y;
    }
  }
}

// erf by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7):
// erf(z) = sign(z) (1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) exp(-z^2)), t = 1 / (1 + p |z|).
static inline v128_t erf4(v128_t z) {
  v128_t az = wasm_f32x4_abs(z);
  v128_t t = wasm_f32x4_div(wasm_f32x4_splat(1.f), MADD(az, wasm_f32x4_splat(0.3275911f), wasm_f32x4_splat(1.f)));
  v128_t p = wasm_f32x4_splat(1.061405429f);
  p = MADD(p, t, wasm_f32x4_splat(-1.453152027f));
  p = MADD(p, t, wasm_f32x4_splat(1.421413741f));
  p = MADD(p, t, wasm_f32x4_splat(-0.284496736f));
  p = MADD(p, t, wasm_f32x4_splat(0.254829592f));
  p = wasm_f32x4_mul(p, t);
  v128_t e = fk_exp(wasm_f32x4_neg(wasm_f32x4_mul(az, az)));
  v128_t y = wasm_f32x4_sub(wasm_f32x4_splat(1.f), wasm_f32x4_mul(p, e));
  return wasm_v128_or(y, wasm_v128_and(z, wasm_i32x4_splat((i32)0x80000000)));  // copy the sign of z
}

// args: x, out, n. out = 0.5 x (1 + erf(x / sqrt 2)).
void fk_gelu(const i32* a, int tid, int nt) {
  const f32* x = ptr_f32(a[0]);
  f32* out = ptr_f32(a[1]);
  int n = a[2];
  // Chunks of 4 floats per thread share, so that only the last thread has a scalar tail.
  int per = round_up((n + nt - 1) / nt, 4), i0 = tid * per, i1 = imin(n, i0 + per);
  const v128_t half = wasm_f32x4_splat(0.5f), one = wasm_f32x4_splat(1.f), r2 = wasm_f32x4_splat(0.70710678118654752f);
  int i = i0;
  for (; i + 4 <= i1; i += 4) {
    v128_t v = wasm_v128_load(x + i);
    wasm_v128_store(out + i, wasm_f32x4_mul(wasm_f32x4_mul(v, half), wasm_f32x4_add(erf4(wasm_f32x4_mul(v, r2)), one)));
  }
  if (i < i1) {
    f32 buf[4] = {0.f, 0.f, 0.f, 0.f};
    for (int k = i; k < i1; k++) buf[k - i] = x[k];
    v128_t v = wasm_v128_load(buf);
    wasm_v128_store(buf, wasm_f32x4_mul(wasm_f32x4_mul(v, half), wasm_f32x4_add(erf4(wasm_f32x4_mul(v, r2)), one)));
    for (int k = i; k < i1; k++) out[k] = buf[k - i];
  }
}

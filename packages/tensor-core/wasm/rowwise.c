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

// LayerNorm backward, rows split across threads. args: x [rows, dim], weight [dim] or 0,
// dy [rows, dim], dx [rows, dim] (out), stats [rows, 2] (out: mean, rstd), rows, dim, eps.
// dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy w, xhat = (x - mean) rstd.
void fk_layer_norm_grad_x(const i32* a, int tid, int nt) {
  const f32* x = ptr_f32(a[0]);
  const f32* gamma = a[1] ? ptr_f32(a[1]) : 0;
  const f32* dy = ptr_f32(a[2]);
  f32* dx = ptr_f32(a[3]);
  f32* stats = ptr_f32(a[4]);
  int rows = a[5], dim = a[6];
  f32 eps = bits_f32(a[7]);
  int per = (rows + nt - 1) / nt, r0 = tid * per, r1 = imin(rows, r0 + per);
  for (int r = r0; r < r1; r++) {
    const f32* xr = x + (size_t)r * dim;
    const f32* gr = dy + (size_t)r * dim;
    f32* dr = dx + (size_t)r * dim;
    f32 sum = 0.f;
    for (int j = 0; j < dim; j++) sum += xr[j];
    f32 mean = sum / dim;
    f32 ss = 0.f;
    for (int j = 0; j < dim; j++) ss += (xr[j] - mean) * (xr[j] - mean);
    f32 rstd = 1.f / __builtin_sqrtf(ss / dim + eps);
    f32 sg = 0.f, sgx = 0.f;
    for (int j = 0; j < dim; j++) {
      f32 g = gamma ? gr[j] * gamma[j] : gr[j];
      sg += g;
      sgx += g * (xr[j] - mean) * rstd;
    }
    f32 mg = sg / dim, mgx = sgx / dim;
    for (int j = 0; j < dim; j++) {
      f32 g = gamma ? gr[j] * gamma[j] : gr[j];
      dr[j] = rstd * (g - mg - (xr[j] - mean) * rstd * mgx);
    }
    stats[2 * r] = mean;
    stats[2 * r + 1] = rstd;
  }
}

// LayerNorm weight and bias gradients, columns split across threads (no reduction across
// threads). args: x [rows, dim], dy [rows, dim], stats [rows, 2], dw [dim] (out), db [dim] (out), rows, dim.
void fk_layer_norm_grad_w(const i32* a, int tid, int nt) {
  const f32* x = ptr_f32(a[0]);
  const f32* dy = ptr_f32(a[1]);
  const f32* stats = ptr_f32(a[2]);
  f32* dw = ptr_f32(a[3]);
  f32* db = ptr_f32(a[4]);
  int rows = a[5], dim = a[6];
  int per = (dim + nt - 1) / nt, c0 = tid * per, c1 = imin(dim, c0 + per);
  for (int j = c0; j < c1; j++) dw[j] = db[j] = 0.f;
  for (int r = 0; r < rows; r++) {
    const f32* xr = x + (size_t)r * dim;
    const f32* gr = dy + (size_t)r * dim;
    f32 mean = stats[2 * r], rstd = stats[2 * r + 1];
    for (int j = c0; j < c1; j++) {
      dw[j] += gr[j] * (xr[j] - mean) * rstd;
      db[j] += gr[j];
    }
  }
}

// GELU backward. args: x, dy, dx (out), n. dx = dy (cdf(x) + x pdf(x)).
void fk_gelu_grad(const i32* a, int tid, int nt) {
  const f32* x = ptr_f32(a[0]);
  const f32* dy = ptr_f32(a[1]);
  f32* dx = ptr_f32(a[2]);
  int n = a[3];
  int per = round_up((n + nt - 1) / nt, 4), i0 = tid * per, i1 = imin(n, i0 + per);
  const v128_t half = wasm_f32x4_splat(0.5f), one = wasm_f32x4_splat(1.f), r2 = wasm_f32x4_splat(0.70710678118654752f);
  const v128_t nhalf = wasm_f32x4_splat(-0.5f), inv = wasm_f32x4_splat(0.3989422804014327f);
  f32 buf[4], gbuf[4];
  for (int i = i0; i < i1; i += 4) {
    int m = imin(4, i1 - i);
    for (int k = 0; k < 4; k++) {
      buf[k] = k < m ? x[i + k] : 0.f;
      gbuf[k] = k < m ? dy[i + k] : 0.f;
    }
    v128_t v = wasm_v128_load(buf);
    v128_t cdf = wasm_f32x4_mul(wasm_f32x4_add(erf4(wasm_f32x4_mul(v, r2)), one), half);
    v128_t pdf = wasm_f32x4_mul(fk_exp(wasm_f32x4_mul(wasm_f32x4_mul(v, v), nhalf)), inv);
    v128_t g = wasm_f32x4_mul(wasm_v128_load(gbuf), MADD(v, pdf, cdf));
    wasm_v128_store(buf, g);
    for (int k = 0; k < m; k++) dx[i + k] = buf[k];
  }
}

// Swin's shifted-window attention in one pass over the token grid: window partition, cyclic shift
// (torch.roll), relative-position bias, shift mask, softmax, attention-weighted sum and window merge.
// The shift and the partition are folded into the token indexing: no rolled or partitioned copy is
// ever made.
#include "fk.h"

// Cephes' expf: exp(x) = 2^n exp(r), r = x - n ln 2, |r| <= ln 2 / 2; a degree-5 polynomial for exp(r).
// The clamp uses pmin/pmax (one instruction each in V8; f32x4.min/max are sequences that order
// -0/+0 and NaNs): with x as the first operand a NaN still comes through.
v128_t fk_exp(v128_t x) {
  x = wasm_f32x4_pmax(wasm_f32x4_pmin(x, wasm_f32x4_splat(88.3762626647949f)), wasm_f32x4_splat(-87.3365478515625f));
  v128_t n = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, wasm_f32x4_splat(0.693359375f)));
  r = wasm_f32x4_add(r, wasm_f32x4_mul(n, wasm_f32x4_splat(2.12194440e-4f)));
  v128_t p = wasm_f32x4_splat(1.9875691500e-4f);
  p = MADD(p, r, wasm_f32x4_splat(1.3981999507e-3f));
  p = MADD(p, r, wasm_f32x4_splat(8.3334519073e-3f));
  p = MADD(p, r, wasm_f32x4_splat(4.1665795894e-2f));
  p = MADD(p, r, wasm_f32x4_splat(1.6666665459e-1f));
  p = MADD(p, r, wasm_f32x4_splat(5.0000001201e-1f));
  p = MADD(p, wasm_f32x4_mul(r, r), wasm_f32x4_add(r, wasm_f32x4_splat(1.f)));
  v128_t e = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
  return wasm_f32x4_mul(p, e);
}

// exp(x) for x <= 0 (a softmax's x - max): 2^n 2^f with n = round(x log2 e), |f| <= 1/2, and a degree-5
// fit of 2^f on [-1/2, 1/2] (relative error 2.5e-7; degree 4, at 2.7e-6, moves the trainer's two-step
// parity check past its 1e-4 tolerance). Adding 1.5 * 2^23 + 127 rounds x log2 e to an integer and
// leaves n + 127 in the low bits, which the shift moves into the exponent field.
static inline v128_t exp_nonpositive(v128_t x) {
  const v128_t magic = wasm_f32x4_splat(12583039.f);
  v128_t t = wasm_f32x4_mul(wasm_f32x4_pmax(x, wasm_f32x4_splat(-87.3365478515625f)), wasm_f32x4_splat(1.44269504088896341f));
  v128_t y = wasm_f32x4_add(t, magic);
  v128_t f = wasm_f32x4_sub(t, wasm_f32x4_sub(y, magic));
  v128_t p = wasm_f32x4_splat(1.3400432653725147e-3f);
  p = MADD(p, f, wasm_f32x4_splat(9.676037356257439e-3f));
  p = MADD(p, f, wasm_f32x4_splat(5.550327152013779e-2f));
  p = MADD(p, f, wasm_f32x4_splat(2.402210682630539e-1f));
  p = MADD(p, f, wasm_f32x4_splat(6.931471824645996e-1f));
  p = MADD(p, f, wasm_f32x4_splat(1.0000001192092896f));
  return wasm_f32x4_mul(p, wasm_i32x4_shl(y, 23));
}

static inline void transpose4(v128_t* r0, v128_t* r1, v128_t* r2, v128_t* r3) {
  v128_t t0 = wasm_i32x4_shuffle(*r0, *r1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(*r0, *r1, 2, 6, 3, 7);
  v128_t t2 = wasm_i32x4_shuffle(*r2, *r3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(*r2, *r3, 2, 6, 3, 7);
  *r0 = wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5), *r1 = wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7);
  *r2 = wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5), *r3 = wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7);
}

// Region of a coordinate of the shifted map (Swin's slices (0, -w), (-w, -s), (-s, None)).
static inline int region(int p, int size, int w, int s) { return p < size - w ? 0 : p < size - s ? 1 : 2; }

/** Floats of scratch one thread needs for windows of n tokens and head width hd. */
static int attention_scratch(int n, int hd) {
  int n4 = round_up(n, 4), n8 = round_up(n, NR), hd8 = round_up(hd, NR);
  return n4 * hd + n8 * hd + n4 * n8 + n4 * n4 + 2 * n4 * hd8 + 2 * n8 + n + n8 + 2 * MR * NR + 3 * hd8;
}
EXPORT("fk_attention_scratch") int fk_attention_scratch(int n, int hd) { return attention_scratch(n, hd); }

// The bias as the attention kernel reads it: bias_t[h, k, i] = bias[h, i, k] (key-major), the initial value
// of S^T. Rows are padded to n8 queries with zeros and there are n4 rows: the padding keys' rows hold
// -3e38, so that they never win a query's maximum. args: bias [heads, n, n] or 0 (no bias: zeros),
// bias_t [heads, n4, n8], heads, n.
void fk_window_bias_t(const i32* a, int tid, int nt) {
  const f32* bias = a[0] ? ptr_f32(a[0]) : 0;
  f32* bias_t = ptr_f32(a[1]);
  int heads = a[2], n = a[3], n4 = round_up(n, 4), n8 = round_up(n, NR);
  for (int r = tid; r < heads * n4; r += nt) {
    int h = r / n4, k = r % n4;
    f32* dst = bias_t + (size_t)r * n8;
    int i = 0;
    if (k >= n) {
      for (; i < n8; i++) dst[i] = -3e38f;
      continue;
    }
    if (bias) {
      const f32* src = bias + (size_t)h * n * n + k;
      for (; i < n; i++) dst[i] = src[(size_t)i * n];
    }
    for (; i < n8; i++) dst[i] = 0.f;
  }
}

// S^T [n4 keys x n8 queries] = bias_t (+ shift mask) + k (q scale)^T, and every query's maximum over the
// keys (vmax [n8]). The GEMM's 4 x 8 tile, starting from the bias instead of zero, with the mask and
// the running maximum in its epilogue: the scores are written once and read once, by the exponential.
static void scores_t(int hd, int n4, int n8, const f32* restrict pk, const f32* restrict pq, const f32* restrict bt,
                     const i32* reg, int mixed, f32* restrict S, f32* restrict vmax) {
  const v128_t masked = wasm_f32x4_splat(-100.f), zero = wasm_f32x4_splat(0.f);
  for (int j = 0; j < n8; j += NR) {
    v128_t m0 = wasm_f32x4_splat(-3.4e38f), m1 = m0;
    v128_t rq0 = wasm_v128_load(reg + j), rq1 = wasm_v128_load(reg + j + 4);
    for (int i = 0; i < n4; i += MR) {
      v128_t c[8];
      for (int r = 0; r < MR; r++)
        c[2 * r] = wasm_v128_load(bt + (i + r) * n8 + j), c[2 * r + 1] = wasm_v128_load(bt + (i + r) * n8 + j + 4);
      tile_4x8_madd(hd, pk + i * hd, pq + j * hd, c);
      for (int r = 0; r < MR; r++) {
        if (mixed) {  // -100 where key and query come from different regions of the shifted map
          v128_t rk = wasm_i32x4_splat(reg[i + r]);
          c[2 * r] = wasm_f32x4_add(c[2 * r], wasm_v128_bitselect(masked, zero, wasm_i32x4_ne(rk, rq0)));
          c[2 * r + 1] = wasm_f32x4_add(c[2 * r + 1], wasm_v128_bitselect(masked, zero, wasm_i32x4_ne(rk, rq1)));
        }
        wasm_v128_store(S + (i + r) * n8 + j, c[2 * r]), wasm_v128_store(S + (i + r) * n8 + j + 4, c[2 * r + 1]);
        m0 = wasm_f32x4_pmax(m0, c[2 * r]), m1 = wasm_f32x4_pmax(m1, c[2 * r + 1]);
      }
    }
    wasm_v128_store(vmax + j, m0), wasm_v128_store(vmax + j + 4, m1);
  }
}

// args: qkv [B, H, W, 3C], bias_t [heads, n4, n8] (fk_window_bias_t), out [B, H, W, C], B, H, W, C,
// heads, w, shift, scale (f32 bits)
//
// Per window and head it computes S^T = k (q scale)^T, keys as rows: the softmax over the keys then
// runs down the columns with four queries per vector (no horizontal reductions), and each block of
// four queries is already the A panel of O = P v (key j of the block at 4 j). The rows of P are not
// normalised: O's rows are divided by their sums on the way out.
void fk_window_attention(const i32* a, int tid, int nt, f32* scratch) {
  const f32* qkv = ptr_f32(a[0]);
  const f32* bias_t = ptr_f32(a[1]);
  f32* out = ptr_f32(a[2]);
  int B = a[3], H = a[4], W = a[5], C = a[6], heads = a[7], w = a[8], s = a[9];
  f32 scale = bits_f32(a[10]);
  int hd = C / heads, n = w * w, nwy = H / w, nwx = W / w, windows = B * nwy * nwx;
  int n4 = round_up(n, 4), n8 = round_up(n, NR), hd8 = round_up(hd, NR);
  f32* pk = scratch;            // k as A panels [n4 x hd]
  f32* pq = pk + n4 * hd;       // q * scale as B panels of q^T [hd x n8]
  f32* S = pq + n8 * hd;        // S^T [n4 keys x n8 queries]
  f32* pp = S + n4 * n8;        // exp(S - max) as A panels [n4 queries x n4 keys]
  f32* pv = pp + n4 * n4;       // v as B panels [n4 x hd8]
  f32* O = pv + n4 * hd8;       // [n4 x hd8]
  f32* inv = O + n4 * hd8;      // 1 / row sums [n8]
  f32* vmax = inv + n8;         // row maxima [n8]
  i32* offset = (i32*)(vmax + n8);
  i32* reg = offset + n;        // [n8]
  f32* tmp = (f32*)(reg + n8);
  f32* zrow = tmp + 2 * MR * NR;  // 3 * hd8 zeros: the q, k and v rows of padding tokens
  for (int i = 0; i < 3 * hd8; i++) zrow[i] = 0.f;
  const v128_t zero = wasm_f32x4_splat(0.f);

  int units = windows * heads;
  for (int u = tid; u < units; u += nt) {
    int h = u % heads, win = u / heads;
    int wx = win % nwx, wy = (win / nwx) % nwy, b = win / (nwx * nwy);
    const f32* bt = bias_t + (size_t)h * n4 * n8;
    int mixed = 0;  // tokens from more than one region of the shifted map: the shift mask applies
    for (int t = 0; t < n; t++) {
      int py = wy * w + t / w, px = wx * w + t % w;  // position in the shifted map
      int gy = (py + s) % H, gx = (px + s) % W;      // position in the input map
      offset[t] = ((b * H + gy) * W + gx);
      reg[t] = s ? region(py, H, w, s) * 3 + region(px, W, w, s) : 0;
      mixed |= reg[t] != reg[0];
    }
    for (int t = n; t < n8; t++) reg[t] = reg[0];
    // k as A panels, q * scale as B panels of q^T, v as B panels. Tokens past n read a zero row.
    const f32 *rowq[NR], *rowk[NR];
    if (hd % 4 == 0) {
      const v128_t vs = wasm_f32x4_splat(scale);
      for (int t0 = 0; t0 < n8; t0 += NR) {
        for (int c = 0; c < NR; c++) {
          rowq[c] = t0 + c < n ? qkv + (size_t)offset[t0 + c] * 3 * C + h * hd : zrow;
          rowk[c] = t0 + c < n ? rowq[c] + C : zrow;
        }
        for (int d = 0; d < hd; d += 4) {
          v128_t r[NR];
          for (int c = 0; c < NR; c++) r[c] = wasm_f32x4_mul(wasm_v128_load(rowq[c] + d), vs);
          transpose4(&r[0], &r[1], &r[2], &r[3]);
          transpose4(&r[4], &r[5], &r[6], &r[7]);
          f32* dq = pq + t0 * hd + d * NR;
          for (int i = 0; i < 4; i++) wasm_v128_store(dq + i * NR, r[i]), wasm_v128_store(dq + i * NR + 4, r[4 + i]);
          for (int half = 0; half < 2 && t0 + 4 * half < n4; half++) {
            v128_t k0 = wasm_v128_load(rowk[4 * half] + d), k1 = wasm_v128_load(rowk[4 * half + 1] + d);
            v128_t k2 = wasm_v128_load(rowk[4 * half + 2] + d), k3 = wasm_v128_load(rowk[4 * half + 3] + d);
            transpose4(&k0, &k1, &k2, &k3);
            f32* dk = pk + (t0 + 4 * half) * hd + d * MR;
            wasm_v128_store(dk, k0), wasm_v128_store(dk + 4, k1), wasm_v128_store(dk + 8, k2), wasm_v128_store(dk + 12, k3);
          }
        }
      }
    } else {
      for (int t = 0; t < n4; t++) {
        const f32* src = t < n ? qkv + (size_t)offset[t] * 3 * C + C + h * hd : zrow;
        for (int d = 0; d < hd; d++) pk[(t / MR) * hd * MR + d * MR + t % MR] = src[d];
      }
      for (int t = 0; t < n8; t++) {
        const f32* src = t < n ? qkv + (size_t)offset[t] * 3 * C + h * hd : zrow;
        for (int d = 0; d < hd; d++) pq[(t / NR) * hd * NR + d * NR + t % NR] = src[d] * scale;
      }
    }
    for (int t = 0; t < n4; t++) {
      const f32* src = t < n ? qkv + (size_t)offset[t] * 3 * C + 2 * C + h * hd : zrow;
      f32* dv = pv + t * NR;
      int d0 = 0;
      for (; d0 + NR <= hd; d0 += NR) {
        wasm_v128_store(dv + d0 * n4, wasm_v128_load(src + d0));
        wasm_v128_store(dv + d0 * n4 + 4, wasm_v128_load(src + d0 + 4));
      }
      for (; d0 < hd8; d0 += NR)
        for (int c = 0; c < NR; c++) dv[d0 * n4 + c] = d0 + c < hd ? src[d0 + c] : 0.f;
    }
    scores_t(hd, n4, n8, pk, pq, bt, reg, mixed, S, vmax);
    // Four queries at a time: exp(x - max) down the keys into the A panel of P.
    for (int i = 0; i < n4; i += 4) {
      v128_t vm = wasm_v128_load(vmax + i), vsum = zero;
      f32* p = pp + i * n4;
      for (int k = 0; k < n; k++) {
        v128_t e = exp_nonpositive(wasm_f32x4_sub(wasm_v128_load(S + k * n8 + i), vm));
        wasm_v128_store(p + 4 * k, e);
        vsum = wasm_f32x4_add(vsum, e);
      }
      for (int k = n; k < n4; k++) wasm_v128_store(p + 4 * k, zero);
      wasm_v128_store(inv + i, wasm_f32x4_div(wasm_f32x4_splat(1.f), vsum));
    }
    // O = P v, then each row, divided by its sum, back to its token
    for (int j = 0; j < hd8; j += NR)
      for (int i = 0; i < n4; i += MR) fk_tile(n4, pp + i * n4, pv + j * n4, O + i * hd8 + j, hd8, MR, NR, 0, 0, tmp);
    for (int t = 0; t < n; t++) {
      f32* dst = out + (size_t)offset[t] * C + h * hd;
      const f32* src = O + t * hd8;
      v128_t r = wasm_f32x4_splat(inv[t]);
      int d = 0;
      for (; d + 4 <= hd; d += 4) wasm_v128_store(dst + d, wasm_f32x4_mul(wasm_v128_load(src + d), r));
      for (; d < hd; d++) dst[d] = src[d] * inv[t];
    }
  }
}

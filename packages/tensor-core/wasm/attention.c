// Swin's shifted-window attention in one pass over the token grid: window partition, cyclic shift
// (torch.roll), relative-position bias, shift mask, softmax, attention-weighted sum and window merge.
// The shift and the partition are folded into the token indexing: no rolled or partitioned copy is
// ever made.
#include "fk.h"

// Cephes' expf: exp(x) = 2^n exp(r), r = x - n ln 2, |r| <= ln 2 / 2; a degree-5 polynomial for exp(r).
v128_t fk_exp(v128_t x) {
  x = wasm_f32x4_max(wasm_f32x4_min(x, wasm_f32x4_splat(88.3762626647949f)), wasm_f32x4_splat(-87.3365478515625f));
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

static inline f32 hmax(v128_t v) {
  v = wasm_f32x4_max(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  v = wasm_f32x4_max(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
  return wasm_f32x4_extract_lane(v, 0);
}
static inline f32 hsum(v128_t v) {
  v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
  return wasm_f32x4_extract_lane(v, 0);
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
  return n4 * hd + n8 * hd + n4 * n8 + n4 * n4 + n4 * hd8 + n4 * hd8 + 2 * n + 2 * MR * NR + 3 * hd8;
}
EXPORT("fk_attention_scratch") int fk_attention_scratch(int n, int hd) { return attention_scratch(n, hd); }

// args: qkv [B, H, W, 3C], bias [heads, n, n] or 0, out [B, H, W, C], B, H, W, C, heads, w, shift, scale (f32 bits)
void fk_window_attention(const i32* a, int tid, int nt, f32* scratch) {
  const f32* qkv = ptr_f32(a[0]);
  const f32* bias = a[1] ? ptr_f32(a[1]) : 0;
  f32* out = ptr_f32(a[2]);
  int B = a[3], H = a[4], W = a[5], C = a[6], heads = a[7], w = a[8], s = a[9];
  f32 scale = bits_f32(a[10]);
  int hd = C / heads, n = w * w, nwy = H / w, nwx = W / w;
  int n4 = round_up(n, 4), n8 = round_up(n, NR), hd8 = round_up(hd, NR);
  // Scratch: packed q (A panels), packed k^T (B panels), scores [n4 x n8], packed P (A panels over n4
  // keys), packed v (B panels), output [n4 x hd8], token offsets and regions, a tile buffer.
  f32* pq = scratch;
  f32* pk = pq + n4 * hd;
  f32* S = pk + n8 * hd;
  f32* pp = S + n4 * n8;
  f32* pv = pp + n4 * n4;
  f32* O = pv + n4 * hd8;
  i32* offset = (i32*)(O + n4 * hd8);
  i32* reg = offset + n;
  f32* tmp = (f32*)(reg + n);
  f32* zrow = tmp + 2 * MR * NR;  // 3 * hd8 zeros: the q, k and v rows of padding tokens
  for (int i = 0; i < 3 * hd8; i++) zrow[i] = 0.f;
  const v128_t masked = wasm_f32x4_splat(-100.f), zero = wasm_f32x4_splat(0.f);

  int units = B * nwy * nwx * heads;
  for (int u = tid; u < units; u += nt) {
    int h = u % heads, win = u / heads;
    int wx = win % nwx, wy = (win / nwx) % nwy, b = win / (nwx * nwy);
    for (int t = 0; t < n; t++) {
      int py = wy * w + t / w, px = wx * w + t % w;  // position in the shifted map
      int gy = (py + s) % H, gx = (px + s) % W;      // position in the input map
      offset[t] = ((b * H + gy) * W + gx);
      reg[t] = s ? region(py, H, w, s) * 3 + region(px, W, w, s) : 0;
    }
    // q * scale as A panels [n4 x hd]; k as B panels of k^T [hd x n8]; v as B panels [n4 x hd8].
    // Tokens past n read a zero row.
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
          for (int c = 0; c < NR; c++) r[c] = wasm_v128_load(rowk[c] + d);
          transpose4(&r[0], &r[1], &r[2], &r[3]);
          transpose4(&r[4], &r[5], &r[6], &r[7]);
          f32* dk = pk + t0 * hd + d * NR;
          for (int i = 0; i < 4; i++) wasm_v128_store(dk + i * NR, r[i]), wasm_v128_store(dk + i * NR + 4, r[4 + i]);
          for (int half = 0; half < 2 && t0 + 4 * half < n4; half++) {
            v128_t q0 = wasm_f32x4_mul(wasm_v128_load(rowq[4 * half] + d), vs);
            v128_t q1 = wasm_f32x4_mul(wasm_v128_load(rowq[4 * half + 1] + d), vs);
            v128_t q2 = wasm_f32x4_mul(wasm_v128_load(rowq[4 * half + 2] + d), vs);
            v128_t q3 = wasm_f32x4_mul(wasm_v128_load(rowq[4 * half + 3] + d), vs);
            transpose4(&q0, &q1, &q2, &q3);
            f32* dq = pq + (t0 + 4 * half) * hd + d * MR;
            wasm_v128_store(dq, q0), wasm_v128_store(dq + 4, q1), wasm_v128_store(dq + 8, q2), wasm_v128_store(dq + 12, q3);
          }
        }
      }
    } else {
      for (int t = 0; t < n4; t++) {
        const f32* src = t < n ? qkv + (size_t)offset[t] * 3 * C + h * hd : zrow;
        for (int d = 0; d < hd; d++) pq[(t / MR) * hd * MR + d * MR + t % MR] = src[d] * scale;
      }
      for (int t = 0; t < n8; t++) {
        const f32* src = t < n ? qkv + (size_t)offset[t] * 3 * C + C + h * hd : zrow;
        for (int d = 0; d < hd; d++) pk[(t / NR) * hd * NR + d * NR + t % NR] = src[d];
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
    // S = (q scale) k^T
    for (int j = 0; j < n8; j += NR)
      for (int i = 0; i < n4; i += MR) fk_tile(hd, pq + i * hd, pk + j * hd, S + i * n8 + j, n8, MR, NR, 0, 0, tmp);
    // P = softmax(S + bias + mask), rows past n and columns past n are zero; packed 4 rows at a time.
    for (int i = 0; i < n4; i++) {
      f32* row = S + i * n8;
      if (i >= n) {
        for (int j = 0; j < n4; j += 4) wasm_v128_store(row + j, zero);
        continue;
      }
      const f32* brow = bias ? bias + ((size_t)h * n + i) * n : 0;
      v128_t ri = wasm_i32x4_splat(reg[i]);
      v128_t vmax = wasm_f32x4_splat(-3.4e38f);
      int j = 0;
      for (; j + 4 <= n; j += 4) {
        v128_t x = wasm_v128_load(row + j);
        if (brow) x = wasm_f32x4_add(x, wasm_v128_load(brow + j));
        if (s) x = wasm_f32x4_add(x, wasm_v128_bitselect(masked, zero, wasm_i32x4_ne(wasm_v128_load(reg + j), ri)));
        wasm_v128_store(row + j, x);
        vmax = wasm_f32x4_max(vmax, x);
      }
      f32 m = hmax(vmax);
      for (; j < n; j++) {
        f32 x = row[j] + (brow ? brow[j] : 0.f) + (s && reg[j] != reg[i] ? -100.f : 0.f);
        row[j] = x;
        m = x > m ? x : m;
      }
      for (; j < n4; j++) row[j] = -3.4e38f;
      v128_t vm = wasm_f32x4_splat(m), vsum = zero;
      for (j = 0; j < n4; j += 4) {
        v128_t e = fk_exp(wasm_f32x4_sub(wasm_v128_load(row + j), vm));
        if (j + 4 > n) e = wasm_v128_bitselect(e, zero, wasm_i32x4_lt(wasm_i32x4_make(j, j + 1, j + 2, j + 3), wasm_i32x4_splat(n)));
        wasm_v128_store(row + j, e);
        vsum = wasm_f32x4_add(vsum, e);
      }
      v128_t inv = wasm_f32x4_splat(1.f / hsum(vsum));
      for (j = 0; j < n4; j += 4) wasm_v128_store(row + j, wasm_f32x4_mul(wasm_v128_load(row + j), inv));
    }
    for (int i = 0; i < n4; i += MR) {
      f32* p = pp + i * n4;
      for (int j = 0; j < n4; j += 4) {
        v128_t r0 = wasm_v128_load(S + i * n8 + j), r1 = wasm_v128_load(S + (i + 1) * n8 + j);
        v128_t r2 = wasm_v128_load(S + (i + 2) * n8 + j), r3 = wasm_v128_load(S + (i + 3) * n8 + j);
        v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);
        v128_t t2 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
        wasm_v128_store(p + j * MR, wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5));
        wasm_v128_store(p + j * MR + 4, wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7));
        wasm_v128_store(p + j * MR + 8, wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5));
        wasm_v128_store(p + j * MR + 12, wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7));
      }
    }
    // O = P v, then each row back to its token
    for (int j = 0; j < hd8; j += NR)
      for (int i = 0; i < n4; i += MR) fk_tile(n4, pp + i * n4, pv + j * n4, O + i * hd8 + j, hd8, MR, NR, 0, 0, tmp);
    for (int t = 0; t < n; t++) {
      f32* dst = out + (size_t)offset[t] * C + h * hd;
      const f32* src = O + t * hd8;
      int d = 0;
      for (; d + 4 <= hd; d += 4) wasm_v128_store(dst + d, wasm_v128_load(src + d));
      for (; d < hd; d++) dst[d] = src[d];
    }
  }
}

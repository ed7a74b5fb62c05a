// Batched single-precision GEMM with packing (Goto / BLIS loop order) and a 4 x 8 SIMD tile.
#include "fk.h"

// The full 4 x 8 tile: c (ldc) = [c +] a-panel * b-panel [+ bias].
static void tile_4x8(int kc, const f32* restrict a, const f32* restrict b, f32* restrict c, int ldc, int load,
                     const f32* bias) {
  v128_t t[8];
  for (int r = 0; r < MR; r++) {
    t[2 * r] = load ? wasm_v128_load(c + r * ldc) : wasm_f32x4_splat(0.f);
    t[2 * r + 1] = load ? wasm_v128_load(c + r * ldc + 4) : wasm_f32x4_splat(0.f);
  }
  tile_4x8_madd(kc, a, b, t);
  v128_t b0 = bias ? wasm_v128_load(bias) : wasm_f32x4_splat(0.f), b1 = bias ? wasm_v128_load(bias + 4) : b0;
  for (int r = 0; r < MR; r++) {
    wasm_v128_store(c + r * ldc, bias ? wasm_f32x4_add(t[2 * r], b0) : t[2 * r]);
    wasm_v128_store(c + r * ldc + 4, bias ? wasm_f32x4_add(t[2 * r + 1], b1) : t[2 * r + 1]);
  }
}

// Any tile: partial ones go through tmp (2 * MR * NR floats) so that nothing outside C is touched.
void fk_tile(int kc, const f32* a, const f32* b, f32* c, int ldc, int mr, int nr, int load, const f32* bias, f32* tmp) {
  if (mr == MR && nr == NR) {
    tile_4x8(kc, a, b, c, ldc, load, bias);
    return;
  }
  f32* padded_bias = tmp + MR * NR;
  if (bias) {
    for (int j = 0; j < NR; j++) padded_bias[j] = j < nr ? bias[j] : 0.f;
  }
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR; j++) tmp[i * NR + j] = load && i < mr && j < nr ? c[i * ldc + j] : 0.f;
  tile_4x8(kc, a, b, tmp, NR, load, bias ? padded_bias : 0);
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nr; j++) c[i * ldc + j] = tmp[i * NR + j];
}

static inline void transpose4(v128_t* r0, v128_t* r1, v128_t* r2, v128_t* r3) {
  v128_t t0 = wasm_i32x4_shuffle(*r0, *r1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(*r0, *r1, 2, 6, 3, 7);
  v128_t t2 = wasm_i32x4_shuffle(*r2, *r3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(*r2, *r3, 2, 6, 3, 7);
  *r0 = wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5), *r1 = wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7);
  *r2 = wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5), *r3 = wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7);
}

// A block (mc x kc), element (m, k) at A[m * rs + k * cs] -> panels of MR rows: pa[(m/MR)*kc*MR + k*MR + m%MR].
// Rows past mc are zero.
void fk_pack_a(int mc, int kc, const f32* A, int rs, int cs, f32* pa) {
  for (int i = 0; i < mc; i += MR, pa += kc * MR) {
    int mr = imin(MR, mc - i);
    const f32* a = A + i * rs;
    int k = 0;
    if (mr == MR && cs == 1) {
      for (; k + 4 <= kc; k += 4) {
        v128_t r0 = wasm_v128_load(a + k), r1 = wasm_v128_load(a + rs + k);
        v128_t r2 = wasm_v128_load(a + 2 * rs + k), r3 = wasm_v128_load(a + 3 * rs + k);
        transpose4(&r0, &r1, &r2, &r3);
        wasm_v128_store(pa + k * MR, r0), wasm_v128_store(pa + k * MR + 4, r1);
        wasm_v128_store(pa + k * MR + 8, r2), wasm_v128_store(pa + k * MR + 12, r3);
      }
    } else if (mr == MR && rs == 1) {
      for (; k < kc; k++) wasm_v128_store(pa + k * MR, wasm_v128_load(a + k * cs));
    }
    for (; k < kc; k++)
      for (int r = 0; r < MR; r++) pa[k * MR + r] = r < mr ? a[r * rs + k * cs] : 0.f;
  }
}

// B block (kc x nc), element (k, n) at B[k * rs + n * cs] -> panels of NR columns: pb[(n/NR)*kc*NR + k*NR + n%NR].
// Columns past nc are zero.
void fk_pack_b(int kc, int nc, const f32* B, int rs, int cs, f32* pb) {
  for (int j = 0; j < nc; j += NR, pb += kc * NR) {
    int nr = imin(NR, nc - j);
    const f32* b = B + j * cs;
    int k = 0;
    if (nr == NR && cs == 1) {
      for (; k < kc; k++) {
        wasm_v128_store(pb + k * NR, wasm_v128_load(b + k * rs));
        wasm_v128_store(pb + k * NR + 4, wasm_v128_load(b + k * rs + 4));
      }
    } else if (nr == NR && rs == 1) {
      // B^T stored row-major (a Linear weight [out, in]): 8 rows of cs floats, transposed 4 x 4 at a time.
      for (; k + 4 <= kc; k += 4) {
        v128_t r0 = wasm_v128_load(b + k), r1 = wasm_v128_load(b + cs + k);
        v128_t r2 = wasm_v128_load(b + 2 * cs + k), r3 = wasm_v128_load(b + 3 * cs + k);
        v128_t r4 = wasm_v128_load(b + 4 * cs + k), r5 = wasm_v128_load(b + 5 * cs + k);
        v128_t r6 = wasm_v128_load(b + 6 * cs + k), r7 = wasm_v128_load(b + 7 * cs + k);
        transpose4(&r0, &r1, &r2, &r3);
        transpose4(&r4, &r5, &r6, &r7);
        f32* p = pb + k * NR;
        wasm_v128_store(p, r0), wasm_v128_store(p + 4, r4), wasm_v128_store(p + 8, r1), wasm_v128_store(p + 12, r5);
        wasm_v128_store(p + 16, r2), wasm_v128_store(p + 20, r6), wasm_v128_store(p + 24, r3), wasm_v128_store(p + 28, r7);
      }
    }
    for (; k < kc; k++)
      for (int c = 0; c < NR; c++) pb[k * NR + c] = c < nr ? b[k * rs + c * cs] : 0.f;
  }
}

typedef struct {
  int batch, M, N, K;
  const f32* A;
  int a_rs, a_cs, a_batch;  // element (b, m, k) at A[b * a_batch + m * a_rs + k * a_cs]
  const f32* B;
  int b_rs, b_cs, b_batch;  // element (b, k, n) at B[b * b_batch + k * b_rs + n * b_cs]
  f32* C;
  int ldc, c_batch;
  const f32* bias;  // [N] or null
  int accumulate;   // C += A B instead of C = A B
} Gemm;

// Rows [m0, m1) x columns [n0, n0 + nc) of item b.
static void gemm_block(const Gemm* g, int b, int m0, int m1, int n0, int nc, f32* scratch) {
  f32 *pa = scratch, *pb = scratch + MC * KC, *tmp = pb + KC * NC;
  const f32* A = g->A + b * g->a_batch;
  const f32* B = g->B + b * g->b_batch + n0 * g->b_cs;
  f32* C = g->C + b * g->c_batch + n0;
  for (int k0 = 0; k0 < g->K; k0 += KC) {
    int kc = imin(KC, g->K - k0);
    int load = k0 > 0 || g->accumulate;
    const f32* bias = k0 + kc == g->K && g->bias ? g->bias + n0 : 0;
    fk_pack_b(kc, nc, B + k0 * g->b_rs, g->b_rs, g->b_cs, pb);
    for (int i0 = m0; i0 < m1; i0 += MC) {
      int mc = imin(MC, m1 - i0);
      fk_pack_a(mc, kc, A + i0 * g->a_rs + k0 * g->a_cs, g->a_rs, g->a_cs, pa);
      for (int j = 0; j < nc; j += NR) {
        int nr = imin(NR, nc - j);
        for (int i = 0; i < mc; i += MR) {
          fk_tile(kc, pa + i * kc, pb + j * kc, C + (i0 + i) * g->ldc + j, g->ldc, imin(MR, mc - i), nr, load,
                  bias ? bias + j : 0, tmp);
        }
      }
    }
  }
  if (g->K == 0 && !g->accumulate) {
    for (int i = m0; i < m1; i++)
      for (int j = 0; j < nc; j++) C[i * g->ldc + j] = g->bias ? g->bias[n0 + j] : 0.f;
  }
}

// args: batch, M, N, K, A, a_rs, a_cs, a_batch, B, b_rs, b_cs, b_batch, C, ldc, c_batch, bias, accumulate
void fk_gemm(const i32* a, int tid, int nt, f32* scratch) {
  Gemm g = {a[0], a[1], a[2], a[3], ptr_f32(a[4]), a[5], a[6], a[7], ptr_f32(a[8]), a[9], a[10], a[11],
            ptr_f32(a[12]), a[13], a[14], a[15] ? ptr_f32(a[15]) : 0, a[16]};
  // Work units: (item, column chunk, row chunk). Column chunks of at most NC; with fewer items than
  // threads the columns, then the rows, are cut finer so that every thread gets a share.
  int n_chunks = (g.N + NC - 1) / NC;
  int m_chunks = 1;
  if (g.batch < nt) {
    n_chunks = imin(round_up(n_chunks, nt), imax(1, (g.N + NR - 1) / NR));
    if (g.batch * n_chunks < nt) m_chunks = imin((nt + g.batch * n_chunks - 1) / (g.batch * n_chunks), imax(1, g.M / (4 * MR)));
  }
  int nc = round_up((g.N + n_chunks - 1) / n_chunks, NR);
  int mc = round_up((g.M + m_chunks - 1) / m_chunks, MR);
  int units = g.batch * n_chunks * m_chunks;
  for (int u = tid; u < units; u += nt) {
    int b = u / (n_chunks * m_chunks), r = u % (n_chunks * m_chunks);
    int n0 = (r / m_chunks) * nc, m0 = (r % m_chunks) * mc;
    if (n0 >= g.N || m0 >= g.M) continue;
    gemm_block(&g, b, m0, imin(g.M, m0 + mc), n0, imin(nc, g.N - n0), scratch);
  }
}

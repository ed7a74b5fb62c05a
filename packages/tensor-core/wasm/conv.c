// The input gradient of a 2-D convolution (tfjs' Conv2DBackpropInput, NHWC, no dilation) with
// tfjs-backend-wasm's arithmetic: each dx[b, xr, xc, d1] is a float32 sum, from 0, of
// dy[b, yr, yc, d2] * w[fh-1-wr, fw-1-wc, d1, d2] over the taps in order (yr, then yc, then d2),
// each product rounded before it is added. tfjs computes one element at a time; here four to
// sixteen neighbouring d1 lanes share every dy load (the filter comes transposed to
// [fh, fw, out_c, in_c], so those lanes' weights are contiguous). A separate multiply and add per
// lane, never a fused one: the same bits as tfjs' scalar loop. Rows (b, xr) are split over threads.
#include "fk.h"

#pragma clang fp contract(off)

// args: dy [n, out_h, out_w, out_c], wt [fh, fw, out_c, in_c], dx [n, in_h, in_w, in_c], n, in_h,
// in_w, in_c, out_h, out_w, out_c, fh, fw, stride_h, stride_w, top_pad, left_pad (the padding of
// the transposed convolution: fh - 1 - the forward's top padding, as tfjs passes it).
void fk_conv2d_backprop_input(const i32* a, int tid, int nt) {
  const f32* dy = ptr_f32(a[0]);
  const f32* wt = ptr_f32(a[1]);
  f32* dx = ptr_f32(a[2]);
  int n = a[3], in_h = a[4], in_w = a[5], in_c = a[6], out_h = a[7], out_w = a[8], out_c = a[9];
  int fh = a[10], fw = a[11], sh = a[12], sw = a[13], top = a[14], left = a[15];
  uint32_t rows = (uint32_t)n * (uint32_t)in_h;
  uint32_t r0 = share_begin(rows, tid, nt), r1 = share_begin(rows, tid + 1, nt);
  size_t tap = (size_t)out_c * (size_t)in_c;
  for (uint32_t r = r0; r < r1; r++) {
    int b = (int)(r / (uint32_t)in_h), xr = (int)(r % (uint32_t)in_h);
    // the taps: yr with 0 <= wr = yr * sh - xr_corner < fh and yr < out_h
    int xr_corner = xr - top;
    int yr_lo = xr_corner <= 0 ? 0 : (xr_corner + sh - 1) / sh;
    f32* out = dx + (size_t)r * (size_t)in_w * (size_t)in_c;
    for (int xc = 0; xc < in_w; xc++, out += in_c) {
      int xc_corner = xc - left;
      int yc_lo = xc_corner <= 0 ? 0 : (xc_corner + sw - 1) / sw;
      int d1 = 0;
      for (; d1 + 16 <= in_c; d1 += 16) {
        v128_t c0 = wasm_f32x4_splat(0), c1 = c0, c2 = c0, c3 = c0;
        for (int yr = yr_lo; yr < out_h && yr * sh - xr_corner < fh; yr++) {
          int wr = yr * sh - xr_corner;
          for (int yc = yc_lo; yc < out_w && yc * sw - xc_corner < fw; yc++) {
            int wc = yc * sw - xc_corner;
            const f32* g = dy + (((size_t)b * out_h + yr) * out_w + yc) * out_c;
            const f32* w = wt + ((size_t)(fh - 1 - wr) * fw + (fw - 1 - wc)) * tap + d1;
            for (int d2 = 0; d2 < out_c; d2++, w += in_c) {
              v128_t x = wasm_v128_load32_splat(g + d2);
              c0 = wasm_f32x4_add(c0, wasm_f32x4_mul(x, wasm_v128_load(w)));
              c1 = wasm_f32x4_add(c1, wasm_f32x4_mul(x, wasm_v128_load(w + 4)));
              c2 = wasm_f32x4_add(c2, wasm_f32x4_mul(x, wasm_v128_load(w + 8)));
              c3 = wasm_f32x4_add(c3, wasm_f32x4_mul(x, wasm_v128_load(w + 12)));
            }
          }
        }
        wasm_v128_store(out + d1, c0);
        wasm_v128_store(out + d1 + 4, c1);
        wasm_v128_store(out + d1 + 8, c2);
        wasm_v128_store(out + d1 + 12, c3);
      }
      for (; d1 + 4 <= in_c; d1 += 4) {
        v128_t c = wasm_f32x4_splat(0);
        for (int yr = yr_lo; yr < out_h && yr * sh - xr_corner < fh; yr++) {
          int wr = yr * sh - xr_corner;
          for (int yc = yc_lo; yc < out_w && yc * sw - xc_corner < fw; yc++) {
            int wc = yc * sw - xc_corner;
            const f32* g = dy + (((size_t)b * out_h + yr) * out_w + yc) * out_c;
            const f32* w = wt + ((size_t)(fh - 1 - wr) * fw + (fw - 1 - wc)) * tap + d1;
            for (int d2 = 0; d2 < out_c; d2++, w += in_c)
              c = wasm_f32x4_add(c, wasm_f32x4_mul(wasm_v128_load32_splat(g + d2), wasm_v128_load(w)));
          }
        }
        wasm_v128_store(out + d1, c);
      }
      for (; d1 < in_c; d1++) {
        f32 c = 0;
        for (int yr = yr_lo; yr < out_h && yr * sh - xr_corner < fh; yr++) {
          int wr = yr * sh - xr_corner;
          for (int yc = yc_lo; yc < out_w && yc * sw - xc_corner < fw; yc++) {
            int wc = yc * sw - xc_corner;
            const f32* g = dy + (((size_t)b * out_h + yr) * out_w + yc) * out_c;
            const f32* w = wt + ((size_t)(fh - 1 - wr) * fw + (fw - 1 - wc)) * tap + d1;
            for (int d2 = 0; d2 < out_c; d2++, w += in_c) {
              f32 p = g[d2] * w[0];
              c += p;
            }
          }
        }
        out[d1] = c;
      }
    }
  }
}

// The input gradient of a 2-D convolution (tfjs' Conv2DBackpropInput, NHWC, no dilation) with
// tfjs-backend-wasm's arithmetic: each dx[b, xr, xc, d1] is a float32 sum, from 0, of
// dy[b, yr, yc, d2] * w[fh-1-wr, fw-1-wc, d1, d2] over the taps in order (yr, then yc, then d2),
// each product rounded before it is added. tfjs computes one element at a time; here every tap
// adds its products to a whole row of dx channels, 16, 4 or 1 lanes at a time (the filter comes
// transposed to [fh, fw, out_c, in_c], so those lanes' weights are contiguous). The partial sums
// live in dx between taps as float32, which they are in tfjs' loop too, and each lane gets a
// separate multiply and add, never a fused one: the same bits as tfjs. Rows (b, xr) are split
// over the threads.
#include "fk.h"

#pragma clang fp contract(off)

// The taps along one axis of output coordinate x: y in [lo, hi) with 0 <= y * s - (x - pad) < k
// and y < out, ascending, as tfjs walks them.
static inline void tap_range(int x, int pad, int k, int s, int out, int* lo, int* hi) {
  int corner = x - pad;
  int h = k + corner <= 0 ? 0 : (k + corner - 1) / s + 1;
  *lo = corner <= 0 ? 0 : (corner + s - 1) / s;
  *hi = h < out ? h : out;
}

// acc[d1] += g[d2] * w[d2 * in_c + d1] for d2 = 0, 1, ..., over d1 < in_c.
static inline void add_tap(const f32* g, const f32* w, f32* acc, int in_c, int out_c) {
  int d1 = 0;
  for (; d1 + 16 <= in_c; d1 += 16) {
    v128_t c0 = wasm_v128_load(acc + d1), c1 = wasm_v128_load(acc + d1 + 4);
    v128_t c2 = wasm_v128_load(acc + d1 + 8), c3 = wasm_v128_load(acc + d1 + 12);
    const f32* p = w + d1;
    for (int d2 = 0; d2 < out_c; d2++, p += in_c) {
      v128_t x = wasm_v128_load32_splat(g + d2);
      c0 = wasm_f32x4_add(c0, wasm_f32x4_mul(x, wasm_v128_load(p)));
      c1 = wasm_f32x4_add(c1, wasm_f32x4_mul(x, wasm_v128_load(p + 4)));
      c2 = wasm_f32x4_add(c2, wasm_f32x4_mul(x, wasm_v128_load(p + 8)));
      c3 = wasm_f32x4_add(c3, wasm_f32x4_mul(x, wasm_v128_load(p + 12)));
    }
    wasm_v128_store(acc + d1, c0);
    wasm_v128_store(acc + d1 + 4, c1);
    wasm_v128_store(acc + d1 + 8, c2);
    wasm_v128_store(acc + d1 + 12, c3);
  }
  for (; d1 + 4 <= in_c; d1 += 4) {
    v128_t c = wasm_v128_load(acc + d1);
    const f32* p = w + d1;
    for (int d2 = 0; d2 < out_c; d2++, p += in_c)
      c = wasm_f32x4_add(c, wasm_f32x4_mul(wasm_v128_load32_splat(g + d2), wasm_v128_load(p)));
    wasm_v128_store(acc + d1, c);
  }
  for (; d1 < in_c; d1++) {
    f32 c = acc[d1];
    const f32* p = w + d1;
    for (int d2 = 0; d2 < out_c; d2++, p += in_c) c += g[d2] * *p;
    acc[d1] = c;
  }
}

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
    int yr_lo, yr_hi;
    tap_range(xr, top, fh, sh, out_h, &yr_lo, &yr_hi);
    f32* acc = dx + (size_t)r * (size_t)in_w * (size_t)in_c;
    __builtin_memset(acc, 0, (size_t)in_w * (size_t)in_c * 4);
    for (int xc = 0; xc < in_w; xc++, acc += in_c) {
      int yc_lo, yc_hi;
      tap_range(xc, left, fw, sw, out_w, &yc_lo, &yc_hi);
      for (int yr = yr_lo; yr < yr_hi; yr++) {
        int wr = yr * sh - (xr - top);
        for (int yc = yc_lo; yc < yc_hi; yc++) {
          int wc = yc * sw - (xc - left);
          const f32* g = dy + (((size_t)b * out_h + yr) * out_w + yc) * out_c;
          add_tap(g, wt + ((size_t)(fh - 1 - wr) * fw + (fw - 1 - wc)) * tap, acc, in_c, out_c);
        }
      }
    }
  }
}

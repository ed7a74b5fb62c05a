// One AdamW update per element, in the float32 steps of the tfjs ops it replaces (trainer's AdamW:
// every tfjs op rounds to float32 once), so the result has the same bits: no fused multiply-adds,
// no reordering. Two variants:
//   torch.optim.AdamW:        w *= decay; m = m b1 + g (1 - b1); v = v b2 + g^2 (1 - b2);
//                             w -= m / (sqrt(v) / sqrt(bc2) + eps) * step
//   transformers.AdamW (4.x): m, v as above; w -= m / (sqrt(v) + eps) * step; w -= w * decay
#include "fk.h"

#pragma clang fp contract(off)

// args: w, g, m, v (in), w', m', v' (out), n, flags (1: transformers, else torch; 2: decay), decay,
// b1, 1 - b1, b2, 1 - b2, sqrt(bc2) (torch), eps, step size; the scalars as float bits
void fk_adamw(const i32* a, int tid, int nt) {
  const f32* w = ptr_f32(a[0]);
  const f32* g = ptr_f32(a[1]);
  const f32* m = ptr_f32(a[2]);
  const f32* v = ptr_f32(a[3]);
  f32* w2 = ptr_f32(a[4]);
  f32* m2 = ptr_f32(a[5]);
  f32* v2 = ptr_f32(a[6]);
  int n = a[7], transformers = a[8] & 1, has_decay = (a[8] & 2) != 0;
  f32 decay = bits_f32(a[9]), b1 = bits_f32(a[10]), c1 = bits_f32(a[11]), b2 = bits_f32(a[12]);
  f32 c2 = bits_f32(a[13]), sbc2 = bits_f32(a[14]), eps = bits_f32(a[15]), step = bits_f32(a[16]);
  int per = round_up((n + nt - 1) / nt, 4), i0 = tid * per, i1 = imin(n, i0 + per);
  const v128_t vb1 = wasm_f32x4_splat(b1), vc1 = wasm_f32x4_splat(c1), vb2 = wasm_f32x4_splat(b2);
  const v128_t vc2 = wasm_f32x4_splat(c2), vs = wasm_f32x4_splat(sbc2), ve = wasm_f32x4_splat(eps);
  const v128_t vstep = wasm_f32x4_splat(step), vd = wasm_f32x4_splat(decay);
  int i = i0;
  for (; i + 4 <= i1; i += 4) {
    v128_t x = wasm_v128_load(w + i), gi = wasm_v128_load(g + i);
    v128_t mi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(m + i), vb1), wasm_f32x4_mul(gi, vc1));
    v128_t vi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(v + i), vb2), wasm_f32x4_mul(wasm_f32x4_mul(gi, gi), vc2));
    if (transformers) {
      v128_t denom = wasm_f32x4_add(wasm_f32x4_sqrt(vi), ve);
      x = wasm_f32x4_sub(x, wasm_f32x4_mul(wasm_f32x4_div(mi, denom), vstep));
      if (has_decay) x = wasm_f32x4_sub(x, wasm_f32x4_mul(x, vd));
    } else {
      if (has_decay) x = wasm_f32x4_mul(x, vd);
      v128_t denom = wasm_f32x4_add(wasm_f32x4_div(wasm_f32x4_sqrt(vi), vs), ve);
      x = wasm_f32x4_sub(x, wasm_f32x4_mul(wasm_f32x4_div(mi, denom), vstep));
    }
    wasm_v128_store(w2 + i, x);
    wasm_v128_store(m2 + i, mi);
    wasm_v128_store(v2 + i, vi);
  }
  for (; i < i1; i++) {
    f32 x = w[i], gi = g[i];
    f32 mi = m[i] * b1 + gi * c1;
    f32 gg = gi * gi;
    f32 vi = v[i] * b2 + gg * c2;
    if (transformers) {
      f32 denom = __builtin_sqrtf(vi) + eps;
      x = x - (mi / denom) * step;
      if (has_decay) x = x - x * decay;
    } else {
      if (has_decay) x = x * decay;
      f32 denom = __builtin_sqrtf(vi) / sbc2 + eps;
      x = x - (mi / denom) * step;
    }
    w2[i] = x;
    m2[i] = mi;
    v2[i] = vi;
  }
}

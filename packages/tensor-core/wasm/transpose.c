// Transpose of 4-byte elements (float32, int32) for any rank, in the form the JS side reduces it
// to: unit axes dropped and axes that stay neighbours merged, so `rank` is the smallest that
// describes the permutation. Rows of the output (all axes but the last) are split across threads;
// a row whose input is contiguous is one memory.copy, otherwise a strided gather.
#include "fk.h"

#define MAX_RANK 8

// args: x, out, rank, then out_shape[MAX_RANK] and in_stride[MAX_RANK] (elements, of the input
// axis that lands on each output axis).
void fk_transpose(const i32* a, int tid, int nt) {
  const i32* x = ptr_i32(a[0]);
  i32* y = ptr_i32(a[1]);
  int r = a[2];
  const i32* os = a + 3;
  const i32* is = a + 3 + MAX_RANK;
  uint32_t rows = 1;
  for (int d = 0; d < r - 1; d++) rows *= (uint32_t)os[d];
  uint32_t inner = (uint32_t)os[r - 1], step = (uint32_t)is[r - 1];
  uint32_t r0 = share_begin(rows, tid, nt), r1 = share_begin(rows, tid + 1, nt);
  if (r0 >= r1) return;
  // multi-index (over the row axes) and input offset of row r0
  uint32_t idx[MAX_RANK];
  uint32_t src = 0, rem = r0;
  for (int d = r - 2; d >= 0; d--) {
    idx[d] = rem % (uint32_t)os[d];
    rem /= (uint32_t)os[d];
    src += idx[d] * (uint32_t)is[d];
  }
  i32* dst = y + (size_t)r0 * inner;
  for (uint32_t row = r0; row < r1; row++, dst += inner) {
    if (step == 1) {
      __builtin_memcpy(dst, x + src, (size_t)inner * 4);
    } else {
      const i32* s = x + src;
      for (uint32_t j = 0; j < inner; j++) dst[j] = s[(size_t)j * step];
    }
    for (int d = r - 2; d >= 0; d--) {
      src += (uint32_t)is[d];
      if (++idx[d] < (uint32_t)os[d]) break;
      src -= (uint32_t)is[d] * (uint32_t)os[d];
      idx[d] = 0;
    }
  }
}

// Gather of 4-byte elements along one axis (tfjs GatherV2 with batchDims 0), row by row:
// out[o, j, :] = x[o, idx[j], :]. Indices are in range (the JS side checks them first).
#include "fk.h"

// args: x, indices (int32), out, outer, axis size, number of indices, inner (elements per row)
void fk_gather(const i32* a, int tid, int nt) {
  const i32* x = ptr_i32(a[0]);
  const i32* idx = ptr_i32(a[1]);
  i32* y = ptr_i32(a[2]);
  uint32_t outer = (uint32_t)a[3], axis = (uint32_t)a[4], m = (uint32_t)a[5], inner = (uint32_t)a[6];
  uint32_t rows = outer * m, r0 = share_begin(rows, tid, nt), r1 = share_begin(rows, tid + 1, nt);
  for (uint32_t r = r0; r < r1; r++) {
    uint32_t o = r / m, j = r % m;
    __builtin_memcpy(y + (size_t)r * inner, x + ((size_t)o * axis + (uint32_t)idx[j]) * inner, (size_t)inner * 4);
  }
}

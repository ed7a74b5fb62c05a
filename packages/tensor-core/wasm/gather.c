// Gather of 4-byte elements along one axis (tfjs GatherV2 with batchDims 0), row by row:
// out[o, j, :] = x[o, idx[j], :]. Indices are in range (the JS side checks them first).
#include "fk.h"

// args: x, indices (int32), out, outer, axis size, number of indices, inner (elements per row)
void fk_gather(const i32* a, int tid, int nt) {
  const i32* x = (const i32*)(uintptr_t)(uint32_t)a[0];
  const i32* idx = (const i32*)(uintptr_t)(uint32_t)a[1];
  i32* y = (i32*)(uintptr_t)(uint32_t)a[2];
  uint32_t outer = (uint32_t)a[3], axis = (uint32_t)a[4], m = (uint32_t)a[5], inner = (uint32_t)a[6];
  uint32_t rows = outer * m;
  uint32_t r0 = (uint32_t)((uint64_t)rows * (uint32_t)tid / (uint32_t)nt);
  uint32_t r1 = (uint32_t)((uint64_t)rows * (uint32_t)(tid + 1) / (uint32_t)nt);
  for (uint32_t r = r0; r < r1; r++) {
    uint32_t o = r / m, j = r % m;
    __builtin_memcpy(y + (size_t)r * inner, x + ((size_t)o * axis + (uint32_t)idx[j]) * inner, (size_t)inner * 4);
  }
}

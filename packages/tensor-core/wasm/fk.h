// fiber-vl WebAssembly kernels: shared definitions.
//
// The module imports the memory of tfjs-backend-wasm and works on tensor data in place. It has no
// data segment and no global state (so instantiating it writes nothing into that memory), and
// every instance gets its own stack from fk_set_stack. Work is split by the caller: fk_run(args,
// tid, nt) runs thread tid's share of the op described by args on each of nt threads.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <wasm_simd128.h>

typedef float f32;
typedef int32_t i32;

#define EXPORT(name) __attribute__((export_name(name)))

// Relaxed SIMD's fused multiply-add where the engine has it (the build makes both variants).
#if defined(FK_RELAXED)
#define MADD(a, b, c) wasm_f32x4_relaxed_madd(a, b, c)
#else
#define MADD(a, b, c) wasm_f32x4_add(wasm_f32x4_mul(a, b), c)
#endif

// GEMM blocking: a 4 x 8 register tile (8 accumulators: more spill in V8), a KC x NR panel of B
// in L1, an MC x KC block of A and a KC x NC block of B in L2.
#define MR 4
#define NR 8
#define KC 256
#define MC 64
#define NC 512
#define GEMM_SCRATCH (MC * KC + KC * NC + 2 * MR * NR)

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }
static inline int round_up(int a, int m) { return (a + m - 1) / m * m; }
static inline f32 bits_f32(i32 bits) {
  union { i32 i; f32 f; } u = { bits };
  return u.f;
}
static inline f32* ptr_f32(i32 p) { return (f32*)(uintptr_t)(uint32_t)p; }
static inline i32* ptr_i32(i32 p) { return (i32*)(uintptr_t)(uint32_t)p; }
// Thread tid's first row when `rows` are split evenly over nt threads (its share ends at tid + 1's).
static inline uint32_t share_begin(uint32_t rows, int tid, int nt) {
  return (uint32_t)((uint64_t)rows * (uint32_t)tid / (uint32_t)nt);
}

// The 4 x 8 register tile's product: c[2 r + h] += sum over k < kc of a[k * MR + r] * b[k * NR + 4 h ..
// 4 h + 3] (A and B panels as packed by fk_pack_a / fk_pack_b). Inlined, c stays in registers.
static inline void tile_4x8_madd(int kc, const f32* restrict a, const f32* restrict b, v128_t* c) {
  v128_t c00 = c[0], c01 = c[1], c10 = c[2], c11 = c[3], c20 = c[4], c21 = c[5], c30 = c[6], c31 = c[7];
  for (int k = 0; k < kc; k++) {
    v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4);
    v128_t x = wasm_v128_load32_splat(a);
    c00 = MADD(x, b0, c00), c01 = MADD(x, b1, c01);
    x = wasm_v128_load32_splat(a + 1);
    c10 = MADD(x, b0, c10), c11 = MADD(x, b1, c11);
    x = wasm_v128_load32_splat(a + 2);
    c20 = MADD(x, b0, c20), c21 = MADD(x, b1, c21);
    x = wasm_v128_load32_splat(a + 3);
    c30 = MADD(x, b0, c30), c31 = MADD(x, b1, c31);
    a += MR, b += NR;
  }
  c[0] = c00, c[1] = c01, c[2] = c10, c[3] = c11, c[4] = c20, c[5] = c21, c[6] = c30, c[7] = c31;
}

// C[mr x nr] (+)= A panel (kc x MR) * B panel (kc x NR), + bias[nr] when bias is set.
void fk_tile(int kc, const f32* a, const f32* b, f32* c, int ldc, int mr, int nr, int load, const f32* bias, f32* tmp);
void fk_pack_a(int mc, int kc, const f32* A, int rs, int cs, f32* pa);
void fk_pack_b(int kc, int nc, const f32* B, int rs, int cs, f32* pb);
v128_t fk_exp(v128_t x);

void fk_gemm(const i32* args, int tid, int nt, f32* scratch);
void fk_window_attention(const i32* args, int tid, int nt, f32* scratch);
void fk_window_bias_t(const i32* args, int tid, int nt);
void fk_layer_norm(const i32* args, int tid, int nt);
void fk_gelu(const i32* args, int tid, int nt);
void fk_layer_norm_grad_x(const i32* args, int tid, int nt);
void fk_layer_norm_grad_w(const i32* args, int tid, int nt);
void fk_gelu_grad(const i32* args, int tid, int nt);
void fk_transpose(const i32* args, int tid, int nt);
void fk_sum_middle(const i32* args, int tid, int nt);
void fk_adamw(const i32* args, int tid, int nt);
void fk_gather(const i32* args, int tid, int nt);
void fk_conv2d_backprop_input(const i32* args, int tid, int nt);

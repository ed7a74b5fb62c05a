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
void fk_gather(const i32* args, int tid, int nt);

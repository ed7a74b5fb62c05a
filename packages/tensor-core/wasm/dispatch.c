// Entry points: the op dispatcher and the per-instance stack.
#include "fk.h"

enum { OP_GEMM = 1, OP_WINDOW_ATTENTION = 2, OP_LAYER_NORM = 3, OP_GELU = 4, OP_LAYER_NORM_GRAD_X = 5, OP_LAYER_NORM_GRAD_W = 6, OP_GELU_GRAD = 7, OP_TRANSPOSE = 8, OP_WINDOW_BIAS_T = 9, OP_GATHER = 10, OP_SUM_MIDDLE = 11, OP_ADAMW = 12, OP_CONV2D_BACKPROP_INPUT = 13 };

// Each instance (main thread and every worker) runs on a stack of its own in the shared memory.
EXPORT("fk_set_stack") void fk_set_stack(void* top) {
  __asm__ volatile(".globaltype __stack_pointer, i32\n\tlocal.get %0\n\tglobal.set __stack_pointer" : : "r"(top));
}

/** Bumped whenever the args layout of an op changes (the JS side checks it). */
EXPORT("fk_abi") int fk_abi(void) { return 6; }

/** Floats of scratch one thread needs for GEMM (attention asks the JS side for more by args). */
EXPORT("fk_gemm_scratch") int fk_gemm_scratch(void) { return GEMM_SCRATCH; }

// args: [op, scratch base (bytes), scratch floats per thread, op args...]
EXPORT("fk_run") void fk_run(const i32* args, int tid, int nt) {
  f32* scratch = ptr_f32(args[1]) + (uint32_t)tid * (uint32_t)args[2];
  switch (args[0]) {
    case OP_GEMM: fk_gemm(args + 3, tid, nt, scratch); break;
    case OP_WINDOW_ATTENTION: fk_window_attention(args + 3, tid, nt, scratch); break;
    case OP_LAYER_NORM: fk_layer_norm(args + 3, tid, nt); break;
    case OP_GELU: fk_gelu(args + 3, tid, nt); break;
    case OP_LAYER_NORM_GRAD_X: fk_layer_norm_grad_x(args + 3, tid, nt); break;
    case OP_LAYER_NORM_GRAD_W: fk_layer_norm_grad_w(args + 3, tid, nt); break;
    case OP_GELU_GRAD: fk_gelu_grad(args + 3, tid, nt); break;
    case OP_TRANSPOSE: fk_transpose(args + 3, tid, nt); break;
    case OP_WINDOW_BIAS_T: fk_window_bias_t(args + 3, tid, nt); break;
    case OP_GATHER: fk_gather(args + 3, tid, nt); break;
    case OP_SUM_MIDDLE: fk_sum_middle(args + 3, tid, nt); break;
    case OP_ADAMW: fk_adamw(args + 3, tid, nt); break;
    case OP_CONV2D_BACKPROP_INPUT: fk_conv2d_backprop_input(args + 3, tid, nt); break;
    default: __builtin_trap();
  }
}

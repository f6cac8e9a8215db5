/* The table of one instruction set's copy of the CPU kernels (internal; see isa.h). */
#ifndef ANVIL_KERNELS_CPU_DISPATCH_H
#define ANVIL_KERNELS_CPU_DISPATCH_H

#include "anvil/kernels.h"
#include "kernels/cpu/gemm.h"

typedef struct {
    const char *name; /* "avx512", "avx2", "portable" */
    __typeof__(anv_matmul_forward) *matmul_forward;
    __typeof__(anv_matmul_backward) *matmul_backward;
    __typeof__(anv_matmul_nt_forward) *matmul_nt_forward;
    __typeof__(anv_matmul_nt_backward) *matmul_nt_backward;
    __typeof__(anv_embedding_forward) *embedding_forward;
    __typeof__(anv_embedding_backward) *embedding_backward;
    __typeof__(anv_layernorm_forward) *layernorm_forward;
    __typeof__(anv_layernorm_backward) *layernorm_backward;
    __typeof__(anv_gelu_forward) *gelu_forward;
    __typeof__(anv_gelu_backward) *gelu_backward;
    __typeof__(anv_residual_forward) *residual_forward;
    __typeof__(anv_residual_backward) *residual_backward;
    __typeof__(anv_attention_scratch_floats) *attention_scratch_floats;
    __typeof__(anv_attention_forward) *attention_forward;
    __typeof__(anv_attention_backward) *attention_backward;
    __typeof__(anv_crossentropy_chunk_forward) *crossentropy_chunk_forward;
    __typeof__(anv_crossentropy_loss_sum) *crossentropy_loss_sum;
    __typeof__(anv_crossentropy_chunk_backward) *crossentropy_chunk_backward;
    __typeof__(anv_gemm) *gemm;
    __typeof__(anv_gemm_builtin) *gemm_builtin;
} anv_cpu_kernels_t;

extern const anv_cpu_kernels_t anv_cpu_kernels_portable;
#ifdef ANVIL_HAVE_ISA_X86
extern const anv_cpu_kernels_t anv_cpu_kernels_avx2, anv_cpu_kernels_avx512;
#endif

#endif

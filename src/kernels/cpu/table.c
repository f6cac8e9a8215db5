/* This instruction set's copy of the kernels, as a table for dispatch.c (compiled once per ISA). */
#include "kernels/cpu/isa.h"
#include "kernels/cpu/dispatch.h"

const anv_cpu_kernels_t anv_cpu_kernels = {
    ANV_ISA_LABEL,
    anv_matmul_forward,
    anv_matmul_backward,
    anv_matmul_nt_forward,
    anv_matmul_nt_backward,
    anv_embedding_forward,
    anv_embedding_backward,
    anv_layernorm_forward,
    anv_layernorm_backward,
    anv_gelu_forward,
    anv_gelu_backward,
    anv_residual_forward,
    anv_residual_backward,
    anv_attention_scratch_floats,
    anv_attention_forward,
    anv_attention_backward,
    anv_attention_decode,
    anv_crossentropy_chunk_forward,
    anv_crossentropy_loss_sum,
    anv_crossentropy_chunk_backward,
    anv_fill,
    anv_scale_into,
    anv_add_scaled,
    anv_sumsq,
    anv_adamw_update,
    anv_gemm,
    anv_gemm_builtin,
    anv_gemm_bf16,
};

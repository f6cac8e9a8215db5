/* The CUDA backend as a kernel table for src/kernels/cpu/dispatch.c. */
#include "kernels/cuda/cuda_kernels.h"

const anv_kernel_table_t anv_cuda_kernels = {
    "cuda",
    anv_cuda_matmul_forward,
    anv_cuda_matmul_backward,
    anv_cuda_matmul_nt_forward,
    anv_cuda_matmul_nt_backward,
    anv_cuda_embedding_forward,
    anv_cuda_embedding_backward,
    anv_cuda_layernorm_forward,
    anv_cuda_layernorm_backward,
    anv_cuda_gelu_forward,
    anv_cuda_gelu_backward,
    anv_cuda_residual_forward,
    anv_cuda_residual_backward,
    anv_cuda_attention_scratch_floats,
    anv_cuda_attention_forward,
    anv_cuda_attention_backward,
    anv_cuda_attention_decode,
    anv_cuda_crossentropy_chunk_forward,
    anv_cuda_crossentropy_loss_sum,
    anv_cuda_crossentropy_chunk_backward,
    anv_cuda_fill,
    anv_cuda_scale_into,
    anv_cuda_add_scaled,
    anv_cuda_sumsq,
    anv_cuda_adamw_update,
    anv_cuda_gemm,
    anv_cuda_gemm, /* no second GEMM on the GPU */
    anv_cuda_gemm_bf16,
};

/* The CUDA backend's kernels (internal, C++): the contracts of include/anvil/kernels.h, each defined in
 * the .cu file of its family and gathered into anv_cuda_kernels by table.cu. */
#ifndef ANVIL_KERNELS_CUDA_KERNELS_H
#define ANVIL_KERNELS_CUDA_KERNELS_H

#include "kernels/table.h"

decltype(anv_matmul_forward) anv_cuda_matmul_forward;
decltype(anv_matmul_backward) anv_cuda_matmul_backward;
decltype(anv_matmul_nt_forward) anv_cuda_matmul_nt_forward;
decltype(anv_matmul_nt_backward) anv_cuda_matmul_nt_backward;
decltype(anv_embedding_forward) anv_cuda_embedding_forward;
decltype(anv_embedding_backward) anv_cuda_embedding_backward;
decltype(anv_layernorm_forward) anv_cuda_layernorm_forward;
decltype(anv_layernorm_backward) anv_cuda_layernorm_backward;
decltype(anv_gelu_forward) anv_cuda_gelu_forward;
decltype(anv_gelu_backward) anv_cuda_gelu_backward;
decltype(anv_residual_forward) anv_cuda_residual_forward;
decltype(anv_residual_backward) anv_cuda_residual_backward;
decltype(anv_attention_scratch_floats) anv_cuda_attention_scratch_floats;
decltype(anv_attention_forward) anv_cuda_attention_forward;
decltype(anv_attention_backward) anv_cuda_attention_backward;
decltype(anv_attention_decode) anv_cuda_attention_decode;
decltype(anv_crossentropy_chunk_forward) anv_cuda_crossentropy_chunk_forward;
decltype(anv_crossentropy_loss_sum) anv_cuda_crossentropy_loss_sum;
decltype(anv_crossentropy_chunk_backward) anv_cuda_crossentropy_chunk_backward;
decltype(anv_fill) anv_cuda_fill;
decltype(anv_scale_into) anv_cuda_scale_into;
decltype(anv_add_scaled) anv_cuda_add_scaled;
decltype(anv_sumsq) anv_cuda_sumsq;
decltype(anv_adamw_update) anv_cuda_adamw_update;
anv_gemm_fn anv_cuda_gemm;      /* fp32, as the CPU's anv_gemm */
anv_gemm_fn anv_cuda_gemm_bf16; /* bf16 inputs, fp32 accumulation, as the CPU's anv_gemm_bf16 */

/* The bf16 precision's attention on tensor cores (attention_tc.cu): the head size it takes (32, 64 or
 * 128), or 0 when the fp32 kernels of attention.cu must do; and the forward and the backward's dQ
 * and dK/dV passes, with delta (B, NH, T) = the rows' sum of dout * out already computed. */
int anv_cuda_attention_tc_head(int C, int NH);
void anv_cuda_attention_tc_forward(float *out, float *lse, const float *qkv, int B, int T, int C, int NH);
void anv_cuda_attention_tc_backward(float *dqkv, const float *dout, const float *qkv, const float *lse,
                                    const float *delta, int B, int T, int C, int NH);

/* The GEMM of anv_gemm_fn with an optional bias (N) added to every row of C by cuBLASLt's epilogue
 * (beta must be 0 with a bias), in bf16 x bf16 -> fp32 when bf16 (inputs rounded to nearest even),
 * else fp32. 0, or -1 with an error (not logged) when cuBLASLt has no algorithm for the case or a CUDA
 * call fails. */
int anv_cuda_gemm_ex(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc, const float *bias, int bf16);

#endif

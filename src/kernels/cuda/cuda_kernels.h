/* The CUDA backend's kernels (internal, C++): the contracts of include/anvil/kernels.h, each defined in
 * the .cu file of its family and gathered into anv_cuda_kernels by table.cu. */
#ifndef ANVIL_KERNELS_CUDA_KERNELS_H
#define ANVIL_KERNELS_CUDA_KERNELS_H

#include "kernels/table.h"

/* anv_cuda_<name> for every line of kernel_list.h. The GPU has one fp32 GEMM: gemm_builtin is gemm. */
#define anv_cuda_gemm_builtin anv_cuda_gemm
#define ANV_KERNEL(ret, name, params, args) ret anv_cuda_##name params;
#include "anvil/kernel_list.h"

/* The bf16 precision's attention on tensor cores (attention_tc.cu): the head size it takes (32, 64 or
 * 128), or 0 when the fp32 kernels of attention.cuh must do; and the forward and the backward's dQ
 * and dK/dV passes, with delta (B, NH, T) = the rows' sum of dout * out already computed. The caller
 * has checked that NKV divides NH. */
int anv_cuda_attention_tc_head(int C, int NH);
void anv_cuda_attention_tc_forward(float *out, float *lse, const float *qkv, const int32_t *starts, int B, int T, int C,
                                   int NH, int NKV);
void anv_cuda_attention_tc_backward(float *dqkv, const float *dout, const float *qkv, const float *lse,
                                    const float *delta, const int32_t *starts, int B, int T, int C, int NH, int NKV);

/* The GEMM of anv_gemm_fn with an optional bias (N) added to every row of C by cuBLASLt's epilogue
 * (beta must be 0 with a bias), in bf16 x bf16 -> fp32 when bf16 (inputs rounded to nearest even),
 * else fp32. 0, or -1 with an error (not logged) when cuBLASLt has no algorithm for the case or a CUDA
 * call fails. */
int anv_cuda_gemm_ex(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc, const float *bias, int bf16);

#endif

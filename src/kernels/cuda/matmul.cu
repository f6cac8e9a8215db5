/* Linear layers on the GPU: Conv1D (weight (in, out)) and the tied LM head (weight (out, in)), on the
 * cuBLASLt GEMM of gemm.cu, with the same calls as the CPU's matmul.c. */
#include "kernels/cuda/colsum.cuh"
#include "kernels/cuda/cuda_kernels.h"

/* The matmuls' GEMM: bf16 inputs when the matmul precision is BF16 (kernels.h); a failure is recorded. */
static void gemm_scaled(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                        int ldb, float beta, float *C, int ldc) {
    int bf16 = anv_matmul_precision() == ANV_PRECISION_BF16;
    if (anv_cuda_gemm_ex(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, bf16) != 0) anv_kernel_failed();
}

static void gemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc) {
    gemm_scaled(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

/* out (N, OC) = bias (OC) in every row. */
__global__ void broadcast_bias(float *out, const float *bias, int N, int OC) {
    size_t n = (size_t)N * OC;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = bias[i % OC];
}

/* out (N, OC) = inp (N, C) @ w (C, OC) + bias: the bias through the GEMM's epilogue, or where cuBLASLt
 * has no such algorithm, copied into out first and the product added to it. */
void anv_cuda_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
    if (N <= 0 || OC <= 0) return;
    if (bias) {
        int bf16 = anv_matmul_precision() == ANV_PRECISION_BF16;
        if (anv_cuda_gemm_ex(0, 0, N, OC, C, 1.0f, inp, C, w, OC, 0.0f, out, OC, bias, bf16) == 0) return;
        anv_log(ANV_LOG_DEBUG, "matmul forward: %s; adding the bias separately", anv_last_error());
        broadcast_bias<<<anv_cuda_blocks((size_t)N * OC), ANV_CUDA_THREADS, 0, anv_cuda_stream()>>>(out, bias, N, OC);
        ANV_CUDA_LAUNCHED("matmul forward bias");
    }
    gemm(0, 0, N, OC, C, inp, C, w, OC, bias ? 1.0f : 0.0f, out, OC);
}

/* value(n, o) = dout[n, o], for the bias gradient's column sums. */
struct dout_value {
    const float *dout;
    int OC;
    __device__ double operator()(int n, int o) const { return dout[(size_t)n * OC + o]; }
};

void anv_cuda_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                              int N, int C, int OC) {
    gemm(0, 1, N, C, OC, dout, OC, w, OC, 0.0f, dinp, C);         /* (N, OC) @ (C, OC)^T */
    if (dw) gemm(1, 0, C, OC, N, inp, C, dout, OC, 1.0f, dw, OC); /* (N, C)^T @ (N, OC) */
    if (dbias) anv_cuda_colsum(dbias, N, OC, dout_value{dout, OC}, "matmul backward bias");
}

/* out (N, OC) = inp (N, C) @ w (OC, C)^T */
void anv_cuda_matmul_nt_forward(float *out, const float *inp, const float *w, int N, int C, int OC) {
    gemm(0, 1, N, OC, C, inp, C, w, C, 0.0f, out, OC);
}

void anv_cuda_matmul_nt_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w, int N,
                                 int C, int OC) {
    gemm(0, 0, N, C, OC, dout, OC, w, C, 1.0f, dinp, C);         /* (N, OC) @ (OC, C) */
    if (dw) gemm(1, 0, OC, C, N, dout, OC, inp, C, 1.0f, dw, C); /* (N, OC)^T @ (N, C) */
}

void anv_cuda_lora_forward(float *out, int ld, float *u, const float *inp, const float *a, const float *b, float scale,
                           int N, int IC, int OC, int r) {
    gemm(0, 1, N, r, IC, inp, IC, a, IC, 0.0f, u, r);              /* (N, IC) @ (r, IC)^T */
    gemm_scaled(0, 1, N, OC, r, scale, u, r, b, r, 1.0f, out, ld); /* (N, r) @ (OC, r)^T */
}

void anv_cuda_lora_backward(float *dinp, float *da, float *db, float *du, const float *dout, int ld, const float *inp,
                            const float *u, const float *a, const float *b, float scale, int N, int IC, int OC, int r) {
    gemm_scaled(1, 0, OC, r, N, scale, dout, ld, u, r, 1.0f, db, r); /* (N, OC)^T @ (N, r) */
    gemm_scaled(0, 0, N, r, OC, scale, dout, ld, b, r, 0.0f, du, r); /* (N, OC) @ (OC, r) */
    gemm(1, 0, r, IC, N, du, r, inp, IC, 1.0f, da, IC);              /* (N, r)^T @ (N, IC) */
    gemm(0, 0, N, IC, r, du, r, a, IC, 1.0f, dinp, IC);              /* (N, r) @ (r, IC) */
}

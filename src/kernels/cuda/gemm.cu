/* GEMM on cuBLASLt: C (M, N) = alpha op(A) (M, K) @ op(B) (K, N) + beta C (+ bias), row-major.
 *
 * cuBLASLt is column-major; a row-major (r, c) matrix with row stride ld is the column-major (c, r)
 * matrix with the same ld, so the row-major product C = op(A) op(B) is computed as the column-major
 * C^T (N, M) = op(B)^T op(A)^T: B is cuBLASLt's first operand, A its second, with the same transpose
 * flags. A bias (one per column of the row-major C) is then one per row of C^T: the BIAS epilogue.
 *
 * Precision: fp32 runs fp32 x fp32 with CUBLAS_COMPUTE_32F (never TF32); bf16 (the matmuls under
 * ANV_PRECISION_BF16, as on the CPU, where anv_gemm itself stays fp32) first rounds both inputs to bfloat16 (round to
 * nearest even) into device scratch, with row strides padded to 8 elements (16 bytes, which the tensor-core kernels
 * want), and runs bf16 x bf16 -> fp32 with fp32 accumulation. cuBLASLt gives the same bits for the same problem,
 * algorithm and GPU, so the results are deterministic. */
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_kernels.h"

#include <cuda_bf16.h>
#include <stdint.h>

/* dst (rows, ld16) = bf16(src (rows, cols), row stride ld), round to nearest even. Contiguous operands
 * (ld = ld16 = cols: every GPT-2 shape) take a loop without the 64-bit division per element, which made
 * this conversion cost more than the GEMM it feeds (measured on an H200). */
__global__ void to_bf16(__nv_bfloat16 *dst, int ld16, const float *src, int ld, int rows, int cols) {
    size_t n = (size_t)rows * cols, step = (size_t)gridDim.x * blockDim.x;
    size_t first = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (ld == cols && ld16 == cols) {
        for (size_t i = first; i < n; i += step) dst[i] = __float2bfloat16_rn(src[i]);
        return;
    }
    for (size_t i = first; i < n; i += step) {
        size_t r = i / cols, c = i % cols;
        dst[r * ld16 + c] = __float2bfloat16_rn(src[r * ld + c]);
    }
}

/* C (M, N) = beta C (+ bias (N) per row): the product when K is 0, which cuBLASLt does not take. */
__global__ void scale_rows(float *C, int ldc, int M, int N, float beta, const float *bias) {
    size_t n = (size_t)M * N;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / N, c = i % N;
        float v = beta == 0.0f ? 0.0f : beta * C[r * ldc + c];
        C[r * ldc + c] = bias ? v + bias[c] : v;
    }
}

/* The largest power of two (at most 256) that divides the address: what cuBLASLt may assume. */
static uint32_t alignment(const void *p) {
    uint32_t a = 256;
    while (a > 4 && (uintptr_t)p % a != 0) a /= 2;
    return a;
}

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* An operand stored row-major (rows, cols) with stride ld, as cuBLASLt should read it. */
typedef struct {
    const void *p;
    int rows, cols, ld;
} operand_t;

/* Rounds both operands to bf16 in scratch memory (one block for both). */
static int operands_to_bf16(operand_t *a, operand_t *b) {
    int lda16 = (int)round_up(a->cols, 8), ldb16 = (int)round_up(b->cols, 8);
    size_t abytes = round_up((size_t)a->rows * lda16 * sizeof(__nv_bfloat16), 256);
    size_t bbytes = (size_t)b->rows * ldb16 * sizeof(__nv_bfloat16);
    char *s = (char *)anv_cuda_scratch(abytes + bbytes, "bf16 GEMM inputs");
    if (!s) return -1;
    __nv_bfloat16 *a16 = (__nv_bfloat16 *)s, *b16 = (__nv_bfloat16 *)(s + abytes);
    cudaStream_t st = anv_cuda_stream();
    to_bf16<<<anv_cuda_blocks((size_t)a->rows * a->cols), ANV_CUDA_THREADS, 0, st>>>(a16, lda16, (const float *)a->p,
                                                                                     a->ld, a->rows, a->cols);
    to_bf16<<<anv_cuda_blocks((size_t)b->rows * b->cols), ANV_CUDA_THREADS, 0, st>>>(b16, ldb16, (const float *)b->p,
                                                                                     b->ld, b->rows, b->cols);
    if (anv_cuda_check(cudaGetLastError(), "rounding GEMM inputs to bf16") != 0) return -1;
    a->p = a16;
    a->ld = lda16;
    b->p = b16;
    b->ld = ldb16;
    return 0;
}

int anv_cuda_gemm_ex(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc, const float *bias, int bf16) {
    if (M <= 0 || N <= 0) return 0;
    cudaStream_t st = anv_cuda_stream();
    if (K <= 0) {
        scale_rows<<<anv_cuda_blocks((size_t)M * N), ANV_CUDA_THREADS, 0, st>>>(C, ldc, M, N, beta, bias);
        return anv_cuda_check(cudaGetLastError(), "GEMM with K = 0");
    }
    operand_t a = {A, ta ? K : M, ta ? M : K, lda}, b = {B, tb ? N : K, tb ? K : N, ldb};
    cudaDataType_t type = CUDA_R_32F;
    if (bf16) {
        if (operands_to_bf16(&a, &b) != 0) return -1;
        type = CUDA_R_16BF;
    }
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t lb = NULL, la = NULL, lc = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    cublasOperation_t opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasLtEpilogue_t epilogue = bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    size_t ws_bytes = 0;
    void *ws = anv_cuda_lt_workspace(&ws_bytes);
    uint64_t ws_max = ws_bytes;
    uint32_t align_b = alignment(b.p), align_a = alignment(a.p), align_c = alignment(C);
    cublasLtMatmulHeuristicResult_t res = {};
    int found = 0, rc = -1;
    /* Column-major views: B's storage is (cols, rows), A's likewise; C^T is (N, M). */
    if (anv_cublas_check(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "GEMM descriptor") != 0 ||
        anv_cublas_check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &opb, sizeof opb),
                         "GEMM transpose") != 0 ||
        anv_cublas_check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &opa, sizeof opa),
                         "GEMM transpose") != 0 ||
        anv_cublas_check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue),
                         "GEMM epilogue") != 0 ||
        (bias &&
         anv_cublas_check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias),
                          "GEMM bias") != 0) ||
        anv_cublas_check(cublasLtMatrixLayoutCreate(&lb, type, b.cols, b.rows, b.ld), "GEMM layout") != 0 ||
        anv_cublas_check(cublasLtMatrixLayoutCreate(&la, type, a.cols, a.rows, a.ld), "GEMM layout") != 0 ||
        anv_cublas_check(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, N, M, ldc), "GEMM layout") != 0 ||
        anv_cublas_check(cublasLtMatmulPreferenceCreate(&pref), "GEMM preference") != 0 ||
        anv_cublas_check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_max,
                                                              sizeof ws_max),
                         "GEMM workspace") != 0 ||
        anv_cublas_check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                              &align_b, sizeof align_b),
                         "GEMM alignment") != 0 ||
        anv_cublas_check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                              &align_a, sizeof align_a),
                         "GEMM alignment") != 0 ||
        anv_cublas_check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                              &align_c, sizeof align_c),
                         "GEMM alignment") != 0 ||
        anv_cublas_check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                              &align_c, sizeof align_c),
                         "GEMM alignment") != 0 ||
        anv_cublas_check(cublasLtMatmulAlgoGetHeuristic(anv_cuda_lt(), op, lb, la, lc, lc, pref, 1, &res, &found),
                         "GEMM algorithm search") != 0)
        goto done;
    if (found < 1) {
        anv_error("cuBLASLt: no GEMM algorithm for %s%s (%d x %d x %d, ta %d, tb %d)",
                  type == CUDA_R_16BF ? "bf16" : "fp32", bias ? " with a bias" : "", M, N, K, ta, tb);
        goto done;
    }
    if (anv_cublas_check(cublasLtMatmul(anv_cuda_lt(), op, &alpha, b.p, lb, a.p, la, &beta, C, lc, C, lc, &res.algo, ws,
                                        ws_bytes, st),
                         "GEMM") != 0)
        goto done;
    rc = 0;
done:
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (op) cublasLtMatmulDescDestroy(op);
    return rc;
}

void anv_cuda_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc) {
    if (anv_cuda_gemm_ex(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, 0) != 0) anv_kernel_failed();
}

void anv_cuda_gemm_bf16(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                        int ldb, float beta, float *C, int ldc) {
    if (anv_cuda_gemm_ex(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, 1) != 0) anv_kernel_failed();
}

/* Linear layers: Conv1D (weight (in, out)) and the tied LM head (weight (out, in)), on top of GEMM. */
#include "anvil/kernels.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/isa.h" /* the symbol names of this ISA's copy */

#ifdef ANVIL_HAVE_OPENBLAS
#include <cblas.h>
#endif

/* anv_gemm, or its bf16 form when the matmul precision is BF16 (see anv_matmul_precision). One row of
 * fp32 (a decoded token) is a matrix-vector product, bound by reading the weights once: with OpenBLAS
 * it goes to sgemv, which streams them, where a GEMM call would first pack the whole matrix. */
static void gemm_scaled(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                        int ldb, float beta, float *C, int ldc) {
    if (anv_matmul_precision() == ANV_PRECISION_BF16) {
        anv_gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#ifdef ANVIL_HAVE_OPENBLAS
    if (M == 1 && !ta) { /* C (N) = op(B)^T A (K): B is (K, N), or (N, K) when tb */
        cblas_sgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, tb ? N : K, tb ? K : N, alpha, B, ldb, A, 1, beta, C,
                    1);
        return;
    }
#endif
    anv_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void gemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc) {
    gemm_scaled(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

/* out (N, OC) = inp (N, C) @ w (C, OC) + bias */
void anv_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
    float beta = 0.0f;
    if (bias) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] = bias[o];
        beta = 1.0f;
    }
    gemm(0, 0, N, OC, C, inp, C, w, OC, beta, out, OC);
}

/* dbias (OC) += column sums of dout (N, OC). Each thread owns a slice of columns and sums the rows in
 * order, so the result does not depend on the thread count. */
static void bias_backward(float *dbias, const float *dout, int N, int OC) {
    enum { CB = 64 };
    int nb = (OC + CB - 1) / CB;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nb; blk++) {
        int o0 = blk * CB, o1 = o0 + CB < OC ? o0 + CB : OC;
        double acc[CB] = {0};
        for (int n = 0; n < N; n++) {
            const float *row = dout + (size_t)n * OC;
            for (int o = o0; o < o1; o++) acc[o - o0] += row[o];
        }
        for (int o = o0; o < o1; o++) dbias[o] += (float)acc[o - o0];
    }
}

void anv_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                         int N, int C, int OC) {
    gemm(0, 1, N, C, OC, dout, OC, w, OC, 0.0f, dinp, C);         /* (N, OC) @ (C, OC)^T */
    if (dw) gemm(1, 0, C, OC, N, inp, C, dout, OC, 1.0f, dw, OC); /* (N, C)^T @ (N, OC) */
    if (dbias) bias_backward(dbias, dout, N, OC);
}

/* out (N, OC) = inp (N, C) @ w (OC, C)^T */
void anv_matmul_nt_forward(float *out, const float *inp, const float *w, int N, int C, int OC) {
    gemm(0, 1, N, OC, C, inp, C, w, C, 0.0f, out, OC);
}

void anv_matmul_nt_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w, int N, int C,
                            int OC) {
    gemm(0, 0, N, C, OC, dout, OC, w, C, 1.0f, dinp, C);         /* (N, OC) @ (OC, C) */
    if (dw) gemm(1, 0, OC, C, N, dout, OC, inp, C, 1.0f, dw, C); /* (N, OC)^T @ (N, C) */
}

void anv_lora_forward(float *out, int ld, float *u, const float *inp, const float *a, const float *b, float scale,
                      int N, int IC, int OC, int r) {
    gemm(0, 1, N, r, IC, inp, IC, a, IC, 0.0f, u, r);              /* (N, IC) @ (r, IC)^T */
    gemm_scaled(0, 1, N, OC, r, scale, u, r, b, r, 1.0f, out, ld); /* (N, r) @ (OC, r)^T */
}

void anv_lora_backward(float *dinp, float *da, float *db, float *du, const float *dout, int ld, const float *inp,
                       const float *u, const float *a, const float *b, float scale, int N, int IC, int OC, int r) {
    gemm_scaled(1, 0, OC, r, N, scale, dout, ld, u, r, 1.0f, db, r); /* (N, OC)^T @ (N, r) */
    gemm_scaled(0, 0, N, r, OC, scale, dout, ld, b, r, 0.0f, du, r); /* (N, OC) @ (OC, r) */
    gemm(1, 0, r, IC, N, du, r, inp, IC, 1.0f, da, IC);              /* (N, r)^T @ (N, IC) */
    gemm(0, 0, N, IC, r, du, r, a, IC, 1.0f, dinp, IC);              /* (N, r) @ (r, IC) */
}

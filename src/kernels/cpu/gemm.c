/* GEMM: OpenBLAS when available, otherwise a packed, blocked kernel of our own.
 *
 * The built-in kernel tiles C into MC x NC blocks (one per task on the OpenMP pool). For each block it
 * walks K in KC slices, packs op(A) (MC, KC) and op(B) (KC, NC) into zero-padded contiguous buffers,
 * and accumulates MR x NR register tiles. Each C element receives its KC-slice partial sums in
 * increasing K order, whatever the thread count. */
#include "kernels/cpu/isa.h" /* first: renames the kernels for this ISA's copy */
#include "kernels/cpu/gemm.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef ANVIL_HAVE_OPENBLAS
#include <cblas.h>
#endif

enum { MC = ANV_GEMM_MC, NC = ANV_GEMM_NC, KC = ANV_GEMM_KC, MR = 8, NR = 16 };

/* NR floats as one value: GCC/clang vector extension, lowered to whatever SIMD the target has. */
typedef float vnr_t __attribute__((vector_size(NR * sizeof(float))));


/* ap (MC, KC) <- op(A)[i0 : i0+mc, k0 : k0+kc], rows past mc zero. */
static void pack_a_block(float *ap, int ta, const float *A, int lda, int i0, int mc, int k0, int kc) {
    int mpad = (mc + MR - 1) / MR * MR;
    for (int i = 0; i < mpad; i++) {
        float *dst = ap + (size_t)i * kc;
        if (i >= mc) {
            memset(dst, 0, sizeof(float) * kc);
        } else if (!ta) {
            memcpy(dst, A + (size_t)(i0 + i) * lda + k0, sizeof(float) * kc);
        } else {
            for (int k = 0; k < kc; k++) dst[k] = A[(size_t)(k0 + k) * lda + i0 + i];
        }
    }
}

/* bp (KC, npad) <- op(B)[k0 : k0+kc, j0 : j0+nc], columns past nc zero; npad = nc rounded up to NR. */
static void pack_b_block(float *bp, int tb, const float *B, int ldb, int k0, int kc, int j0, int nc, int npad) {
    for (int k = 0; k < kc; k++) {
        float *dst = bp + (size_t)k * npad;
        if (!tb) {
            memcpy(dst, B + (size_t)(k0 + k) * ldb + j0, sizeof(float) * nc);
        } else {
            for (int j = 0; j < nc; j++) dst[j] = B[(size_t)(j0 + j) * ldb + k0 + k];
        }
        for (int j = nc; j < npad; j++) dst[j] = 0.0f;
    }
}

/* acc (MR, NR) = ap (MR rows of stride kc) @ bp (kc rows of stride npad), then alpha * acc added into C.
 * The MR accumulators stay in registers; bp rows are 64-byte aligned (npad is a multiple of NR). */
static void micro_tile(const float *restrict ap, const float *restrict bp, int kc, int npad, float alpha,
                       float *restrict c, int ldc, int mr, int nr) {
    vnr_t acc[MR];
    for (int r = 0; r < MR; r++) acc[r] = (vnr_t){0};
    for (int k = 0; k < kc; k++) {
        vnr_t b;
        memcpy(&b, bp + (size_t)k * npad, sizeof b);
        for (int r = 0; r < MR; r++) acc[r] += ap[(size_t)r * kc + k] * b;
    }
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) c[(size_t)r * ldc + j] += alpha * acc[r][j];
}

static void gemm_block(int ta, int tb, int i0, int mc, int j0, int nc, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < mc; i++) {
        float *c = C + (size_t)(i0 + i) * ldc + j0;
        if (beta == 0.0f) {
            memset(c, 0, sizeof(float) * nc);
        } else if (beta != 1.0f) {
            for (int j = 0; j < nc; j++) c[j] *= beta;
        }
    }
    int npad = (nc + NR - 1) / NR * NR;
    float *pack_a = anv_gemm_pack_buffer(), *pack_b = pack_a + MC * KC;
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC;
        pack_a_block(pack_a, ta, A, lda, i0, mc, k0, kc);
        pack_b_block(pack_b, tb, B, ldb, k0, kc, j0, nc, npad);
        for (int i = 0; i < mc; i += MR) {
            for (int j = 0; j < nc; j += NR) {
                int mr = mc - i < MR ? mc - i : MR;
                int nr = nc - j < NR ? nc - j : NR;
                micro_tile(pack_a + (size_t)i * kc, pack_b + j, kc, npad, alpha, C + (size_t)(i0 + i) * ldc + j0 + j,
                           ldc, mr, nr);
            }
        }
    }
}

void anv_gemm_builtin(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                      int ldb, float beta, float *C, int ldc) {
    int mt = (M + MC - 1) / MC, nt = (N + NC - 1) / NC;
    int tiles = mt * nt;
    int serial = 1;
#ifdef _OPENMP
    serial = omp_in_parallel() || (double)M * N * K < 1e6;
#endif
    /* Consecutive tiles share the larger operand's block, so that it is read from memory about once
     * while the smaller operand is streamed again for each of its blocks. */
    int b_larger = (size_t)N * K > (size_t)M * K;
#pragma omp parallel for schedule(static) if (!serial)
    for (int t = 0; t < tiles; t++) {
        int i0 = (b_larger ? t % mt : t / nt) * MC, j0 = (b_larger ? t / mt : t % nt) * NC;
        int mc = M - i0 < MC ? M - i0 : MC;
        int nc = N - j0 < NC ? N - j0 : NC;
        gemm_block(ta, tb, i0, mc, j0, nc, K, alpha, A, lda, B, ldb, beta, C, ldc);
    }
}

void anv_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
#ifdef ANVIL_HAVE_OPENBLAS
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                lda, B, ldb, beta, C, ldc);
#else
    anv_gemm_builtin(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

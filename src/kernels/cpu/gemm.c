/* GEMM: kernels of our own; anv_gemm uses OpenBLAS instead where built with it, except in the AVX-512
 * copy, whose packed kernel is faster on every GPT-2 124M training product (bench/bench_gemm.c).
 *
 * AVX-512 copy: products of at least PACKED_MIN multiply-adds go to the packed GEMM driver
 * (gemm_packed.h) with fp32 panels and a 12 x 32 register kernel of vfmadd231ps.
 *
 * Smaller products, and all in the other copies: the simple kernel tiles C into MC x NC blocks (one
 * per task on the OpenMP pool). For each block it walks K in KC slices, packs op(A) (MC, KC) and
 * op(B) (KC, NC) into zero-padded contiguous buffers, and accumulates MR x NR register tiles. Each C
 * element receives its KC-slice partial sums in increasing K order, whatever the thread count. */
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/isa.h" /* the symbol names of this ISA's copy */

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(ANVIL_HAVE_OPENBLAS) && !defined(ANVIL_ISA_AVX512)
#include <cblas.h>
#endif

/* An MR x NR tile of C stays in registers while K goes by, as NR / VW vectors of the target's width per row:
 * 8 x 16 floats fill half of AVX-512's 32 registers; AVX2 has 16 registers of 8 floats, so 6 x 16
 * (12 accumulators, 2 for the row of B, 1 for A). */
#if defined(ANVIL_ISA_AVX512)
enum { MR = 8, VW = 16 };
#elif defined(ANVIL_ISA_AVX2)
enum { MR = 6, VW = 8 };
#else
enum { MR = 6, VW = 4 };
#endif
enum { MC = ANV_GEMM_MC, NC = ANV_GEMM_NC, KC = ANV_GEMM_KC, NR = 16, NV = NR / VW };

/* VW floats: one register (GCC/clang vector extension); vec_in reads them from any float address. */
typedef float vec_t __attribute__((vector_size(VW * sizeof(float))));
typedef float vec_in __attribute__((vector_size(VW * sizeof(float)), aligned(sizeof(float)), may_alias));

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
    vec_t acc[MR][NV];
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = (vec_t){0};
    for (int k = 0; k < kc; k++) {
        vec_t b[NV];
        for (int v = 0; v < NV; v++) b[v] = *(const vec_in *)(bp + (size_t)k * npad + v * VW);
        for (int r = 0; r < MR; r++) {
            float a = ap[(size_t)r * kc + k];
            for (int v = 0; v < NV; v++) acc[r][v] += a * b[v];
        }
    }
    float tile[MR][NR];
    memcpy(tile, acc, sizeof tile);
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) c[(size_t)r * ldc + j] += alpha * tile[r][j];
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

#ifdef ANVIL_ISA_AVX512
#include "kernels/cpu/gemm_avx512.h"

static void pack_a_f32(void *ap, int ta, const float *A, int lda, int M, int i, int np, int k0, int kc) {
    gemm_pack_a_panels(ap, ta, A, lda, M, i, np, k0, kc, GEMM_F32);
}

static void pack_b_f32(void *bp, int tb, const float *B, int ldb, int N, int j, int np, int k0, int kc) {
    gemm_pack_b_panels(bp, tb, B, ldb, N, j, np, k0, kc, GEMM_F32);
}

static const anv_gemm_packing_t packing_f32 = {ANV_GEMM_MR, ANV_GEMM_NR, 1,          1,
                                               GEMM_F32_KC, pack_a_f32,  pack_b_f32, gemm_kernel_f32};

/* Smaller products stay on the simple kernel below: on one thread it is faster at 64 x 64 x 64
 * (90 vs 72 GFLOP/s), as fast at 128 x 64 x 64, slower from 96 x 96 x 64 up (101 vs 113). */
#define PACKED_MIN 5e5
#endif

void anv_gemm_builtin(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                      int ldb, float beta, float *C, int ldc) {
#ifdef ANVIL_ISA_AVX512
    if (M > 0 && N > 0 && K > 0 && (double)M * N * K >= PACKED_MIN &&
        anv_gemm_packed(&packing_f32, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) == 0)
        return;
#endif
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
#if defined(ANVIL_HAVE_OPENBLAS) && !defined(ANVIL_ISA_AVX512)
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda,
                B, ldb, beta, C, ldc);
#else
    anv_gemm_builtin(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

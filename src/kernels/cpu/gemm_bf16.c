/* Mixed-precision GEMM: the inputs rounded to bfloat16 (round to nearest even), products accumulated in
 * fp32, output fp32 (see anv_gemm_bf16 in gemm.h).
 *
 * AVX-512 copy, on CPUs with AVX512_BF16: the packed GEMM driver (gemm_packed.h) with K in pairs
 * (a pair of bf16 is one 32-bit word, even k in the low half, odd K zero-padded), converted while
 * packing, and a 12 x 32 register kernel of vdpbf16ps.
 *
 * Elsewhere (AVX2, portable, or no AVX512_BF16): op(A) and op(B) are rounded to bf16 in software into
 * fp32 copies, whose products are exact in fp32, and the built-in fp32 GEMM multiplies those. */
#include "kernels/cpu/isa.h" /* the symbol names of this ISA's copy */

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_packed.h"

#include "anvil/base.h"

#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* x rounded to the nearest bfloat16 (ties to even), as fp32. Like vcvtne2ps2bf16: NaN stays a (quiet)
 * NaN, subnormal inputs become zero of the same sign, overflow gives infinity. */
static float round_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        u |= 0x00400000u;
    else if ((u & 0x7f800000u) == 0)
        u &= 0x80000000u;
    else
        u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* dst (rows, cols), contiguous, = src (rows, cols; leading dimension ld) rounded to bf16. */
static void round_copy(float *dst, const float *src, int ld, int rows, int cols) {
#pragma omp parallel for schedule(static) if (!anv_gemm_in_parallel() && (size_t)rows * cols > (1u << 16))
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) dst[(size_t)r * cols + c] = round_bf16(src[(size_t)r * ld + c]);
}

/* The software path: rounded copies of A and B (in their stored layout), then the fp32 built-in GEMM.
 * Without memory for the copies it logs the failure and multiplies in fp32. */
static void gemm_rounded(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                         int ldb, float beta, float *C, int ldc) {
    int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    float *a = anv_alloc(sizeof(float) * ((size_t)ar * ac + (size_t)br * bc), "bf16 GEMM operands");
    if (!a) {
        anv_log(ANV_LOG_WARN, "%s; this product runs in fp32", anv_last_error());
        anv_gemm_builtin(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    float *b = a + (size_t)ar * ac;
    round_copy(a, A, lda, ar, ac);
    round_copy(b, B, ldb, br, bc);
    anv_gemm_builtin(ta, tb, M, N, K, alpha, a, ac, b, bc, beta, C, ldc);
    anv_free(a);
}

#ifdef ANVIL_ISA_AVX512
#include "kernels/cpu/gemm_avx512.h"

enum { MR = ANV_GEMM_MR, NR = ANV_GEMM_NR };

static void pack_a_bf16(void *ap, int ta, const float *A, int lda, int M, int i, int np, int k0, int kc) {
    gemm_pack_a_panels(ap, ta, A, lda, M, i, np, k0, kc, 1);
}

static void pack_b_bf16(void *bp, int tb, const float *B, int ldb, int N, int j, int np, int k0, int kc) {
    gemm_pack_b_panels(bp, tb, B, ldb, N, j, np, k0, kc, 1);
}

/* acc (MR, NR) = a (w pairs of MR) . b (w pairs of NR) by vdpbf16ps, stored by gemm_store_tile. */
static void kernel_bf16(int w, const void *a, const void *b, float *c, int ldc, int mr, int nr, float alpha, float beta,
                        int first) {
    const uint32_t *restrict ap = a, *restrict bp = b;
    __m512 acc[MR][2];
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int p = 0; p < w; p++) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(bp), b1 = (__m512bh)_mm512_load_si512(bp + 16);
#pragma GCC unroll 16
        for (int r = 0; r < MR; r++) {
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)ap[r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x, b1);
        }
        ap += MR;
        bp += NR;
    }
    gemm_store_tile(acc, c, ldc, mr, nr, alpha, beta, first);
}

/* K slices of at most 256 values (128 pairs). */
static const anv_gemm_packing_t packing_bf16 = {2, 256, pack_a_bf16, pack_b_bf16, kernel_bf16};
#endif

void anv_gemm_bf16(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* no products: C = beta C */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
#ifdef ANVIL_ISA_AVX512
    if (__builtin_cpu_supports("avx512bf16") &&
        anv_gemm_packed(&packing_bf16, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) == 0)
        return;
#endif
    gemm_rounded(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

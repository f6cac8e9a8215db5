/* Mixed-precision GEMM: the inputs rounded to bfloat16 (round to nearest even), products accumulated in
 * fp32, output fp32 (see anv_gemm_bf16 in gemm.h).
 *
 * AVX-512 copy: the packed GEMM driver (gemm_packed.h), the operands rounded while they are packed, on
 * the unit anv_cpu_bf16_engine chose (bf16_engine.c):
 *  - vdpbf16ps: K in pairs (a pair of bf16 is one 32-bit word, even k in the low half, odd K
 *    zero-padded) and a 12 x 32 register kernel of vdpbf16ps;
 *  - AMX (Intel's tile unit): 32 x 32 tiles of tdpbf16ps;
 *  - fp32 FMAs: fp32 panels of the rounded values and the fp32 GEMM's kernel (a product of two bf16 is
 *    exact in fp32), for CPUs whose vdpbf16ps does less work per second than their FMAs.
 *
 * Elsewhere (AVX2, portable, AVX-512 without AVX512_BF16): op(A) and op(B) are rounded to bf16 in
 * software into fp32 copies, block by block, and the build's fp32 GEMM multiplies those. */
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
    uint32_t u, r;
    memcpy(&u, &x, sizeof u);
    r = u + 0x7fffu + ((u >> 16) & 1u); /* selects, not branches: the copies' loops vectorize */
    r = (u & 0x7f800000u) == 0 ? u & 0x80000000u : r;
    r = (u & 0x7fffffffu) > 0x7f800000u ? u | 0x00400000u : r;
    r &= 0xffff0000u;
    memcpy(&x, &r, sizeof x);
    return x;
}

/* dst (rows, cols), contiguous, = src (rows, cols; leading dimension ld) rounded to bf16. */
static void round_copy(float *dst, const float *src, int ld, int rows, int cols) {
#pragma omp parallel for schedule(static) if (!anv_gemm_in_parallel() && (size_t)rows * cols > (1u << 16))
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) dst[(size_t)r * cols + c] = round_bf16(src[(size_t)r * ld + c]);
}

/* dst = the (rows, cols) block of op(X) at (r0, c0) rounded, contiguous in X's stored layout. */
static void round_block(float *dst, const float *X, int ld, int t, int r0, int c0, int rows, int cols) {
    if (t)
        round_copy(dst, X + (size_t)c0 * ld + r0, ld, cols, rows);
    else
        round_copy(dst, X + (size_t)r0 * ld + c0, ld, rows, cols);
}

static int min_int(int a, int b) { return a < b ? a : b; }

enum { COPY_BLOCK = 1024 }; /* rows and columns of the rounded copies, at most */

/* The software path: blocks of op(A) (at most COPY_BLOCK x COPY_BLOCK) and op(B) rounded into fp32
 * copies, which the build's fp32 GEMM (anv_gemm: OpenBLAS where built with it) multiplies into C's
 * blocks, K blocks in increasing order. Without memory for the copies it logs the failure and
 * multiplies in fp32. */
static void gemm_rounded(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                         int ldb, float beta, float *C, int ldc) {
    static _Thread_local anv_scratch_t copies;
    size_t ma = (size_t)min_int(M, COPY_BLOCK) * min_int(K, COPY_BLOCK);
    float *a = anv_scratch(&copies, sizeof(float) * (ma + (size_t)min_int(K, COPY_BLOCK) * min_int(N, COPY_BLOCK)),
                           "bf16 GEMM operands");
    if (!a) {
        anv_log(ANV_LOG_WARN, "%s; this product runs in fp32", anv_last_error());
        anv_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    float *b = a + ma;
    for (int k0 = 0; k0 < K; k0 += COPY_BLOCK) {
        int kc = min_int(K - k0, COPY_BLOCK);
        for (int j0 = 0; j0 < N; j0 += COPY_BLOCK) {
            int nc = min_int(N - j0, COPY_BLOCK);
            round_block(b, B, ldb, tb, k0, j0, kc, nc);
            for (int i0 = 0; i0 < M; i0 += COPY_BLOCK) {
                int mc = min_int(M - i0, COPY_BLOCK);
                round_block(a, A, lda, ta, i0, k0, mc, kc);
                anv_gemm(ta, tb, mc, nc, kc, alpha, a, ta ? mc : kc, b, tb ? kc : nc, k0 == 0 ? beta : 1.0f,
                         C + (size_t)i0 * ldc + j0, ldc);
            }
        }
    }
}

#ifdef ANVIL_ISA_AVX512
#include "kernels/cpu/gemm_avx512.h"

enum { MR = ANV_GEMM_MR, NR = ANV_GEMM_NR };

static void pack_a_bf16(void *ap, int ta, const float *A, int lda, int M, int i, int np, int k0, int kc) {
    gemm_pack_a_panels(ap, ta, A, lda, M, i, np, k0, kc, GEMM_BF16_PAIR);
}

static void pack_b_bf16(void *bp, int tb, const float *B, int ldb, int N, int j, int np, int k0, int kc) {
    gemm_pack_b_panels(bp, tb, B, ldb, N, j, np, k0, kc, GEMM_BF16_PAIR);
}

static void pack_a_rounded(void *ap, int ta, const float *A, int lda, int M, int i, int np, int k0, int kc) {
    gemm_pack_a_panels(ap, ta, A, lda, M, i, np, k0, kc, GEMM_BF16_F32);
}

static void pack_b_rounded(void *bp, int tb, const float *B, int ldb, int N, int j, int np, int k0, int kc) {
    gemm_pack_b_panels(bp, tb, B, ldb, N, j, np, k0, kc, GEMM_BF16_F32);
}

/* bf16 values on fp32 FMAs: the fp32 GEMM's panels, slices and kernel. */
static const anv_gemm_packing_t packing_rounded = {
    MR, NR, 1, 1, GEMM_F32_KC, pack_a_rounded, pack_b_rounded, gemm_kernel_f32};

/* acc (MR, NR) = a (w pairs of MR) . b (w pairs of NR) by vdpbf16ps, stored by gemm_store_tile. */
static void kernel_bf16(int w, const void *a, const void *b, float *c, int ldc, int mr, int nr, float alpha, float beta,
                        int first) {
    const uint32_t *restrict ap = a, *restrict bp = b;
    __m512 acc[MR][2];
    gemm_prefetch_tile(c, ldc, mr);
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
static const anv_gemm_packing_t packing_bf16 = {MR, NR, 2, 2, 256, pack_a_bf16, pack_b_bf16, kernel_bf16};

/* ---- AMX: the same products on Intel's tile unit, 16 x 16 fp32 results per tdpbf16ps ----
 * A tile is 16 rows of 64 bytes. The kernel's C tile is 32 x 32, four accumulator tiles (0-3); per K
 * block of 32 values it loads two A tiles (4, 5: rows 0-15 and 16-31, each row 16 bf16 pairs) and two B
 * tiles (6, 7: columns 0-15 and 16-31, each row one K pair of 16 columns, VNNI order) and multiplies
 * each A tile by each B tile. B panels are the AVX-512 layout (a K pair's 32 columns per 128 bytes, read
 * with a stride of 128); A panels hold the A tiles themselves: K block kb's tile h (rows 16h ..) at word
 * (2 kb + h) * 256, row r at + 16 r. */
enum { AMX_MR = 32, AMX_NR = 32, AMX_K = 32 /* K values per tile product */ };

/* A tiles of rows r0 .. r0 + 15 of op(A) over K [k0, k0 + kc) padded with zeros to w words (w a multiple
 * of 16): tile kb at dst + kb * 512 words (the panel's second row tile follows each first at + 256). */
static void amx_pack_a_rows(uint32_t *restrict dst, int ta, const float *A, int lda, int M, int r0, int k0, int kc,
                            int w) {
    int rows = gemm_min(M - r0, 16);
    for (int kb = 0; kb < w / 16; kb++) {
        int k = kb * AMX_K, left = kc - k; /* K values of this block that exist */
        __m512i v[16];
        if (!ta) { /* A (M, K): a row's 32 values are consecutive */
            for (int r = 0; r < 16; r++) {
                const float *row = A + (size_t)(r0 + (r < rows ? r : 0)) * lda + k0 + k;
                __m512 lo = _mm512_maskz_loadu_ps(r < rows ? gemm_mask16(left) : 0, row);
                __m512 hi = _mm512_maskz_loadu_ps(r < rows ? gemm_mask16(left - 16) : 0, row + 16);
                v[r] = (__m512i)_mm512_cvtne2ps_pbh(hi, lo); /* bf16 j of the row: value k + j */
            }
        } else { /* A (K, M): each K pair's 16 rows are consecutive; transposed to rows */
            for (int p = 0; p < 16; p++) {
                int kk = k + 2 * p;
                v[p] = kk < kc
                           ? gemm_step_words(A + (size_t)(k0 + kk) * lda + r0, lda, gemm_mask16(rows), kk + 1 < kc, 1)
                           : _mm512_setzero_si512();
            }
            gemm_transpose16(v);
        }
        for (int r = 0; r < 16; r++) _mm512_store_si512(dst + (size_t)kb * 512 + r * 16, v[r]);
    }
}

static void amx_pack_a(void *ap, int ta, const float *A, int lda, int M, int i, int np, int k0, int kc) {
    int w = (kc + AMX_K - 1) / AMX_K * (AMX_K / 2);
    for (int q = 0; q < np; q++)
        for (int h = 0; h < 2; h++)
            amx_pack_a_rows((uint32_t *)ap + (size_t)q * AMX_MR * w + h * 256, ta, A, lda, M, i + q * AMX_MR + 16 * h,
                            k0, kc, w);
}

/* The AVX-512 B panels, each padded with zero K pairs to w words. */
static void amx_pack_b(void *bp, int tb, const float *B, int ldb, int N, int j, int np, int k0, int kc) {
    int w = (kc + AMX_K - 1) / AMX_K * (AMX_K / 2), used = (kc + 1) / 2;
    for (int q = 0; q < np; q++) {
        uint32_t *panel = (uint32_t *)bp + (size_t)q * AMX_NR * w;
        gemm_pack_b_panels(panel, tb, B, ldb, N, j + q * AMX_NR, 1, k0, kc, 1);
        memset(panel + (size_t)used * AMX_NR, 0, sizeof(uint32_t) * (size_t)(w - used) * AMX_NR);
    }
}

__attribute__((target("amx-tile,amx-bf16"))) static void
amx_kernel(int w, const void *a, const void *b, float *c, int ldc, int mr, int nr, float alpha, float beta, int first) {
    const uint32_t *ap = a, *bp = b;
    float acc[AMX_MR][AMX_NR] __attribute__((aligned(64)));
    anv_cpu_amx_configure();
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int kb = 0; kb < w / 16; kb++) {
        const uint32_t *at = ap + (size_t)kb * 512, *bt = bp + (size_t)kb * 16 * AMX_NR;
        _tile_loadd(4, at, 64);
        _tile_loadd(5, at + 256, 64);
        _tile_loadd(6, bt, AMX_NR * 4);
        _tile_loadd(7, bt + 16, AMX_NR * 4);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, &acc[0][0], AMX_NR * 4);
    _tile_stored(1, &acc[0][16], AMX_NR * 4);
    _tile_stored(2, &acc[16][0], AMX_NR * 4);
    _tile_stored(3, &acc[16][16], AMX_NR * 4);
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    __mmask16 m[2] = {gemm_mask16(nr), gemm_mask16(nr - 16)};
    for (int r = 0; r < gemm_min(mr, AMX_MR); r++)
        for (int h = 0; h < 2; h++) { /* as gemm_store_tile */
            float *dst = c + (size_t)r * ldc + 16 * h;
            __m512 x = _mm512_load_ps(&acc[r][16 * h]), v;
            if (!first)
                v = _mm512_fmadd_ps(x, va, _mm512_maskz_loadu_ps(m[h], dst));
            else if (beta != 0.0f)
                v = _mm512_fmadd_ps(x, va, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m[h], dst)));
            else
                v = _mm512_mul_ps(x, va);
            _mm512_mask_storeu_ps(dst, m[h], v);
        }
}

/* K slices of at most 512 values (16 tile products). */
static const anv_gemm_packing_t packing_amx = {AMX_MR, AMX_NR, 2, AMX_K, 512, amx_pack_a, amx_pack_b, amx_kernel};
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
    anv_bf16_engine_t engine = anv_cpu_bf16_engine();
    const anv_gemm_packing_t *op = engine == ANV_BF16_ON_AMX   ? &packing_amx
                                   : engine == ANV_BF16_ON_DOT ? &packing_bf16
                                                               : &packing_rounded;
    if (anv_cpu_bf16_engine_has(engine) &&
        anv_gemm_packed(op, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) == 0)
        return;
#endif
    gemm_rounded(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* AVX-512 packing, tile store and fp32 register kernel shared by the fp32 (gemm.c) and bf16 (gemm_bf16.c)
 * GEMMs of the packed driver (internal; see gemm_packed.h for the panel layouts). Include only in the
 * AVX-512 copy (ANVIL_ISA_AVX512, compiled with -mavx512bf16). A packed word is one of gemm_word_t. */
#ifndef ANVIL_KERNELS_CPU_GEMM_AVX512_H
#define ANVIL_KERNELS_CPU_GEMM_AVX512_H

#include "kernels/cpu/gemm_packed.h"

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

static inline int gemm_min(int a, int b) { return a < b ? a : b; }

/* What a packed word holds: */
typedef enum {
    GEMM_F32,      /* an fp32 value */
    GEMM_BF16_F32, /* an fp32 value rounded to bf16 (to nearest even), low 16 bits zero */
    GEMM_BF16_PAIR /* two bf16 (to nearest even): op(.)[2p] in the low half, op(.)[2p + 1] in the high
                    * half, the missing half of an odd K zero */
} gemm_word_t;

static inline __mmask16 gemm_mask16(int n) {
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

/* 16 pairs (bf16(lo[i]), bf16(hi[i])) */
static inline __m512i gemm_interleave_bf16(__m512 lo, __m512 hi) {
    /* cvtne2ps puts lo in words 0-15 and hi in words 16-31; word 2i <- i, word 2i + 1 <- 16 + i */
    const __m512i order = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                           21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(order, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

/* x rounded to bf16 (vcvtneps2bf16: to nearest even, subnormals to zero) as GEMM_BF16_F32 words. */
static inline __m512 gemm_round_bf16(__m512 x) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(x)), 16));
}

/* The 16 words of one K step of 16 consecutive rows or columns: row[0 .. 16) (masked by m), and as
 * GEMM_BF16_PAIR paired with row[ld ..] when `second` (the K step holds two values), else with zero. */
static inline __m512i gemm_step_words(const float *row, size_t ld, __mmask16 m, int second, gemm_word_t word) {
    if (word == GEMM_F32) return _mm512_castps_si512(_mm512_maskz_loadu_ps(m, row));
    if (word == GEMM_BF16_F32) return _mm512_castps_si512(gemm_round_bf16(_mm512_maskz_loadu_ps(m, row)));
    __m512 hi = second ? _mm512_maskz_loadu_ps(m, row + ld) : _mm512_setzero_ps();
    return gemm_interleave_bf16(_mm512_maskz_loadu_ps(m, row), hi);
}

/* r[c] (16 words) <- the 16 x 16 words transposed: word i of the result c is word c of r[i] */
static inline void gemm_transpose16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) { /* lane L of t[i]: r[i][4L], r[i+1][4L], r[i][4L+1], r[i+1][4L+1] */
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) { /* lane L of r[i + j]: word 4L + j of r[i .. i + 3] */
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int h = 0; h < 16; h += 8) /* t[h + j]: words j, 8 + j; t[h + 4 + j]: words 4 + j, 12 + j (of 8 rows) */
        for (int j = 0; j < 4; j++) {
            t[h + j] = _mm512_shuffle_i32x4(r[h + j], r[h + 4 + j], 0x88);
            t[h + 4 + j] = _mm512_shuffle_i32x4(r[h + j], r[h + 4 + j], 0xdd);
        }
    for (int m = 0; m < 8; m++) {
        r[m] = _mm512_shuffle_i32x4(t[m], t[8 + m], 0x88);
        r[m + 8] = _mm512_shuffle_i32x4(t[m], t[8 + m], 0xdd);
    }
}

/* dst[p * stride + r] = word p of row r over kc values, for r < lanes (<= 16): rows r < rows (<= lanes)
 * of src (stride ld, consecutive in K), zero beyond. */
static inline void gemm_pack_rows_transposed(uint32_t *restrict dst, int stride, int lanes, const float *src, int ld,
                                             int rows, int kc, gemm_word_t word) {
    int pw = word == GEMM_BF16_PAIR ? 2 : 1;
    for (int k = 0; k < kc; k += 16 * pw) {
        __m512i v[16];
        for (int r = 0; r < 16; r++) {
            const float *row = src + (size_t)(r < rows ? r : 0) * ld + k;
            __m512 lo = _mm512_maskz_loadu_ps(r < rows ? gemm_mask16(kc - k) : 0, row);
            if (word == GEMM_BF16_PAIR) {
                __m512 hi = _mm512_maskz_loadu_ps(r < rows ? gemm_mask16(kc - k - 16) : 0, row + 16);
                v[r] = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
            } else {
                v[r] = _mm512_castps_si512(word == GEMM_BF16_F32 ? gemm_round_bf16(lo) : lo);
            }
        }
        gemm_transpose16(v);
        int np = gemm_min((kc - k + pw - 1) / pw, 16);
        for (int p = 0; p < np; p++)
            _mm512_mask_storeu_epi32(dst + (size_t)(k / pw + p) * stride, gemm_mask16(lanes), v[p]);
    }
}

/* The A panels of anv_gemm_packing_t.pack_a. */
static inline void gemm_pack_a_panels(uint32_t *restrict ap, int ta, const float *A, int lda, int M, int i, int np,
                                      int k0, int kc, gemm_word_t word) {
    enum { MR = ANV_GEMM_MR };
    int pw = word == GEMM_BF16_PAIR ? 2 : 1, w = (kc + pw - 1) / pw;
    if (ta) { /* A (K, M): the K step's rows walked along */
        for (int p = 0; p < w; p++) {
            const float *row = A + (size_t)(k0 + pw * p) * lda;
            for (int q = 0; q < np; q++) {
                int r0 = i + q * MR;
                _mm512_mask_storeu_epi32(
                    ap + ((size_t)q * w + p) * MR, gemm_mask16(MR),
                    gemm_step_words(row + r0, lda, gemm_mask16(gemm_min(M - r0, MR)), pw * p + 1 < kc, word));
            }
        }
        return;
    }
    for (int q = 0; q < np; q++) { /* A (M, K): rows contiguous in K */
        int r0 = i + q * MR;
        gemm_pack_rows_transposed(ap + (size_t)q * w * MR, MR, MR, A + (size_t)r0 * lda + k0, lda, gemm_min(M - r0, MR),
                                  kc, word);
    }
}

/* The B panels of anv_gemm_packing_t.pack_b. */
static inline void gemm_pack_b_panels(uint32_t *restrict bp, int tb, const float *B, int ldb, int N, int j, int np,
                                      int k0, int kc, gemm_word_t word) {
    enum { NR = ANV_GEMM_NR };
    int pw = word == GEMM_BF16_PAIR ? 2 : 1, w = (kc + pw - 1) / pw;
    if (!tb) { /* B (K, N): the K step's rows walked along */
        for (int p = 0; p < w; p++) {
            const float *row = B + (size_t)(k0 + pw * p) * ldb;
            int second = pw * p + 1 < kc;
            for (int q = 0; q < np; q++) {
                int c = j + q * NR;
                uint32_t *dst = bp + ((size_t)q * w + p) * NR;
                _mm512_store_si512(dst, gemm_step_words(row + c, ldb, gemm_mask16(N - c), second, word));
                _mm512_store_si512(dst + 16, gemm_step_words(row + c + 16, ldb, gemm_mask16(N - c - 16), second, word));
            }
        }
        return;
    }
    for (int q = 0; q < np; q++) { /* B (N, K): column c of op(B) is row c */
        int c = j + q * NR, nr = N - c;
        const float *cols = B + (size_t)c * ldb + k0;
        uint32_t *dst = bp + (size_t)q * w * NR;
        gemm_pack_rows_transposed(dst, NR, 16, cols, ldb, nr < 16 ? nr : 16, kc, word);
        gemm_pack_rows_transposed(dst + 16, NR, 16, nr > 16 ? cols + (size_t)16 * ldb : cols, ldb,
                                  nr > 16 ? nr - 16 : 0, kc, word);
    }
}

/* Asks for the rows of a C tile before the K loop, so that their misses (C is usually far larger than
 * the caches) overlap the products instead of stalling the store at the end. */
static inline void gemm_prefetch_tile(const float *c, int ldc, int mr) {
    for (int r = 0; r < gemm_min(mr, ANV_GEMM_MR); r++) {
        _mm_prefetch((const char *)(c + (size_t)r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (size_t)r * ldc + 16), _MM_HINT_T0);
    }
}

/* The mr x nr corner of the (MR, NR) accumulator tile into c: C = alpha acc + beta C on the first K
 * slice (beta 0: C not read), C += alpha acc on later ones. */
static inline void gemm_store_tile(__m512 acc[ANV_GEMM_MR][2], float *restrict c, int ldc, int mr, int nr, float alpha,
                                   float beta, int first) {
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    __mmask16 m[2] = {gemm_mask16(nr), gemm_mask16(nr - 16)};
#pragma GCC unroll 16
    for (int r = 0; r < ANV_GEMM_MR; r++) {
        if (r >= mr) break;
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            float *dst = c + (size_t)r * ldc + 16 * h;
            __m512 v;
            if (!first)
                v = _mm512_fmadd_ps(acc[r][h], va, _mm512_maskz_loadu_ps(m[h], dst));
            else if (beta != 0.0f)
                v = _mm512_fmadd_ps(acc[r][h], va, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m[h], dst)));
            else
                v = _mm512_mul_ps(acc[r][h], va);
            _mm512_mask_storeu_ps(dst, m[h], v);
        }
    }
}

/* acc (12, 32) = a (w steps of 12) . b (w steps of 32), one broadcast of a and two FMAs per row and
 * step, stored by gemm_store_tile: the kernel of GEMM_F32 and GEMM_BF16_F32 panels. */
static inline void gemm_kernel_f32(int w, const void *a, const void *b, float *c, int ldc, int mr, int nr, float alpha,
                                   float beta, int first) {
    enum { MR = ANV_GEMM_MR, NR = ANV_GEMM_NR };
    const float *restrict ap = a, *restrict bp = b;
    __m512 acc[MR][2];
    gemm_prefetch_tile(c, ldc, mr);
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int p = 0; p < w; p++) {
        __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
#pragma GCC unroll 16
        for (int r = 0; r < MR; r++) {
            __m512 x = _mm512_set1_ps(ap[r]);
            acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
        }
        ap += MR;
        bp += NR;
    }
    gemm_store_tile(acc, c, ldc, mr, nr, alpha, beta, first);
}

/* K slices of the fp32 kernel, at most 384 values (an A micro-panel of 18 KiB in L1): the LM head's dW
 * (K 333) runs in one slice, far faster than in three; the other GPT-2 shapes are as fast as with slices
 * of 192 or 256. */
enum { GEMM_F32_KC = 384 };

#endif

/* Mixed-precision GEMM: the inputs rounded to bfloat16 (round to nearest even), products accumulated in
 * fp32, output fp32 (see anv_gemm_bf16 in gemm.h).
 *
 * AVX-512 copy, on CPUs with AVX512_BF16: K is cut into near-equal slices of at most KC. For each
 * block of NC columns and each span of slices (as many as fit in PACK_BYTES), the threads first pack
 * op(B) and op(A) into shared bf16 panels, K in pairs (a pair of bf16 is one 32-bit word, even k in the
 * low half, odd K zero-padded), converting on the way; then they take (MC, NB) tiles of C, and for each
 * slice run an MR x NR register kernel of vdpbf16ps over the tile: a B micro-panel (slice, NR) stays
 * in L1 while the tile's A block (MC, slice) streams from L2. Each C element gets its slice partial
 * sums in increasing K order, whatever the thread count. The packing buffer stays with the calling
 * thread between calls (see pack_buffer).
 *
 * Elsewhere (AVX2, portable, or no AVX512_BF16): op(A) and op(B) are rounded to bf16 in software into
 * fp32 copies, whose products are exact in fp32, and the built-in fp32 GEMM multiplies those. */
#include "kernels/cpu/isa.h" /* first: renames the kernels for this ISA's copy */

#include "kernels/cpu/gemm.h"

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

static int in_parallel(void) {
#ifdef _OPENMP
    return omp_in_parallel();
#else
    return 1;
#endif
}

/* dst (rows, cols), contiguous, = src (rows, cols; leading dimension ld) rounded to bf16. */
static void round_copy(float *dst, const float *src, int ld, int rows, int cols) {
#pragma omp parallel for schedule(static) if (!in_parallel() && (size_t)rows * cols > (1u << 16))
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
#include <immintrin.h>

/* MR x NR register tile (NR = 2 vectors of 16 fp32: 2 * MR accumulators), C in (MC, NB) tiles per
 * task, K slices of at most KC, NC columns of B packed at a time, and as many K slices packed at a
 * time as fit in PACK_BYTES (at least one). A packing task covers AG panels of A or PG panels of B, so
 * that operands read across rows are read in pieces of 1-1.5 KiB. */
enum { MR = 12, NR = 32, KC = 256, MC = 192, NB = 256, NC = 16384, PACK_BYTES = 32 << 20, PG = 8, AG = 32 };
_Static_assert(MC % MR == 0 && NB % NR == 0 && NC % NB == 0 && KC % 2 == 0, "bf16 GEMM blocking");

static int min_int(int a, int b) { return a < b ? a : b; }

typedef uint32_t pair_t; /* two bf16: op(.)[2p] in the low half, op(.)[2p + 1] in the high half */

static __mmask16 mask16(int n) { return n >= 16 ? (__mmask16)0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

/* 16 pairs (bf16(lo[i]), bf16(hi[i])) */
static __m512i interleave_bf16(__m512 lo, __m512 hi) {
    /* cvtne2ps puts lo in words 0-15 and hi in words 16-31; word 2i <- i, word 2i + 1 <- 16 + i */
    const __m512i order = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                           21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(order, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

/* r[c] (16 words) <- the 16 x 16 words transposed: word i of the result c is word c of r[i] */
static void transpose16(__m512i r[16]) {
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

/* dst[p * stride + r] = pair p of row r over kc values, for r < lanes (<= 16): rows r < rows (<= lanes)
 * of src (stride ld, consecutive in K), zero beyond. */
static void pack_rows_transposed(pair_t *restrict dst, int stride, int lanes, const float *src, int ld, int rows,
                                 int kc) {
    for (int k = 0; k < kc; k += 32) {
        __m512i v[16];
        for (int r = 0; r < 16; r++) {
            const float *row = src + (size_t)(r < rows ? r : 0) * ld + k;
            __m512 lo = _mm512_maskz_loadu_ps(r < rows ? mask16(kc - k) : 0, row);
            __m512 hi = _mm512_maskz_loadu_ps(r < rows ? mask16(kc - k - 16) : 0, row + 16);
            v[r] = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
        }
        transpose16(v);
        int np = (kc - k + 1) / 2 < 16 ? (kc - k + 1) / 2 : 16;
        for (int p = 0; p < np; p++) _mm512_mask_storeu_epi32(dst + (size_t)(k / 2 + p) * stride, mask16(lanes), v[p]);
    }
}

/* A panels q < np (MR rows each from i + q * MR of M): ap[(q * kp + p) * MR + r] = pair p of op(A)
 * row i + q * MR + r over K [k0, k0 + kc), kp = ceil(kc / 2); rows past M are zero. */
static void pack_a_panels(pair_t *restrict ap, int ta, const float *A, int lda, int M, int i, int np, int k0, int kc) {
    int kp = (kc + 1) / 2;
    if (ta) { /* A (K, M): rows k and k + 1 hold the pairs' halves; walk them along the row */
        for (int p = 0; p < kp; p++) {
            const float *lo = A + (size_t)(k0 + 2 * p) * lda;
            int odd = 2 * p + 1 < kc;
            for (int q = 0; q < np; q++) {
                int r0 = i + q * MR;
                __mmask16 m = mask16(min_int(M - r0, MR));
                __m512 hi = odd ? _mm512_maskz_loadu_ps(m, lo + lda + r0) : _mm512_setzero_ps();
                _mm512_mask_storeu_epi32(ap + ((size_t)q * kp + p) * MR, mask16(MR),
                                         interleave_bf16(_mm512_maskz_loadu_ps(m, lo + r0), hi));
            }
        }
        return;
    }
    for (int q = 0; q < np; q++) { /* A (M, K): rows contiguous in K */
        int r0 = i + q * MR;
        pack_rows_transposed(ap + (size_t)q * kp * MR, MR, MR, A + (size_t)r0 * lda + k0, lda, min_int(M - r0, MR), kc);
    }
}

/* B panels q < np (NR columns each from j + q * NR of N): bp[(q * kp + p) * NR + c] = pair p of op(B)
 * column j + q * NR + c over K [k0, k0 + kc), kp = ceil(kc / 2); columns past N are zero. */
static void pack_b_panels(pair_t *restrict bp, int tb, const float *B, int ldb, int N, int j, int np, int k0, int kc) {
    int kp = (kc + 1) / 2;
    if (!tb) { /* B (K, N): rows k and k + 1 hold the pairs' halves; walk them along the row */
        for (int p = 0; p < kp; p++) {
            const float *lo = B + (size_t)(k0 + 2 * p) * ldb;
            int odd = 2 * p + 1 < kc;
            for (int q = 0; q < np; q++) {
                int c = j + q * NR;
                __mmask16 m0 = mask16(N - c), m1 = mask16(N - c - 16);
                __m512 h0 = odd ? _mm512_maskz_loadu_ps(m0, lo + ldb + c) : _mm512_setzero_ps();
                __m512 h1 = odd ? _mm512_maskz_loadu_ps(m1, lo + ldb + c + 16) : _mm512_setzero_ps();
                pair_t *dst = bp + ((size_t)q * kp + p) * NR;
                _mm512_store_si512(dst, interleave_bf16(_mm512_maskz_loadu_ps(m0, lo + c), h0));
                _mm512_store_si512(dst + 16, interleave_bf16(_mm512_maskz_loadu_ps(m1, lo + c + 16), h1));
            }
        }
        return;
    }
    for (int q = 0; q < np; q++) { /* B (N, K): column c of op(B) is row c */
        int c = j + q * NR, nr = N - c;
        const float *cols = B + (size_t)c * ldb + k0;
        pair_t *dst = bp + (size_t)q * kp * NR;
        pack_rows_transposed(dst, NR, 16, cols, ldb, nr < 16 ? nr : 16, kc);
        pack_rows_transposed(dst + 16, NR, 16, nr > 16 ? cols + (size_t)16 * ldb : cols, ldb, nr > 16 ? nr - 16 : 0,
                             kc);
    }
}

/* acc (MR, NR) = ap (kp pairs of MR) . bp (kp pairs of NR); then for the first K slice
 * C = alpha acc + beta C (beta 0: C not read), for later slices C += alpha acc. Only the mr x nr
 * corner of the tile is stored. */
static void micro_kernel(int kp, const pair_t *restrict ap, const pair_t *restrict bp, float *restrict c, int ldc,
                         int mr, int nr, float alpha, float beta, int first) {
    __m512 acc[MR][2];
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int p = 0; p < kp; p++) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(bp), b1 = (__m512bh)_mm512_load_si512(bp + 16);
#pragma GCC unroll 16
        for (int r = 0; r < MR; r++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)ap[r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
        }
        ap += MR;
        bp += NR;
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    __mmask16 m[2] = {mask16(nr), mask16(nr - 16)};
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) {
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

/* The calling thread's packing buffer of at least `pairs`, kept from call to call (fresh pages on every
 * call cost about as much as the packing); NULL with an error when out of memory. */
static pair_t *pack_buffer(size_t pairs) {
    static _Thread_local pair_t *buffer;
    static _Thread_local size_t capacity;
    if (pairs > capacity) {
        anv_free(buffer);
        buffer = anv_alloc(sizeof(pair_t) * pairs, "bf16 GEMM packing buffer");
        capacity = buffer ? pairs : 0;
    }
    return buffer;
}

/* 0, or -1 without memory for the packed operands (C untouched). */
static int gemm_avx512(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                       int ldb, float beta, float *C, int ldc) {
    int mpan = (M + MR - 1) / MR, ncap = min_int((N + NR - 1) / NR * NR, NC), slices = (K + KC - 1) / KC;
    int ks = ((K + slices - 1) / slices + 1) / 2 * 2; /* K in near-equal slices of ks <= KC (even) */
    slices = (K + ks - 1) / ks;
    /* pairs per packed K slice, rounded so that every slice starts 64-byte aligned */
    size_t a_slice = ((size_t)mpan * MR * (ks / 2) + 15) / 16 * 16, b_slice = (size_t)ncap * (ks / 2);
    int span = (int)(PACK_BYTES / (sizeof(pair_t) * (a_slice + b_slice)));
    span = span < 1 ? 1 : min_int(span, slices);
    pair_t *ap = pack_buffer(span * (a_slice + b_slice));
    if (!ap) return -1;
    pair_t *bp = ap + span * a_slice;
    int mt = (M + MC - 1) / MC, agrp = (mpan + AG - 1) / AG;
    int a_major = a_slice > b_slice; /* consecutive tiles share the larger operand's block */
    int serial = in_parallel() || (double)M * N * K < 1e6;
    /* Per NC columns and per span of K slices: pack, then every tile runs through the span's slices in
     * order. Dynamic scheduling: a thread that the OS pauses does not hold the others at the barrier. */
#pragma omp parallel if (!serial)
    for (int jc = 0; jc < N; jc += NC) {
        int nc = min_int(N - jc, NC), npan = (nc + NR - 1) / NR, ngrp = (npan + PG - 1) / PG, nt = (nc + NB - 1) / NB,
            tiles = mt * nt;
        for (int s0 = 0; s0 < slices; s0 += span) {
            int ns = min_int(slices - s0, span);
#pragma omp for schedule(dynamic, 1) nowait
            for (int x = 0; x < ns * ngrp; x++) { /* groups of PG panels: rows of B read along */
                int k0 = (s0 + x / ngrp) * ks, kc = min_int(K - k0, ks), jp = x % ngrp * PG;
                pack_b_panels(bp + x / ngrp * b_slice + (size_t)jp * NR * ((kc + 1) / 2), tb, B, ldb, N, jc + jp * NR,
                              min_int(PG, npan - jp), k0, kc);
            }
#pragma omp for schedule(dynamic, 1)
            for (int x = 0; x < ns * agrp; x++) { /* groups of AG panels */
                int k0 = (s0 + x / agrp) * ks, kc = min_int(K - k0, ks), ip = x % agrp * AG;
                pack_a_panels(ap + x / agrp * a_slice + (size_t)ip * MR * ((kc + 1) / 2), ta, A, lda, M, ip * MR,
                              min_int(AG, mpan - ip), k0, kc);
            }
#pragma omp for schedule(dynamic, 1)
            for (int t = 0; t < tiles; t++) {
                int i0 = (a_major ? t / nt : t % mt) * MC, j0 = (a_major ? t % nt : t / mt) * NB;
                int i1 = min_int(i0 + MC, M), j1 = min_int(j0 + NB, nc);
                for (int s = 0; s < ns; s++) {
                    int k0 = (s0 + s) * ks, kp = (min_int(K - k0, ks) + 1) / 2;
                    const pair_t *as = ap + s * a_slice, *bs = bp + s * b_slice;
                    for (int j = j0; j < j1; j += NR)
                        for (int i = i0; i < i1; i += MR)
                            micro_kernel(kp, as + (size_t)i * kp, bs + (size_t)j * kp, C + (size_t)i * ldc + jc + j,
                                         ldc, i1 - i, j1 - j, alpha, beta, k0 == 0);
                }
            }
        }
    }
    return 0;
}
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
    if (__builtin_cpu_supports("avx512bf16") && gemm_avx512(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) == 0)
        return;
#endif
    gemm_rounded(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* The blocking driver shared by the AVX-512 fp32 and bf16 GEMMs (internal to src/kernels/cpu).
 *
 * C (M, N) = alpha op(A) (M, K) @ op(B) (K, N) + beta C, the contract of anv_gemm (gemm.h). K is cut
 * into near-equal slices of at most kc values. For each block of NC columns and each span of slices
 * (as many as fit in PACK_BYTES), the threads first pack op(B) and op(A) into shared panels of 32-bit
 * words (an fp32 value, or a pair of bf16), then take (MC, NB) tiles of C and, for each slice, run the
 * MR x NR register kernel over the tile, row panel by row panel: an A micro-panel (MR, slice) stays in
 * L1 while the tile's B block (slice, NB) streams from L2. Each C element gets its slice partial sums in increasing K
 * order, whatever the thread count. Compiled once (gemm_packed.c); the packers and kernels come from the AVX-512 copies
 * of gemm.c and gemm_bf16.c. */
#ifndef ANVIL_KERNELS_CPU_GEMM_PACKED_H
#define ANVIL_KERNELS_CPU_GEMM_PACKED_H

/* 1 inside an OpenMP parallel region (or without OpenMP): GEMMs then run on the calling thread. */
int anv_gemm_in_parallel(void);

/* The AVX-512 register tile: MR rows of C by NR columns (two vectors of 16 fp32). */
enum { ANV_GEMM_MR = 12, ANV_GEMM_NR = 32 };

/* One element type's packing and kernel. A slice of kc values of K packs into w = words(kc) words per
 * row or column: kc rounded up to a multiple of k_align, over per_word.
 *  pack_a: A panels q < np (mr rows each from row i + q * mr of M), each mr * w words from
 *          ap + q * mr * w, laid out as the kernel reads them; the AVX-512 kernels' layout is
 *          ap[(q * w + p) * mr + r] = word p of op(A) row i + q * mr + r over K [k0, k0 + kc). Rows past M,
 *          K past kc and a bf16 pair's missing half are zero.
 *  pack_b: B panels q < np (nr columns each from j + q * nr of N): bp[(q * w + p) * nr + c] = word p of
 *          op(B) column j + q * nr + c over K [k0, k0 + kc); columns past N and K past kc zero.
 *  kernel: acc (mr, nr) = ap (w words of mr rows) . bp (w words of nr); then for the first K slice
 *          C = alpha acc + beta C (beta 0: C not read), for later slices C += alpha acc; only the
 *          rows x cols corner of the tile is stored. ap and bp are 64-byte aligned. */
typedef struct {
    int mr, nr;   /* the kernel's tile of C; MC (192) and NB (256) of the driver are multiples */
    int per_word; /* K values in one packed word: 1 (fp32) or 2 (bf16 pair) */
    int k_align;  /* a slice's K values are padded (with zeros) to a multiple of this */
    int kc;       /* the most K values in one slice, a multiple of k_align */
    void (*pack_a)(void *ap, int ta, const float *A, int lda, int M, int i, int np, int k0, int kc);
    void (*pack_b)(void *bp, int tb, const float *B, int ldb, int N, int j, int np, int k0, int kc);
    void (*kernel)(int w, const void *ap, const void *bp, float *c, int ldc, int mr, int nr, float alpha, float beta,
                   int first);
} anv_gemm_packing_t;

/* The product with M, N, K > 0: 0, or -1 without memory for the packed operands (C untouched). Serial
 * inside an OpenMP parallel region or for small products, on the pool otherwise. */
int anv_gemm_packed(const anv_gemm_packing_t *op, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc);

#endif

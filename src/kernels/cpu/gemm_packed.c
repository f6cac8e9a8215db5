/* The packed GEMM driver (see gemm_packed.h): threading, tiling and packing rounds, for every element
 * type; and the per-thread scratch buffers (anv_scratch, gemm.h) it and the bf16 copies keep. */
#include "kernels/cpu/gemm_packed.h"
#include "kernels/cpu/gemm.h"

#include "anvil/base.h"

#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* C in (MC, NB) tiles per task, NC columns of B packed at a time, and as many K slices packed at a
 * time as fit in PACK_BYTES (at least one). A packing task covers AG panels of A or PG panels of B, so
 * that operands read across rows are read in pieces of 1-1.5 KiB. */
enum { MC = 192, NB = 256, NC = 16384, PACK_BYTES = 32 << 20, PG = 8, AG = 32 };
_Static_assert(MC % ANV_GEMM_MR == 0 && NB % ANV_GEMM_NR == 0 && NC % NB == 0, "packed GEMM blocking");

typedef uint32_t word_t;

static int min_int(int a, int b) { return a < b ? a : b; }

/* Packed words per row or column of a slice of kc values. */
static int words(const anv_gemm_packing_t *op, int kc) {
    return (kc + op->k_align - 1) / op->k_align * op->k_align / op->per_word;
}

int anv_gemm_in_parallel(void) {
#ifdef _OPENMP
    return omp_in_parallel();
#else
    return 1;
#endif
}

void *anv_scratch(anv_scratch_t *s, size_t bytes, const char *what) {
    if (bytes > s->capacity) {
        anv_free(s->data);
        s->data = anv_alloc(bytes, what);
        s->capacity = s->data ? bytes : 0;
    }
    return s->data;
}

int anv_gemm_packed(const anv_gemm_packing_t *op, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    int MR = op->mr, NR = op->nr, ka = op->k_align;
    int mpan = (M + MR - 1) / MR, ncap = min_int((N + NR - 1) / NR * NR, NC), slices = (K + op->kc - 1) / op->kc;
    int ks = ((K + slices - 1) / slices + ka - 1) / ka * ka; /* K in near-equal slices of ks <= kc */
    slices = (K + ks - 1) / ks;
    /* words per packed K slice, rounded so that every slice starts 64-byte aligned */
    size_t a_slice = ((size_t)mpan * MR * words(op, ks) + 15) / 16 * 16, b_slice = (size_t)ncap * words(op, ks);
    int span = (int)(PACK_BYTES / (sizeof(word_t) * (a_slice + b_slice)));
    span = span < 1 ? 1 : min_int(span, slices);
    static _Thread_local anv_scratch_t packing;
    word_t *ap = anv_scratch(&packing, sizeof(word_t) * span * (a_slice + b_slice), "GEMM packing buffer");
    if (!ap) return -1;
    word_t *bp = ap + span * a_slice;
    int mt = (M + MC - 1) / MC, agrp = (mpan + AG - 1) / AG;
    int a_major = a_slice > b_slice; /* consecutive tiles share the larger operand's block */
    int serial = anv_gemm_in_parallel() || (double)M * N * K < 1e6;
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
                op->pack_b(bp + x / ngrp * b_slice + (size_t)jp * NR * words(op, kc), tb, B, ldb, N, jc + jp * NR,
                           min_int(PG, npan - jp), k0, kc);
            }
#pragma omp for schedule(dynamic, 1)
            for (int x = 0; x < ns * agrp; x++) { /* groups of AG panels */
                int k0 = (s0 + x / agrp) * ks, kc = min_int(K - k0, ks), ip = x % agrp * AG;
                op->pack_a(ap + x / agrp * a_slice + (size_t)ip * MR * words(op, kc), ta, A, lda, M, ip * MR,
                           min_int(AG, mpan - ip), k0, kc);
            }
#pragma omp for schedule(dynamic, 1)
            for (int t = 0; t < tiles; t++) {
                int i0 = (a_major ? t / nt : t % mt) * MC, j0 = (a_major ? t % nt : t / mt) * NB;
                int i1 = min_int(i0 + MC, M), j1 = min_int(j0 + NB, nc);
                for (int s = 0; s < ns; s++) {
                    int k0 = (s0 + s) * ks, w = words(op, min_int(K - k0, ks));
                    const word_t *as = ap + s * a_slice, *bs = bp + s * b_slice;
                    for (int i = i0; i < i1; i += MR)
                        for (int j = j0; j < j1; j += NR)
                            op->kernel(w, as + (size_t)i * w, bs + (size_t)j * w, C + (size_t)i * ldc + jc + j, ldc,
                                       i1 - i, j1 - j, alpha, beta, k0 == 0);
                }
            }
        }
    }
    return 0;
}

/* The fp32 GEMMs (anv_gemm and anv_gemm_builtin) on every instruction-set copy this CPU runs, on
 * shapes that cross every block edge of both built-in kernels (the AVX-512 packed one: 12 x 32 register
 * tile, MC 192, NB 256, K slices of at most 384, NC 16384 columns and 32 MiB packed at a time, 5e5
 * multiply-adds before it takes over; the simple one: 8 x 16, 96 x 256 blocks, K slices of 256):
 *  - every transpose combination, leading dimensions past the row, three (alpha, beta), against a
 *    double-precision product: |C - ref| <= (K + 3) u (|alpha| S + |beta C0|), S = sum_k |a_k b_k|,
 *    u = 2^-24 (any order of fp32 additions, rounded products, the alpha and beta steps);
 *  - beta 0 ignores the old C (NaN there), the padding of C past N stays untouched;
 *  - the same bits with 1 and 2 threads, and from two threads at once inside a parallel region. */
#include "anvil/base.h"
#include "anvil/kernels.h"

#include "check.h"
#include "gemm_problem.h"
#include "kernels/cpu/gemm.h"
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static double worst; /* the largest error / bound seen, per instruction set */

static void check_values(const char *isa, const char *name, gemm_fn *gemm, const gemm_problem_t *p, float alpha,
                         float beta) {
    float *C = gemm_problem_run(gemm, p, alpha, beta, 1);
    double w = gemm_problem_error(p, C, alpha, beta, p->ref, p->sabs, p->K + 3, 0.0, NULL);
    if (!(w <= worst)) worst = w;
    CHECK(w <= 1.0, "%s %s ta=%d tb=%d %dx%dx%d alpha %g beta %g: error %.3g x bound", isa, name, p->ta, p->tb, p->M,
          p->N, p->K, alpha, beta, w);
    CHECK(gemm_problem_pad_ok(p, C), "%s %s ta=%d tb=%d %dx%dx%d: C written past N", isa, name, p->ta, p->tb, p->M,
          p->N, p->K);
    free(C);
}

/* The same bits with 1 and 2 threads, and from each of two threads inside a parallel region. */
static void check_threads(const char *isa, const gemm_problem_t *p) {
    size_t bytes = sizeof(float) * (size_t)p->M * p->ldc;
    float *c1 = gemm_check_threads(isa, anv_gemm_builtin, p);
    float *in[2] = {NULL, NULL};
#pragma omp parallel num_threads(2)
    {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        in[t] = gemm_problem_run(anv_gemm_builtin, p, 0.75f, 1.0f, 0);
    }
    for (int t = 0; t < 2; t++) {
        CHECK(!in[t] || memcmp(c1, in[t], bytes) == 0,
              "%s ta=%d tb=%d %dx%dx%d: thread %d in a parallel region differs", isa, p->ta, p->tb, p->M, p->N, p->K,
              t);
        free(in[t]);
    }
    free(c1);
}

static void test_isa(const char *isa, const gemm_problem_t *probs, int n_probs, char *summary, size_t size) {
    worst = 0;
    for (int p = 0; p < n_probs; p++) {
        for (int c = 0; c < 3; c++) {
            check_values(isa, "builtin", anv_gemm_builtin, &probs[p], gemm_alpha_beta[c][0], gemm_alpha_beta[c][1]);
            check_values(isa, "anv_gemm", anv_gemm, &probs[p], gemm_alpha_beta[c][0], gemm_alpha_beta[c][1]);
        }
        if (gemm_problem_big(&probs[p])) check_threads(isa, &probs[p]);
    }
    snprintf(summary, size, "%.3f", worst);
}

int main(void) {
    /* (M, N, K): ones, primes, sides below and above each tile and block, K from 1 to 1153 (up to four
     * slices; 3 x 16400 x 1100: two column blocks, each packed in three rounds); below 5e5 multiply-adds
     * the simple kernel, from 96 x 96 x 64 the packed one */
    static const int shapes[][3] = {
        {1, 1, 1},       {7, 31, 33},     {64, 64, 64},   {96, 96, 64},   {100, 257, 31},
        {257, 100, 257}, {40, 33, 385},   {1, 257, 1000}, {257, 1, 999},  {50, 70, 513},
        {400, 70, 40},   {200, 300, 520}, {5, 1500, 800}, {20, 50, 1153}, {3, 16400, 1100},
    };
    gemm_rng = 0x2545f4914f6cdd1du;
    anv_threads_set(2);
    return gemm_run_isas("test_gemm_fp32", shapes, (int)(sizeof shapes / sizeof shapes[0]), NULL, test_isa);
}

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
#include "kernels/cpu/gemm.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static uint64_t rng = 0x2545f4914f6cdd1du;
static float uniform(void) { /* in [-1, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) * (2.0 / (1 << 24)) - 1.0);
}

static void set_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

typedef void gemm_fn(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc);

typedef struct {
    int ta, tb, M, N, K, lda, ldb, ldc;
    float *A, *B, *C0;  /* inputs; C0 the old C (ldc stride, padding holds a sentinel) */
    double *ref, *sabs; /* sum_k op(A) op(B) and sum_k |op(A) op(B)| */
} problem_t;

static const float SENTINEL = 12345.0f;

static void problem_make(problem_t *p, int ta, int tb, int M, int N, int K) {
    p->ta = ta, p->tb = tb, p->M = M, p->N = N, p->K = K;
    p->lda = (ta ? M : K) + 3, p->ldb = (tb ? K : N) + 5, p->ldc = N + 2;
    size_t na = (size_t)(ta ? K : M) * p->lda, nb = (size_t)(tb ? N : K) * p->ldb, nc = (size_t)M * p->ldc;
    p->A = malloc(sizeof(float) * na), p->B = malloc(sizeof(float) * nb), p->C0 = malloc(sizeof(float) * nc);
    for (size_t i = 0; i < na; i++) p->A[i] = uniform();
    for (size_t i = 0; i < nb; i++) p->B[i] = uniform();
    for (size_t i = 0; i < nc; i++) p->C0[i] = (int)(i % p->ldc) >= N ? SENTINEL : uniform();
    p->ref = malloc(sizeof(double) * M * N), p->sabs = malloc(sizeof(double) * M * N);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, a = 0;
            for (int k = 0; k < K; k++) {
                double x = (double)(ta ? p->A[(size_t)k * p->lda + i] : p->A[(size_t)i * p->lda + k]) *
                           (tb ? p->B[(size_t)j * p->ldb + k] : p->B[(size_t)k * p->ldb + j]);
                s += x, a += fabs(x);
            }
            p->ref[(size_t)i * N + j] = s, p->sabs[(size_t)i * N + j] = a;
        }
}

static void problem_free(problem_t *p) { free(p->A), free(p->B), free(p->C0), free(p->ref), free(p->sabs); }

/* C = gemm(alpha, beta) on a copy of C0; with beta 0 the old C is NaN (padding kept). */
static float *run(gemm_fn *gemm, const problem_t *p, float alpha, float beta) {
    size_t n = (size_t)p->M * p->ldc;
    float *C = malloc(sizeof(float) * n);
    memcpy(C, p->C0, sizeof(float) * n);
    if (beta == 0.0f)
        for (size_t i = 0; i < n; i++)
            if ((int)(i % p->ldc) < p->N) C[i] = NAN;
    gemm(p->ta, p->tb, p->M, p->N, p->K, alpha, p->A, p->lda, p->B, p->ldb, beta, C, p->ldc);
    return C;
}

static double worst; /* the largest error / bound seen, per instruction set */

static void check_values(const char *isa, const char *name, gemm_fn *gemm, const problem_t *p, float alpha,
                         float beta) {
    float *C = run(gemm, p, alpha, beta);
    double w = 0;
    int pad_ok = 1;
    const double u = ldexp(1.0, -24);
    for (int i = 0; i < p->M; i++) {
        for (int j = 0; j < p->N; j++) {
            size_t o = (size_t)i * p->N + j;
            double c0 = beta == 0.0f ? 0.0 : (double)beta * p->C0[(size_t)i * p->ldc + j];
            double bound = (p->K + 3) * u * (fabs(alpha) * p->sabs[o] + fabs(c0)) + 1e-30;
            double e = fabs(C[(size_t)i * p->ldc + j] - (alpha * p->ref[o] + c0)) / bound;
            if (!(e <= w)) w = e; /* NaN counts as worst */
        }
        for (int j = p->N; j < p->ldc; j++) pad_ok &= C[(size_t)i * p->ldc + j] == SENTINEL;
    }
    if (!(w <= worst)) worst = w;
    CHECK(w <= 1.0, "%s %s ta=%d tb=%d %dx%dx%d alpha %g beta %g: error %.3g x bound", isa, name, p->ta, p->tb, p->M,
          p->N, p->K, alpha, beta, w);
    CHECK(pad_ok, "%s %s ta=%d tb=%d %dx%dx%d: C written past N", isa, name, p->ta, p->tb, p->M, p->N, p->K);
    free(C);
}

/* The same bits with 1 and 2 threads, and from each of two threads inside a parallel region. */
static void check_threads(const char *isa, const problem_t *p) {
    size_t bytes = sizeof(float) * (size_t)p->M * p->ldc;
    set_threads(1);
    float *c1 = run(anv_gemm_builtin, p, 0.75f, 1.0f);
    set_threads(2);
    float *c2 = run(anv_gemm_builtin, p, 0.75f, 1.0f);
    CHECK(memcmp(c1, c2, bytes) == 0, "%s ta=%d tb=%d %dx%dx%d: 1 vs 2 threads differ", isa, p->ta, p->tb, p->M, p->N,
          p->K);
    float *in[2] = {NULL, NULL};
#pragma omp parallel num_threads(2)
    {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        in[t] = run(anv_gemm_builtin, p, 0.75f, 1.0f);
    }
    for (int t = 0; t < 2; t++) {
        CHECK(!in[t] || memcmp(c1, in[t], bytes) == 0,
              "%s ta=%d tb=%d %dx%dx%d: thread %d in a parallel region differs", isa, p->ta, p->tb, p->M, p->N, p->K,
              t);
        free(in[t]);
    }
    free(c1), free(c2);
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
    static const char *isas[] = {"avx512", "avx2", "portable"};
    int n_shapes = (int)(sizeof shapes / sizeof shapes[0]);
    problem_t probs[4 * sizeof shapes / sizeof shapes[0]];
    for (int s = 0; s < n_shapes; s++)
        for (int t = 0; t < 4; t++)
            problem_make(&probs[s * 4 + t], t >> 1, t & 1, shapes[s][0], shapes[s][1], shapes[s][2]);
    set_threads(2);
    for (int i = 0; i < 3; i++) {
        if (anv_cpu_isa_set(isas[i]) != 0) {
            printf("  %-10s skipped: %s\n", isas[i], anv_last_error());
            continue;
        }
        int before = check_failed;
        worst = 0;
        for (int p = 0; p < 4 * n_shapes; p++) {
            static const float ab[][2] = {{1.0f, 0.0f}, {-1.5f, 1.0f}, {0.5f, -0.25f}};
            for (int c = 0; c < 3; c++) {
                check_values(isas[i], "builtin", anv_gemm_builtin, &probs[p], ab[c][0], ab[c][1]);
                check_values(isas[i], "anv_gemm", anv_gemm, &probs[p], ab[c][0], ab[c][1]);
            }
            if ((double)probs[p].M * probs[p].N * probs[p].K > 1e6) check_threads(isas[i], &probs[p]);
        }
        printf("  %-10s %s; largest error / bound: %.3f\n", isas[i], check_failed == before ? "ok" : "FAILED", worst);
    }
    for (int p = 0; p < 4 * n_shapes; p++) problem_free(&probs[p]);
    return check_done("test_gemm_fp32");
}

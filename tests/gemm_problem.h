/* The harness shared by the GEMM tests (test_gemm_fp32.c, test_gemm_bf16.c): a seeded random source,
 * GEMM problems with padded leading dimensions, a sentinel past N in C and double-precision reference
 * sums (of the inputs as they are, and optionally of the inputs passed through a rounding), running a
 * GEMM on a copy of the old C, the worst error against a reference relative to an error bound, the
 * untouched padding of C, the same bits with 1 and 2 threads, and the driver that builds every shape in
 * all four transpose combinations and runs a test on each instruction set this CPU has. The tests keep
 * their own shapes, bounds and checks. */
#ifndef ANVIL_TEST_GEMM_PROBLEM_H
#define ANVIL_TEST_GEMM_PROBLEM_H

#include "anvil/base.h"
#include "anvil/kernels.h"

#include "check.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t gemm_rng = 1; /* the test seeds it before drawing */

static inline float gemm_uniform(void) { /* in [-1, 1) */
    gemm_rng ^= gemm_rng << 13, gemm_rng ^= gemm_rng >> 7, gemm_rng ^= gemm_rng << 17;
    return (float)((gemm_rng >> 40) * (2.0 / (1 << 24)) - 1.0);
}

/* op(X)[r][c] for X stored (rows, cols) with leading dimension ld, transposed when t. */
static inline float gemm_op_at(const float *X, int ld, int t, int r, int c) {
    return t ? X[(size_t)c * ld + r] : X[(size_t)r * ld + c];
}

typedef void gemm_fn(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc);

static const float GEMM_SENTINEL = 12345.0f; /* in C's padding past N */

/* The (alpha, beta) pairs every problem is checked with. */
static const float gemm_alpha_beta[3][2] = {{1.0f, 0.0f}, {-1.5f, 1.0f}, {0.5f, -0.25f}};

typedef struct {
    int ta, tb, M, N, K, lda, ldb, ldc;
    float *A, *B, *C0;      /* inputs; C0 the old C (ldc stride, padding holds GEMM_SENTINEL) */
    double *ref, *sabs;     /* M x N: sum_k op(A) op(B) and sum_k |op(A) op(B)| */
    double *ref_r, *sabs_r; /* the same of the rounded inputs; NULL when made without a rounding */
} gemm_problem_t;

/* A (ta, tb, M, N, K) problem with random inputs; rounding (or NULL) gives ref_r and sabs_r. */
static inline void gemm_problem_make(gemm_problem_t *p, int ta, int tb, int M, int N, int K, float (*rounding)(float)) {
    p->ta = ta, p->tb = tb, p->M = M, p->N = N, p->K = K;
    p->lda = (ta ? M : K) + 3, p->ldb = (tb ? K : N) + 5, p->ldc = N + 2;
    size_t na = (size_t)(ta ? K : M) * p->lda, nb = (size_t)(tb ? N : K) * p->ldb, nc = (size_t)M * p->ldc;
    p->A = malloc(sizeof(float) * na), p->B = malloc(sizeof(float) * nb), p->C0 = malloc(sizeof(float) * nc);
    for (size_t i = 0; i < na; i++) p->A[i] = gemm_uniform();
    for (size_t i = 0; i < nb; i++) p->B[i] = gemm_uniform();
    for (size_t i = 0; i < nc; i++) p->C0[i] = (int)(i % p->ldc) >= N ? GEMM_SENTINEL : gemm_uniform();
    size_t n = (size_t)M * N;
    p->ref = malloc(sizeof(double) * n), p->sabs = malloc(sizeof(double) * n);
    p->ref_r = rounding ? malloc(sizeof(double) * n) : NULL, p->sabs_r = rounding ? malloc(sizeof(double) * n) : NULL;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double sx = 0, ax = 0, sr = 0, ar = 0;
            for (int k = 0; k < K; k++) {
                float a = gemm_op_at(p->A, p->lda, ta, i, k), b = gemm_op_at(p->B, p->ldb, tb, k, j);
                double x = (double)a * b;
                sx += x, ax += fabs(x);
                if (rounding) {
                    double r = (double)rounding(a) * rounding(b);
                    sr += r, ar += fabs(r);
                }
            }
            size_t o = (size_t)i * N + j;
            p->ref[o] = sx, p->sabs[o] = ax;
            if (rounding) p->ref_r[o] = sr, p->sabs_r[o] = ar;
        }
}

static inline void gemm_problem_free(gemm_problem_t *p) {
    free(p->A), free(p->B), free(p->C0), free(p->ref), free(p->sabs), free(p->ref_r), free(p->sabs_r);
}

/* C = gemm(alpha, beta) on a copy of C0; with nan_old and beta 0 the old C is NaN (padding kept). */
static inline float *gemm_problem_run(gemm_fn *gemm, const gemm_problem_t *p, float alpha, float beta, int nan_old) {
    size_t n = (size_t)p->M * p->ldc;
    float *C = malloc(sizeof(float) * n);
    memcpy(C, p->C0, sizeof(float) * n);
    if (nan_old && beta == 0.0f)
        for (size_t i = 0; i < n; i++)
            if ((int)(i % p->ldc) < p->N) C[i] = NAN;
    gemm(p->ta, p->tb, p->M, p->N, p->K, alpha, p->A, p->lda, p->B, p->ldb, beta, C, p->ldc);
    return C;
}

/* The largest |C - (alpha ref + beta C0)| / bound over the M x N values of C (infinite for a NaN), with
 * bound = |alpha| rel sabs_rel + slack u (|alpha| sabs + |beta C0|) + 1e-30, u = 2^-24: slack fp32 roundings
 * of the sum, plus a relative error rel of each product (rel 0: sabs_rel unused). */
static inline double gemm_problem_error(const gemm_problem_t *p, const float *C, float alpha, float beta,
                                        const double *ref, const double *sabs, int slack, double rel,
                                        const double *sabs_rel) {
    const double u = ldexp(1.0, -24);
    double worst = 0;
    for (int i = 0; i < p->M; i++)
        for (int j = 0; j < p->N; j++) {
            size_t o = (size_t)i * p->N + j;
            double c0 = beta == 0.0f ? 0.0 : (double)beta * p->C0[(size_t)i * p->ldc + j];
            double bound = slack * u * (fabs(alpha) * sabs[o] + fabs(c0)) + 1e-30;
            if (rel != 0.0) bound = fabs(alpha) * rel * sabs_rel[o] + bound;
            double e = fabs(C[(size_t)i * p->ldc + j] - (alpha * ref[o] + c0)) / bound;
            if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
        }
    return worst;
}

/* Whether C's padding past N still holds GEMM_SENTINEL. */
static inline int gemm_problem_pad_ok(const gemm_problem_t *p, const float *C) {
    int ok = 1;
    for (int i = 0; i < p->M; i++)
        for (int j = p->N; j < p->ldc; j++) ok &= C[(size_t)i * p->ldc + j] == GEMM_SENTINEL;
    return ok;
}

/* Whether a problem is large enough (over 1e6 multiply-adds) to be split across threads. */
static inline int gemm_problem_big(const gemm_problem_t *p) { return (double)p->M * p->N * p->K > 1e6; }

/* Checks that gemm(0.75, 1) gives the same bits with 1 and 2 threads (2 stay set); returns the
 * 1-thread C for the caller to free. */
static inline float *gemm_check_threads(const char *isa, gemm_fn *gemm, const gemm_problem_t *p) {
    anv_threads_set(1);
    float *c1 = gemm_problem_run(gemm, p, 0.75f, 1.0f, 0);
    anv_threads_set(2);
    float *c2 = gemm_problem_run(gemm, p, 0.75f, 1.0f, 0);
    CHECK(memcmp(c1, c2, sizeof(float) * (size_t)p->M * p->ldc) == 0, "%s ta=%d tb=%d %dx%dx%d: 1 vs 2 threads differ",
          isa, p->ta, p->tb, p->M, p->N, p->K);
    free(c2);
    return c1;
}

/* One instruction set's test over all problems; it writes its largest error / bound into summary. */
typedef void gemm_isa_test(const char *isa, const gemm_problem_t *probs, int n_probs, char *summary, size_t size);

/* Builds every (M, N, K) of shapes in the four transpose combinations (rounding as in gemm_problem_make),
 * runs test under avx512, avx2 and portable (skipping those this CPU lacks) with a line for each, and
 * returns check_done(name). */
static inline int gemm_run_isas(const char *name, const int (*shapes)[3], int n_shapes, float (*rounding)(float),
                                gemm_isa_test *test) {
    static const char *isas[] = {"avx512", "avx2", "portable"};
    int n_probs = 4 * n_shapes;
    gemm_problem_t *probs = malloc(sizeof(gemm_problem_t) * n_probs);
    for (int s = 0; s < n_shapes; s++)
        for (int t = 0; t < 4; t++)
            gemm_problem_make(&probs[s * 4 + t], t >> 1, t & 1, shapes[s][0], shapes[s][1], shapes[s][2], rounding);
    for (int i = 0; i < 3; i++) {
        if (anv_cpu_isa_set(isas[i]) != 0) {
            printf("  %-10s skipped: %s\n", isas[i], anv_last_error());
            continue;
        }
        int before = check_failed;
        char summary[128];
        test(isas[i], probs, n_probs, summary, sizeof summary);
        printf("  %-10s %s; largest error / bound: %s\n", isas[i], check_failed == before ? "ok" : "FAILED", summary);
    }
    for (int p = 0; p < n_probs; p++) gemm_problem_free(&probs[p]);
    free(probs);
    return check_done(name);
}

#endif

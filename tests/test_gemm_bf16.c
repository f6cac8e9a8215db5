/* The bf16 mixed-precision GEMM (anv_gemm_bf16) on every instruction-set copy this CPU runs: rounding
 * to nearest even, every transpose combination on awkward shapes against double-precision references,
 * bitwise determinism across thread counts, and the matmul kernels under ANV_PRECISION_BF16.
 *
 * Error bounds used below, for one C element with S = sum_k |a_k b_k| (double, from the same inputs):
 *  - against the double product of the bf16-ROUNDED inputs: a product of two bf16 values has at most
 *    16 significant bits, so it is exact in fp32; the only error is fp32 summation (and the alpha/beta
 *    step). Any order of K additions, plus the alpha scaling and the beta add, stays within
 *    (K + 2) u (|alpha| S + |beta C0|), u = 2^-24 (Higham's gamma_n, first order).
 *  - against the double product of the original fp32 inputs: rounding to bf16 (8 significant bits)
 *    changes an input by at most half an ulp, u = 2^-8 of its value (x = 1 + 2^-8 becomes 1; 2^-9 is
 *    the half-ulp relative to the top of the binade, not a bound), so a product changes by at most
 *    (2u + u^2) |a b|; the sum's error is at most |alpha| (2^-7 + 2^-16) S_exact plus the summation
 *    bound above (taken on S of the rounded inputs). Measured errors reach about 2/3 of this bound on
 *    short sums (K = 5, 7), where one product's rounding dominates. */
#include "anvil/base.h"
#include "anvil/kernels.h"

#include "check.h"
#include "kernels/cpu/gemm.h"
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static uint64_t rng = 0x9e3779b97f4a7c15u;
static float uniform(void) { /* in [-1, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) * (2.0 / (1 << 24)) - 1.0);
}

/* bf16 rounding by value, independent of the code under test: nearest of the two neighbouring
 * bf16 values (x truncated to 8 significant bits, and that plus one bf16 ulp), ties to the even one. */
static float bf16_ref(float x) {
    if (x == 0.0f || !isfinite(x)) return x;
    int e;
    frexpf(x, &e); /* |x| in [2^(e-1), 2^e): the bf16 ulp is 2^(e-8) */
    double ulp = ldexp(1.0, e - 8), lo = floor(x / ulp) * ulp, hi = lo + ulp;
    double dl = x - lo, dh = hi - x;
    if (dl < dh) return (float)lo;
    if (dh < dl) return (float)hi;
    return fmod(lo / ulp, 2.0) == 0.0 ? (float)lo : (float)hi;
}

static void set_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

/* op(X)[r][c] for X stored (rows, cols) with leading dimension ld, transposed when t. */
static float op_at(const float *X, int ld, int t, int r, int c) {
    return t ? X[(size_t)c * ld + r] : X[(size_t)r * ld + c];
}

typedef struct {
    int ta, tb, M, N, K, lda, ldb, ldc;
    float *A, *B, *C0;     /* inputs; C0 the old C (ldc stride, padding holds a sentinel) */
    double *ref_r, *ref_x; /* sum_k op(A) op(B): of the bf16-rounded inputs, of the exact inputs */
    double *abs_r, *abs_x; /* sum_k |op(A) op(B)|, the same two ways */
} problem_t;

static void problem_make(problem_t *p, int ta, int tb, int M, int N, int K) {
    p->ta = ta, p->tb = tb, p->M = M, p->N = N, p->K = K;
    p->lda = (ta ? M : K) + 3, p->ldb = (tb ? K : N) + 5, p->ldc = N + 2;
    size_t na = (size_t)(ta ? K : M) * p->lda, nb = (size_t)(tb ? N : K) * p->ldb, nc = (size_t)M * p->ldc;
    p->A = malloc(sizeof(float) * na), p->B = malloc(sizeof(float) * nb), p->C0 = malloc(sizeof(float) * nc);
    for (size_t i = 0; i < na; i++) p->A[i] = uniform();
    for (size_t i = 0; i < nb; i++) p->B[i] = uniform();
    for (size_t i = 0; i < nc; i++) p->C0[i] = (int)(i % p->ldc) >= N ? 12345.0f : uniform();
    size_t n = (size_t)M * N;
    p->ref_r = malloc(sizeof(double) * n), p->ref_x = malloc(sizeof(double) * n);
    p->abs_r = malloc(sizeof(double) * n), p->abs_x = malloc(sizeof(double) * n);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double sr = 0, sx = 0, ar = 0, ax = 0;
            for (int k = 0; k < K; k++) {
                float a = op_at(p->A, p->lda, ta, i, k), b = op_at(p->B, p->ldb, tb, k, j);
                double r = (double)bf16_ref(a) * bf16_ref(b), x = (double)a * b;
                sr += r, sx += x, ar += fabs(r), ax += fabs(x);
            }
            size_t o = (size_t)i * N + j;
            p->ref_r[o] = sr, p->ref_x[o] = sx, p->abs_r[o] = ar, p->abs_x[o] = ax;
        }
}

static void problem_free(problem_t *p) {
    free(p->A), free(p->B), free(p->C0), free(p->ref_r), free(p->ref_x), free(p->abs_r), free(p->abs_x);
}

/* C = anv_gemm_bf16(alpha, beta) on a copy of C0 */
static float *run(const problem_t *p, float alpha, float beta) {
    float *C = malloc(sizeof(float) * (size_t)p->M * p->ldc);
    memcpy(C, p->C0, sizeof(float) * (size_t)p->M * p->ldc);
    anv_gemm_bf16(p->ta, p->tb, p->M, p->N, p->K, alpha, p->A, p->lda, p->B, p->ldb, beta, C, p->ldc);
    return C;
}

static double worst_rounded, worst_exact; /* the largest error / bound seen, per instruction set */

/* (a) and (b) for one alpha, beta; the padding of C stays untouched. */
static void check_values(const char *isa, const problem_t *p, float alpha, float beta) {
    float *C = run(p, alpha, beta);
    double worst_r = 0, worst_x = 0; /* error / bound, the largest over C */
    int pad_ok = 1;
    const double u = ldexp(1.0, -24), rel = ldexp(1.0, -7) + ldexp(1.0, -16);
    for (int i = 0; i < p->M; i++) {
        for (int j = 0; j < p->N; j++) {
            size_t o = (size_t)i * p->N + j;
            double c0 = beta == 0.0f ? 0.0 : (double)beta * p->C0[(size_t)i * p->ldc + j],
                   c = C[(size_t)i * p->ldc + j];
            double sum_bound = (p->K + 2) * u * (fabs(alpha) * p->abs_r[o] + fabs(c0)) + 1e-30;
            double er = fabs(c - (alpha * p->ref_r[o] + c0)) / sum_bound;
            double ex = fabs(c - (alpha * p->ref_x[o] + c0)) / (fabs(alpha) * rel * p->abs_x[o] + sum_bound);
            if (!(er <= worst_r)) worst_r = er; /* NaN counts as worst */
            if (!(ex <= worst_x)) worst_x = ex;
        }
        for (int j = p->N; j < p->ldc; j++) pad_ok &= C[(size_t)i * p->ldc + j] == 12345.0f;
    }
    if (!(worst_r <= worst_rounded)) worst_rounded = worst_r;
    if (!(worst_x <= worst_exact)) worst_exact = worst_x;
    CHECK(worst_r <= 1.0, "%s ta=%d tb=%d %dx%dx%d alpha %g beta %g: error vs rounded-input product %.3g x bound", isa,
          p->ta, p->tb, p->M, p->N, p->K, alpha, beta, worst_r);
    CHECK(worst_x <= 1.0, "%s ta=%d tb=%d %dx%dx%d alpha %g beta %g: error vs exact product %.3g x bound", isa, p->ta,
          p->tb, p->M, p->N, p->K, alpha, beta, worst_x);
    CHECK(pad_ok, "%s ta=%d tb=%d %dx%dx%d: C written past N", isa, p->ta, p->tb, p->M, p->N, p->K);
    free(C);
}

/* (c): the same bits with 1 and 2 threads */
static void check_threads(const char *isa, const problem_t *p) {
    set_threads(1);
    float *c1 = run(p, 0.75f, 1.0f);
    set_threads(2);
    float *c2 = run(p, 0.75f, 1.0f);
    CHECK(memcmp(c1, c2, sizeof(float) * (size_t)p->M * p->ldc) == 0, "%s ta=%d tb=%d %dx%dx%d: 1 vs 2 threads differ",
          isa, p->ta, p->tb, p->M, p->N, p->K);
    free(c1), free(c2);
}

/* Rounding through the GEMM: a 1x1x1 product with B = 1 gives bf16(a). */
static void test_rounding(const char *isa) {
    const float cases[][2] = {
        {1.0f + 0x1p-8f, 1.0f},               /* exact tie, even neighbour below */
        {1.0f + 3 * 0x1p-9f, 1.0f + 0x1p-7f}, /* above the tie: up */
        {1.0f + 0x1p-9f, 1.0f},               /* below the tie: down */
        {1.0f + 3 * 0x1p-8f, 1.0f + 0x1p-6f}, /* exact tie, even neighbour above */
        {-(1.0f + 0x1p-8f), -1.0f},           /* sign symmetric */
        {0.1f, 0.10009765625f},               /* 0x3dcccccd -> 0x3dcd */
        {FLT_MAX, INFINITY},                  /* rounds past the largest bf16 */
    };
    int n = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < n; i++) {
        float a = cases[i][0], b = 1.0f, c = -7.0f;
        anv_gemm_bf16(0, 0, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
        CHECK(c == cases[i][1] && c == bf16_ref(a), "%s: bf16(%.9g) = %.9g, want %.9g", isa, a, c, cases[i][1]);
    }
    float a = NAN, b = 1.0f, c = 0.0f;
    anv_gemm_bf16(0, 0, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
    CHECK(isnan(c), "%s: bf16(NaN) = %g", isa, c);
}

/* (d): the matmul kernels under BF16 are the bf16 GEMM, and differ from fp32. */
static void test_matmul(const char *isa) {
    int N = 37, C = 300, OC = 70;
    float *inp = malloc(sizeof(float) * N * C), *w = malloc(sizeof(float) * C * OC), *bias = malloc(sizeof(float) * OC);
    float *dout = malloc(sizeof(float) * N * OC);
    float *out = malloc(sizeof(float) * N * OC), *ref = malloc(sizeof(float) * N * OC),
          *f32 = malloc(sizeof(float) * N * OC);
    float *dinp = malloc(sizeof(float) * N * C), *dinp_ref = malloc(sizeof(float) * N * C);
    float *dw = malloc(sizeof(float) * C * OC), *dw_ref = malloc(sizeof(float) * C * OC);
    float *dbias = calloc(OC, sizeof(float));
    for (int i = 0; i < N * C; i++) inp[i] = uniform();
    for (int i = 0; i < C * OC; i++) w[i] = uniform(), dw[i] = dw_ref[i] = uniform();
    for (int i = 0; i < OC; i++) bias[i] = uniform();
    for (int i = 0; i < N * OC; i++) dout[i] = uniform();

    anv_matmul_precision_set(ANV_PRECISION_FP32);
    anv_matmul_forward(f32, inp, w, bias, N, C, OC);
    anv_matmul_precision_set(ANV_PRECISION_BF16);
    anv_matmul_forward(out, inp, w, bias, N, C, OC);
    for (int n = 0; n < N; n++) memcpy(ref + (size_t)n * OC, bias, sizeof(float) * OC);
    anv_gemm_bf16(0, 0, N, OC, C, 1.0f, inp, C, w, OC, 1.0f, ref, OC);
    CHECK(memcmp(out, ref, sizeof(float) * N * OC) == 0, "%s: matmul_forward under bf16 is not the bf16 GEMM", isa);
    CHECK(memcmp(out, f32, sizeof(float) * N * OC) != 0, "%s: matmul_forward is the same in fp32 and bf16", isa);

    anv_matmul_backward(dinp, dw, dbias, dout, inp, w, N, C, OC);
    anv_gemm_bf16(0, 1, N, C, OC, 1.0f, dout, OC, w, OC, 0.0f, dinp_ref, C);
    anv_gemm_bf16(1, 0, C, OC, N, 1.0f, inp, C, dout, OC, 1.0f, dw_ref, OC);
    CHECK(memcmp(dinp, dinp_ref, sizeof(float) * N * C) == 0, "%s: matmul_backward dinp under bf16", isa);
    CHECK(memcmp(dw, dw_ref, sizeof(float) * C * OC) == 0, "%s: matmul_backward dw under bf16", isa);

    /* the tied-head form: w read as (OC, C) */
    anv_matmul_nt_forward(out, OC, inp, w, N, C, OC);
    anv_gemm_bf16(0, 1, N, OC, C, 1.0f, inp, C, w, C, 0.0f, ref, OC);
    CHECK(memcmp(out, ref, sizeof(float) * N * OC) == 0, "%s: matmul_nt_forward under bf16", isa);
    memcpy(dinp_ref, dinp, sizeof(float) * N * C);
    memcpy(dw_ref, dw, sizeof(float) * C * OC);
    anv_matmul_nt_backward(dinp, dw, dout, OC, inp, w, N, C, OC);
    anv_gemm_bf16(0, 0, N, C, OC, 1.0f, dout, OC, w, C, 1.0f, dinp_ref, C);
    anv_gemm_bf16(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw_ref, C);
    CHECK(memcmp(dinp, dinp_ref, sizeof(float) * N * C) == 0, "%s: matmul_nt_backward dinp under bf16", isa);
    CHECK(memcmp(dw, dw_ref, sizeof(float) * C * OC) == 0, "%s: matmul_nt_backward dw under bf16", isa);
    anv_matmul_precision_set(ANV_PRECISION_FP32);
    free(inp), free(w), free(bias), free(dout), free(out), free(ref), free(f32), free(dinp), free(dinp_ref), free(dw),
        free(dw_ref), free(dbias);
}

int main(void) {
    /* (M, N, K): ones, primes, a side below and above the register tile (12 x 32) and the blocking
     * (MC 192, NB 256, K slices of at most 256, NC 16384 columns and 32 MiB packed at a time on
     * AVX-512: 3 x 16400 x 1100 packs 2 column blocks, each in two rounds), odd K (zero-padded pair) */
    static const int shapes[][3] = {
        {1, 1, 1},    {7, 31, 33},     {33, 7, 100},   {100, 257, 31}, {257, 100, 257},
        {31, 33, 7},  {1, 257, 100},   {257, 1, 33},   {13, 40, 600},  {50, 70, 513},
        {3, 4100, 5}, {200, 300, 520}, {5, 1500, 800}, {20, 50, 1153}, {3, 16400, 1100},
    };
    static const char *isas[] = {"avx512", "avx2", "portable"};
    int n_shapes = (int)(sizeof shapes / sizeof shapes[0]);
    problem_t probs[4 * sizeof shapes / sizeof shapes[0]];
    for (int s = 0; s < n_shapes; s++)
        for (int t = 0; t < 4; t++)
            problem_make(&probs[s * 4 + t], t >> 1, t & 1, shapes[s][0], shapes[s][1], shapes[s][2]);
    for (int i = 0; i < 3; i++) {
        if (anv_cpu_isa_set(isas[i]) != 0) {
            printf("  %-10s skipped: %s\n", isas[i], anv_last_error());
            continue;
        }
        int before = check_failed;
        worst_rounded = worst_exact = 0;
        test_rounding(isas[i]);
        for (int p = 0; p < 4 * n_shapes; p++) {
            check_values(isas[i], &probs[p], 1.0f, 0.0f);
            check_values(isas[i], &probs[p], -1.5f, 1.0f);
            check_values(isas[i], &probs[p], 0.5f, -0.25f);
            if ((double)probs[p].M * probs[p].N * probs[p].K > 1e6) check_threads(isas[i], &probs[p]);
        }
        test_matmul(isas[i]);
        printf("  %-10s %s; largest error / bound: %.3f (vs rounded inputs), %.3f (vs exact)\n", isas[i],
               check_failed == before ? "ok" : "FAILED", worst_rounded, worst_exact);
    }
    for (int p = 0; p < 4 * n_shapes; p++) problem_free(&probs[p]);
    return check_done("test_gemm_bf16");
}

/* The bf16 mixed-precision GEMM (anv_gemm_bf16) on every instruction-set copy this CPU runs: rounding
 * to nearest even, every transpose combination on awkward shapes against double-precision references,
 * bitwise determinism across thread counts, the matmul kernels under ANV_PRECISION_BF16, and on AVX-512
 * each bf16 unit the CPU has (see bf16_engine.c), the FMA one bitwise the fp32 GEMM of rounded inputs.
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
#include "anvil/kernels.h"

#include "check.h"
#include "gemm_problem.h"
#include "kernels/cpu/gemm.h"
#include <float.h>
#include <stdlib.h>
#include <string.h>

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

static double worst_rounded, worst_exact; /* the largest error / bound seen, per instruction set */

/* (a) and (b) for one alpha, beta; the padding of C stays untouched. */
static void check_values(const char *isa, const gemm_problem_t *p, float alpha, float beta) {
    float *C = gemm_problem_run(anv_gemm_bf16, p, alpha, beta, 0);
    const double rel = ldexp(1.0, -7) + ldexp(1.0, -16);
    double worst_r = gemm_problem_error(p, C, alpha, beta, p->ref_r, p->sabs_r, p->K + 2, 0.0, NULL);
    double worst_x = gemm_problem_error(p, C, alpha, beta, p->ref, p->sabs_r, p->K + 2, rel, p->sabs);
    if (!(worst_r <= worst_rounded)) worst_rounded = worst_r;
    if (!(worst_x <= worst_exact)) worst_exact = worst_x;
    CHECK(worst_r <= 1.0, "%s ta=%d tb=%d %dx%dx%d alpha %g beta %g: error vs rounded-input product %.3g x bound", isa,
          p->ta, p->tb, p->M, p->N, p->K, alpha, beta, worst_r);
    CHECK(worst_x <= 1.0, "%s ta=%d tb=%d %dx%dx%d alpha %g beta %g: error vs exact product %.3g x bound", isa, p->ta,
          p->tb, p->M, p->N, p->K, alpha, beta, worst_x);
    CHECK(gemm_problem_pad_ok(p, C), "%s ta=%d tb=%d %dx%dx%d: C written past N", isa, p->ta, p->tb, p->M, p->N, p->K);
    free(C);
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
    for (int i = 0; i < N * C; i++) inp[i] = gemm_uniform();
    for (int i = 0; i < C * OC; i++) w[i] = gemm_uniform(), dw[i] = dw_ref[i] = gemm_uniform();
    for (int i = 0; i < OC; i++) bias[i] = gemm_uniform();
    for (int i = 0; i < N * OC; i++) dout[i] = gemm_uniform();

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
    anv_matmul_nt_forward(out, inp, w, N, C, OC);
    anv_gemm_bf16(0, 1, N, OC, C, 1.0f, inp, C, w, C, 0.0f, ref, OC);
    CHECK(memcmp(out, ref, sizeof(float) * N * OC) == 0, "%s: matmul_nt_forward under bf16", isa);
    memcpy(dinp_ref, dinp, sizeof(float) * N * C);
    memcpy(dw_ref, dw, sizeof(float) * C * OC);
    anv_matmul_nt_backward(dinp, dw, dout, inp, w, N, C, OC);
    anv_gemm_bf16(0, 0, N, C, OC, 1.0f, dout, OC, w, C, 1.0f, dinp_ref, C);
    anv_gemm_bf16(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw_ref, C);
    CHECK(memcmp(dinp, dinp_ref, sizeof(float) * N * C) == 0, "%s: matmul_nt_backward dinp under bf16", isa);
    CHECK(memcmp(dw, dw_ref, sizeof(float) * C * OC) == 0, "%s: matmul_nt_backward dw under bf16", isa);
    anv_matmul_precision_set(ANV_PRECISION_FP32);
    free(inp), free(w), free(bias), free(dout), free(out), free(ref), free(f32), free(dinp), free(dinp_ref), free(dw),
        free(dw_ref), free(dbias);
}

/* (e) On fp32 FMAs the bf16 GEMM is the fp32 GEMM of the rounded inputs, bit for bit: both run the
 * packed kernel on the same slices (products of over 1e6 multiply-adds). */
static void test_same_as_rounded_fp32(const char *isa, const gemm_problem_t *p) {
    size_t na = (size_t)(p->ta ? p->K : p->M) * p->lda, nb = (size_t)(p->tb ? p->N : p->K) * p->ldb;
    gemm_problem_t r = *p;
    r.A = malloc(sizeof(float) * na), r.B = malloc(sizeof(float) * nb);
    for (size_t i = 0; i < na; i++) r.A[i] = bf16_ref(p->A[i]);
    for (size_t i = 0; i < nb; i++) r.B[i] = bf16_ref(p->B[i]);
    float *c = gemm_problem_run(anv_gemm_bf16, p, -1.5f, 1.0f, 0),
          *ref = gemm_problem_run(anv_gemm_builtin, &r, -1.5f, 1.0f, 0);
    CHECK(memcmp(c, ref, sizeof(float) * (size_t)p->M * p->ldc) == 0,
          "%s ta=%d tb=%d %dx%dx%d: not the fp32 GEMM of the rounded inputs", isa, p->ta, p->tb, p->M, p->N, p->K);
    free(c), free(ref), free(r.A), free(r.B);
}

static void test_isa_once(const char *isa, const gemm_problem_t *probs, int n_probs, char *summary, size_t size);

/* (c) holds where the fp32 GEMM under the bf16 one does: the AVX-512 copy's own kernels, and the other
 * copies' unless they are OpenBLAS, which splits a product by the thread count. */
static int same_bits_any_threads(const char *isa) {
#ifdef ANVIL_HAVE_OPENBLAS
    return !strncmp(isa, "avx512", 6);
#else
    (void)isa;
    return 1;
#endif
}

/* Everything below on one instruction set; on AVX-512 on each bf16 unit this CPU has (fp32 FMAs,
 * vdpbf16ps, AMX tiles), then back on the one it chose. */
static void test_isa(const char *isa, const gemm_problem_t *probs, int n_probs, char *summary, size_t size) {
    if (strcmp(isa, "avx512") != 0) {
        test_isa_once(isa, probs, n_probs, summary, size);
        return;
    }
    static const char *const units[] = {"avx512 on FMAs", "avx512 on vdpbf16ps", "avx512 on AMX"};
    anv_bf16_engine_t chosen = anv_cpu_bf16_engine();
    for (int e = ANV_BF16_ON_FMA; e <= ANV_BF16_ON_AMX; e++) {
        if (!anv_cpu_bf16_engine_has((anv_bf16_engine_t)e)) {
            printf("  %-10s skipped: not on this CPU\n", units[e]);
            continue;
        }
        int before = check_failed;
        anv_cpu_bf16_engine_set((anv_bf16_engine_t)e);
        test_isa_once(units[e], probs, n_probs, summary, size);
        if (e == ANV_BF16_ON_FMA)
            for (int p = 0; p < n_probs; p++)
                if (gemm_problem_big(&probs[p])) test_same_as_rounded_fp32(units[e], &probs[p]);
        printf("  %-10s %s; largest error / bound: %s\n", units[e], check_failed == before ? "ok" : "FAILED", summary);
    }
    anv_cpu_bf16_engine_set(chosen);
    printf("  the bf16 products here: %s\n", anv_cpu_bf16_products());
    snprintf(summary, size, "as above");
}

static void test_isa_once(const char *isa, const gemm_problem_t *probs, int n_probs, char *summary, size_t size) {
    worst_rounded = worst_exact = 0;
    test_rounding(isa);
    for (int p = 0; p < n_probs; p++) {
        for (int c = 0; c < 3; c++) check_values(isa, &probs[p], gemm_alpha_beta[c][0], gemm_alpha_beta[c][1]);
        if (gemm_problem_big(&probs[p]) && same_bits_any_threads(isa))
            free(gemm_check_threads(isa, anv_gemm_bf16, &probs[p])); /* (c) */
    }
    test_matmul(isa);
    snprintf(summary, size, "%.3f (vs rounded inputs), %.3f (vs exact)", worst_rounded, worst_exact);
}

int main(void) {
    /* (M, N, K): ones, primes, a side below and above the register tile (12 x 32) and the blocking
     * (MC 192, NB 256, K slices of at most 256, NC 16384 columns and 32 MiB packed at a time on
     * AVX-512: 3 x 16400 x 1100 packs 2 column blocks, each in two rounds), odd K (zero-padded pair), and
     * the rounded copies' blocks of 1024 in M, N and K (1030 x 9 x 1030, 3 x 16400 x 1100) */
    static const int shapes[][3] = {
        {1, 1, 1},      {7, 31, 33},    {33, 7, 100},     {100, 257, 31},  {257, 100, 257}, {31, 33, 7},
        {1, 257, 100},  {257, 1, 33},   {13, 40, 600},    {50, 70, 513},   {3, 4100, 5},    {200, 300, 520},
        {5, 1500, 800}, {20, 50, 1153}, {3, 16400, 1100}, {1030, 9, 1030},
    };
    gemm_rng = 0x9e3779b97f4a7c15u;
    return gemm_run_isas("test_gemm_bf16", shapes, (int)(sizeof shapes / sizeof shapes[0]), bf16_ref, test_isa);
}

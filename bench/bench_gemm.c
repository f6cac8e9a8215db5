/* GEMM speed on the products of a GPT-2 124M training step (B * T = 2048 token rows, C = 768): fp32
 * anv_gemm of the AVX2 copy (OpenBLAS where built with it; "-" where the CPU lacks AVX2), the built-in
 * fp32 GEMM and anv_gemm of the copy in use (on AVX-512 both are the packed fp32 kernel; elsewhere
 * anv_gemm is OpenBLAS where built with it), and the bf16 mixed-precision GEMM.
 *
 *   bench_gemm [--threads 2] [--runs 5] [--only NAME]
 * Prints one line per product: GFLOP/s (2 M N K / seconds, the median of `runs` timed calls after one
 * warm-up call; the implementations take turns) of each implementation and the bf16 / fp32 anv_gemm
 * ratio; then the measured fp32 FMA peak of the same threads for reference. Inputs are uniform in
 * [-1, 1); beta is 0. */
#include "anvil/base.h"
#include "anvil/kernels.h"
#include "kernels/cpu/gemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    int ta, tb, M, N, K;
} shape_t;

/* Linear layers: forward out = inp @ W, backward dinp = dout @ W^T (ta 0, tb 1) and dW = inp^T @ dout
 * (ta 1, tb 0). LM head on one block of 333 rows (src/model/gpt_train.c: 2^24 logits / 50257). */
static const shape_t shapes[] = {
    {"qkv fwd", 0, 0, 2048, 2304, 768},     {"attproj fwd", 0, 0, 2048, 768, 768},
    {"fc fwd", 0, 0, 2048, 3072, 768},      {"fcproj fwd", 0, 0, 2048, 768, 3072},
    {"qkv dinp", 0, 1, 2048, 768, 2304},    {"qkv dW", 1, 0, 768, 2304, 2048},
    {"attproj dinp", 0, 1, 2048, 768, 768}, {"attproj dW", 1, 0, 768, 768, 2048},
    {"fc dinp", 0, 1, 2048, 768, 3072},     {"fc dW", 1, 0, 768, 3072, 2048},
    {"fcproj dinp", 0, 1, 2048, 3072, 768}, {"fcproj dW", 1, 0, 3072, 768, 2048},
    {"head fwd", 0, 1, 333, 50257, 768},    {"head dinp", 0, 0, 333, 768, 50257},
    {"head dW", 1, 0, 50257, 768, 333},
};

typedef void gemm_fn(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc);

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum { N_IMPL = 4 };

static char isa[32]; /* the copy in use */

/* anv_gemm of the AVX2 copy, for comparison with the copy in use. */
static void gemm_avx2(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                      int ldb, float beta, float *C, int ldc) {
    anv_cpu_isa_set("avx2");
    anv_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    anv_cpu_isa_set(isa);
}

/* gflops[i] = median GFLOP/s of `runs` calls of impl[i]; the implementations take turns, one call each
 * per round, so that a change in the machine's load affects them alike. */
static void measure(gemm_fn *const impl[N_IMPL], const shape_t *s, const float *A, const float *B, float *C, int runs,
                    double gflops[N_IMPL]) {
    int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    double secs[N_IMPL][64];
    for (int r = -1; r < runs; r++) {
        for (int i = 0; i < N_IMPL; i++) {
            if (!impl[i]) continue;
            double t0 = anv_now();
            impl[i](s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N);
            if (r >= 0) secs[i][r] = anv_now() - t0;
        }
    }
    for (int i = 0; i < N_IMPL; i++) {
        gflops[i] = 0.0;
        if (!impl[i]) continue;
        qsort(secs[i], runs, sizeof secs[i][0], cmp_double);
        gflops[i] = 2.0 * s->M * s->N * s->K / secs[i][runs / 2] * 1e-9;
    }
}

static const char *arg(int argc, char **argv, const char *name, const char *def) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return def;
}

int main(int argc, char **argv) {
    int threads = atoi(arg(argc, argv, "--threads", "2")), runs = atoi(arg(argc, argv, "--runs", "5"));
    const char *only = arg(argc, argv, "--only", NULL);
    if (runs < 1 || runs > 64) {
        fprintf(stderr, "bench_gemm: --runs must be 1..64\n");
        return 2;
    }
    anv_threads_set(threads);
    size_t most = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape_t *s = &shapes[i];
        size_t n = (size_t)s->M * s->K + (size_t)s->K * s->N + (size_t)s->M * s->N;
        if (n > most) most = n;
    }
    float *buf = anv_alloc(sizeof(float) * most, "bench operands");
    if (!buf) {
        fprintf(stderr, "bench_gemm: %s\n", anv_last_error());
        return 1;
    }
    uint64_t x = 1;
    for (size_t i = 0; i < most; i++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        buf[i] = (float)((x >> 40) * (2.0 / (1 << 24)) - 1.0);
    }
    snprintf(isa, sizeof isa, "%s", anv_cpu_isa());
    int have_avx2 = anv_cpu_isa_set("avx2") == 0;
    anv_cpu_isa_set(isa);
    printf("bench_gemm: %d threads, kernels %s, median of %d runs, GFLOP/s\n", anv_threads_count(), isa, runs);
    printf("%-14s %2s %2s %6s %6s %6s %9s %9s %9s %9s %7s\n", "product", "ta", "tb", "M", "N", "K", "avx2 gemm",
           "anv_gemm", "builtin", "bf16", "bf16/f32");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape_t *s = &shapes[i];
        if (only && strcmp(only, s->name) != 0) continue;
        const float *A = buf, *B = A + (size_t)s->M * s->K;
        float *C = (float *)B + (size_t)s->K * s->N;
        gemm_fn *const impl[N_IMPL] = {have_avx2 ? gemm_avx2 : NULL, anv_gemm, anv_gemm_builtin, anv_gemm_bf16};
        double g[N_IMPL];
        measure(impl, s, A, B, C, runs, g);
        char blas[16] = "-";
        if (have_avx2) snprintf(blas, sizeof blas, "%.1f", g[0]);
        printf("%-14s %2d %2d %6d %6d %6d %9s %9.1f %9.1f %9.1f %7.2f\n", s->name, s->ta, s->tb, s->M, s->N, s->K, blas,
               g[1], g[2], g[3], g[3] / g[1]);
        fflush(stdout);
    }
    int bits = 0;
    double peak = anv_cpu_fma_peak(1.0, &bits), bf16 = anv_cpu_bf16_peak(1.0);
    printf("fp32 FMA peak (anv_cpu_fma_peak, %d-bit vectors): %.1f GFLOP/s; bf16 products on %s", bits, peak,
           anv_cpu_bf16_products());
    if (bf16 > 0) printf(", peak %.1f GFLOP/s", bf16);
    printf("\n");
    anv_free(buf);
    return 0;
}

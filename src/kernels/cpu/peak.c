/* The machine's peaks, measured: every thread runs independent chains of fused multiply-adds on the
 * vectors of the kernels in use (AVX-512, AVX2+FMA, or whatever the compiler makes of a plain loop for
 * the portable copy), or of bf16 dot products (vdpbf16ps, or AMX's tdpbf16ps), enough chains to cover
 * the latency, for a fixed wall time. */
#include "anvil/base.h"
#include "anvil/kernels.h"
#include "kernels/cpu/gemm.h"

#include <string.h>

enum { CHAINS = 12, ITERS = 1 << 14 };

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

__attribute__((target("avx512f"))) static double fma_avx512(long reps) {
    __m512 acc[CHAINS], a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps((float)c);
    for (long r = 0; r < reps; r++)
        for (int i = 0; i < ITERS; i++)
            for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
    float sink = 0;
    for (int c = 0; c < CHAINS; c++) sink += _mm512_reduce_add_ps(acc[c]);
    return sink;
}

/* vdpbf16ps: per fp32 lane, two bf16 products added to the accumulator (4 floating-point operations). */
__attribute__((target("avx512f,avx512bf16"))) static double dot_bf16(long reps) {
    __m512 acc[CHAINS];
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380); /* 1, 6e-8 */
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps((float)c);
    for (long r = 0; r < reps; r++)
        for (int i = 0; i < ITERS; i++)
            for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_dpbf16_ps(acc[c], a, b);
    float sink = 0;
    for (int c = 0; c < CHAINS; c++) sink += _mm512_reduce_add_ps(acc[c]);
    return sink;
}

/* tdpbf16ps on four independent accumulator tiles, ITERS per rep: each 16 x 16 fp32 results of 32 bf16
 * products (16384 floating-point operations). */
__attribute__((target("amx-tile,amx-bf16"))) static double dot_amx(long reps) {
    float out[16 * 16];
    anv_cpu_amx_configure();
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_zero(4);
    _tile_zero(5);
    _tile_zero(6);
    _tile_zero(7);
    for (long r = 0; r < reps; r++)
        for (int i = 0; i < ITERS / 4; i++) {
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
    _tile_stored(0, out, 64);
    return out[0];
}

__attribute__((target("avx2,fma"))) static double fma_avx2(long reps) {
    __m256 acc[CHAINS], a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_ps((float)c);
    for (long r = 0; r < reps; r++)
        for (int i = 0; i < ITERS; i++)
            for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
    float lanes[8], sink = 0;
    for (int c = 0; c < CHAINS; c++) {
        _mm256_storeu_ps(lanes, acc[c]);
        for (int l = 0; l < 8; l++) sink += lanes[l];
    }
    return sink;
}
#endif

static double fma_plain(long reps) {
    float acc[CHAINS][8];
    for (int c = 0; c < CHAINS; c++)
        for (int l = 0; l < 8; l++) acc[c][l] = (float)c;
    for (long r = 0; r < reps; r++)
        for (int i = 0; i < ITERS; i++)
            for (int c = 0; c < CHAINS; c++)
                for (int l = 0; l < 8; l++) acc[c][l] = acc[c][l] * 0.999999f + 1e-7f;
    float sink = 0;
    for (int c = 0; c < CHAINS; c++)
        for (int l = 0; l < 8; l++) sink += acc[c][l];
    return sink;
}

typedef enum { FMA_AVX512, FMA_AVX2, FMA_PLAIN, DOT_BF16, DOT_AMX } loop_t;

/* Floating-point operations of one rep of each loop on one thread: 2 per FMA lane, 4 per vdpbf16ps
 * lane, 16 x 16 x 32 x 2 per tdpbf16ps. */
static const double flops_per_rep[] = {
    [FMA_AVX512] = 2.0 * 16 * CHAINS * ITERS,
    [FMA_AVX2] = 2.0 * 8 * CHAINS * ITERS,
    [FMA_PLAIN] = 2.0 * 8 * CHAINS * ITERS,
    [DOT_BF16] = 4.0 * 16 * CHAINS * ITERS,
    [DOT_AMX] = 16384.0 * ITERS,
};

/* Runs `reps` blocks on every thread; returns the floating-point operations done. */
static double run_all(loop_t loop, long reps, volatile double *sink) {
    int threads = anv_threads_count();
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int t = 0; t < threads; t++) {
        double s;
#if defined(__x86_64__) && defined(__GNUC__)
        switch (loop) {
        case DOT_AMX:
            s = dot_amx(reps);
            break;
        case DOT_BF16:
            s = dot_bf16(reps);
            break;
        case FMA_AVX512:
            s = fma_avx512(reps);
            break;
        case FMA_AVX2:
            s = fma_avx2(reps);
            break;
        default:
            s = fma_plain(reps);
            break;
        }
#else
        s = fma_plain(reps);
#endif
        if (s == 12345.0) *sink = s; /* keeps the chains live */
    }
    return flops_per_rep[loop] * (double)reps * threads;
}

/* GFLOP/s of the loop: the best of 8 slices of about seconds / 8. */
static double measure(loop_t loop, double seconds) {
    volatile double sink = 0;
    run_all(loop, 1, &sink); /* wakes the threads and the wide units */
    long reps = 1;
    double t0 = anv_now(), dt = 0;
    while ((dt = anv_now() - t0) < seconds / 16 && reps < (1L << 16)) { /* sizes one slice: ~1/8 of the time */
        reps *= 2;
        t0 = anv_now();
        run_all(loop, reps, &sink);
    }
    /* The best of 8 slices: other work on a shared machine only ever slows a slice down. */
    double best = 0;
    for (int i = 0; i < 8; i++) {
        t0 = anv_now();
        double flops = run_all(loop, reps, &sink);
        dt = anv_now() - t0;
        best = flops / dt > best ? flops / dt : best;
    }
    return best / 1e9;
}

double anv_cpu_fma_peak(double seconds, int *vector_bits) {
    const char *isa = anv_cpu_isa();
    loop_t loop = !strcmp(isa, "avx512") ? FMA_AVX512 : !strcmp(isa, "avx2") ? FMA_AVX2 : FMA_PLAIN;
    if (vector_bits) *vector_bits = loop == FMA_AVX512 ? 512 : loop == FMA_AVX2 ? 256 : 0;
    return measure(loop, seconds);
}

double anv_cpu_bf16_peak(double seconds) {
    if (strcmp(anv_cpu_isa(), "avx512") != 0) return 0;
    switch (anv_cpu_bf16_engine()) {
    case ANV_BF16_ON_AMX:
        return measure(DOT_AMX, seconds);
    case ANV_BF16_ON_DOT:
        return measure(DOT_BF16, seconds);
    default:
        return 0;
    }
}

double anv_cpu_dot_over_fma(double seconds) {
    if (!anv_cpu_bf16_engine_has(ANV_BF16_ON_DOT)) return 0;
    double dot = measure(DOT_BF16, seconds / 2);
    return dot / measure(FMA_AVX512, seconds / 2);
}

double anv_cpu_precision_peak(anv_precision_t p, double fma_peak, double bf16_peak) {
    return p == ANV_PRECISION_BF16 && bf16_peak > fma_peak ? bf16_peak : fma_peak;
}

/* The machine's peaks, measured: every thread runs independent chains of fused multiply-adds on the
 * widest vectors the CPU has (AVX-512, else AVX2+FMA, else whatever the compiler makes of a plain
 * loop), or of bf16 dot products (vdpbf16ps, and AMX's tdpbf16ps where the bf16 GEMM uses it), enough
 * chains to cover the latency, for a fixed wall time. */
#include "anvil/base.h"
#include "anvil/kernels.h"
#include "kernels/cpu/gemm.h"

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

enum { BF16_DOT = -16, AMX_DOT = -1 }; /* `width` of the bf16 dot-product loops */

/* Runs `reps` blocks on every thread; returns the floating-point operations done (2 per FMA lane, 4 per
 * bf16 dot-product lane). */
static double run_all(int width, long reps, volatile double *sink) {
    int threads = anv_threads_count();
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int t = 0; t < threads; t++) {
        double s;
#if defined(__x86_64__) && defined(__GNUC__)
        if (width == AMX_DOT)
            s = dot_amx(reps);
        else if (width == BF16_DOT)
            s = dot_bf16(reps);
        else if (width == 16)
            s = fma_avx512(reps);
        else if (width == 8 && __builtin_cpu_supports("fma"))
            s = fma_avx2(reps);
        else
            s = fma_plain(reps);
#else
        s = fma_plain(reps);
#endif
        if (s == 12345.0) *sink = s; /* keeps the chains live */
    }
    if (width == AMX_DOT) return 16384.0 * ITERS * (double)reps * threads;
    double per_lane = width == BF16_DOT ? 4.0 : 2.0;
    return per_lane * (width < 0 ? -width : width) * CHAINS * (double)ITERS * (double)reps * threads;
}

/* GFLOP/s of the loop of this `width`: the best of 8 slices of about seconds / 8. */
static double measure(int width, double seconds) {
    volatile double sink = 0;
    run_all(width, 1, &sink); /* wakes the threads and the wide units */
    long reps = 1;
    double t0 = anv_now(), dt = 0;
    while ((dt = anv_now() - t0) < seconds / 16 && reps < (1L << 16)) { /* sizes one slice: ~1/8 of the time */
        reps *= 2;
        t0 = anv_now();
        run_all(width, reps, &sink);
    }
    /* The best of 8 slices: other work on a shared machine only ever slows a slice down. */
    double best = 0;
    for (int i = 0; i < 8; i++) {
        t0 = anv_now();
        double flops = run_all(width, reps, &sink);
        dt = anv_now() - t0;
        best = flops / dt > best ? flops / dt : best;
    }
    return best / 1e9;
}

double anv_cpu_fma_peak(double seconds, int *vector_bits) {
    int width = 8;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) width = 16;
#endif
    if (vector_bits) *vector_bits = 32 * width;
    return measure(width, seconds);
}

double anv_cpu_bf16_peak(double seconds) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (anv_cpu_amx()) return measure(AMX_DOT, seconds);
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16")) return measure(BF16_DOT, seconds);
#endif
    (void)seconds;
    return 0;
}

double anv_cpu_precision_peak(anv_precision_t p, double fma_peak, double bf16_peak) {
    return p == ANV_PRECISION_BF16 && bf16_peak > fma_peak ? bf16_peak : fma_peak;
}

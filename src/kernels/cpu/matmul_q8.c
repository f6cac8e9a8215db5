/* Linear layers with int8 weights (inference, --weights q8): the rows of inp are quantized in blocks of
 * 32 as the weights are, then each output is the sum over blocks of d_w d_x times an exact integer dot
 * product of 32 int8 pairs. Groups of four weight rows go to threads, each group read once for all the
 * rows of inp, and the four share each load of a quantized input row. */
#include "anvil/base.h"
#include "anvil/kernels.h"
#include "kernels/cpu/isa.h" /* the symbol names of this ISA's copy */

#include <math.h>
#if defined(ANVIL_ISA_AVX512) || defined(ANVIL_ISA_AVX2)
#include <immintrin.h>
#endif

enum { QB = ANV_Q8_BLOCK };

/* The calling thread's buffer for the quantized rows of inp: n int8 values and n / QB scales. */
static int8_t *quantized_buffer(size_t n, float **scales) {
    static _Thread_local int8_t *buffer;
    static _Thread_local size_t capacity;
    size_t bytes = n + n / QB * sizeof(float);
    if (bytes > capacity) {
        anv_free(buffer);
        buffer = anv_alloc(bytes, "q8 activations");
        capacity = buffer ? bytes : 0;
    }
    if (buffer) *scales = (float *)(buffer + n);
    return buffer;
}

void anv_quantize_q8(int8_t *q, float *d, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n >= (1u << 20))
    for (size_t b = 0; b < n / QB; b++) {
        const float *v = x + b * QB;
        float amax = 0.0f;
        for (int i = 0; i < QB; i++) amax = fabsf(v[i]) > amax ? fabsf(v[i]) : amax;
        float scale = amax / 127.0f, inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        d[b] = scale;
        for (int i = 0; i < QB; i++) q[b * QB + i] = (int8_t)lrintf(v[i] * inv);
    }
}

/* sum over the blocks of d_w[b] d_x[b] (w_b . x_b) for four weight rows w[0..3] against one x. */
static void dot4(float out[4], const int8_t *const w[4], const float *const dw[4], const int8_t *x, const float *dx,
                 int blocks) {
#if defined(ANVIL_ISA_AVX512)
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int b = 0; b < blocks; b++) {
        __m512i xv = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(x + (size_t)b * QB)));
        for (int r = 0; r < 4; r++) {
            __m512i wv = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(w[r] + (size_t)b * QB)));
            __m512 p = _mm512_cvtepi32_ps(_mm512_madd_epi16(wv, xv)); /* 16 exact sums of two products */
            acc[r] = _mm512_fmadd_ps(p, _mm512_set1_ps(dw[r][b] * dx[b]), acc[r]);
        }
    }
    for (int r = 0; r < 4; r++) out[r] = _mm512_reduce_add_ps(acc[r]);
#elif defined(ANVIL_ISA_AVX2)
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int b = 0; b < blocks; b++)
        for (int h = 0; h < 2; h++) {
            __m256i xv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(x + (size_t)b * QB + 16 * h)));
            for (int r = 0; r < 4; r++) {
                __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w[r] + (size_t)b * QB + 16 * h)));
                __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(wv, xv));
                acc[r] = _mm256_fmadd_ps(p, _mm256_set1_ps(dw[r][b] * dx[b]), acc[r]);
            }
        }
    for (int r = 0; r < 4; r++) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc[r]), _mm256_extractf128_ps(acc[r], 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        out[r] = _mm_cvtss_f32(s);
    }
#else
    for (int r = 0; r < 4; r++) {
        float sum = 0.0f;
        for (int b = 0; b < blocks; b++) {
            int32_t dot = 0;
            for (int i = 0; i < QB; i++) dot += (int32_t)w[r][(size_t)b * QB + i] * x[(size_t)b * QB + i];
            sum += (float)dot * (dw[r][b] * dx[b]);
        }
        out[r] = sum;
    }
#endif
}

void anv_matmul_q8_forward(float *out, const float *inp, const int8_t *wq, const float *wd, const float *bias, int N,
                           int IC, int OC) {
    int blocks = IC / QB;
    float *xd;
    int8_t *xq = quantized_buffer((size_t)N * IC, &xd);
    if (!xq) {
        anv_kernel_failed();
        return;
    }
    anv_quantize_q8(xq, xd, inp, (size_t)N * IC); /* rows of whole blocks: the same as row by row */
    int groups = (OC + 3) / 4;
#pragma omp parallel for schedule(static) collapse(2)
    for (int g = 0; g < groups; g++) /* a group's weights stay in L1 across the rows of inp */
        for (int n = 0; n < N; n++) {
            const int8_t *w[4];
            const float *dw[4];
            for (int r = 0; r < 4; r++) { /* past OC: the group's first row again, not stored */
                int o = 4 * g + r < OC ? 4 * g + r : 4 * g;
                w[r] = wq + (size_t)o * IC;
                dw[r] = wd + (size_t)o * blocks;
            }
            float sums[4];
            dot4(sums, w, dw, xq + (size_t)n * IC, xd + (size_t)n * blocks, blocks);
            for (int r = 0; r < 4 && 4 * g + r < OC; r++)
                out[(size_t)n * OC + 4 * g + r] = sums[r] + (bias ? bias[4 * g + r] : 0.0f);
        }
}

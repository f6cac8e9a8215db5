/* Vector kernels: fill, scale, scaled add, dropout, sum of squares. */
#include "anvil/kernels.h"
#include "kernels/cpu/isa.h" /* the symbol names of this ISA's copy */
#include "kernels/dropout_mask.h"

void anv_fill(float *x, float value, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) x[i] = value;
}

void anv_scale_into(float *dst, const float *src, float scale, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dst[i] = scale * src[i];
}

void anv_add_scaled(float *dst, const float *src, float scale, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dst[i] += scale * src[i];
}

void anv_dropout(float *out, const float *inp, size_t n, float p, uint64_t seed, int accumulate) {
    uint32_t threshold = anv_dropout_threshold(p);
    float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float v = anv_dropout_keep(seed, i, threshold) ? scale * inp[i] : 0.0f;
        out[i] = accumulate ? out[i] + v : v;
    }
}

/* Fixed chunks summed in double (8 lanes each), then the chunk sums in order: the same bits for any
 * thread count. */
double anv_sumsq(const float *x, size_t n) {
    enum { CHUNKS = 256 };
    double part[CHUNKS];
    size_t per = (n + CHUNKS - 1) / CHUNKS;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < CHUNKS; c++) {
        size_t a = (size_t)c * per, b = a + per < n ? a + per : n;
        double lane[8] = {0}; /* independent partial sums, so that the loop vectorises */
        size_t i = a;
        for (; i + 8 <= b; i += 8)
            for (int l = 0; l < 8; l++) lane[l] += (double)x[i + l] * x[i + l];
        double s = 0;
        for (; i < b; i++) s += (double)x[i] * x[i];
        for (int l = 0; l < 8; l++) s += lane[l];
        part[c] = s;
    }
    double total = 0;
    for (int c = 0; c < CHUNKS; c++) total += part[c];
    return total;
}

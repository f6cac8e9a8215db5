/* Linear layers with int8 weights (inference, --weights q8). pack_q8 lays each weight out in panels of
 * PANEL output rows, the layout of AVX-512 VNNI's vpdpbusd (16 int32 lanes, each summing 4 products of an
 * unsigned and a signed byte):
 *   panel p (rows 16p .. 16p + 15):  q[block][group of 4 inputs][row][4]  as w + 128 (unsigned)
 *                                    d[block][row]
 * the last panel as many rows wide as are left; the bytes are the same. The rows of
 * inp are quantized in blocks of 32 as the weights are, with their sums; then for every output
 *   acc = fma(w_b . x_b, d_w d_x, acc) over the blocks b in order,  w_b . x_b = (w_b + 128) . x_b - 128 sum x_b
 * an exact integer and the same fp32 steps on every instruction set and for any number of rows, so a prompt
 * run as one batch and token by token give the same bits. Threads take (panel, tile of rows) pairs; a
 * panel stays in L1 while its tiles of up to TILE rows go by. */
#include "anvil/base.h"
#include "anvil/kernels.h"
#include "kernels/cpu/isa.h" /* the symbol names of this ISA's copy */

#include <math.h>
#include <string.h>
#if defined(ANVIL_ISA_AVX512) || defined(ANVIL_ISA_AVX2)
#include <immintrin.h>
#endif

enum { QB = ANV_Q8_BLOCK, PANEL = 16, GROUPS = QB / 4, TILE = 8 };

/* The quantized rows of inp: q (N, IC), d and sums (N, IC / 32), in the calling thread's buffer. */
typedef struct {
    int8_t *q;
    float *d;
    int32_t *offset; /* -128 times the block's sum of q: what the unsigned weights add */
} rows_q8_t;

static int quantize_rows(rows_q8_t *x, const float *inp, size_t n) {
    static _Thread_local int8_t *buffer;
    static _Thread_local size_t capacity;
    size_t bytes = n + n / QB * (sizeof(float) + sizeof(int32_t));
    if (bytes > capacity) {
        anv_free(buffer);
        buffer = anv_alloc(bytes, "q8 activations");
        capacity = buffer ? bytes : 0;
    }
    if (!buffer) return -1;
    x->q = buffer;
    x->d = (float *)(buffer + n); /* n is a multiple of 32: aligned */
    x->offset = (int32_t *)(x->d + n / QB);
    anv_quantize_q8(x->q, x->d, inp, n);
#pragma omp parallel for schedule(static) if (n >= (1u << 16))
    for (size_t b = 0; b < n / QB; b++) {
        int32_t sum = 0;
        for (int i = 0; i < QB; i++) sum += x->q[b * QB + i];
        x->offset[b] = -128 * sum;
    }
    return 0;
}

/* Rounds to the nearest integer, ties to even (lrintf's rounding) for |x| < 2^22: adding 1.5 * 2^23 leaves
 * no fraction bits. Unlike lrintf it vectorises. */
static inline float round_even(float x) { return (x + 12582912.0f) - 12582912.0f; }

void anv_quantize_q8(int8_t *q, float *d, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n >= (1u << 16))
    for (size_t b = 0; b < n / QB; b++) {
        const float *v = x + b * QB;
        float amax[QB];
        for (int i = 0; i < QB; i++) amax[i] = fabsf(v[i]);
        for (int w = QB / 2; w > 0; w /= 2) /* a tree of vmaxps: the same maximum as a loop's */
            for (int i = 0; i < w; i++) amax[i] = amax[i + w] > amax[i] ? amax[i + w] : amax[i];
        float scale = amax[0] / 127.0f, inv = amax[0] > 0.0f ? 127.0f / amax[0] : 0.0f;
        d[b] = scale;
        for (int i = 0; i < QB; i++) q[b * QB + i] = (int8_t)(int32_t)round_even(v[i] * inv);
    }
}

/* The rows of panel p. */
static int panel_rows(int p, int OC) { return OC - p * PANEL < PANEL ? OC - p * PANEL : PANEL; }

void anv_pack_q8(int8_t *wq, float *wd, int IC, int OC) {
    int blocks = IC / QB, panels = (OC + PANEL - 1) / PANEL;
    size_t panel_bytes = (size_t)PANEL * IC, panel_floats = (size_t)PANEL * blocks;
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        uint8_t *q = anv_alloc(panel_bytes + panel_floats * sizeof(float), "q8 panel");
        float *d = (float *)(q + panel_bytes);
        failed = !q;
#pragma omp for schedule(static)
        for (int p = 0; p < panels; p++) {
            if (!q) continue;
            int lanes = panel_rows(p, OC);
            int8_t *rows = wq + (size_t)p * panel_bytes;
            float *scales = wd + (size_t)p * panel_floats;
            for (int b = 0; b < blocks; b++)
                for (int g = 0; g < GROUPS; g++)
                    for (int r = 0; r < lanes; r++)
                        for (int i = 0; i < 4; i++)
                            q[(((size_t)b * GROUPS + g) * lanes + r) * 4 + i] =
                                (uint8_t)(rows[(size_t)r * IC + b * QB + g * 4 + i] + 128);
            for (int b = 0; b < blocks; b++)
                for (int r = 0; r < lanes; r++) d[b * lanes + r] = scales[(size_t)r * blocks + b];
            memcpy(rows, q, (size_t)lanes * IC);
            memcpy(scales, d, (size_t)lanes * blocks * sizeof(float));
        }
        anv_free(q);
    }
    if (failed) anv_kernel_failed();
}

/* out[r][0..lanes) = a panel of that many rows (q, d) against rows r < R of x (x.q, x.d, x.offset at the tile's
 * first row). */
static void tile_portable(float *out, size_t ldo, const uint8_t *q, const float *d, int lanes, const rows_q8_t *x,
                          int R, int IC) {
    int blocks = IC / QB;
    for (int r = 0; r < R; r++) {
        const int8_t *xq = x->q + (size_t)r * IC;
        float acc[PANEL] = {0};
        for (int b = 0; b < blocks; b++) {
            int32_t dot[PANEL];
            for (int j = 0; j < lanes; j++) dot[j] = x->offset[(size_t)r * blocks + b];
            for (int g = 0; g < GROUPS; g++)
                for (int j = 0; j < lanes; j++)
                    for (int i = 0; i < 4; i++)
                        dot[j] += q[(((size_t)b * GROUPS + g) * lanes + j) * 4 + i] * xq[b * QB + g * 4 + i];
            float dx = x->d[(size_t)r * blocks + b];
            for (int j = 0; j < lanes; j++) acc[j] = fmaf((float)dot[j], d[b * lanes + j] * dx, acc[j]);
        }
        memcpy(out + (size_t)r * ldo, acc, (size_t)lanes * sizeof(float));
    }
}

#if defined(ANVIL_ISA_AVX512)
/* tile_portable for a whole panel on vpdpbusd; R a constant where inlined. */
__attribute__((target("avx512vnni"), always_inline)) static inline void
tile_vnni_rows(float *out, size_t ldo, const uint8_t *q, const float *d, const rows_q8_t *x, const int R, int IC) {
    int blocks = IC / QB;
    __m512 acc[TILE];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    for (int b = 0; b < blocks; b++) {
        __m512i dot[TILE];
        for (int r = 0; r < R; r++) dot[r] = _mm512_set1_epi32(x->offset[(size_t)r * blocks + b]);
        for (int g = 0; g < GROUPS; g++) {
            __m512i w = _mm512_loadu_si512(q + ((size_t)b * GROUPS + g) * PANEL * 4);
            for (int r = 0; r < R; r++) {
                int32_t four;
                memcpy(&four, x->q + (size_t)r * IC + b * QB + g * 4, 4);
                dot[r] = _mm512_dpbusd_epi32(dot[r], w, _mm512_set1_epi32(four));
            }
        }
        __m512 dw = _mm512_loadu_ps(d + b * PANEL);
        for (int r = 0; r < R; r++) {
            __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(x->d[(size_t)r * blocks + b]));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[r]), scale, acc[r]);
        }
    }
    for (int r = 0; r < R; r++) _mm512_storeu_ps(out + (size_t)r * ldo, acc[r]);
}

__attribute__((target("avx512vnni"))) static void tile_vnni(float *out, size_t ldo, const uint8_t *q, const float *d,
                                                            const rows_q8_t *x, int R, int IC) {
    switch (R) {
#define ROWS(n)                                                                                                        \
    case n:                                                                                                            \
        tile_vnni_rows(out, ldo, q, d, x, n, IC);                                                                      \
        break;
        ROWS(1) ROWS(2) ROWS(3) ROWS(4) ROWS(5) ROWS(6) ROWS(7) ROWS(8)
#undef ROWS
    }
}

static int have_vnni(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni");
}
#endif

#if defined(ANVIL_ISA_AVX2)
/* tile_portable on AVX2, which has no vpdpbusd: w . x as vpmaddubsw of |w| (unsigned) and x with w's sign,
 * then vpmaddwd with ones. The weights are stored as w + 128, so w is that xor 0x80; |w| <= 128 and
 * |x| <= 127 keep each pair's sum within int16, so the integer is exact and no offset is needed. The
 * panel's 16 lanes are two registers; R a constant where inlined. */
enum { TILE_AVX2 = 4 };
__attribute__((always_inline)) static inline void
tile_avx2_rows(float *out, size_t ldo, const uint8_t *q, const float *d, const rows_q8_t *x, const int R, int IC) {
    int blocks = IC / QB;
    const __m256i flip = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi16(1);
    __m256 acc[TILE_AVX2][2];
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int b = 0; b < blocks; b++) {
        __m256i dot[TILE_AVX2][2];
        for (int r = 0; r < R; r++) dot[r][0] = dot[r][1] = _mm256_setzero_si256();
        for (int g = 0; g < GROUPS; g++) {
            __m256i w[2], magnitude[2];
            for (int h = 0; h < 2; h++) {
                w[h] = _mm256_xor_si256(
                    _mm256_loadu_si256((const __m256i *)(q + (((size_t)b * GROUPS + g) * PANEL + 8 * h) * 4)), flip);
                magnitude[h] = _mm256_abs_epi8(w[h]);
            }
            for (int r = 0; r < R; r++) {
                int32_t four;
                memcpy(&four, x->q + (size_t)r * IC + b * QB + g * 4, 4);
                __m256i xv = _mm256_set1_epi32(four);
                for (int h = 0; h < 2; h++) {
                    __m256i pairs = _mm256_maddubs_epi16(magnitude[h], _mm256_sign_epi8(xv, w[h]));
                    dot[r][h] = _mm256_add_epi32(dot[r][h], _mm256_madd_epi16(pairs, ones));
                }
            }
        }
        for (int r = 0; r < R; r++) {
            __m256 dx = _mm256_set1_ps(x->d[(size_t)r * blocks + b]);
            for (int h = 0; h < 2; h++) {
                __m256 scale = _mm256_mul_ps(_mm256_loadu_ps(d + b * PANEL + 8 * h), dx);
                acc[r][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[r][h]), scale, acc[r][h]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int h = 0; h < 2; h++) _mm256_storeu_ps(out + (size_t)r * ldo + 8 * h, acc[r][h]);
}

static void tile_avx2(float *out, size_t ldo, const uint8_t *q, const float *d, const rows_q8_t *x, int R, int IC) {
    int blocks = IC / QB;
    for (int r0 = 0; r0 < R; r0 += TILE_AVX2) {
        rows_q8_t at = {x->q + (size_t)r0 * IC, x->d + (size_t)r0 * blocks, NULL};
        float *o = out + (size_t)r0 * ldo;
        switch (R - r0 < TILE_AVX2 ? R - r0 : TILE_AVX2) {
#define ROWS(n)                                                                                                        \
    case n:                                                                                                            \
        tile_avx2_rows(o, ldo, q, d, &at, n, IC);                                                                      \
        break;
            ROWS(1) ROWS(2) ROWS(3) ROWS(4)
#undef ROWS
        }
    }
}
#endif

/* The outputs of a panel of `lanes` rows for rows n .. n + R of x: a whole panel on the ISA's tile. */
static void tile(float *out, size_t ldo, const uint8_t *q, const float *d, int lanes, const rows_q8_t *x, int R, int IC,
                 int vnni) {
    if (lanes < PANEL) {
        tile_portable(out, ldo, q, d, lanes, x, R, IC);
        return;
    }
#if defined(ANVIL_ISA_AVX512)
    if (vnni) {
        tile_vnni(out, ldo, q, d, x, R, IC);
        return;
    }
#endif
    (void)vnni;
#if defined(ANVIL_ISA_AVX2)
    tile_avx2(out, ldo, q, d, x, R, IC);
#else
    tile_portable(out, ldo, q, d, PANEL, x, R, IC);
#endif
}

void anv_matmul_q8_forward(float *out, const float *inp, const int8_t *wq, const float *wd, const float *bias, int N,
                           int IC, int OC) {
    int blocks = IC / QB, panels = (OC + PANEL - 1) / PANEL, tiles = (N + TILE - 1) / TILE;
    rows_q8_t x;
    if (quantize_rows(&x, inp, (size_t)N * IC) != 0) {
        anv_kernel_failed();
        return;
    }
#if defined(ANVIL_ISA_AVX512)
    int vnni = have_vnni();
#else
    const int vnni = 0;
#endif
    const uint8_t *packed = (const uint8_t *)wq;
#pragma omp parallel for schedule(static) collapse(2)
    for (int p = 0; p < panels; p++)
        for (int t = 0; t < tiles; t++) {
            int n = t * TILE, R = N - n < TILE ? N - n : TILE, lanes = panel_rows(p, OC);
            rows_q8_t at = {x.q + (size_t)n * IC, x.d + (size_t)n * blocks, x.offset + (size_t)n * blocks};
            float sums[TILE][PANEL];
            tile(sums[0], PANEL, packed + (size_t)p * PANEL * IC, wd + (size_t)p * PANEL * blocks, lanes, &at, R, IC,
                 vnni);
            for (int r = 0; r < R; r++)
                for (int j = 0; j < lanes; j++)
                    out[(size_t)(n + r) * OC + p * PANEL + j] = sums[r][j] + (bias ? bias[p * PANEL + j] : 0.0f);
        }
}

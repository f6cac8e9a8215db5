/* Random numbers, hashing, logging, clocks and the thread count. */
#include "anvil/base.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

uint64_t anv_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t splitmix64(uint64_t *x) { return anv_mix64(*x += 0x9E3779B97F4A7C15ull); }

void anv_rng_seed(anv_rng_t *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t anv_rng_u64(anv_rng_t *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double anv_rng_uniform(anv_rng_t *r) { return (anv_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

double anv_rng_normal(anv_rng_t *r) {
    double u1 = 1.0 - anv_rng_uniform(r); /* (0, 1]: log is finite */
    double u2 = anv_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t anv_hash64(const void *data, size_t n, uint64_t seed) {
    const unsigned char *p = data;
    uint64_t h = 0xCBF29CE484222325ull ^ seed;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = (uint64_t)p[i] | (uint64_t)p[i + 1] << 8 | (uint64_t)p[i + 2] << 16 | (uint64_t)p[i + 3] << 24 |
                     (uint64_t)p[i + 4] << 32 | (uint64_t)p[i + 5] << 40 | (uint64_t)p[i + 6] << 48 |
                     (uint64_t)p[i + 7] << 56;
        h = (h ^ w) * 0x100000001B3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++) h = (h ^ p[i]) * 0x100000001B3ull;
    h ^= n;
    return splitmix64(&h);
}

static anv_log_level_t log_level = ANV_LOG_INFO;

void anv_log_set_level(anv_log_level_t level) { log_level = level; }

void anv_log(anv_log_level_t level, const char *fmt, ...) {
    if (level < log_level) return;
    va_list ap;
    va_start(ap, fmt);
    if (level == ANV_LOG_WARN) fputs("warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

double anv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void anv_threads_set(int n) {
#ifdef _OPENMP
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

int anv_threads_count(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int anv_thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int anv_parallel_for(size_t n, int threads, int (*body)(void *ctx, size_t i, int thread), void *ctx) {
    if (threads <= 0) threads = anv_threads_count();
    /* an error raised on a worker lives in that thread's error slot: the first one is kept to re-raise */
    char first_error[1024] = "";
    int failed = 0;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
#endif
    for (size_t i = 0; i < n; i++) {
        int stop;
#ifdef _OPENMP
#pragma omp atomic read
#endif
        stop = failed;
        if (stop || body(ctx, i, anv_thread_id()) == 0) continue;
#ifdef _OPENMP
#pragma omp critical(anv_parallel_for_error)
#endif
        if (!first_error[0]) snprintf(first_error, sizeof first_error, "%s", anv_last_error());
#ifdef _OPENMP
#pragma omp atomic write
#endif
        failed = 1;
    }
    return failed ? anv_error("%s", first_error) : 0;
}

int anv_secret_equal(const char *given, const char *secret) {
    size_t n = strlen(given), k = strlen(secret);
    unsigned diff = n != k;
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)given[i] ^ (unsigned char)secret[i < k ? i : 0];
    return diff == 0;
}

void anv_transpose(float *dst, const float *src, size_t rows, size_t cols) {
    enum { TILE = 32 };
    for (size_t r0 = 0; r0 < rows; r0 += TILE)
        for (size_t c0 = 0; c0 < cols; c0 += TILE)
            for (size_t r = r0; r < r0 + TILE && r < rows; r++)
                for (size_t c = c0; c < c0 + TILE && c < cols; c++) dst[r * cols + c] = src[c * rows + r];
}

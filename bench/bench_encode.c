/* GPT-2 encoding throughput: bench_encode TOKENIZER RUNS THREADS FILE...
 * Encodes every file as one document with anv_tokenizer_encode_batch on THREADS threads (0: all
 * cores), RUNS times, and prints the median: "anvil threads=T MB/s=X tokens/s=Y tokens=N bytes=B".
 * Each run starts from a fresh tokenizer so the per-thread pre-token cache starts cold. */
#include "anvil/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: bench_encode TOKENIZER RUNS THREADS FILE...\n");
        return 2;
    }
    int runs = atoi(argv[2]), threads = atoi(argv[3]);
    size_t n = (size_t)(argc - 4), bytes = 0;
    if (runs < 1) runs = 1;
    if (threads <= 0) threads = anv_threads_count();
    char **texts = calloc(n, sizeof *texts);
    size_t *lens = calloc(n, sizeof *lens);
    anv_tokens_t *outs = calloc(n, sizeof *outs);
    double *secs = calloc((size_t)runs, sizeof *secs);
    if (!texts || !lens || !outs || !secs) return 1;
    for (size_t i = 0; i < n; i++) {
        if (anv_read_file(argv[4 + i], &texts[i], &lens[i]) != 0) {
            fprintf(stderr, "bench_encode: %s\n", anv_last_error());
            return 1;
        }
        bytes += lens[i];
    }
    size_t tokens = 0;
    for (int r = 0; r < runs; r++) {
        anv_tokenizer_t *t;
        if (anv_tokenizer_load(argv[1], &t) != 0) {
            fprintf(stderr, "bench_encode: %s\n", anv_last_error());
            return 1;
        }
        for (size_t i = 0; i < n; i++) outs[i].len = 0;
        double t0 = anv_now();
        if (anv_tokenizer_encode_batch(t, (const char *const *)texts, lens, n, outs, threads) != 0) {
            fprintf(stderr, "bench_encode: %s\n", anv_last_error());
            return 1;
        }
        secs[r] = anv_now() - t0;
        tokens = 0;
        for (size_t i = 0; i < n; i++) tokens += outs[i].len;
        anv_tokenizer_free(t);
    }
    qsort(secs, (size_t)runs, sizeof *secs, cmp_double);
    double med = secs[runs / 2];
    printf("anvil threads=%d MB/s=%.2f tokens/s=%.0f tokens=%zu bytes=%zu runs=%d\n", threads, bytes / med / 1e6,
           tokens / med, tokens, bytes, runs);
    for (size_t i = 0; i < n; i++) {
        anv_free(texts[i]);
        anv_tokens_free(&outs[i]);
    }
    free(texts);
    free(lens);
    free(outs);
    free(secs);
    return 0;
}

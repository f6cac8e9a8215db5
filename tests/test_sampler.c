/* Sampler: greedy, seeded reproducibility, frequencies against softmax, top-k and top-p support. */
#include "anvil/sampler.h"
#include "check.h"

#include <string.h>

#define V 6

int main(void) {
    const float logits[V] = {1.0f, 2.0f, 0.5f, 3.0f, -1.0f, 2.5f};
    anv_sampler_t s;
    anv_sampler_config_t greedy = {0, 0, 1, 1};
    CHECK(anv_sampler_init(&s, &greedy, V) == 0, "init");
    CHECK(anv_sampler_next(&s, logits) == 3, "temperature 0 picks the argmax");
    anv_sampler_free(&s);

    /* Temperature 0.7: empirical frequencies vs softmax(logits / 0.7) over 200k draws. */
    anv_sampler_config_t c = {0.7f, 0, 1, 42};
    anv_sampler_init(&s, &c, V);
    int counts[V] = {0}, N = 200000;
    for (int i = 0; i < N; i++) counts[anv_sampler_next(&s, logits)]++;
    double z = 0, p[V], maxdiff = 0;
    for (int i = 0; i < V; i++) z += p[i] = exp(logits[i] / 0.7);
    for (int i = 0; i < V; i++) {
        double d = fabs(counts[i] / (double)N - p[i] / z);
        maxdiff = d > maxdiff ? d : maxdiff;
    }
    printf("sampler: T=0.7 frequencies vs softmax, max abs diff %.5f over %d draws\n", maxdiff, N);
    CHECK(maxdiff < 0.005, "frequencies match softmax: %g", maxdiff);
    anv_sampler_free(&s);

    /* Same seed, same stream. */
    anv_sampler_t a, b;
    anv_sampler_init(&a, &c, V);
    anv_sampler_init(&b, &c, V);
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= anv_sampler_next(&a, logits) == anv_sampler_next(&b, logits);
    CHECK(same, "same seed gives the same samples");
    anv_sampler_free(&a);
    anv_sampler_free(&b);

    /* top-k 2 only ever yields ids 3 and 5; the ratio follows their softmax ratio. */
    anv_sampler_config_t k2 = {1, 2, 1, 3};
    anv_sampler_init(&s, &k2, V);
    int only = 1, n3 = 0;
    for (int i = 0; i < 20000; i++) {
        int t = anv_sampler_next(&s, logits);
        only &= t == 3 || t == 5;
        n3 += t == 3;
    }
    double want3 = exp(3.0) / (exp(3.0) + exp(2.5));
    printf("sampler: top-k 2 share of id 3 %.4f (expected %.4f)\n", n3 / 20000.0, want3);
    CHECK(only && fabs(n3 / 20000.0 - want3) < 0.015, "top-k restricts support");
    anv_sampler_free(&s);

    /* top-p: probabilities at T=1 are about .41 (id 3), .25 (5), .15 (1), ... ; p=0.6 keeps {3, 5}. */
    anv_sampler_config_t p6 = {1, 0, 0.6f, 4};
    anv_sampler_init(&s, &p6, V);
    only = 1;
    int seen5 = 0;
    for (int i = 0; i < 20000; i++) {
        int t = anv_sampler_next(&s, logits);
        only &= t == 3 || t == 5;
        seen5 |= t == 5;
    }
    CHECK(only && seen5, "top-p 0.6 keeps exactly the two most likely ids");
    anv_sampler_free(&s);

    /* top-k over a large vocabulary (quickselect path): every draw is among the 50 largest logits,
     * and all 50 get drawn at temperature 5. */
    enum { BIGV = 5000, K = 50 };
    static float big[BIGV], sorted[BIGV];
    anv_rng_t r;
    anv_rng_seed(&r, 11);
    for (int i = 0; i < BIGV; i++) sorted[i] = big[i] = (float)anv_rng_normal(&r);
    for (int i = 1; i < BIGV; i++) /* insertion sort, descending */
        for (int j = i; j > 0 && sorted[j] > sorted[j - 1]; j--) {
            float t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    anv_sampler_config_t kbig = {5, K, 1, 8};
    anv_sampler_init(&s, &kbig, BIGV);
    static int hit[BIGV];
    int inside = 1, distinct = 0;
    for (int i = 0; i < 20000; i++) {
        int t = anv_sampler_next(&s, big);
        inside &= big[t] >= sorted[K - 1];
        distinct += !hit[t];
        hit[t] = 1;
    }
    printf("sampler: top-k %d of %d: %d distinct ids drawn, all within the top %d\n", K, BIGV, distinct, K);
    CHECK(inside && distinct == K, "top-k selection over a large vocabulary (%d distinct)", distinct);
    anv_sampler_free(&s);

    anv_sampler_config_t bad = {-1, 0, 1, 0};
    CHECK(anv_sampler_init(&s, &bad, V) != 0 && strstr(anv_last_error(), "temperature"), "negative temperature");
    anv_sampler_config_t badp = {1, 0, 0, 0};
    CHECK(anv_sampler_init(&s, &badp, V) != 0 && strstr(anv_last_error(), "top-p"), "top-p 0 rejected");

    /* UTF-8 streaming: "é" (C3 A9) and "😀" (F0 9F 98 80) split across tokens are held back. */
    const unsigned char text[] = {'a', 0xC3, 0xA9, 'b', 0xF0, 0x9F, 0x98, 0x80};
    size_t want[] = {0, 1, 1, 3, 4, 4, 4, 4, 8}; /* ready bytes after the first n bytes arrived */
    int utf8_ok = 1;
    for (size_t n = 0; n <= sizeof text; n++) utf8_ok &= anv_utf8_ready(text, n) == want[n];
    CHECK(utf8_ok, "split UTF-8 characters are held until complete");
    const unsigned char junk[] = {'x', 0x80, 0xFF};
    CHECK(anv_utf8_ready(junk, 3) == 3 && anv_utf8_ready(junk, 2) == 2, "invalid bytes pass through");
    printf("sampler: UTF-8 streaming boundaries checked for every prefix of a 2- and 4-byte character\n");
    return check_done("test_sampler");
}

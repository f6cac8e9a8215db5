/* MinHash near-duplicates: planted near-copies at exactly measured Jaccard similarities of their word
 * 5-gram sets. Recall at J >= 0.85 must be at least 95%, false positives at J <= 0.5 at most 0.5%, and
 * no document may join another pair's cluster; the measured detection curve is printed next to the
 * chance that a pair becomes a candidate, 1 - (1 - s^8)^14 (detection also needs an estimated J of 0.8,
 * so below that the measured curve falls faster). */
#include "anvil/minhash.h"
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WORDS 300
#define PAIRS 3000

static uint64_t rng_state = 42;
static uint32_t rnd(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

static size_t render(const uint32_t *ids, size_t n, char *out) {
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += (size_t)sprintf(out + len, "%sw%u", i ? " " : "", ids[i]);
    return len;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The exact Jaccard similarity of the two documents' sets of word 5-grams. */
static double jaccard(const uint32_t *a, const uint32_t *b, size_t n) {
    size_t m = n - ANV_MINHASH_NGRAM + 1;
    uint64_t *sa = malloc(m * sizeof *sa), *sb = malloc(m * sizeof *sb);
    for (size_t i = 0; i < m; i++) {
        sa[i] = anv_hash64(a + i, ANV_MINHASH_NGRAM * sizeof *a, 1);
        sb[i] = anv_hash64(b + i, ANV_MINHASH_NGRAM * sizeof *b, 1);
    }
    qsort(sa, m, sizeof *sa, cmp_u64);
    qsort(sb, m, sizeof *sb, cmp_u64);
    size_t i = 0, j = 0, both = 0, either = 0;
    while (i < m || j < m) {
        uint64_t x = i < m ? sa[i] : UINT64_MAX, y = j < m ? sb[j] : UINT64_MAX;
        either++;
        if (x == y) both++;
        if (x <= y) do
                i++;
            while (i < m && sa[i] == x);
        if (y <= x) do
                j++;
            while (j < m && sb[j] == y);
    }
    free(sa);
    free(sb);
    return (double)both / (double)either;
}

static void test_signatures(void) {
    anv_minhash_t a, b, c;
    anv_minhash_sign("The quick brown fox jumps over the lazy dog", 43, &a);
    anv_minhash_sign("the QUICK brown fox, jumps over... the lazy dog!", 48, &b);
    CHECK(!a.empty && anv_minhash_similarity(&a, &b) == 1.0, "case and punctuation do not change a signature");
    anv_minhash_sign("the quick brown fox jumps over the lazy cat", 43, &c);
    double s = anv_minhash_similarity(&a, &c);
    /* 5 shingles each, 4 shared: J = 4/6 */
    printf("one word changed at the end of 9: estimated J %.3f (exact 0.667)\n", s);
    CHECK(s > 0.5 && s < 0.8, "estimate of J = 2/3");
    anv_minhash_sign(" ... !!", 7, &c);
    CHECK(c.empty, "no words: empty");
    anv_minhash_sign("short text", 10, &c);
    anv_minhash_sign("SHORT text", 10, &b);
    CHECK(!c.empty && anv_minhash_similarity(&b, &c) == 1.0, "under 5 words: one shingle of all of them");
}

static void test_planted(void) {
    anv_neardup_t *d;
    CHECK(anv_neardup_init(0.8, &d) == 0, "index");
    uint32_t orig[WORDS], copy[WORDS];
    char *text = malloc(WORDS * 12);
    double *j = malloc(PAIRS * sizeof *j);
    anv_minhash_t sig;
    for (int p = 0; p < PAIRS; p++) {
        for (int i = 0; i < WORDS; i++) orig[i] = rnd() & 0xFFFFFF;
        memcpy(copy, orig, sizeof copy);
        int changes = (int)(p % 2 ? rnd() % 12 : rnd() % 45); /* half of them close copies */
        for (int k = 0; k < changes; k++) copy[rnd() % WORDS] = rnd() & 0xFFFFFF;
        j[p] = jaccard(orig, copy, WORDS);
        anv_minhash_sign(text, render(orig, WORDS, text), &sig);
        if (anv_neardup_add(d, &sig) != 0) CHECK(0, "add: %s", anv_last_error());
        anv_minhash_sign(text, render(copy, WORDS, text), &sig);
        if (anv_neardup_add(d, &sig) != 0) CHECK(0, "add: %s", anv_last_error());
    }
    CHECK(anv_neardup_count(d) == 2 * PAIRS, "every document added");
    int bins[21] = {0}, found[21] = {0}, high = 0, high_found = 0, low = 0, low_found = 0, strays = 0;
    for (int p = 0; p < PAIRS; p++) {
        double sim;
        uint64_t head_orig = anv_neardup_keeper(d, 2 * (uint64_t)p, NULL);
        uint64_t head_copy = anv_neardup_keeper(d, 2 * (uint64_t)p + 1, &sim);
        int detected = head_copy == 2 * (uint64_t)p;
        strays += head_orig != 2 * (uint64_t)p || (!detected && head_copy != 2 * (uint64_t)p + 1);
        int bin = (int)(j[p] * 20);
        bins[bin]++;
        found[bin] += detected;
        if (j[p] >= 0.85) high++, high_found += detected;
        if (j[p] <= 0.5) low++, low_found += detected;
    }
    printf("near-duplicate detection, %d planted pairs of %d-word documents:\n", PAIRS, WORDS);
    printf("  exact J      pairs  detected   candidate chance 1-(1-s^8)^14 at the bin's middle\n");
    for (int b = 0; b <= 20; b++) {
        if (!bins[b]) continue;
        double mid = b == 20 ? 1.0 : (b + 0.5) / 20;
        printf("  %.2f-%.2f  %6d    %6.3f   %6.3f\n", b / 20.0, b == 20 ? 1.0 : (b + 1) / 20.0, bins[b],
               (double)found[b] / bins[b], 1 - pow(1 - pow(mid, 8), 14));
    }
    double recall = (double)high_found / high, fp = low ? (double)low_found / low : 0;
    printf("  recall at J >= 0.85: %.4f (%d of %d); false positives at J <= 0.5: %.4f (%d of %d); "
           "documents in another pair's cluster: %d\n",
           recall, high_found, high, fp, low_found, low, strays);
    CHECK(high >= 500 && low >= 500, "both ends of the similarity range are covered");
    CHECK(recall >= 0.95, "recall at J >= 0.85 is at least 95%%");
    CHECK(fp <= 0.005, "false positives at J <= 0.5 are at most 0.5%%");
    CHECK(strays == 0, "no document joins an unrelated pair");
    anv_neardup_free(d);
    free(text);
    free(j);
}

int main(void) {
    test_signatures();
    test_planted();
    return check_done("test_minhash");
}

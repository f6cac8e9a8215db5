/* MinHash signatures and their LSH index with clusters (union-find). See anvil/minhash.h. */
#include "anvil/minhash.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define SIG_BYTES (ANV_MINHASH_HASHES * sizeof(uint32_t))

static int is_word_byte(unsigned char c) {
    return c >= 0x80 || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

/* Folds one shingle (the hashes of its words, oldest first) into the signature. The 112 functions
 * are multiply-shift hashes of the shingle's 64-bit hash, with fixed odd multipliers. */
static void add_shingle(uint32_t *h, const uint64_t *window, size_t first, size_t n, const uint64_t *a,
                        const uint64_t *b) {
    uint64_t s = 0;
    for (size_t k = 0; k < n; k++) s = anv_mix64(s ^ window[(first + k) % ANV_MINHASH_NGRAM]);
    for (int i = 0; i < ANV_MINHASH_HASHES; i++) {
        uint32_t v = (uint32_t)((a[i] * s + b[i]) >> 32);
        h[i] = v < h[i] ? v : h[i];
    }
}

void anv_minhash_sign(const char *text, size_t len, anv_minhash_t *sig) {
    uint64_t a[ANV_MINHASH_HASHES], b[ANV_MINHASH_HASHES], window[ANV_MINHASH_NGRAM];
    for (int i = 0; i < ANV_MINHASH_HASHES; i++) {
        a[i] = anv_mix64(0x6d696e68617368ull + 2 * (uint64_t)i) | 1;
        b[i] = anv_mix64(0x6d696e68617368ull + 2 * (uint64_t)i + 1);
        sig->h[i] = UINT32_MAX;
    }
    const unsigned char *s = (const unsigned char *)text;
    size_t words = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && !is_word_byte(s[i])) i++;
        if (i == len) break;
        uint64_t w = 0xcbf29ce484222325ull; /* FNV-1a of the lowercased word */
        for (; i < len && is_word_byte(s[i]); i++)
            w = (w ^ (s[i] >= 'A' && s[i] <= 'Z' ? s[i] | 0x20 : s[i])) * 0x100000001b3ull;
        window[words % ANV_MINHASH_NGRAM] = anv_mix64(w);
        words++;
        if (words >= ANV_MINHASH_NGRAM) add_shingle(sig->h, window, words - ANV_MINHASH_NGRAM, ANV_MINHASH_NGRAM, a, b);
    }
    if (words > 0 && words < ANV_MINHASH_NGRAM) add_shingle(sig->h, window, 0, words, a, b);
    sig->empty = words == 0;
}

double anv_minhash_similarity(const anv_minhash_t *x, const anv_minhash_t *y) {
    int same = 0;
    for (int i = 0; i < ANV_MINHASH_HASHES; i++) same += x->h[i] == y->h[i];
    return (double)same / ANV_MINHASH_HASHES;
}

/* ---- the index ---- */

struct anv_neardup {
    double threshold;
    uint64_t n, cap;
    uint32_t *parent; /* union-find: the smaller id is the root, so a root is its cluster's first */
    float *similarity;
    /* band buckets: one open-addressing table for all bands; an entry is (fingerprint << 32) | (id + 1),
     * the fingerprint the upper half of the band's hash (which also picks the slot); 0 is empty */
    uint64_t *table;
    uint64_t table_cap, table_n;
    FILE *sigs; /* signature i at byte i * SIG_BYTES */
    int unflushed;
};

int anv_neardup_init(double threshold, anv_neardup_t **out) {
    *out = NULL;
    anv_neardup_t *d = anv_calloc(sizeof *d, "near-duplicate index");
    if (!d) return -1;
    d->threshold = threshold;
    d->table_cap = 1 << 16;
    if (!(d->table = anv_calloc(d->table_cap * sizeof *d->table, "near-duplicate index"))) {
        anv_neardup_free(d);
        return -1;
    }
    if (!(d->sigs = tmpfile())) {
        int e = errno;
        anv_neardup_free(d);
        return anv_error("near-duplicates: cannot create a temporary file for signatures: %s", strerror(e));
    }
    *out = d;
    return 0;
}

void anv_neardup_free(anv_neardup_t *d) {
    if (!d) return;
    if (d->sigs) fclose(d->sigs);
    anv_free(d->parent);
    anv_free(d->similarity);
    anv_free(d->table);
    anv_free(d);
}

uint64_t anv_neardup_count(const anv_neardup_t *d) { return d->n; }

static uint64_t find(anv_neardup_t *d, uint64_t x) {
    while (d->parent[x] != x) {
        d->parent[x] = d->parent[d->parent[x]];
        x = d->parent[x];
    }
    return x;
}

static void join(anv_neardup_t *d, uint64_t x, uint64_t y, double s) {
    uint64_t rx = find(d, x), ry = find(d, y);
    if (rx < ry)
        d->parent[ry] = (uint32_t)rx;
    else if (ry < rx)
        d->parent[rx] = (uint32_t)ry;
    if (s > d->similarity[x]) d->similarity[x] = (float)s;
    if (s > d->similarity[y]) d->similarity[y] = (float)s;
}

static uint64_t *slot(uint64_t *table, uint64_t cap, uint32_t fp) {
    uint64_t j = anv_mix64(fp) & (cap - 1);
    while (table[j] && (uint32_t)(table[j] >> 32) != fp) j = (j + 1) & (cap - 1);
    return &table[j];
}

static int grow_table(anv_neardup_t *d) {
    uint64_t cap = d->table_cap * 2;
    uint64_t *t = anv_calloc(cap * sizeof *t, "near-duplicate index");
    if (!t) return -1;
    for (uint64_t i = 0; i < d->table_cap; i++)
        if (d->table[i]) *slot(t, cap, (uint32_t)(d->table[i] >> 32)) = d->table[i];
    anv_free(d->table);
    d->table = t;
    d->table_cap = cap;
    return 0;
}

static int read_signature(anv_neardup_t *d, uint64_t id, anv_minhash_t *sig) {
    if (d->unflushed && fflush(d->sigs) != 0)
        return anv_error("near-duplicates: cannot write signatures to a temporary file: %s", strerror(errno));
    d->unflushed = 0;
    if (pread(fileno(d->sigs), sig->h, SIG_BYTES, (off_t)(id * SIG_BYTES)) != (ssize_t)SIG_BYTES)
        return anv_error("near-duplicates: cannot read back signature %llu: %s", (unsigned long long)id,
                         strerror(errno));
    sig->empty = 0;
    return 0;
}

int anv_neardup_add(anv_neardup_t *d, const anv_minhash_t *sig) {
    uint64_t id = d->n;
    if (id >= UINT32_MAX - 1) return anv_error("near-duplicates: more than 4 billion documents");
    if (id == d->cap) {
        uint64_t cap = d->cap ? d->cap * 2 : 4096;
        uint32_t *p = anv_realloc(d->parent, cap * sizeof *p, "near-duplicate clusters");
        if (!p) return -1;
        d->parent = p;
        float *s = anv_realloc(d->similarity, cap * sizeof *s, "near-duplicate clusters");
        if (!s) return -1;
        d->similarity = s;
        d->cap = cap;
    }
    if (fwrite(sig->h, SIG_BYTES, 1, d->sigs) != 1)
        return anv_error("near-duplicates: cannot write signatures to a temporary file: %s", strerror(errno));
    d->unflushed = 1;
    d->parent[id] = (uint32_t)id;
    d->similarity[id] = 0;
    d->n++;
    if (sig->empty) return 0;
    uint64_t checked[ANV_MINHASH_BANDS];
    int n_checked = 0;
    for (int band = 0; band < ANV_MINHASH_BANDS; band++) {
        uint64_t key = anv_hash64(&sig->h[band * ANV_MINHASH_ROWS], ANV_MINHASH_ROWS * sizeof(uint32_t),
                                  0x6c7368ull + (uint64_t)band);
        uint32_t fp = (uint32_t)(key >> 32);
        uint64_t *e = slot(d->table, d->table_cap, fp);
        if (!*e) { /* the bucket's first document */
            *e = (uint64_t)fp << 32 | (id + 1);
            if (++d->table_n * 2 > d->table_cap && grow_table(d) != 0) return -1;
            continue;
        }
        uint64_t other = (uint32_t)*e - 1;
        int seen = 0;
        for (int k = 0; k < n_checked; k++) seen |= checked[k] == other;
        if (seen) continue;
        checked[n_checked++] = other;
        anv_minhash_t theirs;
        if (read_signature(d, other, &theirs) != 0) return -1;
        double s = anv_minhash_similarity(sig, &theirs);
        if (s >= d->threshold) join(d, id, other, s);
    }
    return 0;
}

uint64_t anv_neardup_keeper(anv_neardup_t *d, uint64_t id, double *similarity) {
    uint64_t root = find(d, id);
    if (similarity) *similarity = d->similarity[id];
    return root;
}

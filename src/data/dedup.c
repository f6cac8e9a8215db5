/* Exact duplicate detection: a set of 128-bit document hashes with tags (open addressing). */
#include "anvil/corpus.h"

#include <string.h>

struct anv_dedup {
    uint64_t (*slots)[3]; /* {hash, hash, tag}; {0, 0, ...} marks an empty slot */
    size_t cap, n;
};

int anv_dedup_init(anv_dedup_t **out) {
    anv_dedup_t *d = anv_calloc(sizeof *d, "dedup set");
    if (!d) return -1;
    d->cap = 4096;
    d->slots = anv_calloc(d->cap * sizeof *d->slots, "dedup set");
    if (!d->slots) {
        anv_free(d);
        return -1;
    }
    *out = d;
    return 0;
}

void anv_dedup_free(anv_dedup_t *d) {
    if (!d) return;
    anv_free(d->slots);
    anv_free(d);
}

static size_t find(uint64_t (*slots)[3], size_t cap, const uint64_t h[2]) {
    size_t j = h[0] & (cap - 1);
    while ((slots[j][0] | slots[j][1]) && (slots[j][0] != h[0] || slots[j][1] != h[1])) j = (j + 1) & (cap - 1);
    return j;
}

/* 1: the hash was there (*first_tag its tag); 0: added with tag; -1: out of memory. */
static int check_hash(anv_dedup_t *d, const uint64_t h[2], uint64_t tag, uint64_t *first_tag) {
    size_t j = find(d->slots, d->cap, h);
    if (d->slots[j][0] | d->slots[j][1]) {
        if (first_tag) *first_tag = d->slots[j][2];
        return 1;
    }
    d->slots[j][0] = h[0];
    d->slots[j][1] = h[1];
    d->slots[j][2] = tag;
    if (++d->n * 2 <= d->cap) return 0;
    size_t cap = d->cap * 2;
    uint64_t(*slots)[3] = anv_calloc(cap * sizeof *slots, "dedup set");
    if (!slots) return -1;
    for (size_t i = 0; i < d->cap; i++) {
        if (!(d->slots[i][0] | d->slots[i][1])) continue;
        size_t k = find(slots, cap, d->slots[i]);
        memcpy(slots[k], d->slots[i], sizeof slots[k]);
    }
    anv_free(d->slots);
    d->slots = slots;
    d->cap = cap;
    return 0;
}

int anv_dedup_check(anv_dedup_t *d, const char *text, size_t len, uint64_t tag, uint64_t *first_tag) {
    uint64_t h[2] = {anv_hash64(text, len, 0x6465647570ull), anv_hash64(text, len, 0x9E3779B97F4A7C15ull)};
    if (!(h[0] | h[1])) h[1] = 1; /* keep {0, 0} free as the empty marker */
    return check_hash(d, h, tag, first_tag);
}

int anv_dedup_export(const anv_dedup_t *d, anv_buf_t *out) {
    for (size_t i = 0; i < d->cap; i++)
        if ((d->slots[i][0] | d->slots[i][1]) && anv_buf_append(out, d->slots[i], sizeof d->slots[i]) != 0) return -1;
    return 0;
}

int anv_dedup_import(anv_dedup_t *d, const void *entries, size_t n, const uint64_t *tag) {
    for (size_t i = 0; i < n; i++) {
        uint64_t e[3];
        memcpy(e, (const char *)entries + i * sizeof e, sizeof e);
        if (check_hash(d, e, tag ? *tag : e[2], NULL) < 0) return -1;
    }
    return 0;
}

/* What the filters share: a document's words and lines, and counting sets of hashes. */
#ifndef ANVIL_FILTER_INTERNAL_H
#define ANVIL_FILTER_INTERNAL_H

#include "anvil/corpus.h"
#include "anvil/filters.h"

typedef struct {
    const char *s;
    size_t len;   /* bytes */
    size_t chars; /* Unicode characters */
    uint64_t hash;
} text_span_t;

/* Counts per 64-bit hash (open addressing; the hash 0 is moved to 1). */
typedef struct {
    uint64_t *keys;
    uint32_t *counts, *lengths;
    size_t cap;
} hash_counts_t;

struct anv_filter_scratch {
    text_span_t *words, *lines;
    size_t n_words, n_lines, cap_words, cap_lines;
    hash_counts_t counts;
};

extern const anv_filter_def_t anv_filter_gopher_quality, anv_filter_gopher_repetition, anv_filter_c4,
    anv_filter_fineweb;

int anv_is_ascii_punct(unsigned char c);
/* Words (punctuation stripped, symbols left out) into s->words. */
int anv_filter_words(anv_filter_scratch_t *s, const char *text, size_t len);
/* Non-blank lines (as they are, without the \n) into s->lines. */
int anv_filter_lines(anv_filter_scratch_t *s, const char *text, size_t len);

/* Makes room for n distinct keys and empties the table. */
int anv_counts_reset(hash_counts_t *t, size_t n);
/* Adds one occurrence; returns the count now (1 for a new key). length is stored with a new key. */
uint32_t anv_counts_add(hash_counts_t *t, uint64_t key, uint32_t length);

/* Non-overlapping occurrences of needle (like Python's str.count). */
size_t anv_count_substr(const char *s, size_t n, const char *needle);
/* The reason as "filter:rule" and the measured value; returns 0 (dropped). */
int anv_filter_drop(anv_filter_verdict_t *v, const char *filter, const char *rule, double value);

#endif

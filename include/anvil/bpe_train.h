/* Byte-level BPE training.
 *
 * Training counts the pre-token "words" of a corpus once (anv_bpe_words_t: word bytes -> count),
 * then learns merges over the distinct words only, so memory follows the number of distinct words,
 * not the corpus size. Each distinct word is a sequence of symbol ids with its count; pair counts
 * are kept incrementally in a max-heap with lazy invalidation (a popped entry whose stored count is
 * stale is pushed again with the current count) plus an index pair -> words containing it, so a
 * merge touches only the words it affects.
 *
 * Determinism (the tie-break rule): each step merges the pair with the highest count; among equal
 * counts, the pair whose left token's bytes are lexicographically smallest (memcmp order, a proper
 * prefix first), then the smallest right token's bytes. The result depends only on the word counts,
 * so it is the same for any thread count and any input order of the same words.
 *
 * Other rules: a merge is applied left to right without overlap inside each word ("aaa" with
 * (a,a) -> "X a"); a pair whose concatenated bytes already exist as a token is discarded (every id
 * has distinct bytes, as tokenizer.json requires); training stops at the requested number of merges
 * or when no pair reaches min_frequency. Pre-tokens longer than ANV_BPE_MAX_WORD_BYTES are counted
 * as consecutive pieces of at most that many bytes cut at UTF-8 character starts, which bounds the
 * cost of a merge per word. */
#ifndef ANVIL_BPE_TRAIN_H
#define ANVIL_BPE_TRAIN_H

#include "anvil/base.h"
#include "anvil/tokenizer.h"

#define ANV_BPE_MAX_WORD_BYTES 256

/* The distinct pre-token words of a corpus and how often each occurs. Not thread-safe: count with
 * one map per thread and combine them with anv_bpe_words_merge. */
typedef struct anv_bpe_words anv_bpe_words_t;

int anv_bpe_words_init(anv_bpe_words_t **out);
void anv_bpe_words_free(anv_bpe_words_t *w);
/* Adds `count` occurrences of one word (split when longer than ANV_BPE_MAX_WORD_BYTES). */
int anv_bpe_words_add(anv_bpe_words_t *w, const char *word, size_t len, uint64_t count);
/* Pre-tokenizes text with `pattern` and adds each pre-token once. */
int anv_bpe_words_add_text(anv_bpe_words_t *w, anv_pretok_t pattern, const char *text, size_t len);
/* dst += src. */
int anv_bpe_words_merge(anv_bpe_words_t *dst, const anv_bpe_words_t *src);
/* The words and counts as bytes (count uint64, length uint32, the word; in no particular order), and
 * back: import adds such bytes' counts to w (an error for malformed bytes). */
int anv_bpe_words_export(const anv_bpe_words_t *w, anv_buf_t *out);
int anv_bpe_words_import(anv_bpe_words_t *w, const void *data, size_t len);
size_t anv_bpe_words_distinct(const anv_bpe_words_t *w);
uint64_t anv_bpe_words_total(const anv_bpe_words_t *w); /* sum of counts */

typedef struct {
    size_t n_merges;          /* merges wanted (anv_bpe_train_tokenizer sets it from the vocab size) */
    uint64_t min_frequency;   /* a pair must occur at least this often to be merged (>= 1) */
    anv_progress_fn progress; /* optional, phase "merges" */
    void *progress_ctx;
} anv_bpe_train_opts_t;

/* Learns up to opts->n_merges merges. merges[i] = {left id, right id} creates id 256 + i (the layout
 * anv_tokenizer_create takes). Returns fewer merges than asked when the pairs run out (the caller
 * decides whether that is an error); *merges is allocated with anv_alloc, free with anv_free. */
int anv_bpe_train(const anv_bpe_words_t *words, const anv_bpe_train_opts_t *opts, uint32_t (**merges)[2],
                  size_t *n_merges);

/* The whole job: checks vocab_size, trains 256 + merges + specials = vocab_size and builds the
 * tokenizer. The specials follow the merges with <|endoftext|> first (added when not listed, moved
 * first when listed elsewhere). Errors: vocab_size below 256 + specials, above 2^32 - 1 (what a
 * uint32 token shard holds), or more merges than the words allow at min_frequency. */
/* The size checks alone (no words needed), so that callers can fail before counting a corpus. */
int anv_bpe_check_vocab_size(size_t vocab_size, const char *const *specials, size_t n_specials);
int anv_bpe_train_tokenizer(const anv_bpe_words_t *words, anv_pretok_t pattern, size_t vocab_size,
                            const char *const *specials, size_t n_specials, const anv_bpe_train_opts_t *opts,
                            anv_tokenizer_t **out);

#endif

/* The kept documents of a corpus: the reader through the filters (empty and short documents, language,
 * blocklist, the quality filters, personal data, exact and near duplicates), each drop counted and, in
 * the pass that writes the output, logged to the rejected file. Every pass over a corpus sees the same
 * documents in the same order, so a pass that comes later can use what an earlier one learned (the
 * near-duplicate clusters). */
#ifndef ANVIL_DATA_SOURCE_H
#define ANVIL_DATA_SOURCE_H

#include "anvil/minhash.h"
#include "anvil/prepare.h"

typedef struct {
    anv_corpus_t *corpus;
    anv_dedup_t *dedup, *lines; /* documents; lines or paragraphs */
    uint64_t n_docs;            /* documents that reached the line deduplication */
    anv_doc_filter_t filter;
    anv_prepare_stats_t *stats;
    anv_filter_scratch_t *scratch;
    anv_buf_t rewritten, scrubbed, unique; /* a document a filter rewrote; with personal data replaced; without
                                              repeated lines */
    anv_neardup_t *near;                   /* the clusters of the near-duplicate pass (NULL in that pass) */
    uint64_t near_id;                      /* index of the next document the near-duplicate pass saw */
    /* a sample (source_sample): documents picked by a hash of their index, until max_bytes */
    double sample_share;
    uint64_t max_bytes, bytes, index;
    /* the rejected log: one JSON line per dropped document, with where the kept one is */
    anv_atomic_file_t *rejected;
    anv_buf_t line;
    uint64_t *keepers; /* near-duplicate cluster heads seen so far: (id + 1, where) pairs, open addressing */
    size_t keepers_cap, keepers_n;
} source_t;

/* near: the clusters from source_near_pass, or NULL; rejected: an open file for the log, or NULL. */
int source_open(source_t *s, const anv_corpus_opts_t *copts, const anv_doc_filter_t *filter, anv_neardup_t *near,
                anv_atomic_file_t *rejected, anv_prepare_stats_t *stats);
/* 1: *doc is the next kept document; 0: the end; -1: error. */
int source_next(source_t *s, anv_doc_t *doc);
void source_close(source_t *s); /* copies the reader's counts into the stats */
/* From now on only about max_bytes of the kept documents, spread over the whole corpus: each is picked
 * with the chance max_bytes / (the input's size), and the source ends at max_bytes. */
void source_sample(source_t *s, uint64_t max_bytes);

/* The near-duplicate pass: MinHash signatures of the documents that the other filters keep, on all
 * threads, added in order to the index. Progress phase "near-duplicates". */
int source_near_pass(const anv_corpus_opts_t *copts, const anv_doc_filter_t *filter, anv_progress_fn progress,
                     void *progress_ctx, anv_neardup_t **out);

#endif

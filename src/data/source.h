/* The kept documents of a corpus: the reader through the filters (empty and short documents, language,
 * blocklist, the quality filters, personal data, exact and near duplicates), each drop counted and, in
 * the pass that writes the output, logged to the rejected file. The filters that look at one document
 * alone run on all threads over batches of documents read ahead; the rest follow in corpus order.
 * Every pass over a corpus sees the same documents in the same order, so a pass that comes later can
 * use what an earlier one learned (the near-duplicate clusters). */
#ifndef ANVIL_DATA_SOURCE_H
#define ANVIL_DATA_SOURCE_H

#include "anvil/comm.h"
#include "anvil/minhash.h"
#include "anvil/prepare.h"

/* What a reader of part of a corpus (a rank of a job) needs to know about the documents before its
 * part, and the near-duplicate clusters of the whole corpus. Zeroed: nothing (one process starts
 * with nothing but the clusters). */
struct anv_corpus_context {
    anv_buf_t docs;       /* exact-dedup entries (anv_dedup_export) of the documents before this part */
    anv_buf_t lines;      /* line (paragraph) entries of those documents */
    anv_neardup_t *near;  /* the clusters over the whole corpus, or NULL */
    uint64_t *near_where; /* where each document of the clusters is (source_where) */
    uint64_t near_first;  /* the id of this part's first document in the clusters */
};
void source_context_free(anv_corpus_context_t *x);

/* Where a document is, as the rejected log and the dedup tags know it: file index and line. */
uint64_t source_where(const anv_doc_t *doc);

typedef struct {
    anv_corpus_t *corpus;
    anv_dedup_t *dedup, *lines; /* documents; lines or paragraphs */
    uint64_t n_docs;            /* documents that reached the line deduplication */
    anv_doc_filter_t filter;
    anv_prepare_stats_t *stats;
    struct source_batch *batch; /* documents read ahead, through the filters that look at one alone */
    anv_buf_t unique;           /* a document without its repeated lines */
    const anv_corpus_context_t *ctx;
    uint64_t near_id; /* id of the next document in ctx->near */
    /* a sample (source_sample): documents picked by a hash of where they are, until max_bytes */
    double sample_share;
    uint64_t max_bytes, bytes;
    /* the rejected log: one JSON line per dropped document, with where the kept one is */
    anv_atomic_file_t *rejected;
    anv_buf_t line;
} source_t;

/* ctx: what is known about the rest of the corpus, or NULL; rejected: an open file for the log, or
 * NULL. */
int source_open(source_t *s, const anv_corpus_opts_t *copts, const anv_doc_filter_t *filter,
                const anv_corpus_context_t *ctx, anv_atomic_file_t *rejected, anv_prepare_stats_t *stats);
/* 1: *doc is the next kept document; 0: the end; -1: error. */
int source_next(source_t *s, anv_doc_t *doc);
void source_close(source_t *s); /* copies the reader's counts into the stats */
/* From now on only about max_bytes of the kept documents, spread over the whole corpus: each is picked
 * by a hash of where it is, with the chance max_bytes / (the whole input's size), and the source ends
 * at this part's share of max_bytes (its files' share of the input's bytes). */
void source_sample(source_t *s, uint64_t max_bytes);
/* dst += src: the counts of a part of the corpus added to those of the parts before it. */
void source_add_stats(anv_prepare_stats_t *dst, const anv_prepare_stats_t *src);

/* What the ranks of a job need to know before their passes (see anvil/prepare.h): the exact-dedup and
 * line entries of the parts before each rank (each found by a pass of its own), then with near_dedup
 * the near-duplicate clusters over the whole corpus (MinHash signatures of the documents the other
 * filters keep, on all threads, added in corpus order to one index on every rank). One process makes
 * only the clusters. Progress phase "near-duplicates". */
int source_context(anv_comm_t *comm, const anv_corpus_opts_t *copts, const anv_doc_filter_t *filter,
                   anv_progress_fn progress, void *progress_ctx, anv_corpus_context_t *out);

#endif

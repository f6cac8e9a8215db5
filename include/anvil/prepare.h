/* `anvil data prepare`: raw text -> cleaned, deduplicated documents -> (trained) tokenizer -> token
 * shards a trainer reads.
 *
 * Output folder: tokenizer.json, train_000000.bin ... and val_000000.bin ... in llm.c's shard layout
 * (shard.h), and meta.json. In each split's token stream the end-of-text token PRECEDES every
 * document (llm.c's convention), so a stream reads EOT doc EOT doc ...; a document may continue into
 * the next shard. A document goes to val when the hash of (seed, its index among the kept documents)
 * falls below val_fraction; when that picks none, the last train document moves to val so that val
 * holds at least one document. A corpus of a single document (one text file) is split instead: val is
 * its last val_fraction of bytes, cut at a line break.
 * Documents are encoded as ordinary text: a literal "<|endoftext|>" inside one stays plain text.
 * Every file is written atomically; shards left from an earlier run with higher numbers are removed.
 *
 * With near_dedup, a first pass over the corpus finds the near-duplicate clusters; every pass then
 * sees the same documents in the same order.
 *
 * The ranks of a job (comm, under mpirun) split the input files: each reads a run of consecutive files
 * of about equal bytes (anv_corpus_opts_t.part), filters, signs and encodes them on its own threads.
 * Exact, line and near-duplicate deduplication are global: a rank first learns the document and line
 * hashes of the ranks before it (a pass each, shared by broadcasts in rank order), and every rank
 * builds the near-duplicate clusters of the whole corpus from everyone's signatures. Word counts go to
 * rank 0, which trains the tokenizer and writes tokenizer.json; the other ranks load it from there,
 * write their documents' tokens (and rejected lines) to temporary files in the output folder, and
 * rank 0 writes the shards in corpus order. The output folder (and --rejected) must therefore be on a
 * filesystem every rank sees. The result is byte for byte the one of one process, with one exception:
 * with tokenizer_sample each rank stops sampling at its own share of the bytes, so where the sample of
 * one process would end before the end of the input the samples, and then the tokenizers, differ.
 *
 * Memory: the tokenizer's tables, the word counts when training (distinct words), the dedup set
 * (24 bytes per document), the near-duplicate index (about 250 bytes per document) and one batch of
 * documents: about 32 MiB of text plus its tokens, or one larger document plus its tokens (4 bytes per
 * token), read and encoded on its own. */
#ifndef ANVIL_PREPARE_H
#define ANVIL_PREPARE_H

#include "anvil/bpe_train.h"
#include "anvil/comm.h"
#include "anvil/corpus.h"
#include "anvil/filters.h"
#include "anvil/minhash.h"
#include "anvil/tokenizer.h"

/* Which documents are kept, and how they are cleaned: the filters run in this order (personal data is
 * replaced after the quality filters, before deduplication). */
typedef struct {
    size_t min_chars;         /* drop documents with fewer Unicode characters (empty ones always go) */
    const char *const *langs; /* keep documents in these languages (ISO 639-1 codes, CLD2)... */
    size_t n_langs;
    double lang_share;                /* ... with at least this share of their text in it (0: 0.65) */
    const anv_blocklist_t *blocklist; /* drop documents that contain an entry, or NULL */
    const anv_filter_set_t *quality;  /* quality filters (anvil/filters.h), or NULL */
    int pii;                          /* 1: replace e-mail and public IP addresses; 2: phone numbers too */
    int dedup;                        /* drop exact duplicates */
    int dedup_lines;                  /* 1: remove lines seen in an earlier document; 2: paragraphs */
    int near_dedup;                   /* drop near-duplicates (anvil/minhash.h), keeping each cluster's first */
    double near_threshold;            /* estimated Jaccard similarity that links two documents (0: 0.8) */
} anv_doc_filter_t;

typedef struct {
    uint64_t documents, bytes, tokens, shards;
} anv_split_stats_t;

typedef struct {
    anv_split_stats_t train, val;
    uint64_t documents_read, dropped_duplicates, dropped_near_duplicates, dropped_short, dropped_filters;
    struct {
        char reason[64]; /* "filter:rule" */
        uint64_t n;
    } dropped_by[64]; /* the filters' drops by rule (language, blocklist, quality), in the order first seen */
    int n_dropped_by;
    anv_pii_counts_t pii;     /* personal data replaced */
    uint64_t duplicate_lines; /* lines (or paragraphs) removed for having been seen in an earlier document */
    anv_corpus_stats_t corpus;
    int single_document_split; /* the input was one document: val is its end, cut at a line break */
} anv_prepare_stats_t;

/* What passes over a corpus learn about it for the next ones (the near-duplicate clusters; for a rank
 * of a job, the duplicates before its part): made inside anv_prepare. */
typedef struct anv_corpus_context anv_corpus_context_t;

/* Counts the pre-token words of the kept documents on all threads (one map per thread, combined in
 * the end: the result does not depend on the thread count). ctx: NULL, or what anv_prepare learned
 * (with filter->near_dedup, the clusters). sample_bytes: 0 for every document, else about that many bytes of
 * them, picked by a hash of their index all over the corpus. Memory: the distinct words' counts.
 * Progress phase "counting". */
int anv_count_words(const anv_corpus_opts_t *corpus, const anv_doc_filter_t *filter, const anv_corpus_context_t *ctx,
                    uint64_t sample_bytes, anv_pretok_t pattern, anv_progress_fn progress, void *progress_ctx,
                    anv_bpe_words_t **out, anv_prepare_stats_t *stats);

typedef struct {
    anv_corpus_opts_t corpus;
    anv_doc_filter_t filter;
    const char *out_dir;
    const char *rejected_path; /* or NULL: one JSON line per dropped document (source, line, reason, value,
                                  and for duplicates kept_source and kept_line) */
    /* the tokenizer: loaded from tokenizer_path, or trained to vocab_size when that is NULL */
    const char *tokenizer_path;
    size_t vocab_size;
    uint64_t tokenizer_sample; /* train on about this many bytes of the kept text (0: all of it) */
    anv_pretok_t pattern;
    const char *const *specials;
    size_t n_specials;
    uint64_t min_frequency;
    double val_fraction;
    uint64_t seed;
    uint64_t shard_tokens;
    const char *const *argv; /* recorded in meta.json */
    int argc;
    anv_progress_fn progress; /* phases "duplicates", "near-duplicates", "counting", "merges", "encoding" */
    void *progress_ctx;
    anv_comm_t *comm; /* the ranks of a job, or NULL: one process */
} anv_prepare_opts_t;

int anv_prepare(const anv_prepare_opts_t *opts, anv_prepare_stats_t *stats);

#endif

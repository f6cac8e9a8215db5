/* Raw text corpora: streams documents out of text, JSON lines and Parquet files and folders of them,
 * one document at a time, with normalised line endings; plus exact-duplicate detection.
 *
 * Inputs: a file is Parquet when its name ends in .parquet, JSON lines when it ends in .jsonl (before
 * a .gz or .zst), text otherwise; gzip and zstd compression are recognised by content. A folder is
 * walked recursively in sorted (strcmp) order, skipping hidden entries, reading *.txt, *.text, *.md,
 * *.jsonl (each optionally .gz or .zst) and *.parquet; its other files are skipped and counted.
 *
 * Documents: a text file is one document, or with split_blank_lines = N it is split at runs of N or
 * more blank (whitespace-only) lines, which are dropped; a JSON line is one document, the string in
 * its text_field; so is each row's non-null value of a Parquet file's text_field column (nulls are
 * counted). Line endings \r\n and lone \r become \n; every other byte (NUL, invalid UTF-8) is kept
 * as is. Empty files are skipped and counted; blank JSON lines are skipped.
 *
 * Bad input: errors name the file and the line, row group or byte. With skip_bad, a malformed JSON
 * line is skipped, and so is the rest of a file that cannot be read or decoded (counted, the first
 * few shown).
 *
 * Memory: one document at a time. A text document needs its own size (plus a 1 MiB read buffer); a
 * JSON line needs the line plus its decoded text (at most 2x the line); a Parquet file one page. */
#ifndef ANVIL_CORPUS_H
#define ANVIL_CORPUS_H

#include "anvil/base.h"

typedef struct {
    const char *const *inputs; /* files and folders */
    size_t n_inputs;
    const char *text_field; /* JSON field or Parquet column holding the text; NULL: "text" */
    int split_blank_lines;  /* 0: one document per text file */
    int skip_bad;           /* skip (and count) malformed JSON lines instead of failing */
    /* Read only part `part` of `parts` (0 parts: everything): the listed files are cut into that many
     * runs of consecutive files of about equal bytes (a file goes to the part its middle byte falls
     * in), for the ranks of a job. Files keep their indices in the whole list. */
    int part, parts;
} anv_corpus_opts_t;

typedef struct {
    const char *text; /* valid until the next anv_corpus_next */
    size_t len;
    const char *path; /* file it came from */
    uint64_t file;    /* its index among the corpus's files (anv_corpus_file) */
    uint64_t line;    /* 1-based line where it starts (row of a Parquet file) */
} anv_doc_t;

typedef struct {
    uint64_t files;         /* files read */
    uint64_t empty_files;   /* files without a single byte */
    uint64_t other_files;   /* files in folders skipped for their extension (counted by part 0 only) */
    uint64_t skipped_bad;   /* malformed JSON lines skipped (skip_bad) */
    uint64_t skipped_files; /* files, or their rest, that could not be read or decoded (skip_bad) */
    uint64_t null_values;   /* Parquet rows whose text is null */
    uint64_t input_bytes;   /* bytes of input files consumed so far (compressed size for .gz/.zst) */
    uint64_t total_bytes;   /* sum of the sizes of the files this reader reads (its part) */
    uint64_t corpus_bytes;  /* sum of the sizes of all the input files */
} anv_corpus_stats_t;

typedef struct anv_corpus anv_corpus_t;

/* Lists the input files (errors name a missing input); reads nothing yet. */
int anv_corpus_open(const anv_corpus_opts_t *opts, anv_corpus_t **out);
/* 1: *doc holds the next document; 0: end of the corpus; -1: error (names file and line). */
int anv_corpus_next(anv_corpus_t *c, anv_doc_t *doc);
const anv_corpus_stats_t *anv_corpus_stats(const anv_corpus_t *c);
const char *anv_corpus_file(const anv_corpus_t *c, uint64_t index); /* NULL past the last */
void anv_corpus_close(anv_corpus_t *c);

/* A file's bytes, decompressed: gzip (several members in a row) and zstd (several frames) are
 * recognised by their magic bytes, anything else is read as it is. The stream owns f (closed also on
 * failure); name is how errors name the file; buffer is the read size. */
typedef struct anv_stream anv_stream_t;
int anv_stream_open(FILE *f, const char *name, size_t buffer, anv_stream_t **out);
/* Up to n bytes into buf: their count, 0 at the end, -1 on an error naming the file and byte. */
long anv_stream_read(anv_stream_t *s, void *buf, size_t n);
uint64_t anv_stream_consumed(const anv_stream_t *s); /* bytes of the file read so far */
void anv_stream_close(anv_stream_t *s);

/* \r\n and lone \r -> \n in place; `pending_cr` (in/out, may be NULL) carries a \r that ended the
 * previous chunk of a stream. Returns the new length. */
size_t anv_text_normalize_newlines(char *s, size_t n, int *pending_cr);
/* Unicode characters in UTF-8 text (bytes that do not continue a sequence). */
size_t anv_utf8_chars(const char *s, size_t n);

/* Exact duplicate documents by a 128-bit hash (two 64-bit hashes with different seeds), each with a
 * caller's tag for its first occurrence (where it was); memory is 24 bytes per distinct document. */
typedef struct anv_dedup anv_dedup_t;
int anv_dedup_init(anv_dedup_t **out);
/* 1: seen before, *first_tag the tag it was first seen with; 0: new (now remembered with tag);
 * -1: out of memory. */
int anv_dedup_check(anv_dedup_t *d, const char *text, size_t len, uint64_t tag, uint64_t *first_tag);
void anv_dedup_free(anv_dedup_t *d);
/* The set's entries, appended to out as {hash, hash, tag} triples of uint64 (in no particular order),
 * and back: import adds n such entries that are not there yet, with their own tags or, when tag is not
 * NULL, with *tag. Sets built on several machines combine this way into the set one would have built. */
#define ANV_DEDUP_ENTRY_BYTES 24 /* one exported entry */
int anv_dedup_export(const anv_dedup_t *d, anv_buf_t *out);
int anv_dedup_import(anv_dedup_t *d, const void *entries, size_t n, const uint64_t *tag);

#endif

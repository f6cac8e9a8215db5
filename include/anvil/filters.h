/* Document quality filters, each with its published thresholds as defaults:
 *   gopher_quality     Rae et al. 2021 (Gopher), section A.1.1: length, word length, symbols, bullets,
 *                      ellipses, words with a letter, stop words
 *   gopher_repetition  Rae et al. 2021, Table A1: duplicate lines and paragraphs, top n-grams,
 *                      duplicate n-grams
 *   c4                 Raffel et al. 2020 (C4), as TensorFlow Datasets' c4_utils: drops lines without
 *                      terminal punctuation, with few words, mentioning javascript or cookie and policy
 *                      text, and documents with lorem ipsum, a curly brace or few sentences left
 *   fineweb            Penedo et al. 2024 (FineWeb): lines ending in punctuation, short lines,
 *                      characters in duplicate lines, newlines per word
 * c4 and fineweb judge lines, and assume what web text has: a line per paragraph. On hard-wrapped
 * text (books, e-mail) most lines end without punctuation: c4 then drops most of them and fineweb
 * most documents.
 * Adding one: a file in src/data/filters/ with its parameters and function, and a row in filters.c.
 *
 * Words: whitespace-separated tokens with punctuation (ASCII, and the ellipsis, bullets, curly quotes
 * and dashes) stripped from both ends; a token that is only punctuation is a symbol, not a word. Characters are Unicode
 * characters (UTF-8); a non-ASCII character counts as a letter. Lines are split at \n; blank lines do not count as
 * lines. */
#ifndef ANVIL_FILTERS_H
#define ANVIL_FILTERS_H

#include "anvil/base.h"

#define ANV_FILTER_MAX_PARAMS 16

typedef struct {
    const char *name; /* e.g. "min_words" */
    double value;     /* the published default */
    const char *help;
} anv_filter_param_t;

/* Why a document was dropped: "filter:rule" and the measured value that broke the rule. */
typedef struct {
    char reason[64];
    double value;
} anv_filter_verdict_t;

typedef struct anv_filter_scratch anv_filter_scratch_t; /* reusable buffers, one per thread */

typedef struct {
    const char *name; /* "gopher_quality": the flag is --gopher-quality */
    const char *summary;
    const anv_filter_param_t *params; /* ending with a NULL name */
    /* 1 keep, 0 drop (*v set), -1 error. A filter may rewrite the document: it then points *text and
     * *len at its copy in out (valid until the next call with the same out). */
    int (*run)(const double *params, const char **text, size_t *len, anv_buf_t *out, anv_filter_scratch_t *s,
               anv_filter_verdict_t *v);
} anv_filter_def_t;

const anv_filter_def_t *anv_filter_find(const char *name); /* "gopher_quality" or "gopher-quality" */
const anv_filter_def_t *anv_filter_at(int i);              /* i-th filter, NULL past the last */

/* A chosen set of filters with their parameters, run in the order of the table. */
typedef struct {
    const anv_filter_def_t *def[8];
    double params[8][ANV_FILTER_MAX_PARAMS];
    int n;
} anv_filter_set_t;

/* Adds a filter by name with its defaults (once). */
int anv_filter_set_add(anv_filter_set_t *set, const char *name);
/* "filter.param=value" (the filter must be in the set). */
int anv_filter_set_param(anv_filter_set_t *set, const char *assignment);

anv_filter_scratch_t *anv_filter_scratch_new(void);
void anv_filter_scratch_free(anv_filter_scratch_t *s);
/* Runs the set on a document: 1 kept (text and len possibly pointing into out now), 0 dropped, -1 error. */
int anv_filter_set_run(const anv_filter_set_t *set, const char **text, size_t *len, anv_buf_t *out,
                       anv_filter_scratch_t *s, anv_filter_verdict_t *v);

/* Personal data: e-mail addresses become email@example.com and public IPv4 addresses 192.0.2.1
 * (private, loopback, link-local, shared, documentation and multicast ranges stay); with phones,
 * numbers such as +1 415-555-2671 or (020) 7946 0958 (10 to 15 digits in 3 groups or more) become
 * 555-0100. Returns how many were replaced (the new text in out) or -1; 0 leaves out empty. */
typedef struct {
    uint64_t emails, ips, phones;
} anv_pii_counts_t;
int anv_pii_scrub(const char *text, size_t len, int phones, anv_buf_t *out, anv_pii_counts_t *counts);

/* A blocklist: one word or phrase (up to 16 words) per line of the user's file. A document contains
 * an entry when its words (runs of letters, digits, apostrophes and non-ASCII characters) include the
 * entry's words in a row, compared case-folded. */
typedef struct anv_blocklist anv_blocklist_t;
int anv_blocklist_load(const char *path, anv_blocklist_t **out);
size_t anv_blocklist_size(const anv_blocklist_t *bl);
/* 1: the text contains an entry; 0: no. Safe on several threads at once. */
int anv_blocklist_match(const anv_blocklist_t *bl, const char *text, size_t len);
void anv_blocklist_free(anv_blocklist_t *bl);

/* The document's main language by CLD2 (Debian's libcld2): its ISO 639-1 code ("en"; "un" when
 * unknown) and the share of its text in that language (0 to 1). Text after invalid UTF-8 is not seen. */
void anv_language_detect(const char *text, size_t len, const char **code, double *share);
/* 1 when CLD2 knows the code (as anv_language_detect writes it), else 0. */
int anv_language_known(const char *code);

#endif

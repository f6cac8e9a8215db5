/* FineWeb's quality rules (Penedo et al. 2024). See anvil/filters.h. */
#include "filter_internal.h"

#include <string.h>

enum { MIN_PUNCT_LINES, SHORT_LINE, MAX_SHORT_LINES, MAX_DUP_CHARS, MAX_NEWLINES };

static const anv_filter_param_t PARAMS[] = {
    {"min_punct_lines", 0.12, "smallest share of lines ending in terminal punctuation"},
    {"short_line_length", 30, "a line of at most this many characters is short"},
    {"max_short_lines", 0.67, "largest share of short lines"},
    {"max_dup_line_chars", 0.01, "largest share of characters in lines that repeat an earlier line"},
    {"max_newlines_per_word", 0.3, "most newlines per word"},
    {NULL, 0, NULL},
};

static int ends_in_punct(const text_span_t *l) {
    static const char *const PUNCT[] = {".",      "!",      "?",      "\"",     "'",     "\u201d",
                                        "\u2019", "\u2026", "\u3002", "\uff01", "\uff1f"};
    size_t n = l->len;
    while (n > 0 && (l->s[n - 1] == ' ' || l->s[n - 1] == '\t' || l->s[n - 1] == '\r')) n--;
    for (size_t i = 0; i < sizeof PUNCT / sizeof PUNCT[0]; i++) {
        size_t k = strlen(PUNCT[i]);
        if (n >= k && !memcmp(l->s + n - k, PUNCT[i], k)) return 1;
    }
    return 0;
}

static int run(const double *p, const char **text, size_t *len, anv_buf_t *out, anv_filter_scratch_t *s,
               anv_filter_verdict_t *v) {
    (void)out;
    const char *name = "fineweb";
    if (anv_filter_lines(s, *text, *len) != 0) return -1;
    if (s->n_lines == 0) return anv_filter_drop(v, name, "no_lines", 0);
    double lines = (double)s->n_lines;
    size_t punct = 0, short_lines = 0, dup_chars = 0;
    if (anv_counts_reset(&s->counts, s->n_lines) != 0) return -1;
    for (size_t i = 0; i < s->n_lines; i++) {
        punct += (size_t)ends_in_punct(&s->lines[i]);
        short_lines += (double)s->lines[i].chars <= p[SHORT_LINE];
        if (anv_counts_add(&s->counts, s->lines[i].hash, 0) > 1) dup_chars += s->lines[i].chars;
    }
    if (punct / lines < p[MIN_PUNCT_LINES]) return anv_filter_drop(v, name, "punct_lines", punct / lines);
    if (short_lines / lines > p[MAX_SHORT_LINES]) return anv_filter_drop(v, name, "short_lines", short_lines / lines);
    double chars = (double)anv_utf8_chars(*text, *len);
    if (dup_chars / chars > p[MAX_DUP_CHARS]) return anv_filter_drop(v, name, "dup_line_chars", dup_chars / chars);
    if (anv_filter_words(s, *text, *len) != 0) return -1;
    double newlines = (double)anv_count_substr(*text, *len, "\n"), words = s->n_words ? (double)s->n_words : 1;
    if (newlines / words > p[MAX_NEWLINES]) return anv_filter_drop(v, name, "newlines_per_word", newlines / words);
    return 1;
}

const anv_filter_def_t anv_filter_fineweb = {"fineweb", "FineWeb's quality rules (Penedo et al. 2024)", PARAMS, run};

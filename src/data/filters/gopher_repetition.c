/* Gopher's repetition rules (Rae et al. 2021, Table A1). See anvil/filters.h. */
#include "filter_internal.h"

#include <string.h>

enum { DUP_LINES, DUP_PARAS, DUP_LINE_CHARS, DUP_PARA_CHARS, TOP_2 };
#define DUP_5 (TOP_2 + 3)

static const anv_filter_param_t PARAMS[] = {
    {"dup_line_frac", 0.3, "largest share of lines that repeat an earlier line"},
    {"dup_para_frac", 0.3, "largest share of paragraphs that repeat an earlier paragraph"},
    {"dup_line_char_frac", 0.2, "largest share of characters in repeated lines"},
    {"dup_para_char_frac", 0.2, "largest share of characters in repeated paragraphs"},
    {"top_2_gram", 0.2, "largest share of characters in the most frequent word 2-gram"},
    {"top_3_gram", 0.18, "... 3-gram"},
    {"top_4_gram", 0.16, "... 4-gram"},
    {"dup_5_gram", 0.15, "largest share of characters in repeated word 5-grams"},
    {"dup_6_gram", 0.14, "... 6-grams"},
    {"dup_7_gram", 0.13, "... 7-grams"},
    {"dup_8_gram", 0.12, "... 8-grams"},
    {"dup_9_gram", 0.11, "... 9-grams"},
    {"dup_10_gram", 0.10, "... 10-grams"},
    {NULL, 0, NULL},
};

/* Repeated spans among n: how many repeat an earlier one, and their characters. */
static int repeats(hash_counts_t *t, const text_span_t *sp, size_t n, size_t *dups, size_t *dup_chars) {
    if (anv_counts_reset(t, n) != 0) return -1;
    *dups = *dup_chars = 0;
    for (size_t i = 0; i < n; i++)
        if (anv_counts_add(t, sp[i].hash, 0) > 1) {
            (*dups)++;
            *dup_chars += sp[i].chars;
        }
    return 0;
}

/* Paragraphs: runs of non-blank lines (s->lines), separated by blank lines; spans into paras. */
static size_t paragraphs(const anv_filter_scratch_t *s, text_span_t *paras) {
    size_t n = 0;
    for (size_t i = 0; i < s->n_lines;) {
        size_t j = i + 1;
        while (j < s->n_lines && s->lines[j].s == s->lines[j - 1].s + s->lines[j - 1].len + 1) j++;
        const char *a = s->lines[i].s, *b = s->lines[j - 1].s + s->lines[j - 1].len;
        paras[n++] = (text_span_t){a, (size_t)(b - a), anv_utf8_chars(a, (size_t)(b - a)),
                                   anv_hash64(a, (size_t)(b - a), 0x70617261)};
        i = j;
    }
    return n;
}

static uint64_t ngram_hash(const text_span_t *w, size_t n) {
    uint64_t h = 0x6e6772616d;
    for (size_t k = 0; k < n; k++) h = (h ^ w[k].hash) * 0x100000001b3ull + (h >> 29);
    return h;
}

static size_t ngram_chars(const text_span_t *w, size_t n) {
    size_t c = n - 1;
    for (size_t k = 0; k < n; k++) c += w[k].chars;
    return c;
}

static int run(const double *p, const char **text, size_t *len, anv_buf_t *out, anv_filter_scratch_t *s,
               anv_filter_verdict_t *v) {
    (void)out;
    const char *name = "gopher_repetition";
    double total = (double)anv_utf8_chars(*text, *len);
    if (total == 0) return 1;
    if (anv_filter_lines(s, *text, *len) != 0) return -1;
    size_t dups, dup_chars;
    /* paragraphs first, as the paper lists them; their spans borrow the word buffer */
    if (s->n_lines > s->cap_words) {
        text_span_t *w = anv_realloc(s->words, s->n_lines * sizeof *w, "filter buffers");
        if (!w) return -1;
        s->words = w;
        s->cap_words = s->n_lines;
    }
    size_t n_paras = paragraphs(s, s->words);
    if (repeats(&s->counts, s->words, n_paras, &dups, &dup_chars) != 0) return -1;
    if (n_paras && (double)dups / n_paras > p[DUP_PARAS])
        return anv_filter_drop(v, name, "dup_para_frac", (double)dups / n_paras);
    if (dup_chars / total > p[DUP_PARA_CHARS]) return anv_filter_drop(v, name, "dup_para_char_frac", dup_chars / total);
    if (repeats(&s->counts, s->lines, s->n_lines, &dups, &dup_chars) != 0) return -1;
    if (s->n_lines && (double)dups / s->n_lines > p[DUP_LINES])
        return anv_filter_drop(v, name, "dup_line_frac", (double)dups / s->n_lines);
    if (dup_chars / total > p[DUP_LINE_CHARS]) return anv_filter_drop(v, name, "dup_line_char_frac", dup_chars / total);

    if (anv_filter_words(s, *text, *len) != 0) return -1;
    const text_span_t *w = s->words;
    size_t nw = s->n_words;
    static const char *const TOP[] = {"top_2_gram", "top_3_gram", "top_4_gram"};
    for (size_t n = 2; n <= 4 && n <= nw; n++) {
        if (anv_counts_reset(&s->counts, nw) != 0) return -1;
        double top = 0;
        for (size_t i = 0; i + n <= nw; i++) {
            size_t chars = ngram_chars(w + i, n);
            double covered = (double)anv_counts_add(&s->counts, ngram_hash(w + i, n), (uint32_t)chars) * chars;
            top = covered > top ? covered : top;
        }
        if (top / total > p[TOP_2 + n - 2]) return anv_filter_drop(v, name, TOP[n - 2], top / total);
    }
    static const char *const DUP[] = {"dup_5_gram", "dup_6_gram", "dup_7_gram",
                                      "dup_8_gram", "dup_9_gram", "dup_10_gram"};
    for (size_t n = 5; n <= 10 && n <= nw; n++) {
        if (anv_counts_reset(&s->counts, nw) != 0) return -1;
        double repeated = 0;
        for (size_t i = 0; i + n <= nw;) { /* a repeat counts its characters once, then skips past itself */
            if (anv_counts_add(&s->counts, ngram_hash(w + i, n), 0) > 1) {
                repeated += (double)ngram_chars(w + i, n);
                i += n;
            } else {
                i++;
            }
        }
        if (repeated / total > p[DUP_5 + n - 5]) return anv_filter_drop(v, name, DUP[n - 5], repeated / total);
    }
    return 1;
}

const anv_filter_def_t anv_filter_gopher_repetition = {
    "gopher_repetition", "Gopher's repetition rules (Rae et al. 2021, Table A1)", PARAMS, run};

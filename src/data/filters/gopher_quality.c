/* Gopher's quality rules (Rae et al. 2021, A.1.1). See anvil/filters.h. */
#include "filter_internal.h"

#include <string.h>

enum { MIN_WORDS, MAX_WORDS, MIN_MEAN, MAX_MEAN, MAX_SYMBOLS, MAX_BULLETS, MAX_ELLIPSIS_LINES, MIN_ALPHA, MIN_STOP };

static const anv_filter_param_t PARAMS[] = {
    {"min_words", 50, "fewest words"},
    {"max_words", 100000, "most words"},
    {"min_mean_word_length", 3, "shortest mean word length (characters)"},
    {"max_mean_word_length", 10, "longest mean word length (characters)"},
    {"max_symbol_word_ratio", 0.1, "most '#' per word, and most ellipses ('...' or U+2026) per word"},
    {"max_bullet_lines", 0.9, "largest share of lines starting with a bullet (U+2022 and its kin)"},
    {"max_ellipsis_lines", 0.3, "largest share of lines ending in an ellipsis"},
    {"min_alpha_words", 0.8, "smallest share of words with a letter"},
    {"min_stop_words", 2, "fewest stop words (the, be, to, of, and, that, have, with)"},
    {NULL, 0, NULL},
};

static int is_stop_word(const text_span_t *w) {
    static const char *const STOP[] = {"the", "be", "to", "of", "and", "that", "have", "with"};
    if (w->len > 4) return 0;
    char low[4];
    for (size_t i = 0; i < w->len; i++) low[i] = (char)(w->s[i] >= 'A' && w->s[i] <= 'Z' ? w->s[i] | 0x20 : w->s[i]);
    for (size_t i = 0; i < sizeof STOP / sizeof STOP[0]; i++)
        if (strlen(STOP[i]) == w->len && !memcmp(STOP[i], low, w->len)) return 1;
    return 0;
}

static int has_letter(const text_span_t *w) {
    for (size_t i = 0; i < w->len; i++) {
        unsigned char c = (unsigned char)w->s[i];
        if (c >= 0x80 || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) return 1;
    }
    return 0;
}

static int starts_with_bullet(const text_span_t *l) {
    static const char *const BULLETS[] = {"\u2022", "\u2023", "\u25e6", "\u2043", "\u25aa", "\u25cf"};
    size_t i = 0;
    while (i < l->len && (l->s[i] == ' ' || l->s[i] == '\t')) i++;
    for (size_t b = 0; b < sizeof BULLETS / sizeof BULLETS[0]; b++) {
        size_t k = strlen(BULLETS[b]);
        if (l->len - i >= k && !memcmp(l->s + i, BULLETS[b], k)) return 1;
    }
    return 0;
}

static int ends_with_ellipsis(const text_span_t *l) {
    size_t n = l->len;
    while (n > 0 && (l->s[n - 1] == ' ' || l->s[n - 1] == '\t' || l->s[n - 1] == '\r')) n--;
    return (n >= 3 && !memcmp(l->s + n - 3, "...", 3)) || (n >= 3 && !memcmp(l->s + n - 3, "\u2026", 3));
}

static int run(const double *p, const char **text, size_t *len, anv_buf_t *out, anv_filter_scratch_t *s,
               anv_filter_verdict_t *v) {
    (void)out;
    const char *name = "gopher_quality";
    if (anv_filter_words(s, *text, *len) != 0 || anv_filter_lines(s, *text, *len) != 0) return -1;
    double words = (double)s->n_words;
    if (words < p[MIN_WORDS]) return anv_filter_drop(v, name, "min_words", words);
    if (words > p[MAX_WORDS]) return anv_filter_drop(v, name, "max_words", words);
    size_t chars = 0, alpha = 0, stop = 0;
    for (size_t i = 0; i < s->n_words; i++) {
        chars += s->words[i].chars;
        alpha += (size_t)has_letter(&s->words[i]);
        stop += (size_t)is_stop_word(&s->words[i]);
    }
    double mean = words > 0 ? chars / words : 0;
    if (mean < p[MIN_MEAN]) return anv_filter_drop(v, name, "min_mean_word_length", mean);
    if (mean > p[MAX_MEAN]) return anv_filter_drop(v, name, "max_mean_word_length", mean);
    double per_word = words > 0 ? 1 / words : 1;
    double hashes = (double)anv_count_substr(*text, *len, "#") * per_word;
    double ellipses =
        (double)(anv_count_substr(*text, *len, "...") + anv_count_substr(*text, *len, "\u2026")) * per_word;
    if (hashes > p[MAX_SYMBOLS]) return anv_filter_drop(v, name, "hash_word_ratio", hashes);
    if (ellipses > p[MAX_SYMBOLS]) return anv_filter_drop(v, name, "ellipsis_word_ratio", ellipses);
    size_t bullets = 0, trailing = 0;
    for (size_t i = 0; i < s->n_lines; i++) {
        bullets += (size_t)starts_with_bullet(&s->lines[i]);
        trailing += (size_t)ends_with_ellipsis(&s->lines[i]);
    }
    double lines = s->n_lines ? (double)s->n_lines : 1;
    if (bullets / lines > p[MAX_BULLETS]) return anv_filter_drop(v, name, "bullet_lines", bullets / lines);
    if (trailing / lines > p[MAX_ELLIPSIS_LINES]) return anv_filter_drop(v, name, "ellipsis_lines", trailing / lines);
    double alpha_share = words > 0 ? alpha / words : 0;
    if (alpha_share < p[MIN_ALPHA]) return anv_filter_drop(v, name, "alpha_words", alpha_share);
    if ((double)stop < p[MIN_STOP]) return anv_filter_drop(v, name, "stop_words", (double)stop);
    return 1;
}

const anv_filter_def_t anv_filter_gopher_quality = {"gopher_quality", "Gopher's quality rules (Rae et al. 2021)",
                                                    PARAMS, run};

/* The table of quality filters, filter sets with their parameters, and the text helpers they share.
 * See anvil/filters.h. */
#include "filter_internal.h"

#include <stdlib.h>
#include <string.h>

static const anv_filter_def_t *const FILTERS[] = {
    &anv_filter_c4, /* first: it rewrites documents, the others judge what it leaves */
    &anv_filter_gopher_quality,
    &anv_filter_gopher_repetition,
    &anv_filter_fineweb,
};
#define N_FILTERS (int)(sizeof FILTERS / sizeof FILTERS[0])

const anv_filter_def_t *anv_filter_at(int i) { return i >= 0 && i < N_FILTERS ? FILTERS[i] : NULL; }

/* Names compare with - and _ alike. */
static int same_name(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char x = a[i] == '-' ? '_' : a[i], y = b[i] == '-' ? '_' : b[i];
        if (x != y) return 0;
    }
    return b[n] == 0;
}

const anv_filter_def_t *anv_filter_find(const char *name) {
    for (int i = 0; i < N_FILTERS; i++)
        if (same_name(name, FILTERS[i]->name, strlen(name))) return FILTERS[i];
    return NULL;
}

static int index_of(const anv_filter_def_t *d) {
    for (int i = 0; i < N_FILTERS; i++)
        if (FILTERS[i] == d) return i;
    return -1;
}

int anv_filter_set_add(anv_filter_set_t *set, const char *name) {
    const anv_filter_def_t *d = anv_filter_find(name);
    if (!d) return anv_error("unknown filter \"%s\" (anvil data filters lists them)", name);
    for (int i = 0; i < set->n; i++)
        if (set->def[i] == d) return 0;
    /* keep the table's order */
    int at = set->n;
    while (at > 0 && index_of(set->def[at - 1]) > index_of(d)) {
        set->def[at] = set->def[at - 1];
        memcpy(set->params[at], set->params[at - 1], sizeof set->params[at]);
        at--;
    }
    set->def[at] = d;
    for (int p = 0; d->params[p].name; p++) set->params[at][p] = d->params[p].value;
    set->n++;
    return 0;
}

int anv_filter_set_param(anv_filter_set_t *set, const char *assignment) {
    const char *dot = strchr(assignment, '.'), *eq = strchr(assignment, '=');
    if (!dot || !eq || eq < dot) return anv_error("filter parameter \"%s\": expected FILTER.PARAM=VALUE", assignment);
    for (int i = 0; i < set->n; i++) {
        const anv_filter_def_t *d = set->def[i];
        if (!same_name(assignment, d->name, (size_t)(dot - assignment))) continue;
        for (int p = 0; d->params[p].name; p++) {
            if (!same_name(dot + 1, d->params[p].name, (size_t)(eq - dot - 1))) continue;
            char *end;
            double v = strtod(eq + 1, &end);
            if (end == eq + 1 || *end || v != v || v < 0)
                return anv_error("filter parameter \"%s\": the value must be a number >= 0", assignment);
            set->params[i][p] = v;
            return 0;
        }
        return anv_error("filter parameter \"%s\": %s has no parameter \"%.*s\" (anvil data filters lists them)",
                         assignment, d->name, (int)(eq - dot - 1), dot + 1);
    }
    return anv_error("filter parameter \"%s\": the filter \"%.*s\" is not chosen (or does not exist)", assignment,
                     (int)(dot - assignment), assignment);
}

anv_filter_scratch_t *anv_filter_scratch_new(void) {
    return anv_calloc(sizeof(anv_filter_scratch_t), "filter buffers");
}

void anv_filter_scratch_free(anv_filter_scratch_t *s) {
    if (!s) return;
    anv_free(s->words);
    anv_free(s->lines);
    anv_free(s->counts.keys);
    anv_free(s->counts.counts);
    anv_free(s->counts.lengths);
    anv_free(s);
}

int anv_filter_set_run(const anv_filter_set_t *set, const char **text, size_t *len, anv_buf_t *out,
                       anv_filter_scratch_t *s, anv_filter_verdict_t *v) {
    for (int i = 0; i < set->n; i++) {
        int r = set->def[i]->run(set->params[i], text, len, out, s, v);
        if (r != 1) return r;
    }
    return 1;
}

/* ---- shared helpers ---- */

int anv_is_ascii_punct(unsigned char c) { return c < 0x80 && strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c) && c; }

static int is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Unicode punctuation and bullets that are stripped from words like ASCII punctuation. */
static const char *const MARKS[] = {"\u2026", "\u2022", "\u2023", "\u25e6", "\u2043", "\u25aa", "\u25cf", "\u201c",
                                    "\u201d", "\u2018", "\u2019", "\u2013", "\u2014", "\u00ab", "\u00bb"};

/* Bytes of punctuation at s[0..n) (front) or ending at s[n] (back): 0 when none. */
static size_t punct_at(const unsigned char *s, size_t n, int back) {
    if (n == 0) return 0;
    unsigned char c = back ? s[n - 1] : s[0];
    if (c < 0x80) return anv_is_ascii_punct(c);
    for (size_t m = 0; m < sizeof MARKS / sizeof MARKS[0]; m++) {
        size_t k = strlen(MARKS[m]);
        if (n >= k && !memcmp(back ? s + n - k : s, MARKS[m], k)) return k;
    }
    return 0;
}

int anv_filter_words(anv_filter_scratch_t *s, const char *text, size_t len) {
    const unsigned char *t = (const unsigned char *)text;
    s->n_words = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && is_space(t[i])) i++;
        size_t start = i;
        while (i < len && !is_space(t[i])) i++;
        size_t a = start, b = i, k;
        while ((k = punct_at(t + a, b - a, 0))) a += k;
        while ((k = punct_at(t + a, b - a, 1))) b -= k;
        if (a == b) continue; /* a symbol */
        if (anv_grow(&s->words, &s->cap_words, s->n_words + 1, sizeof *s->words, "filter buffers") != 0) return -1;
        s->words[s->n_words++] =
            (text_span_t){text + a, b - a, anv_utf8_chars(text + a, b - a), anv_hash64(text + a, b - a, 0x776f7264)};
    }
    return 0;
}

int anv_filter_lines(anv_filter_scratch_t *s, const char *text, size_t len) {
    s->n_lines = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len, k = i;
        while (k < end && is_space((unsigned char)text[k])) k++;
        if (k < end) {
            if (anv_grow(&s->lines, &s->cap_lines, s->n_lines + 1, sizeof *s->lines, "filter buffers") != 0) return -1;
            s->lines[s->n_lines++] = (text_span_t){text + i, end - i, anv_utf8_chars(text + i, end - i),
                                                   anv_hash64(text + i, end - i, 0x6c696e65)};
        }
        i = end + 1;
    }
    return 0;
}

int anv_counts_reset(hash_counts_t *t, size_t n) {
    size_t cap = 64;
    while (cap < 2 * n) cap *= 2;
    if (cap > t->cap) {
        anv_free(t->keys);
        anv_free(t->counts);
        anv_free(t->lengths);
        t->keys = anv_alloc(cap * sizeof *t->keys, "filter counts");
        t->counts = anv_alloc(cap * sizeof *t->counts, "filter counts");
        t->lengths = anv_alloc(cap * sizeof *t->lengths, "filter counts");
        t->cap = t->keys && t->counts && t->lengths ? cap : 0;
        if (!t->cap) return -1;
    }
    memset(t->keys, 0, t->cap * sizeof *t->keys);
    return 0;
}

uint32_t anv_counts_add(hash_counts_t *t, uint64_t key, uint32_t length) {
    key += key == 0;
    size_t j = (size_t)(key * 0x9E3779B97F4A7C15ull >> 20) & (t->cap - 1);
    while (t->keys[j] && t->keys[j] != key) j = (j + 1) & (t->cap - 1);
    if (!t->keys[j]) {
        t->keys[j] = key;
        t->counts[j] = 0;
        t->lengths[j] = length;
    }
    return ++t->counts[j];
}

size_t anv_count_substr(const char *s, size_t n, const char *needle) {
    size_t k = strlen(needle), c = 0;
    for (size_t i = 0; k && i + k <= n;) {
        const char *p = memchr(s + i, needle[0], n - i - k + 1);
        if (!p) break;
        i = (size_t)(p - s);
        if (!memcmp(p, needle, k)) {
            c++;
            i += k;
        } else {
            i++;
        }
    }
    return c;
}

int anv_filter_drop(anv_filter_verdict_t *v, const char *filter, const char *rule, double value) {
    snprintf(v->reason, sizeof v->reason, "%s:%s", filter, rule);
    v->value = value;
    return 0;
}

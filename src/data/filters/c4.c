/* C4's cleaning (Raffel et al. 2020, as TensorFlow Datasets' c4_utils): keeps the lines that end in
 * terminal punctuation and have enough words, drops lines about javascript or cookies and policies,
 * and drops documents with lorem ipsum, a curly brace, or too few sentences left. See anvil/filters.h. */
#include "filter_internal.h"

#include <string.h>

enum { TERMINAL, MIN_WORDS, MAX_WORD, MIN_SENTENCES, JAVASCRIPT, POLICY, LOREM, CURLY, CITATIONS };

static const anv_filter_param_t PARAMS[] = {
    {"terminal_punct", 1, "1: keep only lines ending in . ? ! \" or ' (not in an ellipsis)"},
    {"min_words_per_line", 3, "drop lines with fewer words"},
    {"max_word_length", 1000, "drop lines with a longer word (characters)"},
    {"min_sentences", 5, "drop documents with fewer sentences left"},
    {"javascript", 1, "1: drop lines that mention javascript"},
    {"policy", 1, "1: drop lines about terms of use, privacy or cookie policies, or cookies"},
    {"lorem_ipsum", 1, "1: drop documents with \"lorem ipsum\""},
    {"curly_bracket", 1, "1: drop documents with a '{'"},
    {"citations", 1, "1: remove Wikipedia citation marks ([1], [edit], [citation needed])"},
    {NULL, 0, NULL},
};

/* needle (lowercase ASCII) in s, whose ASCII letters are compared lowercased. */
static int contains_ci(const char *s, size_t n, const char *needle) {
    size_t k = strlen(needle);
    char first = needle[0], upper = (char)(first - 32);
    for (const char *p = s, *end = s + n; (size_t)(end - p) >= k; p++) {
        const char *a = memchr(p, first, (size_t)(end - p) - k + 1), *b = memchr(p, upper, (size_t)(end - p) - k + 1);
        p = a && (!b || a < b) ? a : b;
        if (!p) return 0;
        size_t j = 1;
        while (j < k && (p[j] >= 'A' && p[j] <= 'Z' ? p[j] | 0x20 : p[j]) == needle[j]) j++;
        if (j == k) return 1;
    }
    return 0;
}

/* Copies the line without citation marks: [digits], [edit], [citation needed]. */
static int strip_citations(anv_buf_t *b, const char *s, size_t n) {
    static const char *const MARKS[] = {"[edit]", "[citation needed]"};
    for (size_t i = 0; i < n;) {
        size_t skip = 0;
        if (s[i] == '[') {
            size_t j = i + 1;
            while (j < n && s[j] >= '0' && s[j] <= '9') j++;
            if (j < n && s[j] == ']') skip = j + 1 - i;
            for (size_t m = 0; !skip && m < 2; m++)
                if (n - i >= strlen(MARKS[m]) && !memcmp(s + i, MARKS[m], strlen(MARKS[m]))) skip = strlen(MARKS[m]);
        }
        if (skip) {
            i += skip;
            continue;
        }
        const char *next = memchr(s + i + 1, '[', n - i - 1);
        size_t take = next ? (size_t)(next - s) - i : n - i;
        if (anv_buf_append(b, s + i, take) != 0) return -1;
        i += take;
    }
    return 0;
}

/* Sentence ends in a kept line: . ! or ? followed by a space or the line's end (at least one). */
static size_t sentences(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if ((s[i] == '.' || s[i] == '!' || s[i] == '?') && (i + 1 == n || s[i + 1] == ' ') &&
            (i == 0 || (s[i - 1] != '.' && s[i - 1] != '!' && s[i - 1] != '?')))
            c++;
    return c ? c : 1;
}

static int run(const double *p, const char **text, size_t *len, anv_buf_t *out, anv_filter_scratch_t *s,
               anv_filter_verdict_t *v) {
    (void)s;
    static const char *const POLICY_TEXT[] = {"terms of use", "privacy policy", "cookie policy",
                                              "uses cookies", "use of cookies", "use cookies"};
    const char *name = "c4", *t = *text;
    size_t n = *len, n_sentences = 0;
    out->len = 0;
    for (size_t i = 0; i <= n;) {
        const char *nl = memchr(t + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - t) : n, a = i, b = end;
        i = end + 1;
        while (a < b && (t[a] == ' ' || t[a] == '\t' || t[a] == '\r')) a++;
        while (b > a && (t[b - 1] == ' ' || t[b - 1] == '\t' || t[b - 1] == '\r')) b--;
        if (a == b) continue;
        size_t longest = 0, tokens = 0;
        for (size_t k = a; k < b;) { /* words here are whitespace-separated tokens, punctuation kept */
            while (k < b && (t[k] == ' ' || t[k] == '\t')) k++;
            size_t start = k;
            while (k < b && t[k] != ' ' && t[k] != '\t') k++;
            if (k > start) {
                size_t chars = anv_utf8_chars(t + start, k - start);
                longest = chars > longest ? chars : longest;
                tokens++;
            }
        }
        if ((double)longest > p[MAX_WORD]) continue;
        size_t line_at = out->len;
        if (p[CITATIONS] ? strip_citations(out, t + a, b - a) : anv_buf_append(out, t + a, b - a)) return -1;
        size_t ll = out->len - line_at;
        if (ll == 0) continue; /* nothing but citation marks */
        const char *line = out->data + line_at;
        char last = line[ll - 1];
        int ellipsis = ll >= 3 && !memcmp(line + ll - 3, "...", 3);
        if ((p[TERMINAL] && (!last || !strchr(".?!\"'", last) || ellipsis)) || (double)tokens < p[MIN_WORDS] ||
            (p[JAVASCRIPT] && contains_ci(line, ll, "javascript"))) {
            out->len = line_at;
            continue;
        }
        if (p[LOREM] && contains_ci(line, ll, "lorem ipsum")) return anv_filter_drop(v, name, "lorem_ipsum", 1);
        if (p[CURLY] && memchr(line, '{', ll)) return anv_filter_drop(v, name, "curly_bracket", 1);
        int policy = 0;
        for (size_t k = 0; p[POLICY] && k < sizeof POLICY_TEXT / sizeof POLICY_TEXT[0]; k++)
            policy |= contains_ci(line, ll, POLICY_TEXT[k]);
        if (policy) {
            out->len = line_at;
            continue;
        }
        n_sentences += sentences(line, ll);
        if (anv_buf_append(out, "\n", 1) != 0) return -1;
    }
    if (out->len) out->len--; /* the last line's \n */
    if (out->data) out->data[out->len] = 0;
    if ((double)n_sentences < p[MIN_SENTENCES]) return anv_filter_drop(v, name, "min_sentences", (double)n_sentences);
    *text = out->data ? out->data : "";
    *len = out->len;
    return 1;
}

const anv_filter_def_t anv_filter_c4 = {"c4", "C4's line and document rules (Raffel et al. 2020)", PARAMS, run};

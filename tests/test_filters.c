/* The quality filters, each rule on both sides of its threshold: for every rule a family of documents
 * whose measured value (computed here by counting what was built) sweeps across the threshold; each
 * document must be kept exactly when the value is within the rule, and a dropped one must name that
 * rule and report that value. Rules are tested alone (the filter's other thresholds switched off),
 * except Gopher's quality rules, whose documents keep within the others. C4's line rules are checked
 * on the text they leave. */
#include "anvil/filters.h"
#include "check.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OFF 1e9

static anv_filter_scratch_t *scratch;

/* A distinct 5-letter word for each i: no stop word, no repeat. */
static void unique_word(anv_buf_t *b, unsigned i) {
    char w[6] = "uaaaa";
    for (int k = 4; k >= 1; k--, i /= 26) w[k] = (char)('a' + i % 26);
    anv_buf_append(b, w, 5);
}

static void words(anv_buf_t *b, const char *w, int n) {
    for (int i = 0; i < n; i++) anv_buf_printf(b, "%s%s", b->len && b->data[b->len - 1] != '\n' ? " " : "", w);
}

static unsigned next_unique;
static void uniques(anv_buf_t *b, int n) {
    for (int i = 0; i < n; i++) {
        if (b->len && b->data[b->len - 1] != '\n') anv_buf_append(b, " ", 1);
        unique_word(b, next_unique++);
    }
}

/* Runs one filter (with params changed from its defaults: "name=value" pairs, NULL-terminated). */
static int judge(const char *filter, const char *const *params, const char *text, size_t len, anv_buf_t *out,
                 anv_filter_verdict_t *v) {
    anv_filter_set_t set = {0};
    if (anv_filter_set_add(&set, filter) != 0) return -1;
    for (int i = 0; params && params[i]; i++) {
        char a[128];
        snprintf(a, sizeof a, "%s.%s", filter, params[i]);
        if (anv_filter_set_param(&set, a) != 0) return -1;
    }
    const char *t = text;
    size_t n = len;
    return anv_filter_set_run(&set, &t, &n, out, scratch, v);
}

/* One document of a sweep: dropped must equal expectation, with the rule and the value. */
static void expect(const char *filter, const char *const *params, const char *rule, anv_buf_t *doc, double value,
                   int should_drop, int *sides) {
    anv_filter_verdict_t v = {{0}, 0};
    anv_buf_t out = {0};
    int r = judge(filter, params, doc->data, doc->len, &out, &v);
    char want[64];
    snprintf(want, sizeof want, "%s:%s", filter, rule);
    int ok = should_drop ? r == 0 && !strcmp(v.reason, want) && fabs(v.value - value) < 1e-9 : r == 1;
    CHECK(ok, "%s at %g: %s (got %s, reason %s value %g)", want, value, should_drop ? "dropped" : "kept",
          r == 1   ? "kept"
          : r == 0 ? "dropped"
                   : "error",
          v.reason, v.value);
    sides[should_drop] = 1;
    anv_buf_free(&out);
}

static void both_sides(const char *what, const int *sides) {
    CHECK(sides[0] && sides[1], "%s: documents on both sides of the threshold", what);
    printf("  %-40s both sides: %s\n", what, sides[0] && sides[1] ? "yes" : "NO");
}

static void test_gopher_quality(void) {
    printf("gopher_quality:\n");
    anv_buf_t d = {0};
    int s[2];
    memset(s, 0, sizeof s);
    for (int n = 46; n <= 53; n++) { /* words */
        d.len = 0;
        words(&d, "the and", 1);
        words(&d, "river", n - 2);
        expect("gopher_quality", NULL, "min_words", &d, n, n < 50, s);
    }
    both_sides("min_words 50", s);
    memset(s, 0, sizeof s);
    for (int n = 99998; n <= 100002; n++) {
        d.len = 0;
        words(&d, "the and", 1);
        words(&d, "river", n - 2);
        expect("gopher_quality", NULL, "max_words", &d, n, n > 100000, s);
    }
    both_sides("max_words 100000", s);
    memset(s, 0, sizeof s);
    for (int x = 0; x <= 4; x++) { /* 100 words: the, and, x of 2 letters, the rest of 3 */
        d.len = 0;
        words(&d, "the and", 1);
        words(&d, "ox", x);
        words(&d, "cat", 98 - x);
        expect("gopher_quality", NULL, "min_mean_word_length", &d, (300.0 - x) / 100, x > 0, s);
    }
    both_sides("min_mean_word_length 3", s);
    memset(s, 0, sizeof s);
    for (int y = 10; y <= 18; y++) { /* 100 words: the, and, y of 11 letters, the rest of 10 */
        d.len = 0;
        words(&d, "the and", 1);
        words(&d, "abcdefghijk", y);
        words(&d, "abcdefghij", 98 - y);
        expect("gopher_quality", NULL, "max_mean_word_length", &d, (986.0 + y) / 100, y > 14, s);
    }
    both_sides("max_mean_word_length 10", s);
    const char *symbols[] = {"#", "...", "\u2026"};
    const char *rules[] = {"hash_word_ratio", "ellipsis_word_ratio", "ellipsis_word_ratio"};
    for (int k = 0; k < 3; k++) {
        memset(s, 0, sizeof s);
        for (int h = 8; h <= 13; h++) { /* 100 words and h symbols among them, not at a line's end */
            d.len = 0;
            words(&d, "the and", 1);
            words(&d, symbols[k], h);
            words(&d, "cat", 98);
            expect("gopher_quality", NULL, rules[k], &d, h / 100.0, h > 10, s);
        }
        char what[64];
        snprintf(what, sizeof what, "max_symbol_word_ratio 0.1 (%s)", symbols[k]);
        both_sides(what, s);
    }
    memset(s, 0, sizeof s);
    for (int b = 7; b <= 10; b++) { /* 10 lines of 6 words, b of them bulleted */
        d.len = 0;
        for (int l = 0; l < 10; l++) anv_buf_printf(&d, "%sthe and cat cat cat cat\n", l < b ? "\u2022 " : "");
        expect("gopher_quality", NULL, "bullet_lines", &d, b / 10.0, b > 9, s);
    }
    both_sides("max_bullet_lines 0.9", s);
    memset(s, 0, sizeof s);
    for (int e = 1; e <= 6; e++) { /* 10 lines of 6 words, e ending in an ellipsis */
        d.len = 0;
        for (int l = 0; l < 10; l++) anv_buf_printf(&d, "the and cat cat cat cat%s\n", l < e ? "..." : ".");
        expect("gopher_quality", NULL, "ellipsis_lines", &d, e / 10.0, e > 3, s);
    }
    both_sides("max_ellipsis_lines 0.3", s);
    memset(s, 0, sizeof s);
    for (int n = 18; n <= 24; n++) { /* 100 words, n of them numbers */
        d.len = 0;
        words(&d, "the and", 1);
        words(&d, "123", n);
        words(&d, "cat", 98 - n);
        expect("gopher_quality", NULL, "alpha_words", &d, (100.0 - n) / 100, n > 20, s);
    }
    both_sides("min_alpha_words 0.8", s);
    memset(s, 0, sizeof s);
    for (int n = 0; n <= 4; n++) { /* 60 words, n stop words */
        d.len = 0;
        words(&d, "With", n);
        words(&d, "cat", 60 - n);
        expect("gopher_quality", NULL, "stop_words", &d, n, n < 2, s);
    }
    both_sides("min_stop_words 2", s);
    anv_buf_free(&d);
}

/* Gopher repetition's params with only `keep` switched on. */
static const char *const *only(const char *keep) {
    static const char *names[] = {"dup_line_frac", "dup_para_frac", "dup_line_char_frac", "dup_para_char_frac",
                                  "top_2_gram",    "top_3_gram",    "top_4_gram",         "dup_5_gram",
                                  "dup_6_gram",    "dup_7_gram",    "dup_8_gram",         "dup_9_gram",
                                  "dup_10_gram"};
    static char buf[13][64];
    static const char *list[14];
    int k = 0;
    for (int i = 0; i < 13; i++)
        if (strcmp(names[i], keep)) {
            snprintf(buf[k], sizeof buf[k], "%s=%g", names[i], OFF);
            list[k] = buf[k];
            k++;
        }
    list[k] = NULL;
    return list;
}

static void test_gopher_repetition(void) {
    printf("gopher_repetition:\n");
    anv_buf_t d = {0};
    int s[2];
    /* paragraphs (and lines): 10 unique ones, then "ok" and d copies of it */
    const char *sep[] = {"\n\n", "\n"};
    const char *frac_rule[] = {"dup_para_frac", "dup_line_frac"};
    for (int k = 0; k < 2; k++) {
        memset(s, 0, sizeof s);
        for (int dups = 2; dups <= 7; dups++) {
            d.len = 0;
            for (int p = 0; p < 10; p++) {
                uniques(&d, 8);
                anv_buf_puts(&d, sep[k]);
            }
            for (int c = 0; c <= dups; c++) anv_buf_printf(&d, "ok%s", sep[k]);
            double frac = (double)dups / (11 + dups);
            expect("gopher_repetition", only(frac_rule[k]), frac_rule[k], &d, frac, frac > 0.3, s);
        }
        both_sides(k ? "dup_line_frac 0.3" : "dup_para_frac 0.3", s);
    }
    /* characters in repeated paragraphs (lines): 10 unique ones of 8 words, then R twice, R of m words */
    const char *char_rule[] = {"dup_para_char_frac", "dup_line_char_frac"};
    for (int k = 0; k < 2; k++) {
        memset(s, 0, sizeof s);
        for (int m = 20; m <= 36; m += 2) {
            d.len = 0;
            for (int p = 0; p < 10; p++) {
                uniques(&d, 8);
                anv_buf_puts(&d, sep[k]);
            }
            size_t r0 = d.len;
            uniques(&d, m);
            size_t r = d.len - r0;
            anv_buf_puts(&d, sep[k]);
            anv_buf_append(&d, d.data + r0, r);
            double frac = (double)r / d.len;
            expect("gopher_repetition", only(char_rule[k]), char_rule[k], &d, frac, frac > 0.2, s);
        }
        both_sides(k ? "dup_line_char_frac 0.2" : "dup_para_char_frac 0.2", s);
    }
    /* the top n-gram: "ab cd ..." (n words of 2 letters) 10 times, u unique words before each */
    const double top_thr[] = {0.2, 0.18, 0.16};
    for (int n = 2; n <= 4; n++) {
        char rule[32], phrase[16] = "";
        snprintf(rule, sizeof rule, "top_%d_gram", n);
        for (int w = 0; w < n; w++) strcat(phrase, w ? " zz" : "zz");
        for (int w = 0; w < n; w++) phrase[3 * w] = (char)('a' + w), phrase[3 * w + 1] = (char)('n' + w);
        memset(s, 0, sizeof s);
        for (int u = 1; u <= 14; u++) {
            d.len = 0;
            for (int i = 0; i < 10; i++) {
                uniques(&d, u);
                anv_buf_printf(&d, " %s", phrase);
            }
            double frac = 10.0 * strlen(phrase) / d.len;
            expect("gopher_repetition", only(rule), rule, &d, frac, frac > top_thr[n - 2], s);
        }
        char what[64];
        snprintf(what, sizeof what, "%s %g", rule, top_thr[n - 2]);
        both_sides(what, s);
    }
    /* duplicate n-grams: a phrase of n unique words twice, among u unique words */
    for (int n = 5; n <= 10; n++) {
        char rule[32];
        snprintf(rule, sizeof rule, "dup_%d_gram", n);
        double thr = 0.15 - 0.01 * (n - 5);
        memset(s, 0, sizeof s);
        for (int u = n; u <= 10 * n; u += n / 2 + 1) {
            d.len = 0;
            uniques(&d, u);
            size_t p0 = d.len + 1;
            uniques(&d, n);
            size_t plen = d.len - p0;
            anv_buf_append(&d, " ", 1);
            anv_buf_append(&d, d.data + p0, plen);
            double frac = (double)plen / d.len;
            expect("gopher_repetition", only(rule), rule, &d, frac, frac > thr, s);
        }
        char what[64];
        snprintf(what, sizeof what, "%s %g", rule, thr);
        both_sides(what, s);
    }
    anv_buf_free(&d);
}

static void test_fineweb(void) {
    printf("fineweb:\n");
    anv_buf_t d = {0};
    int s[2];
    const char *const punct_only[] = {"max_short_lines=1", "max_dup_line_chars=1", "max_newlines_per_word=1e9", NULL};
    memset(s, 0, sizeof s);
    for (int p = 9; p <= 14; p++) { /* 100 long unique lines, p ending in '.' */
        d.len = 0;
        for (int l = 0; l < 100; l++) {
            uniques(&d, 6);
            anv_buf_puts(&d, l < p ? ".\n" : "\n");
        }
        expect("fineweb", punct_only, "punct_lines", &d, p / 100.0, p < 12, s);
    }
    both_sides("min_punct_lines 0.12", s);
    const char *const short_only[] = {"min_punct_lines=0", "max_dup_line_chars=1", "max_newlines_per_word=1e9", NULL};
    memset(s, 0, sizeof s);
    for (int n = 64; n <= 70; n++) { /* 100 lines, n of at most 30 characters */
        d.len = 0;
        for (int l = 0; l < 100; l++) {
            uniques(&d, l < n ? 4 : 6); /* 23 or 35 characters */
            anv_buf_puts(&d, ".\n");
        }
        expect("fineweb", short_only, "short_lines", &d, n / 100.0, n > 67, s);
    }
    both_sides("max_short_lines 0.67 (30 characters)", s);
    const char *const dup_only[] = {"min_punct_lines=0", "max_short_lines=1", "max_newlines_per_word=1e9", NULL};
    memset(s, 0, sizeof s);
    for (int m = 3; m <= 9; m++) { /* 100 unique lines of 6 words, a line of m words twice */
        d.len = 0;
        for (int l = 0; l < 100; l++) {
            uniques(&d, 6);
            anv_buf_puts(&d, "\n");
        }
        size_t r0 = d.len;
        uniques(&d, m);
        anv_buf_puts(&d, "\n");
        size_t r = d.len - r0;
        anv_buf_append(&d, d.data + r0, r);
        double frac = (double)(r - 1) / d.len;
        expect("fineweb", dup_only, "dup_line_chars", &d, frac, frac > 0.01, s);
    }
    both_sides("max_dup_line_chars 0.01", s);
    const char *const nl_only[] = {"min_punct_lines=0", "max_short_lines=1", "max_dup_line_chars=1", NULL};
    memset(s, 0, sizeof s);
    for (int w = 2; w <= 5; w++) { /* 50 lines of w words */
        d.len = 0;
        for (int l = 0; l < 50; l++) {
            uniques(&d, w);
            if (l < 49) anv_buf_puts(&d, "\n");
        }
        double ratio = 49.0 / (50.0 * w);
        expect("fineweb", nl_only, "newlines_per_word", &d, ratio, ratio > 0.3, s);
    }
    both_sides("max_newlines_per_word 0.3", s);
    anv_buf_free(&d);
}

/* C4: the text a document leaves, or that it is dropped for rule with value. */
static void c4_case(const char *what, const char *text, const char *left, const char *rule, double value) {
    anv_filter_verdict_t v = {{0}, 0};
    anv_buf_t out = {0};
    const char *const five_sentences_off[] = {"min_sentences=0", NULL};
    int r =
        judge("c4", rule && !strcmp(rule, "min_sentences") ? NULL : five_sentences_off, text, strlen(text), &out, &v);
    if (left) {
        CHECK(r == 1 && out.len == strlen(left) && !memcmp(out.data, left, out.len), "c4 %s: left '%.*s'", what,
              (int)out.len, out.data ? out.data : "");
    } else {
        char want[64];
        snprintf(want, sizeof want, "c4:%s", rule);
        CHECK(r == 0 && !strcmp(v.reason, want) && v.value == value, "c4 %s: dropped for %s (got %d %s %g)", what, want,
              r, v.reason, v.value);
    }
    printf("  %-52s %s\n", what, left ? "kept, lines as expected" : "dropped");
    anv_buf_free(&out);
}

static void test_c4(void) {
    printf("c4:\n");
    c4_case(
        "terminal punctuation . ? ! \" ' kept, others dropped",
        "One two three.\nOne two three?\nOne two three!\nHe said \"one two three\"\nOne two three\nOne two three...",
        "One two three.\nOne two three?\nOne two three!\nHe said \"one two three\"", NULL, 0);
    c4_case("3 words per line kept, 2 dropped", "Only two.\nNow three words.", "Now three words.", NULL, 0);
    c4_case("javascript and cookie lines dropped",
            "Please enable JavaScript in your browser.\nThis site uses cookies to work.\nRead our Privacy Policy "
            "here.\nThe river runs fast.",
            "The river runs fast.", NULL, 0);
    c4_case("citation marks removed", "The river runs fast.[1] It is cold.[citation needed]",
            "The river runs fast. It is cold.", NULL, 0);
    c4_case("lorem ipsum drops the document", "Lorem ipsum dolor sit amet.", NULL, "lorem_ipsum", 1);
    c4_case("a curly brace drops the document", "The code is int f() { return 1; }.", NULL, "curly_bracket", 1);
    c4_case("5 sentences kept", "One is here. Two is here. Three is here.\nFour is here! Five is here?",
            "One is here. Two is here. Three is here.\nFour is here! Five is here?", "min_sentences", 0);
    c4_case("4 sentences dropped", "One is here. Two is here.\nThree is here! Four is here?", NULL, "min_sentences", 4);
}

static void test_long_word_line(void) {
    /* built apart: the words' lengths decide */
    anv_buf_t d = {0}, out = {0};
    anv_buf_puts(&d, "See ");
    for (int i = 0; i < 1000; i++) anv_buf_puts(&d, "a");
    anv_buf_puts(&d, " it.\nSee ");
    for (int i = 0; i < 1001; i++) anv_buf_puts(&d, "b");
    anv_buf_puts(&d, " it.");
    anv_filter_verdict_t v;
    const char *const p[] = {"min_sentences=0", NULL};
    int r = judge("c4", p, d.data, d.len, &out, &v);
    CHECK(r == 1 && out.len == 1008 && out.data[4] == 'a',
          "c4: the line with a 1000-character word kept, the "
          "1001-character one dropped (left %zu bytes)",
          out.len);
    anv_buf_free(&d);
    anv_buf_free(&out);
}

static void test_params(void) {
    anv_filter_set_t set = {0};
    CHECK(anv_filter_set_add(&set, "gopher-quality") == 0 && anv_filter_set_add(&set, "c4") == 0 && set.n == 2 &&
              !strcmp(set.def[0]->name, "c4"),
          "names with - or _, and the table's order (c4 first)");
    CHECK(anv_filter_set_param(&set, "gopher_quality.min_words=10") == 0 && set.params[1][0] == 10, "a threshold set");
    CHECK(anv_filter_set_param(&set, "gopher_quality.nope=1") != 0 && strstr(anv_last_error(), "no parameter"),
          "unknown parameter: %s", anv_last_error());
    CHECK(anv_filter_set_param(&set, "fineweb.min_punct_lines=0.1") != 0 && strstr(anv_last_error(), "not chosen"),
          "filter not chosen: %s", anv_last_error());
    CHECK(anv_filter_set_param(&set, "c4.min_sentences=x") != 0, "not a number: %s", anv_last_error());
    CHECK(anv_filter_set_add(&set, "gopher") != 0 && strstr(anv_last_error(), "unknown filter"), "unknown filter");
}

static void pii_case(const char *in, int phones, const char *want) {
    anv_buf_t out = {0};
    anv_pii_counts_t c = {0, 0, 0};
    int n = anv_pii_scrub(in, strlen(in), phones, &out, &c);
    const char *got = n > 0 ? out.data : in;
    CHECK(n >= 0 && !strcmp(got, want), "pii%s: '%s' -> '%s' (want '%s')", phones ? " with phones" : "", in, got, want);
    anv_buf_free(&out);
}

static void test_pii(void) {
    pii_case("mail john.doe+news@mail.example.org now.", 0, "mail email@example.com now.");
    pii_case("Write to a.b@example.com.", 0, "Write to email@example.com.");
    pii_case("user@localhost and a@b.c and @example.com stay", 0, "user@localhost and a@b.c and @example.com stay");
    pii_case("dns 8.8.8.8, web 172.32.0.1 and 203.0.114.9", 0, "dns 192.0.2.1, web 192.0.2.1 and 192.0.2.1");
    pii_case("lan 192.168.1.1 10.0.0.7 172.16.5.4 127.0.0.1 169.254.1.1 100.64.0.1 0.0.0.0 224.0.0.1 192.0.2.44", 0,
             "lan 192.168.1.1 10.0.0.7 172.16.5.4 127.0.0.1 169.254.1.1 100.64.0.1 0.0.0.0 224.0.0.1 192.0.2.44");
    pii_case("not addresses: 256.1.1.1 1.2.3.4.5 v1.2.3.4 1.2.3", 0,
             "not addresses: 256.1.1.1 1.2.3.4.5 v1.2.3.4 1.2.3");
    pii_case("call +1 415-555-2671 or (020) 7946 0958 or 415.555.2671.", 1, "call 555-0100 or 555-0100 or 555-0100.");
    pii_case("call +1 415-555-2671 today", 0, "call +1 415-555-2671 today");
    pii_case("dates 2024-01-15, ids 12-34, version 1.2.3.4.5, price 1 000 000", 1,
             "dates 2024-01-15, ids 12-34, version 1.2.3.4.5, price 1 000 000");
    anv_pii_counts_t c = {0, 0, 0};
    anv_buf_t out = {0};
    const char *t = "a@example.com b@example.com 8.8.4.4 +44 20 7946 0958";
    int n = anv_pii_scrub(t, strlen(t), 1, &out, &c);
    CHECK(n == 4 && c.emails == 2 && c.ips == 1 && c.phones == 1, "pii counts: %d (%llu, %llu, %llu)", n,
          (unsigned long long)c.emails, (unsigned long long)c.ips, (unsigned long long)c.phones);
    anv_buf_free(&out);
    printf("pii: e-mail, public and private IPv4, phone numbers and look-alikes as expected\n");
}

static void test_blocklist(void) {
    char path[] = "/tmp/anvil_blocklist_XXXXXX";
    int fd = mkstemp(path);
    const char *list = "forbidden word\nBadword\n\nna\u00efve caf\u00e9\n";
    CHECK(fd >= 0 && write(fd, list, strlen(list)) == (ssize_t)strlen(list), "blocklist file");
    close(fd);
    anv_blocklist_t *bl;
    CHECK(anv_blocklist_load(path, &bl) == 0 && anv_blocklist_size(bl) == 3, "3 entries");
    struct {
        const char *text;
        int hit;
    } cases[] = {{"A FORBIDDEN   word here", 1},
                 {"forbidden wordsmith", 0},
                 {"the word forbidden", 0},
                 {"badwords are fine", 0},
                 {"it is a badword, sadly", 1},
                 {"NA\u00cfVE CAF\u00c9!", 1},
                 {"forbidden\nword across a line", 1},
                 {"", 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(anv_blocklist_match(bl, cases[i].text, strlen(cases[i].text)) == cases[i].hit, "blocklist '%s': %d",
              cases[i].text, cases[i].hit);
    anv_blocklist_free(bl);
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0 && write(fd, "\n  \n", 4) == 4, "empty list");
    close(fd);
    CHECK(anv_blocklist_load(path, &bl) != 0 && strstr(anv_last_error(), "no words or phrases"), "empty blocklist: %s",
          anv_last_error());
    unlink(path);
    CHECK(anv_blocklist_load(path, &bl) != 0, "missing blocklist: %s", anv_last_error());
    printf("blocklist: whole words and phrases, any case (Unicode too), as expected\n");
}

static void test_language(void) {
    const char *en = "The quick brown fox jumps over the lazy dog and then runs into the forest to find its friends.";
    const char *fr = "Le renard brun rapide saute par-dessus le chien paresseux et court dans la for\u00eat pour "
                     "retrouver ses amis.";
    const char *code;
    double share;
    anv_language_detect(en, strlen(en), &code, &share);
    CHECK(!strcmp(code, "en") && share > 0.9, "English: %s %.2f", code, share);
    anv_language_detect(fr, strlen(fr), &code, &share);
    CHECK(!strcmp(code, "fr") && share > 0.9, "French: %s %.2f", code, share);
    anv_language_detect("12 34 !!", 8, &code, &share);
    CHECK(!strcmp(code, "un") && share == 0, "no language: %s %.2f", code, share);
    char bad[200];
    snprintf(bad, sizeof bad, "%s\xff\xfe", en);
    anv_language_detect(bad, strlen(bad), &code, &share);
    CHECK(!strcmp(code, "en"), "English before invalid UTF-8: %s", code);
    CHECK(anv_language_known("en") && anv_language_known("de") && !anv_language_known("xx") &&
              !anv_language_known("English"),
          "language codes");
    printf("language: CLD2 names English and French, nothing for digits\n");
}

int main(void) {
    scratch = anv_filter_scratch_new();
    test_params();
    test_gopher_quality();
    test_gopher_repetition();
    test_fineweb();
    test_c4();
    test_long_word_line();
    test_pii();
    test_blocklist();
    test_language();
    anv_filter_scratch_free(scratch);
    return check_done("test_filters");
}

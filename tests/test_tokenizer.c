/* Tokenizer: BPE merge order against a naive reference, lossless round trips on random bytes,
 * pre-tokenizer splits (hand-checked against the regexes), special tokens, formats (save/load,
 * tiktoken, vocab.bpe, errors), vocabulary sizes and batch encoding. GPT-2 parity against tiktoken
 * on 12 MB of text is tests/e2e_gpt2_parity.sh. */
#include "anvil/json.h"
#include "anvil/tokenizer.h"
#include "check.h"
#include "tok/tok_internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];

static void path_in_tmp(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

static void write_text(const char *path, const char *text, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fwrite(text, 1, n, f);
    fclose(f);
}

/* ---- a random vocabulary: merges of random earlier ids, no two tokens with the same bytes ---- */
#define N_MERGES 1500
static uint32_t merges[N_MERGES][2];
static char *tok_bytes[256 + N_MERGES];
static size_t tok_len[256 + N_MERGES];
static uint16_t rank_of[256 + N_MERGES][256 + N_MERGES]; /* 0xFFFF: no merge */

static void make_merges(anv_rng_t *rng) {
    memset(rank_of, 0xFF, sizeof rank_of);
    for (unsigned b = 0; b < 256; b++) {
        tok_bytes[b] = malloc(1);
        tok_bytes[b][0] = (char)b;
        tok_len[b] = 1;
    }
    /* Mostly small alphabet so merges chain into long tokens, as real BPE does. */
    const char *alpha = "abcde ";
    for (size_t i = 0; i < N_MERGES;) {
        uint32_t id = (uint32_t)(256 + i), l, r;
        if (i < 30)
            l = (uint32_t)(unsigned char)alpha[anv_rng_u64(rng) % 6],
            r = (uint32_t)(unsigned char)alpha[anv_rng_u64(rng) % 6];
        else
            l = 256 + (uint32_t)(anv_rng_u64(rng) % i), r = (anv_rng_u64(rng) & 1)
                                                                ? 256 + (uint32_t)(anv_rng_u64(rng) % i)
                                                                : (uint32_t)(unsigned char)alpha[anv_rng_u64(rng) % 6];
        if (anv_rng_u64(rng) % 8 == 0) r = (uint32_t)(anv_rng_u64(rng) % 256);
        size_t n = tok_len[l] + tok_len[r];
        char *b = malloc(n);
        memcpy(b, tok_bytes[l], tok_len[l]);
        memcpy(b + tok_len[l], tok_bytes[r], tok_len[r]);
        int dup = 0;
        for (uint32_t k = 0; k < id && !dup; k++) dup = tok_len[k] == n && !memcmp(tok_bytes[k], b, n);
        if (dup) {
            free(b);
            continue;
        }
        tok_bytes[id] = b;
        tok_len[id] = n;
        merges[i][0] = l;
        merges[i][1] = r;
        rank_of[l][r] = (uint16_t)i;
        i++;
    }
}

/* Naive BPE reference: scan all adjacent pairs for the lowest merge rank, merge the leftmost. */

static size_t naive_bpe(const unsigned char *s, size_t n, uint32_t *out) {
    for (size_t i = 0; i < n; i++) out[i] = s[i];
    size_t m = n;
    for (;;) {
        size_t best = 0xFFFF, at = 0;
        for (size_t i = 0; i + 1 < m; i++)
            if (rank_of[out[i]][out[i + 1]] < best) best = rank_of[out[i]][out[i + 1]], at = i;
        if (best == 0xFFFF) return m;
        out[at] = (uint32_t)(256 + best);
        memmove(out + at + 1, out + at + 2, (m - at - 2) * sizeof *out);
        m--;
    }
}

static int same_ids(const anv_tokens_t *a, const uint32_t *b, size_t n) {
    return a->len == n && (n == 0 || !memcmp(a->ids, b, n * sizeof *b));
}

static void random_text(anv_rng_t *rng, char *buf, size_t n, int kind) {
    static const char *pieces[] = {" ",
                                   "  ",
                                   "\n",
                                   "\r\n",
                                   "\t",
                                   "'s",
                                   "'ll",
                                   "a",
                                   "abc",
                                   "de",
                                   "e",
                                   "1",
                                   "42",
                                   "!",
                                   "?!",
                                   "\xc3\xa9",
                                   "\xe4\xb8\xad",
                                   "\xf0\x9f\x98\x80",
                                   "\xe2\x80\x83",
                                   "\xc2\xa0",
                                   "\xff",
                                   "\xc0\x80",
                                   "\x00",
                                   "<|endoftext|>",
                                   "\xed\xa0\x80"};
    size_t i = 0;
    while (i < n) {
        if (kind == 0) {
            buf[i++] = (char)anv_rng_u64(rng);
            continue;
        }
        const char *p = pieces[anv_rng_u64(rng) % (sizeof pieces / sizeof pieces[0])];
        size_t k = strlen(p) ? strlen(p) : 1;
        for (size_t j = 0; j < k && i < n; j++) buf[i++] = p[j];
    }
}

static void test_bpe_against_reference(anv_tokenizer_t *t, anv_rng_t *rng) {
    /* Letters-only texts are one pre-token each: the ids must be exactly naive BPE's, for short
     * pieces (array path) and long ones (heap path). */
    int cases = 0, bad = 0;
    uint32_t ref[3000];
    char text[3000];
    anv_tokens_t ids = {0};
    for (int c = 0; c < 400; c++) {
        size_t n = c < 300 ? 2 + anv_rng_u64(rng) % 60 : 100 + anv_rng_u64(rng) % 2000;
        for (size_t i = 0; i < n; i++) text[i] = "abcde"[anv_rng_u64(rng) % 5];
        ids.len = 0;
        CHECK(anv_tokenizer_encode(t, text, n, &ids) == 0, "%s", anv_last_error());
        size_t m = naive_bpe((const unsigned char *)text, n, ref);
        cases++;
        if (!same_ids(&ids, ref, m)) bad++;
    }
    printf("bpe vs naive reference: %d letter runs (2..2100 bytes), %d differ\n", cases, bad);
    CHECK(bad == 0, "%d of %d differ from the naive reference", bad, cases);
    anv_tokens_free(&ids);
}

static void test_roundtrip(anv_tokenizer_t *t, anv_rng_t *rng, const char *name) {
    int cases = 0, bad = 0;
    size_t bytes = 0, tokens = 0;
    char text[4096];
    anv_tokens_t ids = {0};
    anv_buf_t back = {0};
    for (int c = 0; c < 3000; c++) {
        size_t n = anv_rng_u64(rng) % (c < 2900 ? 200 : 4096);
        random_text(rng, text, n, c % 2);
        ids.len = 0;
        back.len = 0;
        int ok = anv_tokenizer_encode(t, text, n, &ids) == 0 && anv_tokenizer_decode(t, ids.ids, ids.len, &back) == 0;
        ok = ok && back.len == n && (n == 0 || !memcmp(back.data, text, n));
        for (size_t i = 0; i < ids.len; i++) ok = ok && ids.ids[i] != (uint32_t)anv_tokenizer_eot(t);
        cases++;
        bytes += n;
        tokens += ids.len;
        bad += !ok;
    }
    printf("round trip %s: %d random byte strings, %zu bytes, %zu tokens, %d not identical\n", name, cases, bytes,
           tokens, bad);
    CHECK(bad == 0, "%s: %d round trips differ", name, bad);
    anv_tokens_free(&ids);
    anv_buf_free(&back);
}

/* Splits text with the pre-tokenizer and compares with the expected pieces ("|"-separated). */
static void check_split(anv_pretok_t p, const char *text, size_t n, const char *expect) {
    char got[512] = "";
    size_t g = 0;
    for (size_t pos = 0; pos < n;) {
        size_t end = tok_pretok_next(p, (const unsigned char *)text, pos, n);
        if (end <= pos || end > n) {
            CHECK(0, "no progress at %zu", pos);
            return;
        }
        if (pos) got[g++] = '|';
        memcpy(got + g, text + pos, end - pos);
        g += end - pos;
        pos = end;
    }
    got[g] = 0;
    CHECK(g == strlen(expect) && !memcmp(got, expect, g), "%s split of '%s': got '%s', want '%s'",
          p == ANV_PRETOK_GPT2 ? "gpt2" : "cl100k", text, got, expect);
}

static void test_pretokenizer(void) {
    int before = check_failed;
#define S(p, text, expect) check_split(p, text, sizeof(text) - 1, expect)
    const anv_pretok_t G = ANV_PRETOK_GPT2, C = ANV_PRETOK_CL100K;
    S(G, "Hello world", "Hello| world");
    S(G, "it's they'll we'RE", "it|'s| they|'ll| we|'|RE");
    S(G, "  hi", " | hi");
    S(G, "x   ", "x|   ");
    S(G, "a  \n b", "a|  \n| b");
    S(G, "\t\tx", "\t|\t|x");
    S(G, "123abc 45", "123|abc| 45");
    S(G, "!!! ?x", "!!!| ?|x");
    S(G, "''s", "''|s");
    S(G,
      "\xff\xfe"
      "ab",
      "\xff\xfe|ab"); /* invalid bytes: "other" characters */
    S(G, "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87", "caf\xc3\xa9| \xe4\xb8\xad\xe6\x96\x87"); /* é, 中文 are letters */
    S(G, "x\xc2\xa0y", "x|\xc2\xa0|y");                   /* NBSP is \s but not the optional ' ' */
    S(G, "\xc2\xb2\xe2\x85\xab", "\xc2\xb2\xe2\x85\xab"); /* ² and Ⅻ are numbers */
    S(G, "a\r\n\r\nb", "a|\r\n\r|\n|b");
    S(C, "Hello world", "Hello| world");
    S(C, "it's WE'RE 'S", "it|'s| WE|'RE| '|S");
    S(C, "12345 6", "123|45| |6");
    S(C, "\n\nhello", "\n\n|hello");
    S(C, "(hello \thi", "(hello| |\thi");
    S(C, " ((\n\nx", " ((\n\n|x");
    S(C, "  hi", " | hi");
    S(C, "a \n b", "a| \n| b");
    S(C, "x   ", "x|   ");
    S(C, "'\xc5\xbf", "'\xc5\xbf"); /* (?i)'s also matches U+017F LONG S */
#undef S
    printf("pre-tokenizer: %d hand-checked splits, %d wrong\n", 24, check_failed - before);
}

static void test_specials(anv_tokenizer_t *t) {
    const char *text = "a<|endoftext|>b<|pad|><|endoftext|>";
    anv_tokens_t plain = {0}, sp = {0};
    CHECK(anv_tokenizer_encode(t, text, strlen(text), &plain) == 0, "%s", anv_last_error());
    CHECK(anv_tokenizer_encode_special(t, text, strlen(text), &sp) == 0, "%s", anv_last_error());
    uint32_t eot = (uint32_t)anv_tokenizer_eot(t), pad = eot + 1;
    int n_special_plain = 0, n_eot = 0, n_pad = 0;
    for (size_t i = 0; i < plain.len; i++) n_special_plain += plain.ids[i] >= eot;
    for (size_t i = 0; i < sp.len; i++) n_eot += sp.ids[i] == eot, n_pad += sp.ids[i] == pad;
    printf("specials: plain encode made %d special ids (want 0); encode_special made %d eot, %d pad (want 2, 1)\n",
           n_special_plain, n_eot, n_pad);
    CHECK(n_special_plain == 0 && n_eot == 2 && n_pad == 1, "special token handling");
    anv_buf_t a = {0}, b = {0};
    CHECK(anv_tokenizer_decode(t, plain.ids, plain.len, &a) == 0 && a.len == strlen(text) &&
              !memcmp(a.data, text, a.len),
          "plain decode");
    CHECK(anv_tokenizer_decode(t, sp.ids, sp.len, &b) == 0 && b.len == strlen(text) && !memcmp(b.data, text, b.len),
          "special decode");
    uint32_t bad = (uint32_t)anv_tokenizer_vocab_size(t);
    CHECK(anv_tokenizer_decode(t, &bad, 1, &a) != 0 && strstr(anv_last_error(), "outside"), "bad id: %s",
          anv_last_error());
    anv_tokens_free(&plain);
    anv_tokens_free(&sp);
    anv_buf_free(&a);
    anv_buf_free(&b);

    /* Overlapping specials: the longest one starting at a position wins. */
    const char *overlap[] = {"<|end", "<|endoftext|>"};
    anv_tokenizer_t *o = NULL;
    anv_tokens_t ids = {0};
    CHECK(anv_tokenizer_create(ANV_PRETOK_GPT2, NULL, 0, overlap, 2, &o) == 0, "%s", anv_last_error());
    if (o) anv_tokenizer_encode_special(o, "x<|endoftext|><|end", 19, &ids);
    const uint32_t want[] = {'x', 257, 256};
    CHECK(same_ids(&ids, want, 3), "overlapping specials: %zu ids", ids.len);
    anv_tokens_free(&ids);
    anv_tokenizer_free(o);
}

static int same_encoding(anv_tokenizer_t *a, anv_tokenizer_t *b, anv_rng_t *rng, int cases) {
    char text[1024];
    anv_tokens_t x = {0}, y = {0};
    int same = 1;
    for (int c = 0; c < cases; c++) {
        size_t n = anv_rng_u64(rng) % sizeof text;
        random_text(rng, text, n, 1);
        x.len = y.len = 0;
        same &= anv_tokenizer_encode_special(a, text, n, &x) == 0 && anv_tokenizer_encode_special(b, text, n, &y) == 0;
        same &= same_ids(&x, y.ids, y.len);
    }
    anv_tokens_free(&x);
    anv_tokens_free(&y);
    return same;
}

static void test_save_load(anv_tokenizer_t *t, anv_rng_t *rng) {
    char path[512];
    path_in_tmp(path, sizeof path, "tokenizer.json");
    CHECK(anv_tokenizer_save(t, path) == 0, "%s", anv_last_error());
    anv_tokenizer_t *u = NULL;
    CHECK(anv_tokenizer_load(path, &u) == 0, "%s", anv_last_error());
    if (!u) return;
    int same_tokens = anv_tokenizer_vocab_size(u) == anv_tokenizer_vocab_size(t);
    for (uint32_t id = 0; same_tokens && id < anv_tokenizer_vocab_size(t); id++) {
        size_t n1, n2;
        const char *b1 = anv_tokenizer_token_bytes(t, id, &n1), *b2 = anv_tokenizer_token_bytes(u, id, &n2);
        same_tokens = b1 && b2 && n1 == n2 && !memcmp(b1, b2, n1);
    }
    int same_enc = same_encoding(t, u, rng, 300);
    printf(
        "save -> load: vocab %zu/%zu, merges %zu/%zu, hash %016llx/%016llx, tokens equal %d, 300 encodings equal %d\n",
        anv_tokenizer_vocab_size(t), anv_tokenizer_vocab_size(u), anv_tokenizer_n_merges(t), anv_tokenizer_n_merges(u),
        (unsigned long long)anv_tokenizer_hash(t), (unsigned long long)anv_tokenizer_hash(u), same_tokens, same_enc);
    CHECK(anv_tokenizer_hash(u) == anv_tokenizer_hash(t) && same_tokens && same_enc, "save/load equality");
    CHECK(anv_tokenizer_eot(u) == anv_tokenizer_eot(t), "eot %lld vs %lld", (long long)anv_tokenizer_eot(u),
          (long long)anv_tokenizer_eot(t));
    anv_tokenizer_free(u);

    /* Merges in the newer [["a", "b"]] form load the same (merges are the last member we write). */
    char *text;
    size_t len;
    anv_json_doc_t *doc = NULL;
    CHECK(anv_read_file(path, &text, &len) == 0 && anv_json_parse(text, len, path, &doc) == 0, "%s", anv_last_error());
    const anv_json_t *mj = anv_json_get(anv_json_get(anv_json_root(doc), "model"), "merges");
    const char *m = strstr(text, "\"merges\": [");
    anv_buf_t alt = {0};
    if (m && mj) {
        anv_buf_append(&alt, text, (size_t)(m - text) + 11);
        for (size_t i = 0; i < mj->len; i++) {
            const char *sp = memchr(mj->items[i].str, ' ', mj->items[i].len);
            anv_buf_puts(&alt, i ? ", [" : "[");
            anv_buf_json_string(&alt, mj->items[i].str, (size_t)(sp - mj->items[i].str));
            anv_buf_puts(&alt, ", ");
            anv_buf_json_string(&alt, sp + 1, mj->items[i].len - (size_t)(sp + 1 - mj->items[i].str));
            anv_buf_puts(&alt, "]");
        }
        anv_buf_puts(&alt, "]}}\n");
    }
    anv_json_free(doc);
    path_in_tmp(path, sizeof path, "tokenizer_arrays.json");
    write_text(path, alt.data, alt.len);
    CHECK(anv_tokenizer_load(path, &u) == 0 && anv_tokenizer_hash(u) == anv_tokenizer_hash(t), "array merges: %s",
          anv_last_error());
    anv_tokenizer_free(u);
    anv_buf_free(&alt);
    anv_free(text);
}

static void test_cl100k_save_load(void) {
    const uint32_t m[3][2] = {{'a', 'b'}, {256, 'c'}, {' ', 'a'}};
    const char *sp[] = {"<|endoftext|>"};
    anv_tokenizer_t *t = NULL, *u = NULL;
    CHECK(anv_tokenizer_create(ANV_PRETOK_CL100K, m, 3, sp, 1, &t) == 0, "%s", anv_last_error());
    char path[512];
    path_in_tmp(path, sizeof path, "cl100k.json");
    CHECK(t && anv_tokenizer_save(t, path) == 0 && anv_tokenizer_load(path, &u) == 0, "%s", anv_last_error());
    CHECK(u && anv_tokenizer_pattern(u) == ANV_PRETOK_CL100K && anv_tokenizer_hash(u) == anv_tokenizer_hash(t),
          "cl100k pattern survives save/load");
    anv_tokenizer_free(t);
    anv_tokenizer_free(u);
}

/* Base64 of bytes (for writing a tiktoken file). */
static void b64(anv_buf_t *o, const unsigned char *s, size_t n) {
    static const char *A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        char q[4] = {A[v >> 18], A[(v >> 12) & 63], i + 1 < n ? A[(v >> 6) & 63] : '=', i + 2 < n ? A[v & 63] : '='};
        anv_buf_append(o, q, 4);
    }
}

static void test_tiktoken_and_gpt2_files(void) {
    /* A small BPE vocabulary written as a tiktoken rank file and as encoder.json + vocab.bpe; both
     * must load to the same tokenizer as anv_tokenizer_create (the tiktoken reader recovers the merges). */
    const uint32_t m[6][2] = {{'h', 'e'}, {'l', 'l'}, {256, 257}, {258, 'o'}, {' ', 'w'}, {260, 'o'}};
    const char *eot = "<|endoftext|>";
    anv_tokenizer_t *t = NULL, *tt = NULL, *tg = NULL;
    CHECK(anv_tokenizer_create(ANV_PRETOK_GPT2, m, 6, &eot, 1, &t) == 0, "%s", anv_last_error());
    if (!t) return;
    anv_buf_t tik = {0}, enc = {0}, bpe = {0}, tmp = {0};
    anv_buf_puts(&enc, "{");
    anv_buf_puts(&bpe, "#version: 0.2\n");
    for (uint32_t id = 0; id < 262; id++) {
        size_t n;
        const unsigned char *b = (const unsigned char *)anv_tokenizer_token_bytes(t, id, &n);
        b64(&tik, b, n);
        anv_buf_printf(&tik, " %u\n", id);
        tmp.len = 0;
        tok_bytelevel_encode(&tmp, b, n);
        anv_buf_json_string(&enc, tmp.data, tmp.len);
        anv_buf_printf(&enc, ": %u, ", id);
    }
    anv_buf_puts(&enc, "\"<|endoftext|>\": 262}");
    for (int i = 0; i < 6; i++) {
        for (int k = 0; k < 2; k++) {
            size_t n;
            const char *b = anv_tokenizer_token_bytes(t, m[i][k], &n);
            tmp.len = 0;
            tok_bytelevel_encode(&tmp, b, n);
            anv_buf_append(&bpe, tmp.data, tmp.len);
            anv_buf_puts(&bpe, k ? "\n" : " ");
        }
    }
    char tpath[512], epath[512], bpath[512];
    path_in_tmp(tpath, sizeof tpath, "small.tiktoken");
    path_in_tmp(epath, sizeof epath, "encoder.json");
    path_in_tmp(bpath, sizeof bpath, "vocab.bpe");
    write_text(tpath, tik.data, tik.len);
    write_text(epath, enc.data, enc.len);
    write_text(bpath, bpe.data, bpe.len);
    CHECK(anv_tokenizer_load(tpath, &tt) == 0, "tiktoken: %s", anv_last_error());
    CHECK(anv_tokenizer_load(tmpdir, &tg) == 0, "gpt2 dir: %s", anv_last_error());
    if (tt && tg) {
        printf(
            "small vocabulary: created %016llx, tiktoken %016llx, encoder.json+vocab.bpe %016llx; eot %lld %lld %lld\n",
            (unsigned long long)anv_tokenizer_hash(t), (unsigned long long)anv_tokenizer_hash(tt),
            (unsigned long long)anv_tokenizer_hash(tg), (long long)anv_tokenizer_eot(t),
            (long long)anv_tokenizer_eot(tt), (long long)anv_tokenizer_eot(tg));
        CHECK(anv_tokenizer_hash(tt) == anv_tokenizer_hash(t), "tiktoken file loads the same tokenizer");
        CHECK(anv_tokenizer_hash(tg) == anv_tokenizer_hash(t), "encoder.json + vocab.bpe load the same tokenizer");
        anv_tokens_t ids = {0};
        anv_tokenizer_encode(tt, "hello worldo", 12, &ids);
        const uint32_t want[] = {259, 261, 'r', 'l', 'd', 'o'}; /* hello, " wo", r, l, d, o */
        CHECK(same_ids(&ids, want, 6), "'hello worldo' -> %zu ids", ids.len);
        anv_tokens_free(&ids);
    }
    anv_tokenizer_free(tt);
    anv_tokenizer_free(tg);
    anv_tokenizer_free(t);
    anv_buf_free(&tik);
    anv_buf_free(&enc);
    anv_buf_free(&bpe);
    anv_buf_free(&tmp);
}

/* Each bad file must fail with one message naming the file and (where given) the place. */
static void expect_load_error(const char *name, const char *content, size_t n, const char *want) {
    char path[512];
    path_in_tmp(path, sizeof path, name);
    write_text(path, content, n);
    anv_tokenizer_t *t = NULL;
    int rc = anv_tokenizer_load(path, &t);
    const char *err = anv_last_error();
    CHECK(rc != 0 && !t && strstr(err, path) && strstr(err, want), "%s: rc %d, error '%s' (want '%s')", name, rc, err,
          want);
    printf("  bad %-22s -> %s\n", name, err);
    anv_tokenizer_free(t);
}

static void test_format_errors(anv_tokenizer_t *t) {
    char good[512];
    path_in_tmp(good, sizeof good, "good.json");
    CHECK(anv_tokenizer_save(t, good) == 0, "%s", anv_last_error());
    char *text;
    size_t len;
    CHECK(anv_read_file(good, &text, &len) == 0, "%s", anv_last_error());
    printf("format errors:\n");
    expect_load_error("truncated.json", text, len / 2, "line");
    expect_load_error("foreign.json", "{\"a\": 1}", 8, "model");
    expect_load_error("wordpiece.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", 45, "BPE");
    const char *badmerge = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a zz\"]}, "
                           "\"pre_tokenizer\": {\"type\": \"ByteLevel\"}}";
    expect_load_error("badmerge.json", badmerge, strlen(badmerge), "merge 0");
    const char *nopre = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}";
    expect_load_error("nopre.json", nopre, strlen(nopre), "pre_tokenizer");
    const char *bigid = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 4000000000}, \"merges\": []}, "
                        "\"pre_tokenizer\": {\"type\": \"ByteLevel\"}}";
    expect_load_error("bigid.json", bigid, strlen(bigid), "id");
    expect_load_error("bad_b64.tiktoken", "IQ== 0\nIg== 1\n#### 2\n", 21, "line 3");
    expect_load_error("no_rank.tiktoken", "IQ== 0\nIg==\n", 12, "line 2");
    expect_load_error("missing_bytes.tiktoken", "IQ== 0\nIg== 1\n", 14, "single byte");
    expect_load_error("binary.bin", "\x01\x02\x03garbage", 10, "not a tokenizer");
    expect_load_error("empty.txt", "", 0, "empty");
    /* vocab.bpe with a bad line, next to a valid encoder.json. */
    char dir[512], enc[600], bpe[600];
    path_in_tmp(dir, sizeof dir, "gpt2bad");
    anv_mkdir_p(dir);
    snprintf(enc, sizeof enc, "%s/encoder.json", dir);
    snprintf(bpe, sizeof bpe, "%s/vocab.bpe", dir);
    anv_buf_t e = {0}, tmp = {0};
    anv_buf_puts(&e, "{");
    for (unsigned i = 0; i < 256; i++) {
        unsigned char c = (unsigned char)i;
        tmp.len = 0;
        tok_bytelevel_encode(&tmp, &c, 1);
        anv_buf_json_string(&e, tmp.data, tmp.len);
        anv_buf_printf(&e, ": %u%s", i, i < 255 ? ", " : "}");
    }
    write_text(enc, e.data, e.len);
    write_text(bpe, "#version: 0.2\na b\nab\n", 21);
    anv_tokenizer_t *u = NULL;
    int rc = anv_tokenizer_load(dir, &u);
    printf("  bad vocab.bpe             -> %s\n", anv_last_error());
    CHECK(rc != 0 && strstr(anv_last_error(), "vocab.bpe") && strstr(anv_last_error(), "line 2"), "vocab.bpe error: %s",
          anv_last_error());
    anv_tokenizer_free(u);
    anv_buf_free(&e);
    anv_buf_free(&tmp);
    anv_free(text);
}

static void test_batch(anv_tokenizer_t *t, anv_rng_t *rng) {
    enum { N = 64 };
    char *texts[N];
    size_t lens[N];
    anv_tokens_t outs[N] = {{0}}, one = {0};
    for (int i = 0; i < N; i++) {
        lens[i] = anv_rng_u64(rng) % 3000;
        texts[i] = malloc(lens[i] + 1);
        random_text(rng, texts[i], lens[i], 1);
    }
    CHECK(anv_tokenizer_encode_batch(t, (const char *const *)texts, lens, N, outs, 2) == 0, "%s", anv_last_error());
    int differ = 0;
    for (int i = 0; i < N; i++) {
        one.len = 0;
        anv_tokenizer_encode(t, texts[i], lens[i], &one);
        differ += !same_ids(&outs[i], one.ids, one.len);
        anv_tokens_free(&outs[i]);
        free(texts[i]);
    }
    printf("batch encode (2 threads): %d documents, %d differ from one-by-one encoding\n", N, differ);
    CHECK(differ == 0, "batch differs");
    anv_tokens_free(&one);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/anvil_test_tokenizer_%d", (int)getpid());
    anv_mkdir_p(tmpdir);
    anv_rng_t rng;
    anv_rng_seed(&rng, 1234);

    anv_tokenizer_t *bytes = NULL;
    CHECK(anv_tokenizer_create_bytes(&bytes) == 0, "%s", anv_last_error());
    printf("byte tokenizer: vocab %zu (want 257), eot %lld (want 256)\n", anv_tokenizer_vocab_size(bytes),
           (long long)anv_tokenizer_eot(bytes));
    CHECK(anv_tokenizer_vocab_size(bytes) == 257 && anv_tokenizer_eot(bytes) == 256, "byte tokenizer sizes");
    anv_tokens_t ids = {0};
    anv_tokenizer_encode(bytes, "a\xff\x00", 3, &ids);
    const uint32_t want[] = {'a', 0xff, 0};
    CHECK(same_ids(&ids, want, 3), "byte ids are byte values");
    anv_tokens_free(&ids);
    test_roundtrip(bytes, &rng, "bytes");

    make_merges(&rng);
    const char *specials[] = {"<|endoftext|>", "<|pad|>"};
    anv_tokenizer_t *t = NULL;
    CHECK(anv_tokenizer_create(ANV_PRETOK_GPT2, (const uint32_t(*)[2])merges, N_MERGES, specials, 2, &t) == 0, "%s",
          anv_last_error());
    if (!t) return check_done("test_tokenizer");
    printf("random vocabulary: vocab %zu (want %d), merges %zu, eot %lld (want %d)\n", anv_tokenizer_vocab_size(t),
           256 + N_MERGES + 2, anv_tokenizer_n_merges(t), (long long)anv_tokenizer_eot(t), 256 + N_MERGES);
    CHECK(anv_tokenizer_vocab_size(t) == 256 + N_MERGES + 2 && anv_tokenizer_eot(t) == 256 + N_MERGES, "sizes");

    test_pretokenizer();
    test_bpe_against_reference(t, &rng);
    test_roundtrip(t, &rng, "gpt2 pattern");
    test_specials(t);
    test_save_load(t, &rng);
    test_cl100k_save_load();
    test_tiktoken_and_gpt2_files();
    test_format_errors(t);
    test_batch(t, &rng);

    /* Bad input to create: merges must refer to earlier ids; duplicates are rejected. */
    const uint32_t bad_merge[1][2] = {{300, 'a'}}, dup[2][2] = {{'a', 'b'}, {'a', 'b'}};
    anv_tokenizer_t *x = NULL;
    CHECK(anv_tokenizer_create(ANV_PRETOK_GPT2, bad_merge, 1, NULL, 0, &x) != 0 && !x, "forward reference accepted");
    CHECK(anv_tokenizer_create(ANV_PRETOK_GPT2, dup, 2, NULL, 0, &x) != 0 && strstr(anv_last_error(), "same bytes"),
          "duplicate merge: %s", anv_last_error());

    anv_tokenizer_free(t);
    anv_tokenizer_free(bytes);
    for (int i = 0; i < 256 + N_MERGES; i++) free(tok_bytes[i]);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_done("test_tokenizer");
}

/* BPE training: hand-computed merges, the documented tie-break, agreement with a naive reference
 * trainer, determinism across runs and thread counts, vocabulary-size errors, and round trips with
 * the trained tokenizer. */
#include "anvil/bpe_train.h"
#include "anvil/prepare.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static anv_bpe_words_t *words_of(const char *const *w, const uint64_t *counts, size_t n) {
    anv_bpe_words_t *ws;
    if (anv_bpe_words_init(&ws) != 0) return NULL;
    for (size_t i = 0; i < n; i++) anv_bpe_words_add(ws, w[i], strlen(w[i]), counts[i]);
    return ws;
}

/* Merges as "left+right" strings of the token bytes, for readable comparisons. */
static void merge_names(const uint32_t (*m)[2], size_t n, char *out, size_t size) {
    char bytes[512][32];
    size_t len[512];
    for (int b = 0; b < 256; b++) {
        bytes[b][0] = (char)b;
        len[b] = 1;
    }
    out[0] = 0;
    for (size_t i = 0; i < n && 256 + i < 512; i++) {
        uint32_t l = m[i][0], r = m[i][1];
        size_t id = 256 + i;
        len[id] = len[l] + len[r] < 31 ? len[l] + len[r] : 31;
        memcpy(bytes[id], bytes[l], len[l]);
        memcpy(bytes[id] + len[l], bytes[r], len[id] - len[l]);
        size_t o = strlen(out);
        snprintf(out + o, size - o, "%s%.*s+%.*s", i ? " " : "", (int)len[l], bytes[l], (int)len[r], bytes[r]);
    }
}

static void check_merges(const char *what, const char *const *w, const uint64_t *c, size_t n, size_t want_merges,
                         uint64_t min_freq, const char *expect) {
    anv_bpe_words_t *ws = words_of(w, c, n);
    anv_bpe_train_opts_t o = {.n_merges = want_merges, .min_frequency = min_freq};
    uint32_t(*m)[2];
    size_t got;
    CHECK(anv_bpe_train(ws, &o, &m, &got) == 0, "%s", anv_last_error());
    char names[4096];
    merge_names((const uint32_t(*)[2])m, got, names, sizeof names);
    printf("%s: merges [%s], expected [%s]\n", what, names, expect);
    CHECK(!strcmp(names, expect), "%s", what);
    anv_free(m);
    anv_bpe_words_free(ws);
}

static void test_hand_computed(void) {
    /* pairs: ug 20, pu 17, un 16, hu 15, gs 5, bu 4 -> ug; then un 16 > hug 15 > pun 12 */
    const char *w[] = {"hug", "pug", "pun", "bun", "hugs"};
    const uint64_t c[] = {10, 5, 12, 4, 5};
    check_merges("hug/pug/pun/bun/hugs", w, c, 5, 3, 1, "u+g u+n h+ug");
    /* ties at 3: (a,b) < (b,a) < (c,d) by bytes; (a,c) and (a,b) tie at 2 later: b before c */
    const char *w2[] = {"cd", "ab", "ba"};
    const uint64_t c2[] = {3, 3, 3};
    check_merges("tie-break by bytes", w2, c2, 3, 3, 1, "a+b b+a c+d");
    /* after a+b (7): (a,z) and (ab,c) tie at 2; left "a" is a proper prefix of "ab", so it goes first */
    const char *w3[] = {"ab", "abc", "az"};
    const uint64_t c3[] = {5, 2, 2};
    check_merges("proper prefix first", w3, c3, 3, 3, 1, "a+b a+z ab+c");
    /* no overlap: aaaa -> aa aa (the pair (a,a) counted 3 times, then (aa,aa) once) */
    const char *w4[] = {"aaaa"};
    const uint64_t c4[] = {1};
    check_merges("left-to-right without overlap", w4, c4, 1, 5, 1, "a+a aa+aa");
    /* min_frequency stops training */
    const char *w5[] = {"xy", "zw"};
    const uint64_t c5[] = {5, 1};
    check_merges("min_frequency 2", w5, c5, 2, 5, 2, "x+y");
}

/* ---- naive reference: recount all pairs every step ---- */

#define REF_MAX 600
typedef struct {
    char bytes[REF_MAX][64];
    size_t len[REF_MAX];
} ref_tokens;

static int ref_cmp(const ref_tokens *t, uint32_t a, uint32_t b) {
    size_t n = t->len[a] < t->len[b] ? t->len[a] : t->len[b];
    int c = memcmp(t->bytes[a], t->bytes[b], n);
    return c ? c : (t->len[a] > t->len[b]) - (t->len[a] < t->len[b]);
}

static size_t ref_train(uint32_t **words, size_t *lens, const uint64_t *counts, size_t nw, size_t n_merges,
                        uint32_t (*out)[2]) {
    static ref_tokens t;
    static uint64_t pc[REF_MAX][REF_MAX];
    static unsigned char banned[REF_MAX][REF_MAX];
    memset(banned, 0, sizeof banned);
    for (int b = 0; b < 256; b++) {
        t.bytes[b][0] = (char)b;
        t.len[b] = 1;
    }
    size_t n_tok = 256, m = 0;
    while (m < n_merges && n_tok < REF_MAX) {
        memset(pc, 0, sizeof pc);
        for (size_t i = 0; i < nw; i++)
            for (size_t j = 0; j + 1 < lens[i]; j++) pc[words[i][j]][words[i][j + 1]] += counts[i];
        uint32_t ba = 0, bb = 0;
        uint64_t best = 0;
        for (uint32_t a = 0; a < n_tok; a++)
            for (uint32_t b = 0; b < n_tok; b++) {
                if (!pc[a][b] || banned[a][b]) continue;
                int better = pc[a][b] > best;
                if (pc[a][b] == best) {
                    int c = ref_cmp(&t, a, ba);
                    better = c < 0 || (c == 0 && ref_cmp(&t, b, bb) < 0);
                }
                if (better) {
                    best = pc[a][b];
                    ba = a;
                    bb = b;
                }
            }
        if (!best) break;
        size_t nl = t.len[ba] + t.len[bb];
        char cat[128];
        memcpy(cat, t.bytes[ba], t.len[ba]);
        memcpy(cat + t.len[ba], t.bytes[bb], t.len[bb]);
        int exists = 0;
        for (size_t k = 0; k < n_tok; k++) exists |= t.len[k] == nl && !memcmp(t.bytes[k], cat, nl);
        if (exists) {
            banned[ba][bb] = 1;
            continue;
        }
        memcpy(t.bytes[n_tok], cat, nl);
        t.len[n_tok] = nl;
        for (size_t i = 0; i < nw; i++) {
            size_t o = 0;
            for (size_t j = 0; j < lens[i];) {
                if (j + 1 < lens[i] && words[i][j] == ba && words[i][j + 1] == bb) {
                    words[i][o++] = (uint32_t)n_tok;
                    j += 2;
                } else {
                    words[i][o++] = words[i][j++];
                }
            }
            lens[i] = o;
        }
        out[m][0] = ba;
        out[m][1] = bb;
        m++;
        n_tok++;
    }
    return m;
}

static void test_against_reference(void) {
    enum { NW = 400, MERGES = 150 };
    static uint32_t buf[NW][24];
    uint32_t *words[NW];
    size_t lens[NW];
    uint64_t counts[NW];
    char text[NW][24];
    anv_rng_t rng;
    anv_rng_seed(&rng, 7);
    anv_bpe_words_t *ws;
    CHECK(anv_bpe_words_init(&ws) == 0, "init");
    size_t nw = 0;
    for (int i = 0; i < NW; i++) {
        size_t n = 1 + anv_rng_u64(&rng) % 12;
        for (size_t j = 0; j < n; j++) text[nw][j] = "aabbcde"[anv_rng_u64(&rng) % 7];
        uint64_t c = 1 + anv_rng_u64(&rng) % 9;
        anv_bpe_words_add(ws, text[nw], n, c);
        /* the reference works on the same distinct words: merge repeats */
        size_t k = 0;
        while (k < nw && !(lens[k] == n && !memcmp(text[k], text[nw], n))) k++;
        if (k < nw) {
            counts[k] += c;
            continue;
        }
        for (size_t j = 0; j < n; j++) buf[nw][j] = (unsigned char)text[nw][j];
        words[nw] = buf[nw];
        lens[nw] = n;
        counts[nw] = c;
        nw++;
    }
    static uint32_t ref[MERGES][2];
    size_t n_ref = ref_train(words, lens, counts, nw, MERGES, ref);
    anv_bpe_train_opts_t o = {.n_merges = MERGES, .min_frequency = 1};
    uint32_t(*m)[2];
    size_t got;
    CHECK(anv_bpe_train(ws, &o, &m, &got) == 0, "%s", anv_last_error());
    size_t same = 0;
    while (same < got && same < n_ref && m[same][0] == ref[same][0] && m[same][1] == ref[same][1]) same++;
    printf("reference: %zu distinct words over {a,b,c,d,e}: %zu merges, naive recount gives %zu, first %zu agree\n", nw,
           got, n_ref, same);
    CHECK(got == n_ref && same == got, "incremental training differs from the naive recount at merge %zu", same);
    anv_free(m);
    anv_bpe_words_free(ws);
}

/* ---- through the pre-tokenizer and the corpus reader ---- */

static void test_pretokenized(void) {
    /* words: the, " cat", " the" x2, " hat", " bat": at, he, th tie at 3 -> a+t, h+e, then t+he */
    const char *text = "the cat the hat the bat";
    anv_bpe_words_t *ws;
    CHECK(anv_bpe_words_init(&ws) == 0, "init");
    CHECK(anv_bpe_words_add_text(ws, ANV_PRETOK_GPT2, text, strlen(text)) == 0, "%s", anv_last_error());
    printf("pre-tokenized '%s': %zu distinct words, %llu in all (expected 5, 6)\n", text, anv_bpe_words_distinct(ws),
           (unsigned long long)anv_bpe_words_total(ws));
    CHECK(anv_bpe_words_distinct(ws) == 5 && anv_bpe_words_total(ws) == 6, "word counts");
    anv_bpe_train_opts_t o = {.n_merges = 3, .min_frequency = 1};
    uint32_t(*m)[2];
    size_t got;
    CHECK(anv_bpe_train(ws, &o, &m, &got) == 0, "%s", anv_last_error());
    char names[256];
    merge_names((const uint32_t(*)[2])m, got, names, sizeof names);
    printf("pre-tokenized merges [%s], expected [a+t h+e t+he]\n", names);
    CHECK(!strcmp(names, "a+t h+e t+he"), "merges");
    anv_free(m);
    anv_bpe_words_free(ws);
}

static char corpus_path[256];

static void make_corpus(void) {
    snprintf(corpus_path, sizeof corpus_path, "/tmp/anvil_test_bpe_%d.txt", (int)getpid());
    FILE *f = fopen(corpus_path, "wb");
    anv_rng_t rng;
    anv_rng_seed(&rng, 3);
    static const char *const vocab[] = {"the",  "whale", "ship", "sea",   "Ahab",  "captain", "white",   "harpoon",
                                        "boat", "crew",  "1851", "don't", "naïve", "Ishmael", "whaling", "—"};
    for (int line = 0; line < 3000; line++) {
        int n = 3 + (int)(anv_rng_u64(&rng) % 10);
        for (int k = 0; k < n; k++)
            fprintf(f, "%s%s", k ? " " : "", vocab[anv_rng_u64(&rng) % (sizeof vocab / sizeof vocab[0])]);
        fputs(line % 7 == 0 ? ".\r\n" : ",\n", f);
    }
    fclose(f);
}

static int train_file(int threads, size_t vocab, anv_tokenizer_t **tok) {
    anv_threads_set(threads);
    const char *inputs[] = {corpus_path};
    anv_corpus_opts_t co = {.inputs = inputs, .n_inputs = 1};
    anv_doc_filter_t filter = {0};
    anv_prepare_stats_t st;
    anv_bpe_words_t *ws;
    if (anv_count_words(&co, &filter, NULL, 0, ANV_PRETOK_GPT2, NULL, NULL, &ws, &st) != 0) return -1;
    anv_bpe_train_opts_t o = {.min_frequency = 2};
    const char *specials[] = {"<|user|>"};
    int rc = anv_bpe_train_tokenizer(ws, ANV_PRETOK_GPT2, vocab, specials, 1, &o, tok);
    anv_bpe_words_free(ws);
    return rc;
}

static void test_determinism_and_roundtrip(void) {
    anv_tokenizer_t *t1 = NULL, *t1b = NULL, *t2 = NULL;
    CHECK(train_file(1, 320, &t1) == 0, "%s", anv_last_error());
    CHECK(train_file(1, 320, &t1b) == 0, "%s", anv_last_error());
    CHECK(train_file(2, 320, &t2) == 0, "%s", anv_last_error());
    anv_threads_set(0);
    if (!t1 || !t1b || !t2) return;
    printf("determinism: hash %016llx (1 thread), %016llx (again), %016llx (2 threads)\n",
           (unsigned long long)anv_tokenizer_hash(t1), (unsigned long long)anv_tokenizer_hash(t1b),
           (unsigned long long)anv_tokenizer_hash(t2));
    CHECK(anv_tokenizer_hash(t1) == anv_tokenizer_hash(t1b), "same input, same tokenizer");
    CHECK(anv_tokenizer_hash(t1) == anv_tokenizer_hash(t2), "1 vs 2 threads");
    char p1[300], p2[300];
    snprintf(p1, sizeof p1, "%s.1.json", corpus_path);
    snprintf(p2, sizeof p2, "%s.2.json", corpus_path);
    CHECK(anv_tokenizer_save(t1, p1) == 0 && anv_tokenizer_save(t2, p2) == 0, "%s", anv_last_error());
    char *d1 = NULL, *d2 = NULL;
    size_t n1 = 0, n2 = 0;
    CHECK(anv_read_file(p1, &d1, &n1) == 0 && anv_read_file(p2, &d2, &n2) == 0, "%s", anv_last_error());
    CHECK(d1 && d2 && n1 == n2 && !memcmp(d1, d2, n1), "saved tokenizer.json files differ (%zu vs %zu bytes)", n1, n2);
    printf("determinism: tokenizer.json 1 thread %zu bytes, 2 threads %zu bytes, identical %d\n", n1, n2,
           d1 && d2 && n1 == n2 && !memcmp(d1, d2, n1));
    anv_free(d1);
    anv_free(d2);
    unlink(p1);
    unlink(p2);

    size_t v = anv_tokenizer_vocab_size(t1);
    int64_t eot = anv_tokenizer_eot(t1);
    size_t len;
    const char *s = anv_tokenizer_token_bytes(t1, (uint32_t)eot, &len);
    printf("layout: vocab %zu, eot id %lld ('%.*s'), special 1 id %u\n", v, (long long)eot, (int)len, s ? s : "",
           anv_tokenizer_special(t1, 1));
    CHECK(v == 320 && eot == 318 && s && len == 13 && !memcmp(s, "<|endoftext|>", 13), "eot first after merges");

    const char *samples[] = {"the white whale, the ship.\n", "Ahab's crew don't know naïve Ishmael—1851",
                             "bytes \xff\xfe\x00 and \xc3 invalid", "<|endoftext|> as plain text", ""};
    const size_t lens[] = {27, 42, 21, 27, 0};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        anv_tokens_t ids = {0};
        anv_buf_t out = {0};
        CHECK(anv_tokenizer_encode(t1, samples[i], lens[i], &ids) == 0, "%s", anv_last_error());
        CHECK(anv_tokenizer_decode(t1, ids.ids, ids.len, &out) == 0, "%s", anv_last_error());
        int same = out.len == lens[i] && (!lens[i] || !memcmp(out.data, samples[i], lens[i]));
        printf("round trip %zu: %zu bytes -> %zu tokens -> %zu bytes, identical %d\n", i, lens[i], ids.len, out.len,
               same);
        CHECK(same, "decode(encode(x)) == x for sample %zu", i);
        if (i == 0) CHECK(ids.len < lens[i] / 2, "trained merges compress training text: %zu tokens", ids.len);
        anv_tokens_free(&ids);
        anv_buf_free(&out);
    }
    anv_tokenizer_free(t1);
    anv_tokenizer_free(t1b);
    anv_tokenizer_free(t2);
}

static void test_vocab_errors(void) {
    anv_tokenizer_t *t = NULL;
    struct {
        size_t vocab;
        const char *expect;
    } cases[] = {{100, "below 256 bytes + 2 special tokens = 258"},
                 {257, "below 256 bytes + 2 special tokens = 258"},
                 {(size_t)1 << 32, "above 4294967295"},
                 {1000000, "allow at most"},
                 {403, "pairs occur at least 2 times"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = train_file(1, cases[i].vocab, &t);
        printf("vocab %zu: rc %d: %s\n", cases[i].vocab, rc, rc ? anv_last_error() : "(accepted)");
        CHECK(rc != 0 && strstr(anv_last_error(), cases[i].expect), "vocab %zu: want '%s'", cases[i].vocab,
              cases[i].expect);
        if (!rc) anv_tokenizer_free(t);
    }
    CHECK(train_file(1, 258, &t) == 0, "smallest vocabulary (no merges): %s", anv_last_error());
    if (t) CHECK(anv_tokenizer_vocab_size(t) == 258 && anv_tokenizer_n_merges(t) == 0, "258 = bytes + 2 specials");
    anv_tokenizer_free(t);
}

/* Word counts exported by two maps and imported into one equal the counts of the text they saw; a
 * malformed export is refused. */
static void test_words_export(void) {
    anv_bpe_words_t *a = NULL, *b = NULL, *both = NULL, *joined = NULL;
    const char *ta = "the cat sat on the mat", *tb = " the dog sat, and the cat ran";
    CHECK(anv_bpe_words_init(&a) == 0 && anv_bpe_words_init(&b) == 0 && anv_bpe_words_init(&both) == 0 &&
              anv_bpe_words_init(&joined) == 0,
          "init");
    if (!a || !b || !both || !joined) return;
    anv_bpe_words_add_text(a, ANV_PRETOK_GPT2, ta, strlen(ta));
    anv_bpe_words_add_text(b, ANV_PRETOK_GPT2, tb, strlen(tb));
    anv_bpe_words_add_text(both, ANV_PRETOK_GPT2, ta, strlen(ta));
    anv_bpe_words_add_text(both, ANV_PRETOK_GPT2, tb, strlen(tb));
    anv_buf_t ea = {0}, eb = {0};
    CHECK(anv_bpe_words_export(a, &ea) == 0 && anv_bpe_words_export(b, &eb) == 0, "export");
    CHECK(anv_bpe_words_import(joined, ea.data, ea.len) == 0 && anv_bpe_words_import(joined, eb.data, eb.len) == 0,
          "import: %s", anv_last_error());
    CHECK(anv_bpe_words_distinct(joined) == anv_bpe_words_distinct(both) &&
              anv_bpe_words_total(joined) == anv_bpe_words_total(both),
          "imported counts: %zu distinct, %llu in all (want %zu, %llu)", anv_bpe_words_distinct(joined),
          (unsigned long long)anv_bpe_words_total(joined), anv_bpe_words_distinct(both),
          (unsigned long long)anv_bpe_words_total(both));
    anv_tokenizer_t *t1 = NULL, *t2 = NULL;
    anv_bpe_train_opts_t to = {.min_frequency = 1};
    CHECK(anv_bpe_train_tokenizer(joined, ANV_PRETOK_GPT2, 265, NULL, 0, &to, &t1) == 0 &&
              anv_bpe_train_tokenizer(both, ANV_PRETOK_GPT2, 265, NULL, 0, &to, &t2) == 0 &&
              anv_tokenizer_hash(t1) == anv_tokenizer_hash(t2),
          "the tokenizer trained on imported counts is the same");
    CHECK(anv_bpe_words_import(joined, ea.data, ea.len - 1) != 0 && strstr(anv_last_error(), "word counts"),
          "a truncated export is refused");
    printf("word counts export/import: %zu + %zu bytes, %zu distinct words, same tokenizer\n", ea.len, eb.len,
           anv_bpe_words_distinct(joined));
    anv_tokenizer_free(t1);
    anv_tokenizer_free(t2);
    anv_buf_free(&ea);
    anv_buf_free(&eb);
    anv_bpe_words_free(a);
    anv_bpe_words_free(b);
    anv_bpe_words_free(both);
    anv_bpe_words_free(joined);
}

int main(void) {
    test_hand_computed();
    test_words_export();
    test_against_reference();
    test_pretokenized();
    make_corpus();
    test_determinism_and_roundtrip();
    test_vocab_errors();
    unlink(corpus_path);
    return check_done("test_bpe_train");
}

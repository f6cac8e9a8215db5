/* Corpus readers, dedup and `data prepare` in C: documents read back exactly (line endings, NUL,
 * invalid UTF-8, gzip, folders, blank-line splitting, JSON lines), bad input named by file:line, and
 * prepared shards that decode to exactly the kept documents. */
#include "anvil/corpus.h"
#include "anvil/prepare.h"
#include "anvil/shard.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char dir[256];

static void path_of(char *buf, size_t size, const char *name) { snprintf(buf, size, "%s/%s", dir, name); }

static void put(const char *name, const void *data, size_t n) {
    char p[512];
    path_of(p, sizeof p, name);
    FILE *f = fopen(p, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
}

static void put_gz(const char *name, const void *data, size_t n) {
    char p[512];
    path_of(p, sizeof p, name);
    gzFile g = gzopen(p, "wb");
    gzwrite(g, data, (unsigned)n);
    gzclose(g);
}

/* Reads every document of the inputs; "|"-joined into out (documents here contain no '|'). */
static int read_docs(const char *const *inputs, size_t n, int split, int skip_bad, anv_buf_t *out,
                     anv_corpus_stats_t *stats) {
    anv_corpus_opts_t o = {.inputs = inputs, .n_inputs = n, .split_blank_lines = split, .skip_bad = skip_bad};
    anv_corpus_t *c;
    out->len = 0;
    anv_buf_append(out, "", 0);
    if (anv_corpus_open(&o, &c) != 0) return -1;
    anv_doc_t d;
    int r, k = 0;
    while ((r = anv_corpus_next(c, &d)) == 1) {
        if (k++) anv_buf_append(out, "|", 1);
        anv_buf_append(out, d.text, d.len);
    }
    if (stats) *stats = *anv_corpus_stats(c);
    anv_corpus_close(c);
    return r;
}

static void expect_docs(const char *what, const char *const *inputs, size_t n, int split, const char *want,
                        size_t want_len) {
    anv_buf_t b = {0};
    int r = read_docs(inputs, n, split, 0, &b, NULL);
    int same = r == 0 && b.len == want_len && !memcmp(b.data, want, want_len);
    printf("%s: %zu bytes read, %zu expected, identical %d\n", what, b.len, want_len, same);
    CHECK(same, "%s: rc %d (%s), got '%.*s'", what, r, r ? anv_last_error() : "", (int)b.len, b.data);
    anv_buf_free(&b);
}

static void test_text(void) {
    char a[512], g[512];
    path_of(a, sizeof a, "a.txt");
    path_of(g, sizeof g, "b.txt.gz");
    /* \r\n and lone \r -> \n; NUL and invalid UTF-8 kept; no trailing newline */
    static const char raw[] = "one\r\ntwo\rthree\n\x00nul \xff\xfe bad\r";
    put("a.txt", raw, sizeof raw - 1);
    static const char norm[] = "one\ntwo\nthree\n\x00nul \xff\xfe bad\n";
    const char *in1[] = {a};
    expect_docs("text file, line endings, NUL, invalid UTF-8", in1, 1, 0, norm, sizeof norm - 1);
    /* a \r\n split across the 1 MiB read chunks still becomes one \n */
    size_t big = (1u << 20) + 10;
    char *buf = malloc(big), *want = malloc(big);
    memset(buf, 'x', big);
    buf[(1u << 20) - 1] = '\r';
    buf[1u << 20] = '\n';
    memcpy(want, buf, big);
    want[(1u << 20) - 1] = '\n';
    memmove(want + (1u << 20), want + (1u << 20) + 1, big - (1u << 20) - 1);
    put("chunk.txt", buf, big);
    char c[512];
    path_of(c, sizeof c, "chunk.txt");
    const char *in2[] = {c};
    expect_docs("\\r\\n across read chunks", in2, 1, 0, want, big - 1);
    free(buf);
    free(want);
    /* gzip by content; split at >= 2 blank lines (a single blank line stays inside) */
    static const char paras[] = "p1 l1\np1 l2\n\np1 l4\n\n \n\t\n\np2\n\n\np3 without newline";
    put_gz("b.txt.gz", paras, sizeof paras - 1);
    const char *in3[] = {g};
    static const char want3[] = "p1 l1\np1 l2\n\np1 l4\n|p2\n|p3 without newline";
    expect_docs("gzip text split at 2 blank lines", in3, 1, 2, want3, sizeof want3 - 1);
    static const char want4[] = "p1 l1\np1 l2\n|p1 l4\n|p2\n|p3 without newline";
    expect_docs("split at 1 blank line", in3, 1, 1, want4, sizeof want4 - 1);
    expect_docs("gzip text as one document", in3, 1, 0, paras, sizeof paras - 1);
}

static void test_folder(void) {
    char sub[512], p[512];
    path_of(sub, sizeof sub, "tree");
    mkdir(sub, 0755);
    path_of(p, sizeof p, "tree/sub");
    mkdir(p, 0755);
    put("tree/b.txt", "B", 1);
    put("tree/a.md", "A", 1);
    const char *cj = "{\"text\": \"C1\"}\n\n{\"text\": \"C2\"}";
    put("tree/sub/c.jsonl", cj, strlen(cj));
    put("tree/.hidden.txt", "H", 1);
    put("tree/skip.json", "{\"text\": \"J\"}", 13);
    put("tree/empty.txt", "", 0);
    put_gz("tree/z.jsonl.gz", "{\"text\": \"Z\"}\n", 14);
    const char *in[] = {sub};
    anv_buf_t b = {0};
    anv_corpus_stats_t st;
    int r = read_docs(in, 1, 0, 0, &b, &st);
    printf("folder: docs '%s', %llu files, %llu empty, %llu other (expected 'A|B|C1|C2|Z', 5, 1, 1)\n", b.data,
           (unsigned long long)st.files, (unsigned long long)st.empty_files, (unsigned long long)st.other_files);
    CHECK(r == 0 && !strcmp(b.data, "A|B|C1|C2|Z"), "sorted, recursive, hidden and .json skipped");
    CHECK(st.files == 5 && st.empty_files == 1 && st.other_files == 1, "file counts");
    anv_buf_free(&b);
}

static void expect_error(const char *what, const char *name, const char *data, size_t n, const char *needle) {
    char p[512];
    path_of(p, sizeof p, name);
    if (data) put(name, data, n);
    const char *in[] = {p};
    anv_buf_t b = {0};
    int r = read_docs(in, 1, 0, 0, &b, NULL);
    printf("%s: rc %d: %s\n", what, r, r ? anv_last_error() : "(accepted)");
    CHECK(r < 0 && strstr(anv_last_error(), needle) && strstr(anv_last_error(), name), "%s: want '%s'", what, needle);
    anv_buf_free(&b);
}

static void test_jsonl(void) {
    static const char good[] = "{\"text\": \"a\\r\\nb\\u0000c\", \"id\": 1}\n\n  \n{\"id\": 2, \"text\": \"\\u00e9\"}";
    char p[512];
    path_of(p, sizeof p, "good.jsonl");
    put("good.jsonl", good, sizeof good - 1);
    const char *in[] = {p};
    static const char want[] = "a\nb\0c|\xc3\xa9";
    expect_docs("jsonl with escapes and blank lines", in, 1, 0, want, sizeof want - 1);

    static const char bad[] =
        "{\"text\": \"ok\"}\n{\"text\": \"x\",}\n[1]\n{\"body\": \"y\"}\n{\"text\": 5}\n{\"text\": \"ok2\"}\n";
    expect_error("malformed JSON line", "bad1.jsonl", bad, sizeof bad - 1, "bad1.jsonl:2: invalid JSON");
    expect_error("not an object", "bad2.jsonl", "[1]\n", 4, "bad2.jsonl:1: expected a JSON object");
    expect_error("missing field", "bad3.jsonl", "{\"text\":\"x\"}\n{\"body\": \"y\"}\n", 28,
                 "bad3.jsonl:2: no \"text\" field");
    expect_error("field not a string", "bad4.jsonl", "{\"text\": 5}", 11, "bad4.jsonl:1: field \"text\" is a number");
    expect_error("missing input", "nope.txt", NULL, 0, "No such file");
    /* a truncated gzip stream */
    char gz[512];
    path_of(gz, sizeof gz, "trunc.txt.gz");
    char *big = malloc(200000);
    anv_rng_t rng;
    anv_rng_seed(&rng, 1);
    for (int i = 0; i < 200000; i++) big[i] = (char)('a' + anv_rng_u64(&rng) % 26);
    put_gz("trunc.txt.gz", big, 200000);
    free(big);
    struct stat zs;
    CHECK(stat(gz, &zs) == 0 && zs.st_size > 100000, "gzip of random letters is large");
    if (truncate(gz, zs.st_size / 2) != 0) CHECK(0, "truncate");
    expect_error("truncated .gz", "trunc.txt.gz", NULL, 0, "trunc.txt.gz: truncated gzip stream");

    /* skip_bad: 4 bad lines skipped and counted, the good ones kept */
    path_of(p, sizeof p, "bad1.jsonl");
    const char *in2[] = {p};
    anv_buf_t b = {0};
    anv_corpus_stats_t st;
    int r = read_docs(in2, 1, 0, 1, &b, &st);
    printf("skip bad: docs '%s', %llu skipped (expected 'ok|ok2', 4)\n", b.data, (unsigned long long)st.skipped_bad);
    CHECK(r == 0 && !strcmp(b.data, "ok|ok2") && st.skipped_bad == 4, "skip_bad");
    anv_buf_free(&b);
}

static void test_dedup(void) {
    anv_dedup_t *d;
    CHECK(anv_dedup_init(&d) == 0, "init");
    int dup = 0, fresh = 0, tags_ok = 0;
    char doc[32];
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 20000; i++) {
            int n = snprintf(doc, sizeof doc, "document %d", i);
            uint64_t first = UINT64_MAX;
            int r = anv_dedup_check(d, doc, (size_t)n, (uint64_t)(round * 100000 + i), &first);
            dup += r == 1;
            fresh += r == 0;
            tags_ok += r == 1 && first == (uint64_t)i;
        }
    printf("dedup: 40000 checks of 20000 distinct documents: %d new, %d duplicates, %d with their first tag\n", fresh,
           dup, tags_ok);
    CHECK(fresh == 20000 && dup == 20000 && tags_ok == 20000, "dedup counts and first-occurrence tags");
    uint64_t first = 0;
    CHECK(anv_dedup_check(d, "", 0, 7, NULL) == 0 && anv_dedup_check(d, "", 0, 8, &first) == 1 && first == 7,
          "empty document, and the tag of its first occurrence");
    anv_dedup_free(d);
}

/* Parts of a folder of files of unequal sizes: every file is read by exactly one part, the parts are
 * runs of consecutive files in order, their bytes add up, and each names files by their index in the
 * whole list. */
static void test_parts(void) {
    char sub[512];
    path_of(sub, sizeof sub, "parts");
    mkdir(sub, 0755);
    static const size_t sizes[7] = {5000, 10, 300, 12000, 40, 700, 2500};
    char text[12001];
    memset(text, 'x', sizeof text - 1);
    uint64_t all = 0;
    for (int i = 0; i < 7; i++) {
        char name[64];
        snprintf(name, sizeof name, "parts/f%d.txt", i);
        put(name, text, sizes[i]);
        all += sizes[i];
    }
    const char *in[] = {sub};
    int bad = 0;
    for (int parts = 1; parts <= 9; parts++) {
        uint64_t next = 0, bytes = 0;
        for (int part = 0; part < parts; part++) {
            anv_corpus_opts_t o = {.inputs = in, .n_inputs = 1, .part = part, .parts = parts};
            anv_corpus_t *c;
            if (anv_corpus_open(&o, &c) != 0) {
                bad++;
                continue;
            }
            anv_doc_t d;
            while (anv_corpus_next(c, &d) == 1) {
                bad += d.file != next++ || d.len != sizes[d.file];
                bytes += d.len;
            }
            const anv_corpus_stats_t *st = anv_corpus_stats(c);
            bad += st->corpus_bytes != all || st->input_bytes != st->total_bytes;
            anv_corpus_close(c);
        }
        bad += next != 7 || bytes != all;
    }
    printf("parts: 7 files of unequal sizes read in 1..9 parts: %d inconsistencies\n", bad);
    CHECK(bad == 0, "every file read once, in order, by consecutive parts");
    anv_corpus_opts_t o = {.inputs = in, .n_inputs = 1, .part = 3, .parts = 3};
    anv_corpus_t *c = NULL;
    CHECK(anv_corpus_open(&o, &c) != 0 && strstr(anv_last_error(), "part 3 of 3"), "a part that does not exist");
}

static void test_dedup_export(void) {
    anv_dedup_t *a = NULL, *b = NULL, *whole = NULL;
    CHECK(anv_dedup_init(&a) == 0 && anv_dedup_init(&b) == 0 && anv_dedup_init(&whole) == 0, "init");
    if (!a || !b || !whole) return;
    char doc[32];
    for (int i = 0; i < 3000; i++) { /* a sees 0..1999, b 1000..2999; whole sees a's then b's */
        int n = snprintf(doc, sizeof doc, "document %d", i);
        if (i < 2000) anv_dedup_check(a, doc, (size_t)n, (uint64_t)i, NULL);
        if (i >= 1000) anv_dedup_check(b, doc, (size_t)n, (uint64_t)(10000 + i), NULL);
    }
    anv_buf_t ea = {0};
    uint64_t seven = 7;
    CHECK(anv_dedup_export(a, &ea) == 0 && ea.len == 2000 * 24, "export: 2000 entries of 24 bytes");
    CHECK(anv_dedup_import(b, ea.data, ea.len / 24, NULL) == 0, "import");
    CHECK(anv_dedup_import(whole, ea.data, ea.len / 24, &seven) == 0, "import with one tag");
    int tags_ok = 0, seen = 0;
    for (int i = 0; i < 3000; i++) {
        int n = snprintf(doc, sizeof doc, "document %d", i);
        uint64_t first = 0;
        seen += anv_dedup_check(b, doc, (size_t)n, 99, &first) == 1;
        tags_ok += first == (uint64_t)(i < 1000 ? i : 10000 + i);
        tags_ok += i >= 2000 || (anv_dedup_check(whole, doc, (size_t)n, 99, &first) == 1 && first == 7);
    }
    printf("dedup export/import: %d of 3000 seen, %d of 6000 tags right\n", seen, tags_ok);
    CHECK(seen == 3000 && tags_ok == 6000, "imported entries count as seen; a tag already there stays");
    anv_buf_free(&ea);
    anv_dedup_free(a);
    anv_dedup_free(b);
    anv_dedup_free(whole);
}

static void test_prepare(void) {
    /* 40 documents (split at blank lines), 5 duplicates, 3 short */
    anv_buf_t text = {0}, all = {0};
    for (int i = 0; i < 40; i++) {
        anv_buf_printf(&text, "Document %d: the whale %s swims.\nSecond line %d.\n\n", i % 35,
                       i % 35 % 3 ? "slowly" : "fast", i % 35);
        if (i < 35)
            anv_buf_printf(&all, "%sDocument %d: the whale %s swims.\nSecond line %d.\n", i ? "|" : "", i,
                           i % 3 ? "slowly" : "fast", i);
    }
    anv_buf_puts(&text, "tiny\n\nsmall\n\nwee\n");
    put("prep.txt", text.data, text.len);
    char in[512], out[512], p[600];
    path_of(in, sizeof in, "prep.txt");
    path_of(out, sizeof out, "out");
    const char *inputs[] = {in};
    const char *argv[] = {"anvil", "data", "prepare"};
    anv_prepare_opts_t o = {.corpus = {.inputs = inputs, .n_inputs = 1, .split_blank_lines = 1},
                            .filter = {.min_chars = 10, .dedup = 1},
                            .out_dir = out,
                            .vocab_size = 300,
                            .pattern = ANV_PRETOK_GPT2,
                            .min_frequency = 2,
                            .val_fraction = 0.1,
                            .seed = 5,
                            .shard_tokens = 200,
                            .argv = argv,
                            .argc = 3};
    anv_prepare_stats_t st;
    int rc = anv_prepare(&o, &st);
    CHECK(rc == 0, "prepare: %s", anv_last_error());
    printf("prepare: read %llu, %llu duplicates, %llu short; train %llu docs %llu tokens %llu shards; val %llu docs "
           "%llu tokens %llu shards\n",
           (unsigned long long)st.documents_read, (unsigned long long)st.dropped_duplicates,
           (unsigned long long)st.dropped_short, (unsigned long long)st.train.documents,
           (unsigned long long)st.train.tokens, (unsigned long long)st.train.shards,
           (unsigned long long)st.val.documents, (unsigned long long)st.val.tokens, (unsigned long long)st.val.shards);
    CHECK(st.documents_read == 43 && st.dropped_duplicates == 5 && st.dropped_short == 3, "filter counts");
    CHECK(st.train.documents + st.val.documents == 35 && st.val.documents >= 1, "split covers all kept documents");
    CHECK(st.train.shards == (st.train.tokens + 199) / 200, "shards of 200 tokens: %llu",
          (unsigned long long)st.train.shards);
    anv_tokenizer_t *tok = NULL;
    path_of(p, sizeof p, "out/tokenizer.json");
    CHECK(anv_tokenizer_load(p, &tok) == 0, "%s", anv_last_error());
    if (!tok) return;
    /* train + val documents, in stream order, are exactly the kept documents: merge by their order */
    anv_buf_t docs[2] = {{0}, {0}};
    size_t nd[2] = {0, 0};
    const char *names[2] = {"train", "val"};
    for (int s = 0; s < 2; s++) {
        anv_buf_t stream = {0};
        size_t n = 0;
        for (int k = 0;; k++) {
            char sp[600];
            snprintf(sp, sizeof sp, "%s/%s_%06d.bin", out, names[s], k);
            if (!anv_path_exists(sp)) break;
            anv_shard_t sh;
            CHECK(anv_shard_open(sp, &sh) == 0, "%s", anv_last_error());
            for (size_t i = 0; i < sh.count; i++) {
                uint32_t id = anv_shard_token(&sh, i);
                anv_buf_append(&stream, &id, sizeof id);
            }
            n += sh.count;
            anv_shard_close(&sh);
        }
        const uint32_t *ids = (const uint32_t *)stream.data;
        uint32_t eot = (uint32_t)anv_tokenizer_eot(tok);
        CHECK(n > 0 && ids[0] == eot, "%s stream starts with EOT", names[s]);
        for (size_t i = 0; i < n; i++) {
            if (ids[i] == eot) {
                if (nd[s]++) anv_buf_append(&docs[s], "|", 1);
            } else {
                anv_tokenizer_decode(tok, &ids[i], 1, &docs[s]);
            }
        }
        anv_buf_free(&stream);
    }
    anv_buf_append(&docs[0], "", 0);
    anv_buf_append(&docs[1], "", 0);
    /* every decoded document is one of the originals, none twice, all present */
    size_t found = 0, bytes = 0;
    for (int s = 0; s < 2; s++) {
        char *save, *d = strtok_r(docs[s].data, "|", &save);
        for (; d; d = strtok_r(NULL, "|", &save)) {
            char *at = strstr(all.data, d);
            found += at && (at[strlen(d)] == '|' || at[strlen(d)] == 0) && (at == all.data || at[-1] == '|');
            bytes += strlen(d);
        }
    }
    printf("prepare: %zu + %zu documents decoded from the shards, %zu of 35 match an original, %zu bytes (meta %llu)\n",
           nd[0], nd[1], found, bytes, (unsigned long long)(st.train.bytes + st.val.bytes));
    CHECK(found == 35 && nd[0] + nd[1] == 35, "shards decode to the kept documents");
    CHECK(bytes == st.train.bytes + st.val.bytes, "byte counts");
    anv_buf_free(&docs[0]);
    anv_buf_free(&docs[1]);
    anv_tokenizer_free(tok);
    anv_buf_free(&text);
    anv_buf_free(&all);
}

/* A long document is encoded in ~1 MiB pieces cut at byte-level pre-token boundaries: the shard
 * must hold exactly the tokens of encoding it whole, for both patterns. */
static void test_pieces(anv_pretok_t pattern, const char *name) {
    static const char *const frag[] = {"word",      " word",     "  two spaces", "\t tab", "   ",   "\n",    "\n\n",
                                       " \n",       "\n ",       "12345",        " 678",   "...",   "!?",    " don't",
                                       "'s",        " 'quoted'", "'ll",          " naïve", " café", " 東京", "—",
                                       " \xff\xfe", "\x00",      " A",           "B",      " x1",   "\n\tX", " \n\nY",
                                       ".\n",       ",\r\n",     "\r",           "  Z",    "(a)",   " 's"};
    anv_rng_t rng;
    anv_rng_seed(&rng, 11);
    anv_buf_t doc = {0};
    while (doc.len < (3u << 20)) anv_buf_puts(&doc, frag[anv_rng_u64(&rng) % (sizeof frag / sizeof frag[0])]);
    doc.len = anv_text_normalize_newlines(doc.data, doc.len, NULL);
    put("long.txt", doc.data, doc.len);
    /* a tokenizer of this pattern, trained on the document itself */
    anv_bpe_words_t *ws;
    anv_tokenizer_t *tok = NULL;
    anv_bpe_train_opts_t to = {.min_frequency = 2};
    CHECK(anv_bpe_words_init(&ws) == 0 && anv_bpe_words_add_text(ws, pattern, doc.data, doc.len) == 0 &&
              anv_bpe_train_tokenizer(ws, pattern, 600, NULL, 0, &to, &tok) == 0,
          "%s", anv_last_error());
    anv_bpe_words_free(ws);
    if (!tok) return;
    char in[512], tp[512], out[512], sp[600];
    path_of(in, sizeof in, "long.txt");
    path_of(tp, sizeof tp, "long_tok.json");
    path_of(out, sizeof out, "out");
    CHECK(anv_tokenizer_save(tok, tp) == 0, "%s", anv_last_error());
    const char *inputs[] = {in};
    anv_prepare_opts_t o = {.corpus = {.inputs = inputs, .n_inputs = 1},
                            .out_dir = out,
                            .tokenizer_path = tp,
                            .shard_tokens = 100000000,
                            .val_fraction = 0};
    anv_prepare_stats_t st;
    CHECK(anv_prepare(&o, &st) == 0, "%s", anv_last_error());
    anv_tokens_t whole = {0};
    anv_tokens_push(&whole, (uint32_t)anv_tokenizer_eot(tok));
    anv_tokenizer_encode(tok, doc.data, doc.len, &whole);
    snprintf(sp, sizeof sp, "%s/train_000000.bin", out);
    anv_shard_t sh;
    int same = anv_shard_open(sp, &sh) == 0 && sh.count == whole.len;
    size_t at = 0;
    while (same && at < whole.len && anv_shard_token(&sh, at) == whole.ids[at]) at++;
    same = same && at == whole.len;
    printf("long document, %s (%zu bytes, ~1 MiB pieces): %zu tokens in the shard, %zu encoding it whole, "
           "identical %d\n",
           name, doc.len, same ? (size_t)sh.count : at, whole.len, same);
    CHECK(same, "%s: pieces encode like the whole document (first difference at token %zu)", name, at);
    anv_shard_close(&sh);
    snprintf(sp, sizeof sp, "%s/train_000001.bin", out);
    CHECK(!anv_path_exists(sp), "stale shards of the earlier run removed");
    anv_tokens_free(&whole);
    anv_buf_free(&doc);
    anv_tokenizer_free(tok);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/anvil_test_corpus_%d", (int)getpid());
    mkdir(dir, 0755);
    test_text();
    test_folder();
    test_jsonl();
    test_dedup();
    test_dedup_export();
    test_parts();
    test_prepare();
    test_pieces(ANV_PRETOK_GPT2, "gpt2");
    test_pieces(ANV_PRETOK_CL100K, "cl100k");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_done("test_corpus");
}

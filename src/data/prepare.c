/* anvil data prepare: documents -> (word counts -> trained tokenizer) -> token shards + meta.json.
 * Documents are gathered into batches and pre-tokenized or encoded on all threads; see prepare.h. */
#include "anvil/prepare.h"

#include "anvil/shard.h"
#include "source.h"

#include <string.h>
#include <unistd.h>

#define BATCH_BYTES ((size_t)32 << 20) /* small documents are copied into a batch of about this size */
#define PIECE_BYTES ((size_t)1 << 20)  /* long documents are cut into pieces of about this size */

/* ---- batches of documents cut into pieces at pre-token boundaries ---- */

typedef struct {
    anv_buf_t text; /* small documents back to back */
    size_t *doc_off, *doc_len, n_docs, cap_docs;
    const char *big; /* or one large document, not copied */
    size_t big_len;
    /* pieces, built by batch_pieces: pieces of document d are piece_first[d] .. piece_first[d + 1] */
    const char **pp;
    size_t *pn, n_pieces, cap_pieces;
    size_t *piece_first, cap_first;
} batch_t;

static int grow(void **p, size_t *cap, size_t need, size_t elem, const char *what) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = anv_realloc(*p, c * elem, what);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static void batch_free(batch_t *b) {
    anv_buf_free(&b->text);
    anv_free(b->doc_off);
    anv_free(b->doc_len);
    anv_free(b->pp);
    anv_free(b->pn);
    anv_free(b->piece_first);
}

static int batch_add(batch_t *b, const char *text, size_t len) {
    size_t cap = b->cap_docs;
    if (grow((void **)&b->doc_off, &cap, b->n_docs + 1, sizeof(size_t), "document batch") != 0) return -1;
    cap = b->cap_docs;
    if (grow((void **)&b->doc_len, &cap, b->n_docs + 1, sizeof(size_t), "document batch") != 0) return -1;
    b->cap_docs = cap;
    b->doc_off[b->n_docs] = b->text.len;
    b->doc_len[b->n_docs++] = len;
    return anv_buf_append(&b->text, text, len);
}

/* Pre-token boundaries in both patterns (gpt2, cl100k), found by looking at bytes only:
 * - before a space followed by an ASCII letter: " word" is always one pre-token start (a whitespace
 *   run before it ends one space early, and nothing else takes a trailing space);
 * - after a \n followed by printable ASCII: whitespace pre-tokens never run into a following
 *   non-space, and no pre-token that starts with something else begins with \n.
 * Pieces cut there encode exactly as the whole text does (tests/test_corpus.c checks both patterns). */
static int is_ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

static size_t safe_cut(const char *s, size_t n, size_t from) {
    for (size_t p = from; p + 1 < n; p++)
        if ((s[p] == ' ' && is_ascii_letter(s[p + 1])) || (s[p - 1] == '\n' && s[p] > 0x20 && s[p] < 0x7F)) return p;
    return n;
}

static int batch_pieces(batch_t *b) {
    size_t n_docs = b->big ? 1 : b->n_docs;
    b->n_pieces = 0;
    if (grow((void **)&b->piece_first, &b->cap_first, n_docs + 1, sizeof(size_t), "document batch") != 0) return -1;
    for (size_t d = 0; d < n_docs; d++) {
        const char *s = b->big ? b->big : b->text.data + b->doc_off[d];
        size_t n = b->big ? b->big_len : b->doc_len[d];
        b->piece_first[d] = b->n_pieces;
        for (size_t at = 0; at < n;) {
            size_t end = n - at > 2 * PIECE_BYTES ? safe_cut(s, n, at + PIECE_BYTES) : n;
            size_t cap = b->cap_pieces;
            if (grow((void **)&b->pp, &cap, b->n_pieces + 1, sizeof *b->pp, "document batch") != 0) return -1;
            cap = b->cap_pieces;
            if (grow((void **)&b->pn, &cap, b->n_pieces + 1, sizeof *b->pn, "document batch") != 0) return -1;
            b->cap_pieces = cap;
            b->pp[b->n_pieces] = s + at;
            b->pn[b->n_pieces++] = end - at;
            at = end;
        }
    }
    b->piece_first[n_docs] = b->n_pieces;
    return 0;
}

/* Reads all kept documents, calling flush on each full batch (and on each large document alone). */
typedef int (*flush_fn)(void *ctx, batch_t *b);

static int run_batches(source_t *src, batch_t *b, flush_fn flush, void *ctx) {
    anv_doc_t doc;
    int r;
    while ((r = source_next(src, &doc)) == 1) {
        if (doc.len >= BATCH_BYTES) {
            if (b->n_docs && flush(ctx, b) != 0) return -1;
            b->n_docs = b->text.len = 0;
            b->big = doc.text;
            b->big_len = doc.len;
            r = flush(ctx, b);
            b->big = NULL;
            if (r != 0) return -1;
            continue;
        }
        if (batch_add(b, doc.text, doc.len) != 0) return -1;
        if (b->text.len >= BATCH_BYTES) {
            if (flush(ctx, b) != 0) return -1;
            b->n_docs = b->text.len = 0;
        }
    }
    if (r < 0) return -1;
    if (b->n_docs && flush(ctx, b) != 0) return -1;
    b->n_docs = b->text.len = 0;
    return 0;
}

/* ---- pass 1: word counts ---- */

typedef struct {
    anv_bpe_words_t **maps; /* one per thread */
    anv_pretok_t pattern;
    source_t *src;
    anv_progress_fn progress;
    void *progress_ctx;
} count_ctx;

static int count_flush(void *vctx, batch_t *b) {
    count_ctx *c = vctx;
    if (batch_pieces(b) != 0) return -1;
    /* an error raised on a worker lives in that thread's error slot: keep the first to re-raise */
    int failed = 0;
    char msg[512] = "";
    long n = (long)b->n_pieces;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1)
#endif
    for (long i = 0; i < n; i++) {
        int stop;
#ifdef _OPENMP
#pragma omp atomic read
#endif
        stop = failed;
        if (stop || anv_bpe_words_add_text(c->maps[anv_thread_id()], c->pattern, b->pp[i], b->pn[i]) == 0) continue;
#ifdef _OPENMP
#pragma omp critical(anv_count_error)
#endif
        if (!msg[0]) snprintf(msg, sizeof msg, "%s", anv_last_error());
#ifdef _OPENMP
#pragma omp atomic write
#endif
        failed = 1;
    }
    if (failed) return anv_error("%s", msg);
    if (c->progress) {
        const anv_corpus_stats_t *cs = anv_corpus_stats(c->src->corpus);
        c->progress(c->progress_ctx, "counting", cs->input_bytes, cs->total_bytes);
    }
    return 0;
}

int anv_count_words(const anv_corpus_opts_t *corpus, const anv_doc_filter_t *filter, anv_neardup_t *near,
                    uint64_t sample_bytes, anv_pretok_t pattern, anv_progress_fn progress, void *progress_ctx,
                    anv_bpe_words_t **out, anv_prepare_stats_t *stats) {
    *out = NULL;
    memset(stats, 0, sizeof *stats);
    int nt = anv_threads_count();
    count_ctx c = {.pattern = pattern, .progress = progress, .progress_ctx = progress_ctx};
    source_t src;
    batch_t b = {0};
    int rc = -1;
    c.maps = anv_calloc((size_t)nt * sizeof *c.maps, "word counts");
    if (!c.maps) return -1;
    for (int i = 0; i < nt; i++)
        if (anv_bpe_words_init(&c.maps[i]) != 0) goto done;
    c.src = &src;
    int opened = source_open(&src, corpus, filter, near, NULL, stats) == 0;
    if (opened && sample_bytes) source_sample(&src, sample_bytes);
    if (opened && run_batches(&src, &b, count_flush, &c) == 0) {
        rc = 0;
        for (int i = 1; i < nt && rc == 0; i++) rc = anv_bpe_words_merge(c.maps[0], c.maps[i]);
    }
    source_close(&src);
    if (rc == 0 && anv_bpe_words_total(c.maps[0]) == 0)
        rc = anv_error("no text to learn from: %llu files read (%llu empty), %llu documents (%llu too short, %llu "
                       "duplicates, %llu bad lines)",
                       (unsigned long long)stats->corpus.files, (unsigned long long)stats->corpus.empty_files,
                       (unsigned long long)stats->documents_read, (unsigned long long)stats->dropped_short,
                       (unsigned long long)stats->dropped_duplicates, (unsigned long long)stats->corpus.skipped_bad);
    if (rc == 0) {
        *out = c.maps[0];
        c.maps[0] = NULL;
    }
done:
    for (int i = 0; i < nt; i++) anv_bpe_words_free(c.maps[i]);
    anv_free(c.maps);
    batch_free(&b);
    return rc;
}

/* ---- pass 2: encoding into shards ---- */

typedef struct {
    const char *dir, *name; /* files DIR/NAME_000000.bin */
    anv_shard_writer_t w;
    int open;
    uint64_t in_shard, shard_tokens;
    size_t vocab;
    anv_split_stats_t *st;
} split_out;

static int shard_path(char *buf, size_t size, const char *dir, const char *name, uint64_t idx) {
    char file[64];
    snprintf(file, sizeof file, "%s_%06llu.bin", name, (unsigned long long)idx);
    return anv_path_join(buf, size, dir, file);
}

static int split_close(split_out *s) {
    if (!s->open) return 0;
    s->open = 0;
    if (anv_shard_writer_close(&s->w) != 0) return -1;
    s->st->shards++;
    return 0;
}

static int split_write(split_out *s, const uint32_t *toks, size_t n) {
    while (n > 0) {
        if (!s->open) {
            char path[4200];
            if (shard_path(path, sizeof path, s->dir, s->name, s->st->shards) != 0 ||
                anv_shard_writer_open(&s->w, path, s->vocab) != 0)
                return -1;
            s->open = 1;
            s->in_shard = 0;
        }
        size_t k = s->shard_tokens - s->in_shard < n ? (size_t)(s->shard_tokens - s->in_shard) : n;
        if (anv_shard_writer_append(&s->w, toks, k) != 0) return -1;
        s->st->tokens += k;
        s->in_shard += k;
        toks += k;
        n -= k;
        if (s->in_shard == s->shard_tokens && split_close(s) != 0) return -1;
    }
    return 0;
}

/* A document's pieces (token arrays) held back from the shards; hold() swaps buffers, no copy. */
typedef struct {
    anv_tokens_t *pieces;
    size_t n, cap;
    uint64_t bytes;
    int has;
} held_t;

typedef struct {
    const anv_tokenizer_t *tok;
    uint32_t eot;
    split_out train, val;
    double val_fraction;
    uint64_t seed, index;
    anv_tokens_t *toks; /* one per piece of the batch */
    size_t cap_toks;
    held_t last_train; /* held back in case val stays empty (it becomes val) */
    held_t first_val;  /* the first document, when it goes to val: alone it is split instead */
    source_t *src;
    anv_progress_fn progress;
    void *progress_ctx;
} encode_ctx;

static int goes_to_val(const encode_ctx *e, uint64_t index) {
    uint64_t key[2] = {e->seed, index};
    uint64_t h = anv_hash64(key, sizeof key, 0x76616C);
    return (double)(h >> 11) * (1.0 / 9007199254740992.0) < e->val_fraction;
}

/* One document: EOT, then its pieces' tokens. */
static int write_doc(split_out *s, uint32_t eot, const anv_tokens_t *pieces, size_t n, uint64_t bytes) {
    s->st->documents++;
    s->st->bytes += bytes;
    if (split_write(s, &eot, 1) != 0) return -1;
    for (size_t i = 0; i < n; i++)
        if (split_write(s, pieces[i].ids, pieces[i].len) != 0) return -1;
    return 0;
}

static int flush_held(encode_ctx *e, held_t *h, split_out *to) {
    if (!h->has) return 0;
    h->has = 0;
    return write_doc(to, e->eot, h->pieces, h->n, h->bytes);
}

static int hold(held_t *h, anv_tokens_t *pieces, size_t n, uint64_t bytes) {
    if (n > h->cap) {
        anv_tokens_t *t = anv_realloc(h->pieces, n * sizeof *t, "token buffers");
        if (!t) return -1;
        memset(t + h->cap, 0, (n - h->cap) * sizeof *t);
        h->pieces = t;
        h->cap = n;
    }
    for (size_t k = 0; k < n; k++) {
        anv_tokens_t tmp = h->pieces[k];
        h->pieces[k] = pieces[k];
        pieces[k] = tmp;
    }
    h->n = n;
    h->bytes = bytes;
    h->has = 1;
    return 0;
}

static void held_free(held_t *h) {
    for (size_t i = 0; i < h->cap; i++) anv_tokens_free(&h->pieces[i]);
    anv_free(h->pieces);
}

/* One document (the whole input): train is its beginning, val its last val_fraction of bytes, cut
 * after the first token holding a line break from there on (else the last one before; else at the
 * token where that share begins). */
static int split_single(encode_ctx *e, held_t *h, double val_fraction) {
    anv_tokens_t all = {0};
    int rc = 0;
    for (size_t i = 0; i < h->n && rc == 0; i++)
        for (size_t k = 0; k < h->pieces[i].len && rc == 0; k++) rc = anv_tokens_push(&all, h->pieces[i].ids[k]);
    size_t cut = 0, before = 0, at_target = all.len;
    uint64_t bytes = 0, target = (uint64_t)((double)h->bytes * (1 - val_fraction));
    for (size_t i = 0; i < all.len && rc == 0 && !cut; i++) {
        size_t len;
        const char *t = anv_tokenizer_token_bytes(e->tok, all.ids[i], &len);
        int newline = t && memchr(t, '\n', len) != NULL;
        bytes += len;
        if (bytes < target) {
            if (newline) before = i + 1;
            continue;
        }
        if (at_target == all.len) at_target = i + 1;
        if (newline && i + 1 < all.len) cut = i + 1;
    }
    if (!cut) cut = before ? before : at_target;
    if (cut >= all.len) cut = all.len ? all.len - 1 : 0; /* val keeps at least one token */
    uint64_t train_bytes = 0;
    for (size_t i = 0; i < cut; i++) {
        size_t len;
        anv_tokenizer_token_bytes(e->tok, all.ids[i], &len);
        train_bytes += len;
    }
    anv_tokens_t train = {all.ids, cut, cut}, val = {all.ids + cut, all.len - cut, all.len - cut};
    if (rc == 0 && cut == 0) rc = anv_error("the input is a single document of one token: nothing to validate on");
    if (rc == 0)
        rc = write_doc(&e->train, e->eot, &train, 1, train_bytes) |
             write_doc(&e->val, e->eot, &val, 1, h->bytes - train_bytes);
    h->has = 0;
    anv_tokens_free(&all);
    return rc ? -1 : 0;
}

static int encode_flush(void *vctx, batch_t *b) {
    encode_ctx *e = vctx;
    if (batch_pieces(b) != 0) return -1;
    if (b->n_pieces > e->cap_toks) {
        anv_tokens_t *t = anv_realloc(e->toks, b->n_pieces * sizeof *t, "token buffers");
        if (!t) return -1;
        memset(t + e->cap_toks, 0, (b->n_pieces - e->cap_toks) * sizeof *t);
        e->toks = t;
        e->cap_toks = b->n_pieces;
    }
    /* token buffers sized here, on this thread, for a piece's usual share of tokens (about one per 3
     * bytes): workers that grew them would leave their malloc arenas fragmented, and memory growing
     * with the corpus */
    for (size_t i = 0; i < b->n_pieces; i++) {
        anv_tokens_t *t = &e->toks[i];
        size_t want = b->pn[i] / 3 + 16;
        t->len = 0;
        if (t->cap >= want && t->cap <= 2 * want) continue;
        uint32_t *ids = anv_realloc(t->ids, want * sizeof *ids, "token buffers");
        if (!ids) return -1;
        t->ids = ids;
        t->cap = want;
    }
    if (anv_tokenizer_encode_batch(e->tok, b->pp, b->pn, b->n_pieces, e->toks, 0) != 0) return -1;
    size_t n_docs = b->big ? 1 : b->n_docs;
    for (size_t d = 0; d < n_docs; d++) {
        uint64_t bytes = b->big ? b->big_len : b->doc_len[d];
        size_t first = b->piece_first[d], n = b->piece_first[d + 1] - first;
        uint64_t index = e->index++;
        if (index == 1 && flush_held(e, &e->first_val, &e->val) != 0) return -1; /* not alone after all */
        if (goes_to_val(e, index)) {
            if (index == 0 ? hold(&e->first_val, e->toks + first, n, bytes) != 0
                           : write_doc(&e->val, e->eot, e->toks + first, n, bytes) != 0)
                return -1;
            continue;
        }
        if (flush_held(e, &e->last_train, &e->train) != 0 || hold(&e->last_train, e->toks + first, n, bytes) != 0)
            return -1;
    }
    if (e->progress) {
        const anv_corpus_stats_t *cs = anv_corpus_stats(e->src->corpus);
        e->progress(e->progress_ctx, "encoding", cs->input_bytes, cs->total_bytes);
    }
    return 0;
}

/* Removes NAME_<k>.bin for k >= first while they exist (shards of an earlier, longer run). */
static void remove_stale(const char *dir, const char *name, uint64_t first) {
    char path[4200];
    for (uint64_t k = first; shard_path(path, sizeof path, dir, name, k) == 0 && anv_path_exists(path); k++)
        unlink(path);
}

static int write_meta(const anv_prepare_opts_t *o, const anv_prepare_stats_t *st, const anv_tokenizer_t *tok) {
    anv_buf_t b = {0};
    int rc = 0;
    const anv_split_stats_t *sp[2] = {&st->train, &st->val};
    const char *names[2] = {"train", "val"};
    rc |= anv_buf_puts(&b, "{\n");
    for (int i = 0; i < 2; i++)
        rc |= anv_buf_printf(&b,
                             "  \"%s\": {\"documents\": %llu, \"bytes\": %llu, \"tokens\": %llu, \"shards\": %llu},\n",
                             names[i], (unsigned long long)sp[i]->documents, (unsigned long long)sp[i]->bytes,
                             (unsigned long long)sp[i]->tokens, (unsigned long long)sp[i]->shards);
    rc |= anv_buf_printf(
        &b,
        "  \"documents_read\": %llu,\n  \"dropped_duplicates\": %llu,\n"
        "  \"dropped_near_duplicates\": %llu,\n  \"dropped_short\": %llu,\n  \"dropped_filters\": %llu,\n"
        "  \"skipped_bad\": %llu,\n  \"skipped_files\": %llu,\n  \"null_values\": %llu,\n"
        "  \"empty_files\": %llu,\n  \"files\": %llu,\n",
        (unsigned long long)st->documents_read, (unsigned long long)st->dropped_duplicates,
        (unsigned long long)st->dropped_near_duplicates, (unsigned long long)st->dropped_short,
        (unsigned long long)st->dropped_filters, (unsigned long long)st->corpus.skipped_bad,
        (unsigned long long)st->corpus.skipped_files, (unsigned long long)st->corpus.null_values,
        (unsigned long long)st->corpus.empty_files, (unsigned long long)st->corpus.files);
    rc |= anv_buf_printf(&b, "  \"pii_replaced\": {\"emails\": %llu, \"ips\": %llu, \"phones\": %llu},\n",
                         (unsigned long long)st->pii.emails, (unsigned long long)st->pii.ips,
                         (unsigned long long)st->pii.phones);
    rc |= anv_buf_printf(&b, "  \"duplicate_lines_removed\": %llu,\n", (unsigned long long)st->duplicate_lines);
    rc |= anv_buf_puts(&b, "  \"dropped_by_filter\": {");
    for (int i = 0; i < st->n_dropped_by; i++)
        rc |= anv_buf_printf(&b, "%s\"%s\": %llu", i ? ", " : "", st->dropped_by[i].reason,
                             (unsigned long long)st->dropped_by[i].n);
    rc |= anv_buf_puts(&b, "},\n  \"quality_filters\": {");
    const anv_filter_set_t *q = o->filter.quality;
    for (int i = 0; q && i < q->n; i++) {
        rc |= anv_buf_printf(&b, "%s\"%s\": {", i ? ", " : "", q->def[i]->name);
        for (int k = 0; q->def[i]->params[k].name; k++)
            rc |= anv_buf_printf(&b, "%s\"%s\": %.17g", k ? ", " : "", q->def[i]->params[k].name, q->params[i][k]);
        rc |= anv_buf_puts(&b, "}");
    }
    rc |= anv_buf_puts(&b, "},\n");
    rc |= anv_buf_printf(
        &b,
        "  \"tokenizer_hash\": \"%016llx\",\n  \"vocab_size\": %zu,\n  \"eot\": %lld,\n"
        "  \"eot_position\": \"before each document\",\n  \"seed\": %llu,\n  \"val_fraction\": %.17g,\n"
        "  \"val_from_single_document\": %s,\n  \"command\": [",
        (unsigned long long)anv_tokenizer_hash(tok), anv_tokenizer_vocab_size(tok), (long long)anv_tokenizer_eot(tok),
        (unsigned long long)o->seed, o->val_fraction, st->single_document_split ? "true" : "false");
    for (int i = 0; i < o->argc; i++) {
        if (i) rc |= anv_buf_puts(&b, ", ");
        rc |= anv_buf_json_string(&b, o->argv[i], strlen(o->argv[i]));
    }
    rc |= anv_buf_puts(&b, "]\n}\n");
    char path[4200];
    if (rc == 0) rc = anv_path_join(path, sizeof path, o->out_dir, "meta.json");
    if (rc == 0) rc = anv_write_file_atomic(path, b.data, b.len);
    anv_buf_free(&b);
    return rc ? -1 : 0;
}

/* Fails early (before any long work) when the output folder cannot take files. */
static int check_out_dir(const char *dir) {
    char path[4200];
    anv_atomic_file_t af;
    if (anv_mkdir_p(dir) != 0 || anv_path_join(path, sizeof path, dir, "meta.json") != 0) return -1;
    if (anv_atomic_open(&af, path) != 0) return anv_error_prefix("output folder %s is not writable", dir);
    anv_atomic_abort(&af);
    return 0;
}

static int get_tokenizer(const anv_prepare_opts_t *o, anv_neardup_t *near, anv_prepare_stats_t *stats,
                         anv_tokenizer_t **tok) {
    if (o->tokenizer_path) return anv_tokenizer_load(o->tokenizer_path, tok);
    if (anv_bpe_check_vocab_size(o->vocab_size, o->specials, o->n_specials) != 0) return -1;
    anv_bpe_words_t *words;
    if (anv_count_words(&o->corpus, &o->filter, near, o->tokenizer_sample, o->pattern, o->progress, o->progress_ctx,
                        &words, stats) != 0)
        return -1;
    anv_bpe_train_opts_t to = {
        .min_frequency = o->min_frequency, .progress = o->progress, .progress_ctx = o->progress_ctx};
    int rc = anv_bpe_train_tokenizer(words, o->pattern, o->vocab_size, o->specials, o->n_specials, &to, tok);
    anv_bpe_words_free(words);
    return rc;
}

int anv_prepare(const anv_prepare_opts_t *o, anv_prepare_stats_t *stats) {
    memset(stats, 0, sizeof *stats);
    if (o->val_fraction < 0 || o->val_fraction >= 1 || o->val_fraction != o->val_fraction)
        return anv_error("validation fraction %g: must be in [0, 1)", o->val_fraction);
    if (o->shard_tokens == 0 || o->shard_tokens > ANV_SHARD_MAX_TOKENS)
        return anv_error("shard size %llu tokens: must be in 1..%u", (unsigned long long)o->shard_tokens,
                         ANV_SHARD_MAX_TOKENS);
    if (check_out_dir(o->out_dir) != 0) return -1;
    anv_neardup_t *near = NULL;
    if (o->filter.near_dedup && source_near_pass(&o->corpus, &o->filter, o->progress, o->progress_ctx, &near) != 0)
        return -1;
    anv_tokenizer_t *tok = NULL;
    if (get_tokenizer(o, near, stats, &tok) != 0) {
        anv_neardup_free(near);
        return -1;
    }
    int rc = -1;
    anv_atomic_file_t rejected = {0};
    char path[4200];
    encode_ctx e = {.tok = tok,
                    .val_fraction = o->val_fraction,
                    .seed = o->seed,
                    .progress = o->progress,
                    .progress_ctx = o->progress_ctx};
    source_t src;
    memset(&src, 0, sizeof src);
    batch_t b = {0};
    anv_prepare_stats_t pass2 = {0};
    if (anv_tokenizer_eot(tok) < 0) {
        anv_error("%s: the tokenizer has no end-of-text token to separate documents", o->tokenizer_path);
        goto done;
    }
    e.eot = (uint32_t)anv_tokenizer_eot(tok);
    if (anv_path_join(path, sizeof path, o->out_dir, "tokenizer.json") != 0 || anv_tokenizer_save(tok, path) != 0)
        goto done;
    e.train = (split_out){.dir = o->out_dir,
                          .name = "train",
                          .shard_tokens = o->shard_tokens,
                          .vocab = anv_tokenizer_vocab_size(tok),
                          .st = &stats->train};
    e.val = e.train;
    e.val.name = "val";
    e.val.st = &stats->val;
    e.src = &src;
    if ((o->rejected_path && anv_atomic_open(&rejected, o->rejected_path) != 0) ||
        source_open(&src, &o->corpus, &o->filter, near, o->rejected_path ? &rejected : NULL, &pass2) != 0 ||
        run_batches(&src, &b, encode_flush, &e) != 0)
        goto done;
    source_close(&src);
    memset(&src, 0, sizeof src);
    stats->documents_read = pass2.documents_read;
    stats->dropped_duplicates = pass2.dropped_duplicates;
    stats->dropped_near_duplicates = pass2.dropped_near_duplicates;
    stats->dropped_filters = pass2.dropped_filters;
    memcpy(stats->dropped_by, pass2.dropped_by, sizeof stats->dropped_by);
    stats->n_dropped_by = pass2.n_dropped_by;
    stats->pii = pass2.pii;
    stats->duplicate_lines = pass2.duplicate_lines;
    stats->dropped_short = pass2.dropped_short;
    stats->corpus = pass2.corpus;
    uint64_t kept = e.index;
    if (kept == 0) {
        anv_error("no documents left to write (%llu read, %llu empty files, %llu too short, %llu duplicates, %llu "
                  "bad lines)",
                  (unsigned long long)stats->documents_read, (unsigned long long)stats->corpus.empty_files,
                  (unsigned long long)stats->dropped_short, (unsigned long long)stats->dropped_duplicates,
                  (unsigned long long)stats->corpus.skipped_bad);
        goto done;
    }
    stats->single_document_split = o->val_fraction > 0 && kept == 1;
    if (stats->single_document_split) {
        if (split_single(&e, e.first_val.has ? &e.first_val : &e.last_train, o->val_fraction) != 0) goto done;
    } else if (!e.last_train.has) {
        anv_error("all %llu documents went to the validation split: use a smaller --val-fraction",
                  (unsigned long long)kept);
        goto done;
    }
    /* the last train document becomes the validation set when the hash picked none */
    if (flush_held(&e, &e.last_train, o->val_fraction > 0 && stats->val.documents == 0 ? &e.val : &e.train) != 0 ||
        split_close(&e.train) != 0 || split_close(&e.val) != 0)
        goto done;
    remove_stale(o->out_dir, "train", stats->train.shards);
    remove_stale(o->out_dir, "val", stats->val.shards);
    if (rejected.f && anv_atomic_commit(&rejected) != 0) goto done;
    rc = write_meta(o, stats, tok);
done:
    if (rejected.f) anv_atomic_abort(&rejected);
    anv_neardup_free(near);
    if (e.train.open) anv_shard_writer_abort(&e.train.w);
    if (e.val.open) anv_shard_writer_abort(&e.val.w);
    if (src.corpus) source_close(&src);
    for (size_t i = 0; i < e.cap_toks; i++) anv_tokens_free(&e.toks[i]);
    anv_free(e.toks);
    held_free(&e.last_train);
    held_free(&e.first_val);
    batch_free(&b);
    anv_tokenizer_free(tok);
    return rc;
}

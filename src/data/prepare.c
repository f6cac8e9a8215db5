/* anvil data prepare: documents -> (word counts -> trained tokenizer) -> token shards + meta.json.
 * Documents are gathered into batches and pre-tokenized or encoded on all threads; see prepare.h. */
#include "anvil/prepare.h"

#include "anvil/shard.h"
#include "ranks.h"
#include "source.h"

#include <errno.h>
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
    if (anv_grow(&b->doc_off, &cap, b->n_docs + 1, sizeof(size_t), "document batch") != 0) return -1;
    cap = b->cap_docs;
    if (anv_grow(&b->doc_len, &cap, b->n_docs + 1, sizeof(size_t), "document batch") != 0) return -1;
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
    if (anv_grow(&b->piece_first, &b->cap_first, n_docs + 1, sizeof(size_t), "document batch") != 0) return -1;
    for (size_t d = 0; d < n_docs; d++) {
        const char *s = b->big ? b->big : b->text.data + b->doc_off[d];
        size_t n = b->big ? b->big_len : b->doc_len[d];
        b->piece_first[d] = b->n_pieces;
        for (size_t at = 0; at < n;) {
            size_t end = n - at > 2 * PIECE_BYTES ? safe_cut(s, n, at + PIECE_BYTES) : n;
            size_t cap = b->cap_pieces;
            if (anv_grow(&b->pp, &cap, b->n_pieces + 1, sizeof *b->pp, "document batch") != 0) return -1;
            cap = b->cap_pieces;
            if (anv_grow(&b->pn, &cap, b->n_pieces + 1, sizeof *b->pn, "document batch") != 0) return -1;
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
    const batch_t *batch;   /* the one being counted */
    anv_pretok_t pattern;
    source_t *src;
    anv_progress_fn progress;
    void *progress_ctx;
} count_ctx;

static int count_piece(void *vctx, size_t i, int thread) {
    count_ctx *c = vctx;
    return anv_bpe_words_add_text(c->maps[thread], c->pattern, c->batch->pp[i], c->batch->pn[i]);
}

static int count_flush(void *vctx, batch_t *b) {
    count_ctx *c = vctx;
    c->batch = b;
    if (batch_pieces(b) != 0 || anv_parallel_for(b->n_pieces, 0, count_piece, c) != 0) return -1;
    if (c->progress) {
        const anv_corpus_stats_t *cs = anv_corpus_stats(c->src->corpus);
        c->progress(c->progress_ctx, "counting", cs->input_bytes, cs->total_bytes);
    }
    return 0;
}

/* The words of this reader's documents (none is fine: a rank's part may have none). */
static int count_part(const anv_corpus_opts_t *corpus, const anv_doc_filter_t *filter, const anv_corpus_context_t *ctx,
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
    int opened = source_open(&src, corpus, filter, ctx, NULL, stats) == 0;
    if (opened && sample_bytes) source_sample(&src, sample_bytes);
    if (opened && run_batches(&src, &b, count_flush, &c) == 0) {
        rc = 0;
        for (int i = 1; i < nt && rc == 0; i++) rc = anv_bpe_words_merge(c.maps[0], c.maps[i]);
    }
    source_close(&src);
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

static int no_words(const anv_bpe_words_t *words, const anv_prepare_stats_t *stats) {
    if (anv_bpe_words_total(words) > 0) return 0;
    return anv_error("no text to learn from: %llu files read (%llu empty), %llu documents (%llu too short, %llu "
                     "duplicates, %llu bad lines)",
                     (unsigned long long)stats->corpus.files, (unsigned long long)stats->corpus.empty_files,
                     (unsigned long long)stats->documents_read, (unsigned long long)stats->dropped_short,
                     (unsigned long long)stats->dropped_duplicates, (unsigned long long)stats->corpus.skipped_bad);
}

int anv_count_words(const anv_corpus_opts_t *corpus, const anv_doc_filter_t *filter, const anv_corpus_context_t *ctx,
                    uint64_t sample_bytes, anv_pretok_t pattern, anv_progress_fn progress, void *progress_ctx,
                    anv_bpe_words_t **out, anv_prepare_stats_t *stats) {
    if (count_part(corpus, filter, ctx, sample_bytes, pattern, progress, progress_ctx, out, stats) != 0) return -1;
    if (no_words(*out, stats) == 0) return 0;
    anv_bpe_words_free(*out);
    *out = NULL;
    return -1;
}

/* ---- what rank 0 learns from the others ---- */

typedef struct {
    anv_prepare_stats_t *stats;
    anv_buf_t *bytes;
    int me;
} to_rank0_t;

static int take_stats(void *vctx, int from, const void *data, size_t n) {
    to_rank0_t *t = vctx;
    if (t->me != 0 || from == 0) return 0;
    for (size_t k = 0; k < n / sizeof(anv_prepare_stats_t); k++) {
        anv_prepare_stats_t st;
        memcpy(&st, (const char *)data + k * sizeof st, sizeof st);
        source_add_stats(t->stats, &st);
    }
    return 0;
}

static int take_bytes(void *vctx, int from, const void *data, size_t n) {
    to_rank0_t *t = vctx;
    return t->me != 0 || from == 0 ? 0 : anv_buf_append(t->bytes, data, n);
}

/* Rank 0's stats become the sum of every rank's. */
static int stats_to_rank0(anv_comm_t *comm, anv_prepare_stats_t *stats) {
    anv_prepare_stats_t mine = *stats;
    to_rank0_t t = {.stats = stats, .me = ranks_rank(comm)};
    return ranks_share(comm, &mine, NULL, sizeof mine, sizeof mine, take_stats, &t);
}

/* Rank 0's words and counting stats become the sum of every rank's. */
static int words_to_rank0(anv_comm_t *comm, anv_bpe_words_t *words, anv_prepare_stats_t *stats) {
    anv_buf_t mine = {0}, others = {0};
    to_rank0_t t = {.bytes = &others, .me = ranks_rank(comm)};
    int rc = ranks_agree(comm, anv_bpe_words_export(words, &mine));
    if (rc == 0) rc = stats_to_rank0(comm, stats);
    if (rc == 0) rc = ranks_share(comm, mine.data, NULL, mine.len, 1, take_bytes, &t);
    anv_buf_free(&mine);
    if (rc == 0 && others.len) rc = anv_bpe_words_import(words, others.data, others.len);
    anv_buf_free(&others);
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
    FILE *part; /* a rank after the first: its documents go here for rank 0 (part_write) */
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

/* The next document of the corpus, to train or val by its index. */
static int place_doc(encode_ctx *e, anv_tokens_t *pieces, size_t n, uint64_t bytes) {
    uint64_t index = e->index++;
    if (index == 1 && flush_held(e, &e->first_val, &e->val) != 0) return -1; /* not alone after all */
    if (goes_to_val(e, index))
        return index == 0 ? hold(&e->first_val, pieces, n, bytes) : write_doc(&e->val, e->eot, pieces, n, bytes);
    if (flush_held(e, &e->last_train, &e->train) != 0) return -1;
    return hold(&e->last_train, pieces, n, bytes);
}

/* A rank's document for rank 0: its bytes (uint64), token count (uint64) and tokens (uint32). */
static int part_write(FILE *f, const anv_tokens_t *pieces, size_t n, uint64_t bytes) {
    uint64_t head[2] = {bytes, 0};
    for (size_t i = 0; i < n; i++) head[1] += pieces[i].len;
    int ok = fwrite(head, sizeof head, 1, f) == 1;
    for (size_t i = 0; i < n && ok; i++)
        ok = fwrite(pieces[i].ids, sizeof(uint32_t), pieces[i].len, f) == pieces[i].len;
    return ok ? 0 : anv_error("writing tokens to a temporary file: %s", strerror(errno));
}

/* Places the documents of a part file, in order. */
static int part_read(encode_ctx *e, FILE *f, const char *path) {
    anv_tokens_t doc = {0};
    uint64_t head[2];
    int rc = 0;
    while (rc == 0 && fread(head, sizeof head, 1, f) == 1) {
        if (anv_grow(&doc.ids, &doc.cap, head[1], sizeof *doc.ids, "token buffers") != 0) {
            rc = -1;
            break;
        }
        doc.len = head[1];
        if (fread(doc.ids, sizeof *doc.ids, doc.len, f) != doc.len)
            rc = anv_error("%s: truncated", path);
        else
            rc = place_doc(e, &doc, 1, head[0]);
    }
    if (rc == 0 && ferror(f)) rc = anv_error("%s: %s", path, strerror(errno));
    anv_tokens_free(&doc);
    return rc;
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
        if ((e->part ? part_write(e->part, e->toks + first, n, bytes) : place_doc(e, e->toks + first, n, bytes)) != 0)
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

/* Rank 0 (one process: the process) gets the tokenizer: loaded, or trained on the word counts of
 * every rank. The other ranks of a job that trains one get NULL: they load what rank 0 writes. */
static int get_tokenizer(const anv_prepare_opts_t *o, const anv_corpus_opts_t *part, const anv_corpus_context_t *ctx,
                         anv_prepare_stats_t *stats, anv_tokenizer_t **tok) {
    *tok = NULL;
    if (o->tokenizer_path) return ranks_agree(o->comm, anv_tokenizer_load(o->tokenizer_path, tok));
    if (anv_bpe_check_vocab_size(o->vocab_size, o->specials, o->n_specials) != 0) return -1;
    anv_bpe_words_t *words;
    int rc = ranks_agree(o->comm, count_part(part, &o->filter, ctx, o->tokenizer_sample, o->pattern, o->progress,
                                             o->progress_ctx, &words, stats));
    if (rc == 0 && ranks_size(o->comm) > 1) rc = words_to_rank0(o->comm, words, stats);
    if (rc == 0 && ranks_rank(o->comm) == 0) rc = no_words(words, stats);
    if (rc == 0 && ranks_rank(o->comm) == 0) {
        anv_bpe_train_opts_t to = {
            .min_frequency = o->min_frequency, .progress = o->progress, .progress_ctx = o->progress_ctx};
        rc = anv_bpe_train_tokenizer(words, o->pattern, o->vocab_size, o->specials, o->n_specials, &to, tok);
    }
    anv_bpe_words_free(words);
    return rc;
}

/* Every rank's tokenizer, written by rank 0 to the output folder (the others load it from there),
 * and its end-of-text token. */
static int share_tokenizer(const anv_prepare_opts_t *o, int rc, anv_tokenizer_t **tok, uint32_t *eot) {
    char path[4200];
    int rank = ranks_rank(o->comm);
    if (rc == 0) rc = anv_path_join(path, sizeof path, o->out_dir, "tokenizer.json");
    if (rc == 0 && rank == 0 && anv_tokenizer_eot(*tok) < 0)
        rc = anv_error("%s: the tokenizer has no end-of-text token to separate documents",
                       o->tokenizer_path ? o->tokenizer_path : "the trained tokenizer");
    if (rc == 0 && rank == 0) rc = anv_tokenizer_save(*tok, path);
    rc = ranks_agree(o->comm, rc);
    if (rc == 0 && ranks_size(o->comm) > 1 && !o->tokenizer_path)
        rc = ranks_agree(o->comm, rank == 0 ? 0 : anv_tokenizer_load(path, tok));
    if (rc == 0) *eot = (uint32_t)anv_tokenizer_eot(*tok);
    return rc;
}

/* Where rank r (> 0) leaves its documents' tokens for rank 0, and its rejected lines. */
static int tokens_part(char *buf, size_t size, const char *dir, int r) {
    char name[64];
    snprintf(name, sizeof name, ".rank-%d.tokens", r);
    return anv_path_join(buf, size, dir, name);
}

static int rejected_part(char *buf, size_t size, const char *rejected, int r) {
    if ((size_t)snprintf(buf, size, "%s.rank-%d", rejected, r) >= size) return anv_error("%s: path too long", rejected);
    return 0;
}

/* Rank 0 writes the documents of the ranks after it, in order, and their rejected lines. */
static int gather_parts(const anv_prepare_opts_t *o, encode_ctx *e, anv_atomic_file_t *rejected) {
    int rc = 0;
    for (int r = 1; r < ranks_size(o->comm); r++) {
        char path[4200];
        if (tokens_part(path, sizeof path, o->out_dir, r) != 0) return -1;
        FILE *f = fopen(path, "rb");
        if (!f) rc = anv_error("%s: cannot open: %s", path, strerror(errno));
        if (rc == 0) rc = part_read(e, f, path);
        if (f) fclose(f);
        unlink(path);
        if (!o->rejected_path || rejected_part(path, sizeof path, o->rejected_path, r) != 0) continue;
        char *lines = NULL;
        size_t len = 0;
        if (rc == 0) rc = anv_read_file(path, &lines, &len);
        if (rc == 0) rc = anv_atomic_write(rejected, lines, len);
        anv_free(lines);
        unlink(path);
        if (rc != 0) break;
    }
    return rc;
}

/* Rank 0 ends the output: the single-document split or the val document, the last shards, the
 * rejected log and meta.json. */
static int finish(const anv_prepare_opts_t *o, encode_ctx *e, anv_prepare_stats_t *stats, anv_atomic_file_t *rejected) {
    uint64_t kept = e->index;
    if (kept == 0)
        return anv_error("no documents left to write (%llu read, %llu empty files, %llu too short, %llu duplicates, "
                         "%llu bad lines)",
                         (unsigned long long)stats->documents_read, (unsigned long long)stats->corpus.empty_files,
                         (unsigned long long)stats->dropped_short, (unsigned long long)stats->dropped_duplicates,
                         (unsigned long long)stats->corpus.skipped_bad);
    stats->single_document_split = o->val_fraction > 0 && kept == 1;
    if (stats->single_document_split) {
        if (split_single(e, e->first_val.has ? &e->first_val : &e->last_train, o->val_fraction) != 0) return -1;
    } else if (!e->last_train.has) {
        return anv_error("all %llu documents went to the validation split: use a smaller --val-fraction",
                         (unsigned long long)kept);
    }
    /* the last train document becomes the validation set when the hash picked none */
    if (flush_held(e, &e->last_train, o->val_fraction > 0 && stats->val.documents == 0 ? &e->val : &e->train) != 0 ||
        split_close(&e->train) != 0 || split_close(&e->val) != 0)
        return -1;
    remove_stale(o->out_dir, "train", stats->train.shards);
    remove_stale(o->out_dir, "val", stats->val.shards);
    if (rejected->f && anv_atomic_commit(rejected) != 0) return -1;
    return write_meta(o, stats, e->tok);
}

int anv_prepare(const anv_prepare_opts_t *o, anv_prepare_stats_t *stats) {
    memset(stats, 0, sizeof *stats);
    if (o->val_fraction < 0 || o->val_fraction >= 1 || o->val_fraction != o->val_fraction)
        return anv_error("validation fraction %g: must be in [0, 1)", o->val_fraction);
    if (o->shard_tokens == 0 || o->shard_tokens > ANV_SHARD_MAX_TOKENS)
        return anv_error("shard size %llu tokens: must be in 1..%u", (unsigned long long)o->shard_tokens,
                         ANV_SHARD_MAX_TOKENS);
    anv_comm_t *comm = o->comm;
    int rank = ranks_rank(comm);
    anv_corpus_opts_t part = o->corpus;
    if (ranks_size(comm) > 1) {
        part.part = rank;
        part.parts = ranks_size(comm);
    }
    if (ranks_agree(comm, check_out_dir(o->out_dir)) != 0) return -1;
    anv_corpus_context_t ctx;
    if (source_context(comm, &part, &o->filter, o->progress, o->progress_ctx, &ctx) != 0) return -1;
    anv_tokenizer_t *tok = NULL;
    encode_ctx e = {
        .val_fraction = o->val_fraction, .seed = o->seed, .progress = o->progress, .progress_ctx = o->progress_ctx};
    int rc = share_tokenizer(o, get_tokenizer(o, &part, &ctx, stats, &tok), &tok, &e.eot);
    anv_atomic_file_t rejected = {0};
    char path[4200], tokens_path[4200] = "";
    source_t src;
    memset(&src, 0, sizeof src);
    batch_t b = {0};
    anv_prepare_stats_t pass2 = {0};
    e.tok = tok;
    e.train = (split_out){.dir = o->out_dir,
                          .name = "train",
                          .shard_tokens = o->shard_tokens,
                          .vocab = tok ? anv_tokenizer_vocab_size(tok) : 0,
                          .st = &stats->train};
    e.val = e.train;
    e.val.name = "val";
    e.val.st = &stats->val;
    e.src = &src;
    if (rc != 0) goto done;
    /* every rank encodes its part: rank 0 into the shards, the others into files for rank 0 */
    if (rank > 0) {
        rc = tokens_part(tokens_path, sizeof tokens_path, o->out_dir, rank);
        if (rc == 0 && !(e.part = fopen(tokens_path, "wb")))
            rc = anv_error("%s: cannot create: %s", tokens_path, strerror(errno));
    }
    if (rc == 0 && o->rejected_path) {
        rc = rank == 0 ? 0 : rejected_part(path, sizeof path, o->rejected_path, rank);
        if (rc == 0) rc = anv_atomic_open(&rejected, rank == 0 ? o->rejected_path : path);
    }
    if (rc == 0) rc = source_open(&src, &part, &o->filter, &ctx, o->rejected_path ? &rejected : NULL, &pass2);
    if (rc == 0) rc = run_batches(&src, &b, encode_flush, &e);
    if (src.corpus) source_close(&src);
    if (e.part && fclose(e.part) != 0 && rc == 0) rc = anv_error("%s: %s", tokens_path, strerror(errno));
    e.part = NULL;
    if (rc == 0 && rank > 0 && rejected.f) rc = anv_atomic_commit(&rejected);
    rc = ranks_agree(comm, rc);
    if (rc == 0 && ranks_size(comm) > 1) rc = stats_to_rank0(comm, &pass2);
    if (rank == 0 && ranks_size(comm) > 1) {
        if (rc == 0) rc = gather_parts(o, &e, &rejected);
        for (int r = 1; r < ranks_size(comm); r++) /* whatever happened, no part file stays behind */
            if (tokens_part(path, sizeof path, o->out_dir, r) == 0) unlink(path);
    }
    if (rc == 0 && rank == 0) {
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
        rc = finish(o, &e, stats, &rejected);
    }
    rc = ranks_agree(comm, rc);
done:
    if (rejected.f) anv_atomic_abort(&rejected);
    source_context_free(&ctx);
    if (e.train.open) anv_shard_writer_abort(&e.train.w);
    if (e.val.open) anv_shard_writer_abort(&e.val.w);
    if (e.part) fclose(e.part);
    if (rank > 0 && tokens_path[0]) unlink(tokens_path);
    for (size_t i = 0; i < e.cap_toks; i++) anv_tokens_free(&e.toks[i]);
    anv_free(e.toks);
    held_free(&e.last_train);
    held_free(&e.first_val);
    batch_free(&b);
    anv_tokenizer_free(tok);
    return rc;
}

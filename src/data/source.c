/* The kept documents of a corpus: filters, the rejected log and what the passes of a job share. See
 * source.h. */
#include "source.h"

#include "ranks.h"

#include <errno.h>
#include <string.h>

#define SOURCE_BATCH_DOCS 4096
#define SOURCE_BATCH_BYTES ((size_t)16 << 20)
#define NEAR_BATCH_DOCS 4096
#define NEAR_BATCH_BYTES ((size_t)32 << 20)
#define LINE_BITS 40 /* where a document is: (file index << LINE_BITS) | line */

uint64_t source_where(const anv_doc_t *doc) { return doc->file << LINE_BITS | (doc->line & ((1ull << LINE_BITS) - 1)); }

void source_context_free(anv_corpus_context_t *x) {
    anv_buf_free(&x->docs);
    anv_buf_free(&x->lines);
    anv_neardup_free(x->near);
    anv_free(x->near_where);
    memset(x, 0, sizeof *x);
}

static int batch_open(source_t *s);
static void batch_close(struct source_batch *b);

int source_open(source_t *s, const anv_corpus_opts_t *copts, const anv_doc_filter_t *filter,
                const anv_corpus_context_t *ctx, anv_atomic_file_t *rejected, anv_prepare_stats_t *stats) {
    static const anv_corpus_context_t nothing = {0};
    static const uint64_t earlier = UINT64_MAX; /* a line of an earlier part: never this part's document */
    memset(s, 0, sizeof *s);
    s->filter = *filter;
    s->stats = stats;
    s->ctx = ctx ? ctx : &nothing;
    s->near_id = s->ctx->near_first;
    s->rejected = rejected;
    if (anv_corpus_open(copts, &s->corpus) != 0) return -1;
    if (filter->dedup &&
        (anv_dedup_init(&s->dedup) != 0 ||
         anv_dedup_import(s->dedup, s->ctx->docs.data, s->ctx->docs.len / ANV_DEDUP_ENTRY_BYTES, NULL) != 0))
        return -1;
    if (filter->dedup_lines &&
        (anv_dedup_init(&s->lines) != 0 ||
         anv_dedup_import(s->lines, s->ctx->lines.data, s->ctx->lines.len / ANV_DEDUP_ENTRY_BYTES, &earlier) != 0))
        return -1;
    return batch_open(s);
}

void source_close(source_t *s) {
    if (s->corpus) s->stats->corpus = *anv_corpus_stats(s->corpus);
    anv_corpus_close(s->corpus);
    anv_dedup_free(s->dedup);
    anv_dedup_free(s->lines);
    batch_close(s->batch);
    anv_buf_free(&s->unique);
    anv_buf_free(&s->line);
    memset(s, 0, sizeof *s);
}

/* ---- the rejected log ---- */

/* One line: where the document is, why it went, the measured value, and (kept_at != UINT64_MAX)
 * where the document it duplicates is. */
static int reject(source_t *s, const anv_doc_t *doc, const char *reason, double value, uint64_t kept_at) {
    if (!s->rejected) return 0;
    anv_buf_t *b = &s->line;
    b->len = 0;
    int rc = anv_buf_puts(b, "{\"source\": ");
    rc |= anv_buf_json_string(b, doc->path, strlen(doc->path));
    rc |= anv_buf_printf(b, ", \"line\": %llu, \"reason\": \"%s\", \"value\": %.6g", (unsigned long long)doc->line,
                         reason, value);
    if (kept_at != UINT64_MAX) {
        const char *kept = anv_corpus_file(s->corpus, kept_at >> LINE_BITS); /* files of every part are listed */
        rc |= anv_buf_puts(b, ", \"kept_source\": ");
        rc |= anv_buf_json_string(b, kept ? kept : "", kept ? strlen(kept) : 0);
        rc |= anv_buf_printf(b, ", \"kept_line\": %llu", (unsigned long long)(kept_at & ((1ull << LINE_BITS) - 1)));
    }
    rc |= anv_buf_puts(b, "}\n");
    return rc ? -1 : anv_atomic_write(s->rejected, b->data, b->len);
}

void source_sample(source_t *s, uint64_t max_bytes) {
    const anv_corpus_stats_t *cs = anv_corpus_stats(s->corpus);
    uint64_t all = cs->corpus_bytes ? cs->corpus_bytes : 1;
    s->sample_share = all > max_bytes ? (double)max_bytes / (double)all : 1;
    s->max_bytes = (uint64_t)((double)max_bytes * ((double)cs->total_bytes / (double)all)) + 1;
}

static int sampled_out(const source_t *s, uint64_t at) {
    if (s->sample_share >= 1) return 0;
    uint64_t h = anv_hash64(&at, sizeof at, 0x73616d706c65ull);
    return (double)(h >> 11) * (1.0 / 9007199254740992.0) >= s->sample_share;
}

/* The document without the lines (paragraphs) that an earlier document had: 1 something is left (in
 * *text, *len), 0 nothing, -1 error. Blank lines are kept; a unit repeated inside a document stays. */
static int unique_lines(source_t *s, const char **text, size_t *len) {
    const char *t = *text;
    size_t n = *len, copied = 0, removed = 0;
    uint64_t doc = s->n_docs++;
    s->unique.len = 0;
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(t + i, '\n', n - i);
        size_t line_end = nl ? (size_t)(nl - t) : n, k = i;
        while (k < line_end && (t[k] == ' ' || t[k] == '\t' || t[k] == '\r')) k++;
        if (k == line_end) { /* a blank line: kept, and it separates paragraphs */
            i = line_end + 1;
            continue;
        }
        size_t end = i;
        for (;;) { /* a line, or with paragraphs, lines up to a blank one */
            const char *nl = memchr(t + end, '\n', n - end);
            end = nl ? (size_t)(nl - t) : n;
            if (s->filter.dedup_lines == 1 || end == n || end + 1 == n || t[end + 1] == '\n') break;
            end++;
        }
        uint64_t first;
        int seen = anv_dedup_check(s->lines, t + i, end - i, doc, &first);
        if (seen < 0) return -1;
        size_t next = end < n ? end + 1 : n;
        if (seen && first != doc) {
            if (anv_buf_append(&s->unique, t + copied, i - copied) != 0) return -1;
            copied = next;
            removed++;
        }
        i = next;
    }
    if (!removed) return 1;
    if (anv_buf_append(&s->unique, t + copied, n - copied) != 0) return -1;
    s->stats->duplicate_lines += removed;
    *text = s->unique.data ? s->unique.data : "";
    *len = s->unique.len;
    for (size_t i = 0; i < *len; i++)
        if (!strchr(" \t\r\n", (*text)[i])) return 1;
    return 0;
}

/* ---- the filters, in order ---- */

static void count_drops(anv_prepare_stats_t *st, const char *reason, uint64_t n) {
    st->dropped_filters += n;
    for (int i = 0; i < st->n_dropped_by; i++)
        if (!strcmp(st->dropped_by[i].reason, reason)) {
            st->dropped_by[i].n += n;
            return;
        }
    int last = (int)(sizeof st->dropped_by / sizeof st->dropped_by[0]) - 1;
    int i = st->n_dropped_by < last ? st->n_dropped_by++ : last;
    snprintf(st->dropped_by[i].reason, sizeof st->dropped_by[i].reason, "%s", i == last ? "other" : reason);
    st->dropped_by[i].n += n;
}

static void count_drop(anv_prepare_stats_t *st, const char *reason) { count_drops(st, reason, 1); }

void source_add_stats(anv_prepare_stats_t *dst, const anv_prepare_stats_t *src) {
    dst->documents_read += src->documents_read;
    dst->dropped_duplicates += src->dropped_duplicates;
    dst->dropped_near_duplicates += src->dropped_near_duplicates;
    dst->dropped_short += src->dropped_short;
    for (int i = 0; i < src->n_dropped_by; i++) count_drops(dst, src->dropped_by[i].reason, src->dropped_by[i].n);
    dst->pii.emails += src->pii.emails;
    dst->pii.ips += src->pii.ips;
    dst->pii.phones += src->pii.phones;
    dst->duplicate_lines += src->duplicate_lines;
    anv_corpus_stats_t *a = &dst->corpus;
    const anv_corpus_stats_t *b = &src->corpus;
    a->files += b->files;
    a->empty_files += b->empty_files;
    a->other_files += b->other_files;
    a->skipped_bad += b->skipped_bad;
    a->skipped_files += b->skipped_files;
    a->null_values += b->null_values;
    a->input_bytes += b->input_bytes;
    a->total_bytes += b->total_bytes;
    a->corpus_bytes = b->corpus_bytes;
}

/* ---- the filters that look at one document alone: on all threads, a batch at a time ---- */

typedef struct { /* one thread's buffers */
    anv_filter_scratch_t *scratch;
    anv_buf_t rewritten, scrubbed;
    anv_buf_t kept; /* the documents of this batch that the filters rewrote, back to back */
} worker_t;

typedef struct {
    anv_doc_t doc;  /* as read, then as the filters left it */
    size_t raw_off; /* in the batch's text, for a copied document */
    int worker;     /* the rewritten text is in workers[worker].kept at out_off, or worker is -1 */
    size_t out_off, out_len;
    int drop;        /* 0 kept, 1 empty or short, 2 by a filter */
    char reason[64]; /* why it was dropped */
    double value;
    anv_pii_counts_t pii;
} slot_t;

struct source_batch {
    anv_buf_t text; /* the documents read, copied back to back, but for one large document */
    slot_t *slots;
    size_t n, next, cap;
    worker_t *workers;
    int n_workers;
    int pending; /* the corpus holds a large document read after the batch was full */
    anv_doc_t pending_doc;
};

static void drop_as(slot_t *slot, int drop, const char *reason, double value) {
    slot->drop = drop;
    snprintf(slot->reason, sizeof slot->reason, "%s", reason);
    slot->value = value;
}

/* Empty and short documents, language, blocklist, quality filters and personal data, on one thread.
 * A rewritten document is copied to the worker's kept buffer, but for one alone in its batch: that
 * stays where the filter wrote it. */
static int filter_doc(const anv_doc_filter_t *f, worker_t *w, int worker, slot_t *slot, int alone) {
    const char *text = slot->doc.text;
    size_t len = slot->doc.len;
    slot->drop = 0;
    slot->worker = -1;
    if (len == 0) {
        drop_as(slot, 1, "empty", 0);
        return 0;
    }
    if (f->min_chars) {
        size_t chars = anv_utf8_chars(text, len);
        if (chars < f->min_chars) {
            drop_as(slot, 1, "min_chars", (double)chars);
            return 0;
        }
    }
    if (f->n_langs) {
        const char *code;
        double share;
        anv_language_detect(text, len, &code, &share);
        size_t k = 0;
        while (k < f->n_langs && strcmp(code, f->langs[k])) k++;
        if (k == f->n_langs || share < (f->lang_share > 0 ? f->lang_share : 0.65)) {
            char reason[64];
            snprintf(reason, sizeof reason, k == f->n_langs ? "language:%s" : "language_share:%s", code);
            drop_as(slot, 2, reason, share);
            return 0;
        }
    }
    if (f->blocklist && anv_blocklist_match(f->blocklist, text, len)) {
        drop_as(slot, 2, "blocklist", 1);
        return 0;
    }
    if (w->scratch) {
        anv_filter_verdict_t v;
        int kept = anv_filter_set_run(f->quality, &text, &len, &w->rewritten, w->scratch, &v);
        if (kept < 0) return -1;
        if (!kept) {
            drop_as(slot, 2, v.reason, v.value);
            return 0;
        }
    }
    if (f->pii) {
        anv_buf_t *out = text == w->rewritten.data ? &w->scrubbed : &w->rewritten;
        int n = anv_pii_scrub(text, len, f->pii > 1, out, &slot->pii);
        if (n < 0) return -1;
        if (n > 0) {
            text = out->data;
            len = out->len;
        }
    }
    if (text == slot->doc.text) return 0;
    if (alone) {
        slot->doc.text = text;
        slot->doc.len = len;
        return 0;
    }
    slot->out_off = w->kept.len;
    slot->out_len = len;
    slot->worker = worker;
    return anv_buf_append(&w->kept, text, len);
}

static int batch_open(source_t *s) {
    struct source_batch *b = s->batch = anv_calloc(sizeof *b, "document batch");
    if (!b) return -1;
    b->n_workers = anv_threads_count();
    if (!(b->workers = anv_calloc((size_t)b->n_workers * sizeof *b->workers, "document batch"))) return -1;
    for (int i = 0; i < b->n_workers; i++)
        if (s->filter.quality && s->filter.quality->n && !(b->workers[i].scratch = anv_filter_scratch_new())) return -1;
    return 0;
}

static void batch_close(struct source_batch *b) {
    if (!b) return;
    for (int i = 0; b->workers && i < b->n_workers; i++) {
        anv_filter_scratch_free(b->workers[i].scratch);
        anv_buf_free(&b->workers[i].rewritten);
        anv_buf_free(&b->workers[i].scrubbed);
        anv_buf_free(&b->workers[i].kept);
    }
    anv_free(b->workers);
    anv_free(b->slots);
    anv_buf_free(&b->text);
    anv_free(b);
}

static int filter_slot(void *ctx, size_t i, int thread) {
    source_t *s = ctx;
    struct source_batch *b = s->batch;
    return filter_doc(&s->filter, &b->workers[thread], thread, &b->slots[i], b->n == 1);
}

/* Reads the next batch: small documents copied until SOURCE_BATCH_BYTES or SOURCE_BATCH_DOCS, or one
 * large document where the corpus holds it. 1: a batch, 0: the end, -1: error. */
static int batch_read(source_t *s) {
    struct source_batch *b = s->batch;
    b->n = b->next = b->text.len = 0;
    anv_doc_t doc;
    int r = 1;
    while (b->n < SOURCE_BATCH_DOCS && b->text.len < SOURCE_BATCH_BYTES) {
        if (b->pending) {
            doc = b->pending_doc;
            b->pending = 0;
        } else if ((r = anv_corpus_next(s->corpus, &doc)) != 1) {
            break;
        }
        int large = doc.len >= SOURCE_BATCH_BYTES;
        if (large && b->n) { /* it stays where the corpus read it, for the next batch */
            b->pending = 1;
            b->pending_doc = doc;
            break;
        }
        if (anv_grow(&b->slots, &b->cap, b->n + 1, sizeof *b->slots, "document batch") != 0) return -1;
        slot_t *slot = &b->slots[b->n++];
        memset(slot, 0, sizeof *slot);
        slot->doc = doc;
        slot->raw_off = b->text.len;
        if (large) break;
        if (anv_buf_append(&b->text, doc.text, doc.len) != 0) return -1;
        slot->doc.text = NULL;
    }
    if (r < 0) return -1;
    for (size_t i = 0; i < b->n; i++)
        if (!b->slots[i].doc.text) b->slots[i].doc.text = b->text.data ? b->text.data + b->slots[i].raw_off : "";
    for (int i = 0; i < b->n_workers; i++) b->workers[i].kept.len = 0;
    if (anv_parallel_for(b->n, b->n_workers, filter_slot, s) != 0) return -1;
    for (size_t i = 0; i < b->n; i++) {
        slot_t *slot = &b->slots[i];
        if (slot->worker < 0) continue;
        slot->doc.text = b->workers[slot->worker].kept.data + slot->out_off;
        slot->doc.len = slot->out_len;
    }
    return b->n > 0;
}

int source_next(source_t *s, anv_doc_t *doc) {
    struct source_batch *b = s->batch;
    if (s->max_bytes && s->bytes >= s->max_bytes) return 0;
    for (;;) {
        if (b->next == b->n) {
            int r = batch_read(s);
            if (r <= 0) return r;
        }
        const slot_t *slot = &b->slots[b->next++];
        *doc = slot->doc;
        s->stats->documents_read++;
        s->stats->pii.emails += slot->pii.emails;
        s->stats->pii.ips += slot->pii.ips;
        s->stats->pii.phones += slot->pii.phones;
        uint64_t at = source_where(doc), first = UINT64_MAX;
        if (slot->drop) {
            if (slot->drop == 1)
                s->stats->dropped_short++;
            else
                count_drop(s->stats, slot->reason);
            if (reject(s, doc, slot->reason, slot->value, UINT64_MAX) != 0) return -1;
            continue;
        }
        if (s->dedup) {
            int seen = anv_dedup_check(s->dedup, doc->text, doc->len, at, &first);
            if (seen < 0) return -1;
            if (seen) {
                s->stats->dropped_duplicates++;
                if (reject(s, doc, "duplicate", 1, first) != 0) return -1;
                continue;
            }
        }
        if (s->lines) {
            const char *text = doc->text;
            size_t len = doc->len;
            int left = unique_lines(s, &text, &len);
            if (left < 0) return -1;
            if (!left) {
                count_drop(s->stats, "duplicate_lines");
                if (reject(s, doc, "duplicate_lines", 1, UINT64_MAX) != 0) return -1;
                continue;
            }
            doc->text = text;
            doc->len = len;
        }
        if (s->ctx->near) {
            uint64_t id = s->near_id++;
            double similarity;
            uint64_t head = anv_neardup_keeper(s->ctx->near, id, &similarity);
            if (head != id) {
                s->stats->dropped_near_duplicates++;
                if (reject(s, doc, "near-duplicate", similarity, s->ctx->near_where[head]) != 0) return -1;
                continue;
            }
        }
        if (s->max_bytes && sampled_out(s, at)) continue;
        s->bytes += doc->len;
        return 1;
    }
}

/* ---- what the passes of a job share ---- */

/* Reads the part through the filters: the dedup sets fill up, nothing else happens. */
static int drain(source_t *s, anv_progress_fn progress, void *progress_ctx) {
    anv_doc_t doc;
    int r;
    uint64_t n = 0;
    while ((r = source_next(s, &doc)) == 1)
        if (progress && ++n % 4096 == 0) {
            const anv_corpus_stats_t *cs = anv_corpus_stats(s->corpus);
            progress(progress_ctx, "duplicates", cs->input_bytes, cs->total_bytes);
        }
    return r;
}

typedef struct {
    anv_buf_t *keep;
    int me;
} earlier_t;

/* Keeps the bytes of the ranks before this one. */
static int take_earlier(void *vctx, int from, const void *data, size_t n) {
    earlier_t *e = vctx;
    return from < e->me ? anv_buf_append(e->keep, data, n) : 0;
}

/* One pass over the part with the filters up to exact dedup (lines: and line dedup) on, then the set
 * it filled, shared: each rank keeps the entries of the ranks before it. */
static int share_set(anv_comm_t *comm, const anv_corpus_opts_t *copts, const anv_doc_filter_t *filter, int lines,
                     anv_progress_fn progress, void *progress_ctx, anv_corpus_context_t *ctx) {
    anv_doc_filter_t f = *filter;
    f.dedup_lines = lines ? filter->dedup_lines : 0;
    anv_prepare_stats_t stats = {0};
    source_t src;
    anv_buf_t mine = {0};
    int rc = source_open(&src, copts, &f, ctx, NULL, &stats);
    if (rc == 0) rc = drain(&src, progress, progress_ctx);
    if (rc == 0) rc = anv_dedup_export(lines ? src.lines : src.dedup, &mine);
    source_close(&src);
    earlier_t e = {lines ? &ctx->lines : &ctx->docs, ranks_rank(comm)};
    if (ranks_agree(comm, rc) != 0 ||
        ranks_share(comm, mine.data, NULL, mine.len, ANV_DEDUP_ENTRY_BYTES, take_earlier, &e) != 0)
        rc = -1;
    anv_buf_free(&mine);
    return rc;
}

/* ---- the near-duplicate clusters ---- */

typedef struct {
    uint64_t where;
    anv_minhash_t sig;
} near_record_t;

typedef struct {
    anv_buf_t text;
    size_t off[NEAR_BATCH_DOCS], len[NEAR_BATCH_DOCS], n;
    near_record_t rec[NEAR_BATCH_DOCS];
} near_batch_t;

typedef struct {
    anv_corpus_context_t *ctx;
    size_t cap_where;
    int me;
} near_index_t;

/* Adds records, in corpus order, to the clusters. */
static int near_add(void *vctx, int from, const void *data, size_t n) {
    near_index_t *x = vctx;
    anv_corpus_context_t *ctx = x->ctx;
    for (size_t k = 0; k < n / sizeof(near_record_t); k++) {
        near_record_t r;
        memcpy(&r, (const char *)data + k * sizeof r, sizeof r);
        uint64_t id = anv_neardup_count(ctx->near);
        if (anv_grow(&ctx->near_where, &x->cap_where, id + 1, sizeof *ctx->near_where, "near-duplicate index") != 0)
            return -1;
        ctx->near_where[id] = r.where;
        if (from < x->me) ctx->near_first = id + 1;
        if (anv_neardup_add(ctx->near, &r.sig) != 0) return -1;
    }
    return 0;
}

/* Signs the batch on all threads; one process adds it to the clusters, a rank of a job keeps it in
 * its file until every rank has signed its part. */
static int near_flush(near_batch_t *b, near_index_t *x, FILE *f) {
    long n = (long)b->n;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 16)
#endif
    for (long i = 0; i < n; i++) anv_minhash_sign(b->text.data + b->off[i], b->len[i], &b->rec[i].sig);
    int rc = 0;
    if (f && fwrite(b->rec, sizeof b->rec[0], b->n, f) != b->n)
        rc = anv_error("writing MinHash signatures to a temporary file: %s", strerror(errno));
    else if (!f)
        rc = near_add(x, 0, b->rec, b->n * sizeof b->rec[0]);
    b->n = b->text.len = 0;
    return rc;
}

static int near_pass(anv_comm_t *comm, const anv_corpus_opts_t *copts, const anv_doc_filter_t *filter,
                     anv_progress_fn progress, void *progress_ctx, anv_corpus_context_t *ctx) {
    anv_prepare_stats_t stats = {0};
    source_t src = {0};
    near_index_t x = {.ctx = ctx, .me = ranks_rank(comm)};
    anv_corpus_context_t before = *ctx; /* what the filters before near-dedup need */
    before.near = NULL;
    near_batch_t *b = anv_calloc(sizeof *b, "near-duplicate batch");
    FILE *f = ranks_size(comm) > 1 ? tmpfile() : NULL;
    uint64_t records = 0;
    int rc = -1;
    if (ranks_size(comm) > 1 && !f) {
        anv_error("cannot create a temporary file for MinHash signatures: %s", strerror(errno));
        goto done;
    }
    if (!b || anv_neardup_init(filter->near_threshold > 0 ? filter->near_threshold : 0.8, &ctx->near) != 0 ||
        source_open(&src, copts, filter, &before, NULL, &stats) != 0)
        goto done;
    anv_doc_t doc;
    int r;
    while ((r = source_next(&src, &doc)) == 1) {
        b->rec[b->n].where = source_where(&doc);
        b->off[b->n] = b->text.len;
        b->len[b->n++] = doc.len;
        records++;
        if (anv_buf_append(&b->text, doc.text, doc.len) != 0) break;
        if (b->n == NEAR_BATCH_DOCS || b->text.len >= NEAR_BATCH_BYTES) {
            if (near_flush(b, &x, f) != 0) break;
            if (progress) {
                const anv_corpus_stats_t *cs = anv_corpus_stats(src.corpus);
                progress(progress_ctx, "near-duplicates", cs->input_bytes, cs->total_bytes);
            }
        }
    }
    if (r == 0 && near_flush(b, &x, f) == 0) rc = 0;
done:
    if (src.corpus) source_close(&src);
    if (b) anv_buf_free(&b->text);
    anv_free(b);
    if (f && ranks_agree(comm, rc) == 0)
        rc = ranks_share(comm, NULL, f, records * sizeof(near_record_t), sizeof(near_record_t), near_add, &x);
    else if (f)
        rc = -1;
    if (f) fclose(f);
    return rc;
}

int source_context(anv_comm_t *comm, const anv_corpus_opts_t *copts, const anv_doc_filter_t *filter,
                   anv_progress_fn progress, void *progress_ctx, anv_corpus_context_t *out) {
    memset(out, 0, sizeof *out);
    int rc = 0;
    if (ranks_size(comm) > 1 && filter->dedup) rc = share_set(comm, copts, filter, 0, progress, progress_ctx, out);
    if (rc == 0 && ranks_size(comm) > 1 && filter->dedup_lines)
        rc = share_set(comm, copts, filter, 1, progress, progress_ctx, out);
    if (rc == 0 && filter->near_dedup) rc = near_pass(comm, copts, filter, progress, progress_ctx, out);
    if (rc != 0) source_context_free(out);
    return rc;
}

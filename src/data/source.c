/* The kept documents of a corpus: filters, the rejected log and the near-duplicate pass. See source.h. */
#include "source.h"

#include <string.h>

#define NEAR_BATCH_DOCS 4096
#define NEAR_BATCH_BYTES ((size_t)32 << 20)
#define LINE_BITS 40 /* where a document is: (file index << LINE_BITS) | line */

static uint64_t where(const anv_doc_t *doc) { return doc->file << LINE_BITS | (doc->line & ((1ull << LINE_BITS) - 1)); }

int source_open(source_t *s, const anv_corpus_opts_t *copts, const anv_doc_filter_t *filter, anv_neardup_t *near,
                anv_atomic_file_t *rejected, anv_prepare_stats_t *stats) {
    memset(s, 0, sizeof *s);
    s->filter = *filter;
    s->stats = stats;
    s->near = near;
    s->rejected = rejected;
    if (anv_corpus_open(copts, &s->corpus) != 0) return -1;
    if (filter->dedup && anv_dedup_init(&s->dedup) != 0) return -1;
    if (filter->dedup_lines && anv_dedup_init(&s->lines) != 0) return -1;
    if (filter->quality && filter->quality->n && !(s->scratch = anv_filter_scratch_new())) return -1;
    return 0;
}

void source_close(source_t *s) {
    if (s->corpus) s->stats->corpus = *anv_corpus_stats(s->corpus);
    anv_corpus_close(s->corpus);
    anv_dedup_free(s->dedup);
    anv_dedup_free(s->lines);
    anv_filter_scratch_free(s->scratch);
    anv_buf_free(&s->rewritten);
    anv_buf_free(&s->scrubbed);
    anv_buf_free(&s->unique);
    anv_buf_free(&s->line);
    anv_free(s->keepers);
    memset(s, 0, sizeof *s);
}

/* ---- near-duplicate cluster heads: where each one is, for the log of the ones dropped ---- */

static uint64_t *keeper_slot(uint64_t *t, size_t cap, uint64_t id) {
    size_t j = (size_t)(id * 0x9E3779B97F4A7C15ull) & (cap - 1);
    while (t[2 * j] && t[2 * j] != id + 1) j = (j + 1) & (cap - 1);
    return &t[2 * j];
}

static int remember_keeper(source_t *s, uint64_t id, uint64_t at) {
    if (2 * (s->keepers_n + 1) > s->keepers_cap) {
        size_t cap = s->keepers_cap ? 2 * s->keepers_cap : 1024;
        uint64_t *t = anv_calloc(2 * cap * sizeof *t, "near-duplicate cluster heads");
        if (!t) return -1;
        for (size_t i = 0; i < s->keepers_cap; i++)
            if (s->keepers[2 * i]) memcpy(keeper_slot(t, cap, s->keepers[2 * i] - 1), &s->keepers[2 * i], 16);
        anv_free(s->keepers);
        s->keepers = t;
        s->keepers_cap = cap;
    }
    uint64_t *e = keeper_slot(s->keepers, s->keepers_cap, id);
    if (!e[0]) s->keepers_n++;
    e[0] = id + 1;
    e[1] = at;
    return 0;
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
        const char *kept = anv_corpus_file(s->corpus, kept_at >> LINE_BITS);
        rc |= anv_buf_puts(b, ", \"kept_source\": ");
        rc |= anv_buf_json_string(b, kept ? kept : "", kept ? strlen(kept) : 0);
        rc |= anv_buf_printf(b, ", \"kept_line\": %llu", (unsigned long long)(kept_at & ((1ull << LINE_BITS) - 1)));
    }
    rc |= anv_buf_puts(b, "}\n");
    return rc ? -1 : anv_atomic_write(s->rejected, b->data, b->len);
}

void source_sample(source_t *s, uint64_t max_bytes) {
    uint64_t total = anv_corpus_stats(s->corpus)->total_bytes;
    s->max_bytes = max_bytes;
    s->sample_share = total > max_bytes ? (double)max_bytes / (double)total : 1;
}

static int sampled_out(source_t *s) {
    uint64_t index = s->index++;
    if (s->sample_share >= 1) return 0;
    uint64_t h = anv_hash64(&index, sizeof index, 0x73616d706c65ull);
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

static void count_drop(anv_prepare_stats_t *st, const char *reason) {
    st->dropped_filters++;
    for (int i = 0; i < st->n_dropped_by; i++)
        if (!strcmp(st->dropped_by[i].reason, reason)) {
            st->dropped_by[i].n++;
            return;
        }
    int last = (int)(sizeof st->dropped_by / sizeof st->dropped_by[0]) - 1;
    int i = st->n_dropped_by < last ? st->n_dropped_by++ : last;
    snprintf(st->dropped_by[i].reason, sizeof st->dropped_by[i].reason, "%s", i == last ? "other" : reason);
    st->dropped_by[i].n++;
}

int source_next(source_t *s, anv_doc_t *doc) {
    int r;
    if (s->max_bytes && s->bytes >= s->max_bytes) return 0;
    while ((r = anv_corpus_next(s->corpus, doc)) == 1) {
        s->stats->documents_read++;
        uint64_t at = where(doc), first = UINT64_MAX;
        if (doc->len == 0) {
            s->stats->dropped_short++;
            if (reject(s, doc, "empty", 0, UINT64_MAX) != 0) return -1;
            continue;
        }
        if (s->filter.min_chars) {
            size_t chars = anv_utf8_chars(doc->text, doc->len);
            if (chars < s->filter.min_chars) {
                s->stats->dropped_short++;
                if (reject(s, doc, "min_chars", (double)chars, UINT64_MAX) != 0) return -1;
                continue;
            }
        }
        if (s->filter.n_langs) {
            const char *code;
            double share;
            anv_language_detect(doc->text, doc->len, &code, &share);
            size_t k = 0;
            while (k < s->filter.n_langs && strcmp(code, s->filter.langs[k])) k++;
            double need = s->filter.lang_share > 0 ? s->filter.lang_share : 0.65;
            if (k == s->filter.n_langs || share < need) {
                char reason[64];
                snprintf(reason, sizeof reason, k == s->filter.n_langs ? "language:%s" : "language_share:%s", code);
                count_drop(s->stats, reason);
                if (reject(s, doc, reason, share, UINT64_MAX) != 0) return -1;
                continue;
            }
        }
        if (s->filter.blocklist) {
            int hit = anv_blocklist_match(s->filter.blocklist, doc->text, doc->len);
            if (hit < 0) return -1;
            if (hit) {
                count_drop(s->stats, "blocklist");
                if (reject(s, doc, "blocklist", 1, UINT64_MAX) != 0) return -1;
                continue;
            }
        }
        if (s->scratch) {
            anv_filter_verdict_t v;
            const char *text = doc->text;
            size_t len = doc->len;
            int kept = anv_filter_set_run(s->filter.quality, &text, &len, &s->rewritten, s->scratch, &v);
            if (kept < 0) return -1;
            if (!kept) {
                count_drop(s->stats, v.reason);
                if (reject(s, doc, v.reason, v.value, UINT64_MAX) != 0) return -1;
                continue;
            }
            doc->text = text;
            doc->len = len;
        }
        if (s->filter.pii) {
            anv_buf_t *out = doc->text == s->rewritten.data ? &s->scrubbed : &s->rewritten;
            int n = anv_pii_scrub(doc->text, doc->len, s->filter.pii > 1, out, &s->stats->pii);
            if (n < 0) return -1;
            if (n > 0) {
                doc->text = out->data;
                doc->len = out->len;
            }
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
        if (s->near) {
            uint64_t id = s->near_id++;
            double similarity;
            uint64_t head = anv_neardup_keeper(s->near, id, &similarity);
            if (head != id) {
                s->stats->dropped_near_duplicates++;
                uint64_t *e = s->rejected ? keeper_slot(s->keepers, s->keepers_cap, head) : NULL;
                if (reject(s, doc, "near-duplicate", similarity, e && e[0] ? e[1] : UINT64_MAX) != 0) return -1;
                continue;
            }
            if (similarity > 0 && s->rejected && remember_keeper(s, id, at) != 0) return -1;
        }
        if (s->max_bytes && sampled_out(s)) continue;
        s->bytes += doc->len;
        return 1;
    }
    return r;
}

/* ---- the near-duplicate pass ---- */

typedef struct {
    anv_buf_t text;
    size_t off[NEAR_BATCH_DOCS], len[NEAR_BATCH_DOCS], n;
    anv_minhash_t sig[NEAR_BATCH_DOCS];
} near_batch_t;

static int near_flush(near_batch_t *b, anv_neardup_t *index) {
    long n = (long)b->n;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 16)
#endif
    for (long i = 0; i < n; i++) anv_minhash_sign(b->text.data + b->off[i], b->len[i], &b->sig[i]);
    for (size_t i = 0; i < b->n; i++)
        if (anv_neardup_add(index, &b->sig[i]) != 0) return -1;
    b->n = b->text.len = 0;
    return 0;
}

int source_near_pass(const anv_corpus_opts_t *copts, const anv_doc_filter_t *filter, anv_progress_fn progress,
                     void *progress_ctx, anv_neardup_t **out) {
    *out = NULL;
    anv_prepare_stats_t stats = {0};
    source_t s = {0};
    anv_neardup_t *index = NULL;
    near_batch_t *b = anv_calloc(sizeof *b, "near-duplicate batch");
    int rc = -1;
    if (!b || anv_neardup_init(filter->near_threshold > 0 ? filter->near_threshold : 0.8, &index) != 0 ||
        source_open(&s, copts, filter, NULL, NULL, &stats) != 0)
        goto done;
    anv_doc_t doc;
    int r;
    while ((r = source_next(&s, &doc)) == 1) {
        b->off[b->n] = b->text.len;
        b->len[b->n++] = doc.len;
        if (anv_buf_append(&b->text, doc.text, doc.len) != 0) break;
        if (b->n == NEAR_BATCH_DOCS || b->text.len >= NEAR_BATCH_BYTES) {
            if (near_flush(b, index) != 0) break;
            if (progress) {
                const anv_corpus_stats_t *cs = anv_corpus_stats(s.corpus);
                progress(progress_ctx, "near-duplicates", cs->input_bytes, cs->total_bytes);
            }
        }
    }
    if (r == 0 && near_flush(b, index) == 0) {
        if (progress)
            progress(progress_ctx, "near-duplicates", anv_corpus_stats(s.corpus)->input_bytes,
                     anv_corpus_stats(s.corpus)->total_bytes);
        rc = 0;
        *out = index;
        index = NULL;
    }
done:
    if (s.corpus) source_close(&s);
    anv_neardup_free(index);
    if (b) anv_buf_free(&b->text);
    anv_free(b);
    return rc;
}

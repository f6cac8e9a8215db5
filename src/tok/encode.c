/* Encoding and decoding. Each thread keeps a cache of recent pre-tokens -> ids (direct-mapped,
 * one 64-byte line per entry), so the frequent words of a text skip BPE entirely. The tokenizer
 * itself is never written to, which makes it safe to share between threads. */
#define _GNU_SOURCE /* memmem, qsort_r */
#include "tok_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 32768 /* 2 MiB per thread */
#define CACHE_BYTES 18
#define CACHE_IDS 8

/* A slot is valid for the tokenizer whose serial (low 32 bits) it carries, so a thread can switch
 * between tokenizers without clearing its cache. */
typedef struct {
    uint64_t hash; /* tok_hash_bytes, never 0; 0 = empty */
    uint32_t serial;
    uint8_t len, n_ids;
    unsigned char bytes[CACHE_BYTES];
    uint32_t ids[CACHE_IDS];
} cache_slot_t;
_Static_assert(sizeof(cache_slot_t) == 64, "one cache line per slot");

typedef struct {
    cache_slot_t slots[CACHE_SLOTS];
    tok_work_t work;
} tok_cache_t;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_destroy(void *p) {
    tok_cache_t *c = p;
    anv_free(c->work.mem);
    anv_free(c);
}

static void cache_key_init(void) { (void)pthread_key_create(&cache_key, cache_destroy); }

static tok_cache_t *thread_cache(void) {
    pthread_once(&cache_once, cache_key_init);
    tok_cache_t *c = pthread_getspecific(cache_key);
    if (!c) {
        c = anv_calloc(sizeof *c, "tokenizer cache");
        if (!c) return NULL;
        if (pthread_setspecific(cache_key, c) != 0) {
            anv_free(c);
            anv_error("tokenizer cache: cannot register the thread's cache");
            return NULL;
        }
    }
    return c;
}

/* Byte-wise equality, inlined: pieces are a few bytes long, too short for a memcmp call to pay. */
static inline int same_bytes(const unsigned char *a, const unsigned char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static inline int reserve(anv_tokens_t *out, size_t extra) {
    if (out->len + extra <= out->cap) return 0;
    size_t cap = out->cap ? out->cap : 256;
    while (cap < out->len + extra) cap *= 2;
    uint32_t *ids = anv_realloc(out->ids, cap * sizeof *ids, "token ids");
    if (!ids) return -1;
    out->ids = ids;
    out->cap = cap;
    return 0;
}

/* Appends the ids of one pre-token. */
static int encode_piece(const anv_tokenizer_t *t, tok_cache_t *c, const unsigned char *s, size_t n, anv_tokens_t *out) {
    if (reserve(out, n) != 0) return -1;
    uint32_t *dst = out->ids + out->len;
    if (n == 1) {
        dst[0] = t->byte_id[s[0]];
        out->len++;
        return 0;
    }
    cache_slot_t *slot = NULL;
    uint64_t h = tok_hash_bytes(s, n);
    if (n <= CACHE_BYTES) {
        slot = &c->slots[(h >> 40) & (CACHE_SLOTS - 1)];
        if (slot->hash == h && slot->serial == (uint32_t)t->serial && slot->len == n && same_bytes(slot->bytes, s, n)) {
            memcpy(dst, slot->ids, slot->n_ids * sizeof *dst);
            out->len += slot->n_ids;
            return 0;
        }
    }
    uint32_t whole = tok_index_find_hashed(t, s, n, h);
    long m = 1;
    if (whole != TOK_NONE && t->whole[whole])
        dst[0] = whole;
    else if ((m = tok_bpe(t, s, n, dst, &c->work)) < 0)
        return -1;
    out->len += (size_t)m;
    if (slot && m <= CACHE_IDS) {
        slot->hash = h;
        slot->serial = (uint32_t)t->serial;
        slot->len = (uint8_t)n;
        slot->n_ids = (uint8_t)m;
        memcpy(slot->bytes, s, n);
        memcpy(slot->ids, dst, (size_t)m * sizeof *dst);
    }
    return 0;
}

static int encode_ordinary(const anv_tokenizer_t *t, tok_cache_t *c, const unsigned char *s, size_t n,
                           anv_tokens_t *out) {
    for (size_t pos = 0; pos < n;) {
        size_t end = tok_pretok_next(t->pattern, s, pos, n);
        if (encode_piece(t, c, s + pos, end - pos, out) != 0) return -1;
        pos = end;
    }
    return 0;
}

int anv_tokenizer_encode(const anv_tokenizer_t *t, const char *text, size_t len, anv_tokens_t *out) {
    tok_cache_t *c = thread_cache();
    if (!c) return -1;
    /* Work on a local copy: outputs of a batch sit side by side, and writing their lengths per
     * token from several threads would bounce one cache line between the cores. */
    anv_tokens_t local = *out;
    int rc = encode_ordinary(t, c, (const unsigned char *)text, len, &local);
    *out = local;
    return rc;
}

/* Position of the first occurrence of special i at or after `from` in text[0..len), len if none. */
static size_t next_special(const anv_tokenizer_t *t, size_t i, const char *text, size_t len, size_t from) {
    const char *hit = memmem(text + from, len - from, t->blob + t->off[t->specials[i]], t->len[t->specials[i]]);
    return hit ? (size_t)(hit - text) : len;
}

int anv_tokenizer_encode_special(const anv_tokenizer_t *t, const char *text, size_t len, anv_tokens_t *out) {
    tok_cache_t *c = thread_cache();
    if (!c) return -1;
    /* next[i]: the next occurrence of special i, refreshed only once the scan has passed it, so the
     * text is searched about once per special whatever the number of occurrences. */
    size_t small[16], *next = t->n_specials <= 16 ? small : anv_alloc(t->n_specials * sizeof *next, "special tokens");
    if (!next) return -1;
    for (size_t i = 0; i < t->n_specials; i++) next[i] = next_special(t, i, text, len, 0);
    int rc = 0;
    for (size_t pos = 0; pos < len && rc == 0;) {
        size_t at = len, at_len = 0;
        uint32_t id = 0;
        for (size_t i = 0; i < t->n_specials; i++) {
            if (next[i] < pos) next[i] = next_special(t, i, text, len, pos);
            size_t sl = t->len[t->specials[i]];
            if (next[i] < at || (next[i] == at && at < len && sl > at_len))
                at = next[i], at_len = sl, id = t->specials[i];
        }
        rc = encode_ordinary(t, c, (const unsigned char *)text + pos, at - pos, out);
        if (rc == 0 && at < len) rc = anv_tokens_push(out, id);
        pos = at + at_len;
        if (at == len) break;
    }
    if (next != small) anv_free(next);
    return rc;
}

static int longer_first(const void *a, const void *b, void *lens) {
    size_t x = ((const size_t *)lens)[*(const size_t *)a], y = ((const size_t *)lens)[*(const size_t *)b];
    return (x < y) - (x > y);
}

typedef struct {
    const anv_tokenizer_t *t;
    const char *const *texts;
    const size_t *lens, *order;
    anv_tokens_t *outs;
} batch_job_t;

static int encode_one(void *ctx, size_t k, int thread) {
    (void)thread;
    const batch_job_t *j = ctx;
    size_t i = j->order[k];
    if (anv_tokenizer_encode(j->t, j->texts[i], j->lens[i], &j->outs[i]) == 0) return 0;
    return anv_error_prefix("document %zu", i);
}

int anv_tokenizer_encode_batch(const anv_tokenizer_t *t, const char *const *texts, const size_t *lens, size_t n_docs,
                               anv_tokens_t *outs, int threads) {
    /* Longest documents first, so that no thread is left alone with a big one at the end. */
    size_t *order = anv_alloc((n_docs + 1) * sizeof *order, "batch order");
    if (!order) return -1;
    for (size_t i = 0; i < n_docs; i++) order[i] = i;
    qsort_r(order, n_docs, sizeof *order, longer_first, (void *)lens);
    batch_job_t job = {t, texts, lens, order, outs};
    int rc = anv_parallel_for(n_docs, threads, encode_one, &job);
    anv_free(order);
    return rc;
}

int anv_tokenizer_decode(const anv_tokenizer_t *t, const uint32_t *ids, size_t n, anv_buf_t *out) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= t->n_vocab || !t->len[ids[i]])
            return anv_error("token id %u at position %zu is outside the vocabulary (%u ids)", ids[i], i, t->n_vocab);
    for (size_t i = 0; i < n; i++)
        if (anv_buf_append(out, t->blob + t->off[ids[i]], t->len[ids[i]]) != 0) return -1;
    return 0;
}

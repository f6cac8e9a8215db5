/* Byte-level BPE training over distinct words: incremental pair counts, a lazily invalidated
 * max-heap and a pair -> words index (see anvil/bpe_train.h for the rules). */
#include "anvil/bpe_train.h"

#include "tok_internal.h"

#include <string.h>

/* ---- distinct words: open addressing, bytes in one arena ---- */

typedef struct {
    uint64_t hash, count, off; /* count 0 marks an empty slot */
    uint32_t len;
} word_slot;

struct anv_bpe_words {
    word_slot *slots;
    size_t cap, n; /* cap is a power of two, n <= cap / 2 */
    char *bytes;
    size_t bytes_len, bytes_cap;
    uint64_t total;
};

int anv_bpe_words_init(anv_bpe_words_t **out) {
    anv_bpe_words_t *w = anv_calloc(sizeof *w, "word counts");
    if (!w) return -1;
    w->cap = 1024;
    w->slots = anv_calloc(w->cap * sizeof *w->slots, "word counts");
    if (!w->slots) {
        anv_free(w);
        return -1;
    }
    *out = w;
    return 0;
}

void anv_bpe_words_free(anv_bpe_words_t *w) {
    if (!w) return;
    anv_free(w->slots);
    anv_free(w->bytes);
    anv_free(w);
}

static int words_grow(anv_bpe_words_t *w) {
    size_t cap = w->cap * 2;
    word_slot *slots = anv_calloc(cap * sizeof *slots, "word counts");
    if (!slots) return -1;
    for (size_t i = 0; i < w->cap; i++) {
        if (!w->slots[i].count) continue;
        size_t j = w->slots[i].hash & (cap - 1);
        while (slots[j].count) j = (j + 1) & (cap - 1);
        slots[j] = w->slots[i];
    }
    anv_free(w->slots);
    w->slots = slots;
    w->cap = cap;
    return 0;
}

static int words_add_piece(anv_bpe_words_t *w, const char *word, size_t len, uint64_t hash, uint64_t count) {
    size_t j = hash & (w->cap - 1);
    for (; w->slots[j].count; j = (j + 1) & (w->cap - 1)) {
        word_slot *s = &w->slots[j];
        if (s->hash == hash && s->len == len && !memcmp(w->bytes + s->off, word, len)) {
            s->count += count;
            w->total += count;
            return 0;
        }
    }
    if (w->bytes_len + len > w->bytes_cap) {
        size_t cap = w->bytes_cap ? w->bytes_cap * 2 : 65536;
        while (cap < w->bytes_len + len) cap *= 2;
        char *b = anv_realloc(w->bytes, cap, "word bytes");
        if (!b) return -1;
        w->bytes = b;
        w->bytes_cap = cap;
    }
    memcpy(w->bytes + w->bytes_len, word, len);
    w->slots[j] = (word_slot){hash, count, w->bytes_len, (uint32_t)len};
    w->bytes_len += len;
    w->total += count;
    if (++w->n * 2 > w->cap) return words_grow(w);
    return 0;
}

int anv_bpe_words_add(anv_bpe_words_t *w, const char *word, size_t len, uint64_t count) {
    if (count == 0) return 0;
    while (len > 0) {
        size_t n = len;
        if (n > ANV_BPE_MAX_WORD_BYTES) {
            /* cut at a character start: back up over at most 3 continuation bytes (invalid UTF-8
             * with longer runs is cut anywhere) */
            n = ANV_BPE_MAX_WORD_BYTES;
            while (n > ANV_BPE_MAX_WORD_BYTES - 3 && ((unsigned char)word[n] & 0xC0) == 0x80) n--;
        }
        if (words_add_piece(w, word, n, anv_hash64(word, n, 0), count) != 0) return -1;
        word += n;
        len -= n;
    }
    return 0;
}

int anv_bpe_words_add_text(anv_bpe_words_t *w, anv_pretok_t pattern, const char *text, size_t len) {
    const unsigned char *s = (const unsigned char *)text;
    for (size_t pos = 0; pos < len;) {
        size_t end = tok_pretok_next(pattern, s, pos, len);
        if (anv_bpe_words_add(w, text + pos, end - pos, 1) != 0) return -1;
        pos = end;
    }
    return 0;
}

int anv_bpe_words_merge(anv_bpe_words_t *dst, const anv_bpe_words_t *src) {
    for (size_t i = 0; i < src->cap; i++) {
        const word_slot *s = &src->slots[i];
        if (s->count && words_add_piece(dst, src->bytes + s->off, s->len, s->hash, s->count) != 0) return -1;
    }
    return 0;
}

int anv_bpe_words_export(const anv_bpe_words_t *w, anv_buf_t *out) {
    for (size_t i = 0; i < w->cap; i++) {
        const word_slot *s = &w->slots[i];
        if (!s->count) continue;
        if (anv_buf_append(out, &s->count, sizeof s->count) != 0 || anv_buf_append(out, &s->len, sizeof s->len) != 0 ||
            anv_buf_append(out, w->bytes + s->off, s->len) != 0)
            return -1;
    }
    return 0;
}

int anv_bpe_words_import(anv_bpe_words_t *w, const void *data, size_t len) {
    const char *p = data, *end = p + len;
    while (p < end) {
        uint64_t count;
        uint32_t n;
        if ((size_t)(end - p) < sizeof count + sizeof n) return anv_error("word counts: truncated entry");
        memcpy(&count, p, sizeof count);
        memcpy(&n, p + sizeof count, sizeof n);
        p += sizeof count + sizeof n;
        if (n > (size_t)(end - p) || n > ANV_BPE_MAX_WORD_BYTES) return anv_error("word counts: bad word length %u", n);
        if (count && words_add_piece(w, p, n, anv_hash64(p, n, 0), count) != 0) return -1;
        p += n;
    }
    return 0;
}

size_t anv_bpe_words_distinct(const anv_bpe_words_t *w) { return w->n; }
uint64_t anv_bpe_words_total(const anv_bpe_words_t *w) { return w->total; }

/* ---- training state ---- */

typedef struct {
    uint64_t key;    /* left << 32 | right */
    uint64_t count;  /* current occurrences, weighted by word counts */
    uint32_t *words; /* words that contained the pair when it was created (may be stale, repeated) */
    uint32_t n_words, cap_words;
    uint32_t new_stamp; /* merge step in which it was last created/increased */
} pair_t;

typedef struct {
    uint64_t count;
    uint32_t pair;
} heap_item;

typedef struct {
    /* words: symbols of word i are sym[off[i] .. off[i] + len[i]) */
    size_t nw;
    uint64_t *off, *wcount;
    uint32_t *len, *stamp, *sym;
    /* pairs: open addressing slots hold index + 1 */
    pair_t *pairs;
    size_t n_pairs, cap_pairs;
    uint32_t *pslots;
    size_t pslot_cap;
    /* max-heap */
    heap_item *heap;
    size_t heap_n, heap_cap;
    /* tokens: bytes of id i are tok_bytes[tok_off[i] .. + tok_len[i]); a set over their bytes */
    uint64_t *tok_off;
    uint32_t *tok_len;
    char *tok_bytes;
    size_t n_tok, tok_cap, tok_bytes_len, tok_bytes_cap;
    uint32_t *tslots; /* id + 1 */
    size_t tslot_cap;
    /* pairs created in the current step, pushed to the heap when the step ends */
    uint32_t *fresh;
    size_t n_fresh, cap_fresh;
    uint32_t step;
} trainer;

/* ---- pairs ---- */

static int pslots_rehash(trainer *t, size_t cap) {
    uint32_t *slots = anv_calloc(cap * sizeof *slots, "pair index");
    if (!slots) return -1;
    for (size_t i = 0; i < t->n_pairs; i++) {
        size_t j = anv_mix64(t->pairs[i].key) & (cap - 1);
        while (slots[j]) j = (j + 1) & (cap - 1);
        slots[j] = (uint32_t)i + 1;
    }
    anv_free(t->pslots);
    t->pslots = slots;
    t->pslot_cap = cap;
    return 0;
}

/* Index of the pair (creating it with count 0 when absent), or -1 on allocation failure. */
static int64_t pair_get(trainer *t, uint32_t left, uint32_t right) {
    uint64_t key = (uint64_t)left << 32 | right;
    size_t j = anv_mix64(key) & (t->pslot_cap - 1);
    for (; t->pslots[j]; j = (j + 1) & (t->pslot_cap - 1))
        if (t->pairs[t->pslots[j] - 1].key == key) return t->pslots[j] - 1;
    if (t->n_pairs >= UINT32_MAX - 1) return anv_error("BPE training: more than 2^32 distinct pairs");
    if (anv_grow(&t->pairs, &t->cap_pairs, t->n_pairs + 1, sizeof *t->pairs, "pair counts") != 0) return -1;
    size_t idx = t->n_pairs++;
    t->pairs[idx] = (pair_t){.key = key};
    t->pslots[j] = (uint32_t)idx + 1;
    if (t->n_pairs * 2 > t->pslot_cap && pslots_rehash(t, t->pslot_cap * 2) != 0) return -1;
    return (int64_t)idx;
}

static int pair_add_word(pair_t *p, uint32_t word) {
    if (p->n_words && p->words[p->n_words - 1] == word) return 0;
    size_t cap = p->cap_words;
    if (anv_grow(&p->words, &cap, (size_t)p->n_words + 1, sizeof *p->words, "pair index") != 0) return -1;
    p->cap_words = (uint32_t)cap;
    p->words[p->n_words++] = word;
    return 0;
}

/* ---- tokens ---- */

static int token_cmp(const trainer *t, uint32_t a, uint32_t b) {
    size_t la = t->tok_len[a], lb = t->tok_len[b];
    int c = memcmp(t->tok_bytes + t->tok_off[a], t->tok_bytes + t->tok_off[b], la < lb ? la : lb);
    if (c) return c;
    return la < lb ? -1 : la > lb;
}

/* The id whose bytes are s[0..n), or -1. *slot receives where it would be inserted. */
static int64_t token_find(const trainer *t, const char *s, size_t n, size_t *slot) {
    size_t j = anv_hash64(s, n, 1) & (t->tslot_cap - 1);
    for (; t->tslots[j]; j = (j + 1) & (t->tslot_cap - 1)) {
        uint32_t id = t->tslots[j] - 1;
        if (t->tok_len[id] == n && !memcmp(t->tok_bytes + t->tok_off[id], s, n)) return id;
    }
    *slot = j;
    return -1;
}

/* Appends token id n_tok with bytes a + b (the set must not hold them yet). */
static int token_push(trainer *t, const char *a, size_t na, const char *b, size_t nb) {
    size_t id = t->n_tok, n = na + nb, cap = t->tok_cap;
    if (anv_grow(&t->tok_off, &cap, id + 1, sizeof *t->tok_off, "token table") != 0) return -1;
    cap = t->tok_cap;
    if (anv_grow(&t->tok_len, &cap, id + 1, sizeof *t->tok_len, "token table") != 0) return -1;
    t->tok_cap = cap;
    /* a and b must not point into tok_bytes, which may move here */
    if (anv_grow(&t->tok_bytes, &t->tok_bytes_cap, t->tok_bytes_len + n, 1, "token bytes") != 0) return -1;
    memcpy(t->tok_bytes + t->tok_bytes_len, a, na);
    memcpy(t->tok_bytes + t->tok_bytes_len + na, b, nb);
    t->tok_off[id] = t->tok_bytes_len;
    t->tok_len[id] = (uint32_t)n;
    t->tok_bytes_len += n;
    t->n_tok++;
    if (t->n_tok * 2 > t->tslot_cap) {
        size_t tcap = t->tslot_cap * 2;
        uint32_t *slots = anv_calloc(tcap * sizeof *slots, "token set");
        if (!slots) return -1;
        anv_free(t->tslots);
        t->tslots = slots;
        t->tslot_cap = tcap;
        for (size_t i = 0; i < t->n_tok; i++) {
            size_t j = anv_hash64(t->tok_bytes + t->tok_off[i], t->tok_len[i], 1) & (tcap - 1);
            while (t->tslots[j]) j = (j + 1) & (tcap - 1);
            t->tslots[j] = (uint32_t)i + 1;
        }
    } else {
        size_t slot = 0;
        token_find(t, t->tok_bytes + t->tok_off[id], n, &slot);
        t->tslots[slot] = (uint32_t)id + 1;
    }
    return 0;
}

/* ---- heap: highest count first, ties by (left bytes, right bytes) ascending ---- */

static int heap_before(const trainer *t, heap_item x, heap_item y) {
    if (x.count != y.count) return x.count > y.count;
    uint64_t kx = t->pairs[x.pair].key, ky = t->pairs[y.pair].key;
    int c = token_cmp(t, (uint32_t)(kx >> 32), (uint32_t)(ky >> 32));
    if (!c) c = token_cmp(t, (uint32_t)kx, (uint32_t)ky);
    return c < 0;
}

static void heap_sift_down(trainer *t, size_t i) {
    heap_item *h = t->heap;
    for (;;) {
        size_t l = 2 * i + 1, best = i;
        if (l < t->heap_n && heap_before(t, h[l], h[best])) best = l;
        if (l + 1 < t->heap_n && heap_before(t, h[l + 1], h[best])) best = l + 1;
        if (best == i) return;
        heap_item tmp = h[i];
        h[i] = h[best];
        h[best] = tmp;
        i = best;
    }
}

static int heap_push(trainer *t, uint64_t count, uint32_t pair) {
    if (anv_grow(&t->heap, &t->heap_cap, t->heap_n + 1, sizeof *t->heap, "pair heap") != 0) return -1;
    size_t i = t->heap_n++;
    heap_item it = {count, pair};
    while (i > 0 && heap_before(t, it, t->heap[(i - 1) / 2])) {
        t->heap[i] = t->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    t->heap[i] = it;
    return 0;
}

static heap_item heap_pop(trainer *t) {
    heap_item top = t->heap[0];
    t->heap[0] = t->heap[--t->heap_n];
    heap_sift_down(t, 0);
    return top;
}

/* ---- setup ---- */

static int trainer_init(trainer *t, const anv_bpe_words_t *w) {
    memset(t, 0, sizeof *t);
    if (w->n >= UINT32_MAX) return anv_error("BPE training: %zu distinct words is more than 2^32", w->n);
    t->nw = w->n;
    size_t nw = w->n ? w->n : 1;
    t->off = anv_alloc(nw * sizeof *t->off, "word table");
    t->wcount = anv_alloc(nw * sizeof *t->wcount, "word table");
    t->len = anv_alloc(nw * sizeof *t->len, "word table");
    t->stamp = anv_calloc(nw * sizeof *t->stamp, "word table");
    t->sym = anv_alloc((w->bytes_len ? w->bytes_len : 1) * sizeof *t->sym, "word symbols");
    t->tslot_cap = 1024;
    t->tslots = anv_calloc(t->tslot_cap * sizeof *t->tslots, "token set");
    t->pslot_cap = 1024;
    t->pslots = anv_calloc(t->pslot_cap * sizeof *t->pslots, "pair index");
    if (!t->off || !t->wcount || !t->len || !t->stamp || !t->sym || !t->tslots || !t->pslots) return -1;
    size_t k = 0, nsym = 0;
    for (size_t i = 0; i < w->cap; i++) {
        const word_slot *s = &w->slots[i];
        if (!s->count) continue;
        t->off[k] = nsym;
        t->len[k] = s->len;
        t->wcount[k] = s->count;
        for (uint32_t j = 0; j < s->len; j++) t->sym[nsym++] = (unsigned char)w->bytes[s->off + j];
        k++;
    }
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        if (token_push(t, &c, 1, "", 0) != 0) return -1;
    }
    /* initial pair counts and the index pair -> words */
    for (size_t i = 0; i < t->nw; i++) {
        const uint32_t *s = t->sym + t->off[i];
        for (uint32_t j = 0; j + 1 < t->len[i]; j++) {
            int64_t p = pair_get(t, s[j], s[j + 1]);
            if (p < 0) return -1;
            t->pairs[p].count += t->wcount[i];
            if (pair_add_word(&t->pairs[p], (uint32_t)i) != 0) return -1;
        }
    }
    return 0;
}

static void trainer_free(trainer *t) {
    for (size_t i = 0; i < t->n_pairs; i++) anv_free(t->pairs[i].words);
    anv_free(t->pairs);
    anv_free(t->pslots);
    anv_free(t->heap);
    anv_free(t->tok_off);
    anv_free(t->tok_len);
    anv_free(t->tok_bytes);
    anv_free(t->tslots);
    anv_free(t->fresh);
    anv_free(t->off);
    anv_free(t->wcount);
    anv_free(t->len);
    anv_free(t->stamp);
    anv_free(t->sym);
}

/* ---- one merge ---- */

static int pair_decrease(trainer *t, uint32_t left, uint32_t right, uint64_t by) {
    int64_t p = pair_get(t, left, right);
    if (p < 0) return -1;
    t->pairs[p].count -= by; /* lazy: the heap entry is corrected when popped */
    return 0;
}

static int pair_increase(trainer *t, uint32_t left, uint32_t right, uint64_t by, uint32_t word) {
    int64_t p = pair_get(t, left, right);
    if (p < 0) return -1;
    pair_t *pp = &t->pairs[p];
    pp->count += by;
    if (pair_add_word(pp, word) != 0) return -1;
    if (pp->new_stamp != t->step) {
        pp->new_stamp = t->step;
        if (anv_grow(&t->fresh, &t->cap_fresh, t->n_fresh + 1, sizeof *t->fresh, "pair heap") != 0) return -1;
        t->fresh[t->n_fresh++] = (uint32_t)p;
    }
    return 0;
}

/* Replaces every non-overlapping (a, b), left to right, in word w by x and updates the pair counts:
 * the pairs around each site are removed (a pair between two adjacent sites only once) and the pairs
 * around each new x are added ((x, x) only once). The pair (a, b) itself is zeroed by the caller. */
static int merge_word(trainer *t, uint32_t w, uint32_t a, uint32_t b, uint32_t x) {
    uint32_t *s = t->sym + t->off[w];
    uint32_t n = t->len[w], out = 0;
    uint64_t c = t->wcount[w];
    uint64_t ab = (uint64_t)a << 32 | b;
    int64_t last_site = -2;
    for (uint32_t i = 0; i < n;) {
        if (i + 1 < n && s[i] == a && s[i + 1] == b) {
            /* old neighbours, still intact in s: out <= i, and out < i once a site was seen, so s[i - 1]
             * is only overwritten (by itself) before the first site */
            if (i > 0 && last_site != (int64_t)i - 2 && ((uint64_t)s[i - 1] << 32 | a) != ab &&
                pair_decrease(t, s[i - 1], a, c) != 0)
                return -1;
            if (i + 2 < n && ((uint64_t)b << 32 | s[i + 2]) != ab && pair_decrease(t, b, s[i + 2], c) != 0) return -1;
            last_site = i;
            s[out++] = x;
            i += 2;
        } else {
            s[out++] = s[i++];
        }
    }
    if (last_site < 0) return 0; /* stale index entry: the word no longer holds the pair */
    t->len[w] = out;
    for (uint32_t q = 0; q < out; q++) {
        if (s[q] != x) continue;
        if (q > 0 && pair_increase(t, s[q - 1], x, c, w) != 0) return -1;
        if (q + 1 < out && s[q + 1] != x && pair_increase(t, x, s[q + 1], c, w) != 0) return -1;
    }
    return 0;
}

int anv_bpe_train(const anv_bpe_words_t *words, const anv_bpe_train_opts_t *opts, uint32_t (**merges)[2],
                  size_t *n_merges) {
    *merges = NULL;
    *n_merges = 0;
    uint64_t min_freq = opts->min_frequency ? opts->min_frequency : 1;
    trainer t;
    memset(&t, 0, sizeof t);
    int rc = -1;
    size_t cap = opts->n_merges < words->bytes_len ? opts->n_merges : words->bytes_len; /* merges <= symbols */
    uint32_t(*out)[2] = anv_alloc((cap ? cap : 1) * sizeof *out, "merge list");
    if (!out || trainer_init(&t, words) != 0) goto done;
    for (size_t i = 0; i < t.n_pairs; i++)
        if (t.pairs[i].count >= min_freq && heap_push(&t, t.pairs[i].count, (uint32_t)i) != 0) goto done;
    size_t m = 0;
    while (m < cap && t.heap_n > 0) {
        heap_item top = heap_pop(&t);
        pair_t *p = &t.pairs[top.pair];
        if (p->count != top.count) { /* stale: counts only fall after creation, so re-queue and retry */
            if (p->count >= min_freq && heap_push(&t, p->count, top.pair) != 0) goto done;
            continue;
        }
        uint32_t a = (uint32_t)(p->key >> 32), b = (uint32_t)p->key;
        size_t la = t.tok_len[a], lb = t.tok_len[b], slot;
        /* concatenate through a scratch copy: tok_bytes may move while pushing */
        char buf[2 * ANV_BPE_MAX_WORD_BYTES];
        memcpy(buf, t.tok_bytes + t.tok_off[a], la);
        memcpy(buf + la, t.tok_bytes + t.tok_off[b], lb);
        if (token_find(&t, buf, la + lb, &slot) >= 0) { /* same bytes as an existing token: discard */
            p->count = 0;
            continue;
        }
        uint32_t x = (uint32_t)t.n_tok;
        if (token_push(&t, buf, la, buf + la, lb) != 0) goto done;
        out[m][0] = a;
        out[m][1] = b;
        m++;
        t.step++;
        t.n_fresh = 0;
        p = &t.pairs[top.pair];
        uint32_t *list = p->words, n_list = p->n_words;
        p->words = NULL;
        p->n_words = p->cap_words = 0;
        for (uint32_t k = 0; k < n_list; k++) {
            uint32_t w = list[k];
            if (t.stamp[w] == t.step) continue;
            t.stamp[w] = t.step;
            if (merge_word(&t, w, a, b, x) != 0) {
                anv_free(list);
                goto done;
            }
        }
        anv_free(list);
        t.pairs[top.pair].count = 0;
        for (size_t k = 0; k < t.n_fresh; k++) {
            uint32_t q = t.fresh[k];
            if (t.pairs[q].count >= min_freq && heap_push(&t, t.pairs[q].count, q) != 0) goto done;
        }
        if (opts->progress && (m % 64 == 0 || m == opts->n_merges))
            opts->progress(opts->progress_ctx, "merges", m, opts->n_merges);
    }
    *merges = out;
    *n_merges = m;
    out = NULL;
    rc = 0;
done:
    anv_free(out);
    trainer_free(&t);
    return rc;
}

static const char eot[] = "<|endoftext|>";

/* Specials in the vocabulary: <|endoftext|> and those given besides it. */
static size_t count_specials(const char *const *specials, size_t n_specials) {
    size_t n_all = 1;
    for (size_t i = 0; i < n_specials; i++) n_all += strcmp(specials[i], eot) != 0;
    return n_all;
}

int anv_bpe_check_vocab_size(size_t vocab_size, const char *const *specials, size_t n_specials) {
    size_t n_all = count_specials(specials, n_specials);
    if (vocab_size > UINT32_MAX)
        return anv_error("vocabulary size %zu is above 4294967295, the most a token shard (uint32 ids) holds",
                         vocab_size);
    if (vocab_size < 256 + n_all)
        return anv_error("vocabulary size %zu is below 256 bytes + %zu special token%s = %zu", vocab_size, n_all,
                         n_all == 1 ? "" : "s", 256 + n_all);
    return 0;
}

int anv_bpe_train_tokenizer(const anv_bpe_words_t *words, anv_pretok_t pattern, size_t vocab_size,
                            const char *const *specials, size_t n_specials, const anv_bpe_train_opts_t *opts,
                            anv_tokenizer_t **out) {
    *out = NULL;
    if (anv_bpe_check_vocab_size(vocab_size, specials, n_specials) != 0) return -1;
    size_t n_all = count_specials(specials, n_specials);
    size_t want = vocab_size - 256 - n_all;
    /* every merge shortens at least one distinct word by a symbol */
    uint64_t bound = words->bytes_len - words->n;
    if (want > bound)
        return anv_error("vocabulary size %zu needs %zu merges, but the %zu distinct words of this input allow at "
                         "most %llu; use a smaller --vocab-size or more text",
                         vocab_size, want, words->n, (unsigned long long)bound);
    const char **all = anv_alloc(n_all * sizeof *all, "special tokens");
    if (!all) return -1;
    all[0] = eot;
    for (size_t i = 0, k = 1; i < n_specials; i++)
        if (strcmp(specials[i], eot) != 0) all[k++] = specials[i];
    anv_bpe_train_opts_t o = *opts;
    o.n_merges = want;
    uint32_t(*merges)[2];
    size_t got;
    int rc = anv_bpe_train(words, &o, &merges, &got);
    if (rc == 0 && got < want) {
        rc = anv_error("vocabulary size %zu needs %zu merges, but only %zu pairs occur at least %llu times in this "
                       "input; use --vocab-size %zu or less (or a lower --min-frequency, or more text)",
                       vocab_size, want, got, (unsigned long long)(opts->min_frequency ? opts->min_frequency : 1),
                       256 + got + n_all);
    }
    if (rc == 0) rc = anv_tokenizer_create(pattern, (const uint32_t(*)[2])merges, got, all, n_all, out);
    anv_free(merges);
    anv_free(all);
    return rc;
}

/* Byte-pair merging of one pre-token: repeatedly merge the adjacent pair with the lowest rank
 * (the leftmost one on ties), as GPT-2 and tiktoken do, until no adjacent pair has a merge.
 * Short pieces use a flat array (O(n^2) but tiny n); long ones a linked list and a min-heap. */
#include "tok_internal.h"

#include <string.h>

#define SHORT_PIECE 64

static inline uint32_t pair_rank(const anv_tokenizer_t *t, uint32_t l, uint32_t r, uint32_t *id) {
    const tok_merge_slot_t *m = tok_table_find(t, l, r);
    if (!m) return TOK_NONE;
    *id = m->id;
    return m->rank;
}

static size_t bpe_short(const anv_tokenizer_t *t, const unsigned char *s, size_t n, uint32_t *ids) {
    uint32_t rank[SHORT_PIECE], merged[SHORT_PIECE]; /* rank and result of pair (k, k+1) */
    for (size_t k = 0; k < n; k++) ids[k] = t->byte_id[s[k]];
    for (size_t k = 0; k + 1 < n; k++) rank[k] = pair_rank(t, ids[k], ids[k + 1], &merged[k]);
    size_t m = n;
    while (m > 1) {
        size_t b = 0;
        for (size_t k = 1; k + 1 < m; k++)
            if (rank[k] < rank[b]) b = k;
        if (rank[b] == TOK_NONE) break;
        ids[b] = merged[b];
        m--;
        memmove(ids + b + 1, ids + b + 2, (m - b - 1) * sizeof *ids);
        if (b + 1 < m) {
            memmove(rank + b + 1, rank + b + 2, (m - b - 2) * sizeof *rank);
            memmove(merged + b + 1, merged + b + 2, (m - b - 2) * sizeof *merged);
        }
        if (b > 0) rank[b - 1] = pair_rank(t, ids[b - 1], ids[b], &merged[b - 1]);
        if (b + 1 < m) rank[b] = pair_rank(t, ids[b], ids[b + 1], &merged[b]);
    }
    return m;
}

/* Min-heap of keys rank << 32 | position: the lowest rank, then the leftmost pair. */
static void heap_push(uint64_t *h, size_t *n, uint64_t key) {
    size_t i = (*n)++;
    while (i > 0 && h[(i - 1) / 2] > key) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = key;
}

static uint64_t heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1] < h[c]) c++;
        if (h[c] >= last) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

static long bpe_long(const anv_tokenizer_t *t, const unsigned char *s, size_t n, uint32_t *ids, tok_work_t *work) {
    /* Every merge pushes at most two pairs: the heap never exceeds 3n entries. */
    size_t need = n * 3 * sizeof(uint64_t) + n * 2 * sizeof(uint32_t);
    if (need > work->cap) {
        anv_free(work->mem);
        work->mem = anv_alloc(need, "BPE workspace");
        work->cap = work->mem ? need : 0;
        if (!work->mem) return -1;
    }
    uint64_t *heap = work->mem;
    uint32_t *next = (uint32_t *)(heap + 3 * n), *prev = next + n, *id = ids; /* id by start position */
    size_t hn = 0;
    for (size_t k = 0; k < n; k++) {
        id[k] = t->byte_id[s[k]];
        next[k] = (uint32_t)(k + 1);
        prev[k] = (uint32_t)k - 1; /* UINT32_MAX for the first */
    }
    uint32_t tmp;
    for (size_t k = 0; k + 1 < n; k++) {
        uint32_t r = pair_rank(t, id[k], id[k + 1], &tmp);
        if (r != TOK_NONE) heap_push(heap, &hn, (uint64_t)r << 32 | k);
    }
    while (hn) {
        uint64_t key = heap_pop(heap, &hn);
        uint32_t rank = (uint32_t)(key >> 32), p = (uint32_t)key, q = next[p], merged = 0;
        if (id[p] == TOK_NONE || q >= n || pair_rank(t, id[p], id[q], &merged) != rank) continue; /* stale */
        id[p] = merged;
        id[q] = TOK_NONE;
        next[p] = next[q];
        if (next[q] < n) prev[next[q]] = p;
        uint32_t r;
        if (prev[p] != UINT32_MAX && (r = pair_rank(t, id[prev[p]], id[p], &tmp)) != TOK_NONE)
            heap_push(heap, &hn, (uint64_t)r << 32 | prev[p]);
        if (next[p] < n && (r = pair_rank(t, id[p], id[next[p]], &tmp)) != TOK_NONE)
            heap_push(heap, &hn, (uint64_t)r << 32 | p);
    }
    size_t m = 0;
    for (uint32_t k = 0; k < n; k = next[k]) ids[m++] = id[k]; /* compacts in place: m <= k */
    return (long)m;
}

long tok_bpe(const anv_tokenizer_t *t, const unsigned char *s, size_t n, uint32_t *ids, tok_work_t *work) {
    if (n <= SHORT_PIECE) return (long)bpe_short(t, s, n, ids);
    return bpe_long(t, s, n, ids, work);
}

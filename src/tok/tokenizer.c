/* Tokenizer object: building and validating a vocabulary, its lookup tables, accessors. */
#include "tok_internal.h"

#include <stdatomic.h>
#include <string.h>
#include <utf8proc.h>

const char tok_regex_gpt2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const char tok_regex_cl100k[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                                "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

int anv_tokens_push(anv_tokens_t *t, uint32_t id) {
    if (t->len == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        uint32_t *ids = anv_realloc(t->ids, cap * sizeof *ids, "token ids");
        if (!ids) return -1;
        t->ids = ids;
        t->cap = cap;
    }
    t->ids[t->len++] = id;
    return 0;
}

void anv_tokens_free(anv_tokens_t *t) {
    anv_free(t->ids);
    t->ids = NULL;
    t->len = t->cap = 0;
}

anv_tokenizer_t *tok_new(anv_pretok_t pattern, uint32_t n_vocab) {
    anv_tokenizer_t *t = anv_calloc(sizeof *t, "tokenizer");
    if (!t) return NULL;
    t->pattern = pattern;
    t->n_vocab = n_vocab;
    t->off = anv_calloc((size_t)n_vocab * sizeof *t->off + 1, "tokenizer vocabulary");
    t->len = anv_calloc((size_t)n_vocab * sizeof *t->len + 1, "tokenizer vocabulary");
    t->is_special = anv_calloc((size_t)n_vocab + 1, "tokenizer vocabulary");
    if (!t->off || !t->len || !t->is_special) {
        anv_tokenizer_free(t);
        return NULL;
    }
    return t;
}

void anv_tokenizer_free(anv_tokenizer_t *t) {
    if (!t) return;
    anv_free(t->off);
    anv_free(t->len);
    anv_free(t->blob);
    anv_free(t->is_special);
    anv_free(t->merges);
    anv_free(t->table);
    anv_free(t->specials);
    anv_free(t->index);
    anv_free(t->whole);
    anv_free(t);
}

int tok_set_token(anv_tokenizer_t *t, uint32_t id, const void *bytes, size_t len, const char *source) {
    if (id >= t->n_vocab) return anv_error("%s: token id %u out of range (vocabulary of %u)", source, id, t->n_vocab);
    if (len == 0) return anv_error("%s: token %u is empty", source, id);
    if (t->len[id]) return anv_error("%s: token id %u appears twice", source, id);
    if (len > UINT32_MAX || t->blob_len + len > UINT32_MAX)
        return anv_error("%s: token %u makes the vocabulary too large", source, id);
    if (t->blob_len + len > t->blob_cap) {
        size_t cap = t->blob_cap ? t->blob_cap * 2 : 4096;
        while (cap < t->blob_len + len) cap *= 2;
        char *b = anv_realloc(t->blob, cap, "tokenizer vocabulary");
        if (!b) return -1;
        t->blob = b;
        t->blob_cap = cap;
    }
    memcpy(t->blob + t->blob_len, bytes, len);
    t->off[id] = (uint32_t)t->blob_len;
    t->len[id] = (uint32_t)len;
    t->blob_len += len;
    return 0;
}

int tok_add_merge(anv_tokenizer_t *t, uint32_t left, uint32_t right, uint32_t result) {
    if (t->n_merges == t->merges_cap) {
        size_t cap = t->merges_cap ? t->merges_cap * 2 : 1024;
        uint32_t(*m)[3] = anv_realloc(t->merges, cap * sizeof *m, "tokenizer merges");
        if (!m) return -1;
        t->merges = m;
        t->merges_cap = cap;
    }
    t->merges[t->n_merges][0] = left;
    t->merges[t->n_merges][1] = right;
    t->merges[t->n_merges][2] = result;
    t->n_merges++;
    return 0;
}

int tok_add_special(anv_tokenizer_t *t, uint32_t id) {
    uint32_t *s = anv_realloc(t->specials, (t->n_specials + 1) * sizeof *s, "special tokens");
    if (!s) return -1;
    t->specials = s;
    s[t->n_specials++] = id;
    t->is_special[id] = 1;
    return 0;
}

static size_t pow2_at_least(size_t n) {
    size_t p = 16;
    while (p < n) p *= 2;
    return p;
}

int tok_table_reset(anv_tokenizer_t *t, size_t room) {
    size_t size = pow2_at_least(room * 2 + 1);
    anv_free(t->table);
    t->table = anv_alloc(size * sizeof *t->table, "tokenizer merge table");
    if (!t->table) return -1;
    memset(t->table, 0xFF, size * sizeof *t->table);
    t->table_mask = size - 1;
    return 0;
}

void tok_table_insert(anv_tokenizer_t *t, uint32_t left, uint32_t right, uint32_t rank, uint32_t id) {
    uint64_t key = (uint64_t)left << 32 | right;
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & t->table_mask;
    while (t->table[i].key != UINT64_MAX && t->table[i].key != key) i = (i + 1) & t->table_mask;
    if (t->table[i].key == key) return; /* a repeated pair keeps its first (lowest) rank */
    t->table[i].key = key;
    t->table[i].rank = rank;
    t->table[i].id = id;
}

int tok_table_build(anv_tokenizer_t *t) {
    if (tok_table_reset(t, t->n_merges) != 0) return -1;
    for (size_t r = 0; r < t->n_merges; r++)
        tok_table_insert(t, t->merges[r][0], t->merges[r][1], (uint32_t)r, t->merges[r][2]);
    return 0;
}

int tok_index_build(anv_tokenizer_t *t) {
    size_t size = pow2_at_least((size_t)t->n_vocab * 2 + 1);
    anv_free(t->index);
    t->index = anv_alloc(size * sizeof *t->index, "tokenizer index");
    if (!t->index) return -1;
    memset(t->index, 0xFF, size * sizeof *t->index);
    t->index_mask = size - 1;
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        if (!t->len[id] || t->is_special[id]) continue;
        const char *b = t->blob + t->off[id];
        size_t i = (size_t)(tok_hash_bytes((const unsigned char *)b, t->len[id]) >> 32) & t->index_mask;
        while (t->index[i] != TOK_NONE) {
            uint32_t o = t->index[i];
            if (t->len[o] == t->len[id] && !memcmp(t->blob + t->off[o], b, t->len[id])) break; /* first id wins */
            i = (i + 1) & t->index_mask;
        }
        if (t->index[i] == TOK_NONE) t->index[i] = id;
    }
    return 0;
}

uint32_t tok_index_find_hashed(const anv_tokenizer_t *t, const void *bytes, size_t len, uint64_t hash) {
    size_t i = (size_t)(hash >> 32) & t->index_mask;
    for (;;) {
        uint32_t id = t->index[i];
        if (id == TOK_NONE) return TOK_NONE;
        if (t->len[id] == len && !memcmp(t->blob + t->off[id], bytes, len)) return id;
        i = (i + 1) & t->index_mask;
    }
}

/* Marks the tokens that BPE rebuilds from their own bytes: a pre-token equal to such a token
 * encodes to it with one lookup (most words in practice), exactly as full BPE would. */
static int whole_tokens(anv_tokenizer_t *t) {
    uint32_t *ids = NULL;
    size_t cap = 0;
    tok_work_t work = {0};
    int rc = -1;
    anv_free(t->whole);
    if (!(t->whole = anv_calloc((size_t)t->n_vocab + 1, "tokenizer vocabulary"))) goto done;
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        size_t n = t->len[id];
        if (!n || t->is_special[id]) continue;
        if (n > cap) {
            anv_free(ids);
            cap = n * 2;
            if (!(ids = anv_alloc(cap * sizeof *ids, "tokenizer vocabulary"))) goto done;
        }
        long m = tok_bpe(t, (const unsigned char *)t->blob + t->off[id], n, ids, &work);
        if (m < 0) goto done;
        t->whole[id] = m == 1 && ids[0] == id;
    }
    rc = 0;
done:
    anv_free(ids);
    anv_free(work.mem);
    return rc;
}

static atomic_uint_fast64_t serial_counter;

int tok_byte_ids(anv_tokenizer_t *t, const char *source) {
    for (unsigned b = 0; b < 256; b++) t->byte_id[b] = TOK_NONE;
    for (uint32_t id = 0; id < t->n_vocab; id++)
        if (t->len[id] == 1 && !t->is_special[id]) {
            unsigned char b = (unsigned char)t->blob[t->off[id]];
            if (t->byte_id[b] == TOK_NONE) t->byte_id[b] = id;
        }
    for (unsigned b = 0; b < 256; b++)
        if (t->byte_id[b] == TOK_NONE)
            return anv_error("%s: no token for the single byte 0x%02x (a byte-level vocabulary needs all 256)", source,
                             b);
    return 0;
}

int tok_finish(anv_tokenizer_t *t, const char *source) {
    if (tok_byte_ids(t, source) != 0) return -1;
    for (size_t r = 0; r < t->n_merges; r++) {
        const uint32_t *m = t->merges[r];
        for (int k = 0; k < 3; k++)
            if (m[k] >= t->n_vocab || !t->len[m[k]] || t->is_special[m[k]])
                return anv_error("%s: merge %zu refers to id %u, which is not an ordinary token", source, r, m[k]);
        if (t->len[m[2]] != t->len[m[0]] + t->len[m[1]] ||
            memcmp(t->blob + t->off[m[2]], t->blob + t->off[m[0]], t->len[m[0]]) ||
            memcmp(t->blob + t->off[m[2]] + t->len[m[0]], t->blob + t->off[m[1]], t->len[m[1]]))
            return anv_error("%s: merge %zu: token %u is not the concatenation of tokens %u and %u", source, r, m[2],
                             m[0], m[1]);
    }
    for (size_t i = 0; i < t->n_specials; i++)
        if (!t->len[t->specials[i]]) return anv_error("%s: special token %u has no text", source, t->specials[i]);
    if (tok_table_build(t) != 0 || tok_index_build(t) != 0) return -1;
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        if (!t->len[id] || t->is_special[id]) continue;
        uint32_t first = tok_index_find(t, t->blob + t->off[id], t->len[id]);
        if (first != id) return anv_error("%s: tokens %u and %u have the same bytes", source, first, id);
    }
    if (whole_tokens(t) != 0) return -1;

    /* Identity: pattern, every token's id and bytes, merges in rank order, specials in order. */
    uint64_t h = anv_hash64(&t->pattern, sizeof t->pattern, 0x616E76696C);
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        uint32_t head[2] = {id, t->len[id]};
        h = anv_hash64(head, sizeof head, h);
        if (t->len[id]) h = anv_hash64(t->blob + t->off[id], t->len[id], h);
    }
    h = anv_hash64(t->merges, t->n_merges * sizeof *t->merges, h);
    h = anv_hash64(t->specials, t->n_specials * sizeof *t->specials, h);
    t->hash = h;
    t->serial = atomic_fetch_add(&serial_counter, 1) + 1;
    return 0;
}

static int valid_utf8(const char *s) {
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    utf8proc_ssize_t n = (utf8proc_ssize_t)strlen(s);
    while (n > 0) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(p, n, &cp);
        if (k <= 0) return 0;
        p += k;
        n -= k;
    }
    return 1;
}

int anv_tokenizer_create(anv_pretok_t pattern, const uint32_t (*merges)[2], size_t n_merges,
                         const char *const *specials, size_t n_specials, anv_tokenizer_t **out) {
    *out = NULL;
    if (pattern != ANV_PRETOK_GPT2 && pattern != ANV_PRETOK_CL100K)
        return anv_error("tokenizer: unknown pre-tokenizer pattern %d", (int)pattern);
    if (256 + n_merges + n_specials > UINT32_MAX) return anv_error("tokenizer: %zu merges is too many", n_merges);
    anv_tokenizer_t *t = tok_new(pattern, (uint32_t)(256 + n_merges + n_specials));
    if (!t) return -1;
    for (unsigned b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        if (tok_set_token(t, b, &c, 1, "tokenizer") != 0) goto fail;
    }
    for (size_t i = 0; i < n_merges; i++) {
        uint32_t l = merges[i][0], r = merges[i][1], id = (uint32_t)(256 + i);
        if (l >= id || r >= id) {
            anv_error("tokenizer: merge %zu uses id %u, which is not an earlier token", i, l >= id ? l : r);
            goto fail;
        }
        size_t nl = t->len[l], nr = t->len[r];
        char *tmp = anv_alloc(nl + nr, "tokenizer merge");
        if (!tmp) goto fail;
        memcpy(tmp, t->blob + t->off[l], nl);
        memcpy(tmp + nl, t->blob + t->off[r], nr);
        int rc = tok_set_token(t, id, tmp, nl + nr, "tokenizer");
        anv_free(tmp);
        if (rc != 0 || tok_add_merge(t, l, r, id) != 0) goto fail;
    }
    for (size_t i = 0; i < n_specials; i++) {
        uint32_t id = (uint32_t)(256 + n_merges + i);
        if (!specials[i] || !specials[i][0] || !valid_utf8(specials[i])) {
            anv_error("tokenizer: special token %zu is empty or not valid UTF-8", i);
            goto fail;
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(specials[i], specials[j])) {
                anv_error("tokenizer: special token '%s' is given twice", specials[i]);
                goto fail;
            }
        if (tok_set_token(t, id, specials[i], strlen(specials[i]), "tokenizer") != 0 || tok_add_special(t, id) != 0)
            goto fail;
    }
    if (tok_finish(t, "tokenizer") != 0) goto fail;
    *out = t;
    return 0;
fail:
    anv_tokenizer_free(t);
    return -1;
}

int anv_tokenizer_create_bytes(anv_tokenizer_t **out) {
    const char *eot = "<|endoftext|>";
    return anv_tokenizer_create(ANV_PRETOK_GPT2, NULL, 0, &eot, 1, out);
}

size_t anv_tokenizer_vocab_size(const anv_tokenizer_t *t) { return t->n_vocab; }

int64_t anv_tokenizer_eot(const anv_tokenizer_t *t) { return t->n_specials ? (int64_t)t->specials[0] : -1; }

uint64_t anv_tokenizer_hash(const anv_tokenizer_t *t) { return t->hash; }

anv_pretok_t anv_tokenizer_pattern(const anv_tokenizer_t *t) { return t->pattern; }

size_t anv_tokenizer_n_merges(const anv_tokenizer_t *t) { return t->n_merges; }

size_t anv_tokenizer_n_specials(const anv_tokenizer_t *t) { return t->n_specials; }

uint32_t anv_tokenizer_special(const anv_tokenizer_t *t, size_t i) { return t->specials[i]; }

const char *anv_tokenizer_token_bytes(const anv_tokenizer_t *t, uint32_t id, size_t *len) {
    if (id >= t->n_vocab || !t->len[id]) return NULL;
    if (len) *len = t->len[id];
    return t->blob + t->off[id];
}

/* Internals of the tokenizer module shared by its source files (not part of the public API). */
#ifndef ANVIL_TOK_INTERNAL_H
#define ANVIL_TOK_INTERNAL_H

#include "anvil/json.h"
#include "anvil/tokenizer.h"

#include <string.h>

#define TOK_NONE UINT32_MAX

/* One merge in the pair table: (left, right) -> id, applied in increasing rank. */
typedef struct {
    uint64_t key; /* left << 32 | right; UINT64_MAX = empty slot */
    uint32_t rank, id;
} tok_merge_slot_t;

struct anv_tokenizer {
    anv_pretok_t pattern;
    uint32_t n_vocab;    /* highest id + 1 */
    uint32_t *off, *len; /* (n_vocab,) token bytes = blob[off[id] .. off[id]+len[id]); len 0: unused id */
    char *blob;
    size_t blob_len, blob_cap;
    uint8_t *is_special;   /* (n_vocab,) */
    uint32_t byte_id[256]; /* id of each single byte */
    uint32_t (*merges)[3]; /* (n_merges, 3): left, right, result; index = rank */
    size_t n_merges, merges_cap;
    tok_merge_slot_t *table; /* open addressing, power-of-two size */
    size_t table_mask;
    uint32_t *specials; /* ids of the special tokens, the end-of-text token first */
    size_t n_specials;
    uint32_t *index; /* bytes -> id map over the ordinary tokens (open addressing) */
    uint8_t *whole;  /* (n_vocab,) 1 when BPE of the token's own bytes gives the token itself */
    size_t index_mask;
    uint64_t hash, serial;
};

/* ---- building (tokenizer.c) ----
 * tok_new, then tok_set_token for each id, tok_add_merge in rank order, tok_add_special, and
 * tok_finish, which validates (naming `source`) and builds the lookup tables. */
anv_tokenizer_t *tok_new(anv_pretok_t pattern, uint32_t n_vocab);
int tok_set_token(anv_tokenizer_t *t, uint32_t id, const void *bytes, size_t len, const char *source);
int tok_add_merge(anv_tokenizer_t *t, uint32_t left, uint32_t right, uint32_t result);
int tok_add_special(anv_tokenizer_t *t, uint32_t id);
int tok_finish(anv_tokenizer_t *t, const char *source);
/* Hash of a short byte string (pre-tokens, token bytes); never 0. */
static inline uint64_t tok_hash_bytes(const unsigned char *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
    }
    uint64_t w = 0;
    for (size_t k = 0; i < n; i++, k += 8) w |= (uint64_t)s[i] << k;
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    return h | 1;
}

/* bytes -> id index over the tokens set so far (ordinary tokens only); TOK_NONE when absent. */
int tok_index_build(anv_tokenizer_t *t);
uint32_t tok_index_find_hashed(const anv_tokenizer_t *t, const void *bytes, size_t len, uint64_t hash);
static inline uint32_t tok_index_find(const anv_tokenizer_t *t, const void *bytes, size_t len) {
    return tok_index_find_hashed(t, bytes, len, tok_hash_bytes(bytes, len));
}
/* Fills byte_id from the single-byte tokens; fails when a byte has none. */
int tok_byte_ids(anv_tokenizer_t *t, const char *source);
/* Pair table: build from the merge list, or reset to an empty table with room for `room` pairs
 * and insert one by one; lookup returns NULL when (left, right) does not merge. */
int tok_table_build(anv_tokenizer_t *t);
int tok_table_reset(anv_tokenizer_t *t, size_t room);
void tok_table_insert(anv_tokenizer_t *t, uint32_t left, uint32_t right, uint32_t rank, uint32_t id);
static inline const tok_merge_slot_t *tok_table_find(const anv_tokenizer_t *t, uint32_t left, uint32_t right) {
    uint64_t key = (uint64_t)left << 32 | right;
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & t->table_mask;
    for (;;) {
        const tok_merge_slot_t *s = &t->table[i];
        if (s->key == key) return s;
        if (s->key == UINT64_MAX) return NULL;
        i = (i + 1) & t->table_mask;
    }
}

/* ---- BPE on one pre-token (bpe.c) ----
 * Writes the ids of bytes s[0..n) to ids (room for n) and returns their count. `work` is scratch
 * for long pieces, grown as needed (NULL-initialised, freed with anv_free). Returns -1 on OOM. */
typedef struct {
    void *mem;
    size_t cap;
} tok_work_t;
long tok_bpe(const anv_tokenizer_t *t, const unsigned char *s, size_t n, uint32_t *ids, tok_work_t *work);

/* ---- pre-tokenizer (pretok.c) ----
 * End (exclusive) of the pre-token that starts at pos < n. Invalid UTF-8: each bad byte is one
 * character of class "other" (not a letter, number or space). */
size_t tok_pretok_next(anv_pretok_t pattern, const unsigned char *s, size_t pos, size_t n);

/* ---- GPT-2's byte <-> printable unicode mapping (bytelevel.c) ---- */
/* Appends the UTF-8 of the byte-level string of bytes[0..n). */
int tok_bytelevel_encode(anv_buf_t *out, const void *bytes, size_t n);
/* Decodes a byte-level string in place into raw bytes; -1 (no message) on a character outside it. */
int tok_bytelevel_decode(const char *s, size_t n, char *out, size_t *out_len);

/* The split patterns as regular expressions (tokenizer.json). */
extern const char tok_regex_gpt2[], tok_regex_cl100k[];

/* ---- shared by the file readers (format_hf.c) ---- */
/* Sets the tokens of a JSON vocabulary object {"byte-level string": id}; entries whose string is in
 * `specials` (n of them, raw bytes) are set verbatim. */
int tok_vocab_from_json(anv_tokenizer_t *t, const anv_json_t *vocab, const char *const *specials, size_t n_specials,
                        const char *source);
/* Adds the merge of the byte-level strings a and b (looked up via tok_index_find). `where` names
 * the entry in errors ("line 7", "merge 12"). */
int tok_merge_from_strings(anv_tokenizer_t *t, const char *a, size_t na, const char *b, size_t nb, const char *source,
                           const char *where);
/* Readers of each format; `source` names the file in errors. */
int tok_load_hf(const anv_json_t *root, const char *source, anv_tokenizer_t **out);
int tok_load_tiktoken_text(const char *text, size_t len, const char *source, anv_tokenizer_t **out);
/* Largest id in a JSON vocabulary object (-1 if empty); fails on a non-integer or huge id. */
int tok_vocab_max_id(const anv_json_t *vocab, const char *source, long long *max_id);

#endif

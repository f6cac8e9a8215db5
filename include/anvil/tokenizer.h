/* Byte-level BPE tokenizer: GPT-2 compatible, trainable, lossless for any byte string.
 *
 * A tokenizer is immutable once built and safe to use from many threads at once. Token ids:
 * every id maps to a non-empty byte string; special tokens (<|endoftext|>, user-defined) are only
 * produced by anv_tokenizer_encode_special(), never from ordinary text. */
#ifndef ANVIL_TOKENIZER_H
#define ANVIL_TOKENIZER_H

#include "anvil/base.h"

typedef struct anv_tokenizer anv_tokenizer_t;

typedef enum {
    ANV_PRETOK_GPT2,  /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
    ANV_PRETOK_CL100K /* GPT-4's pattern */
} anv_pretok_t;

typedef struct {
    uint32_t *ids;
    size_t len, cap;
} anv_tokens_t;
int anv_tokens_push(anv_tokens_t *t, uint32_t id);
void anv_tokens_free(anv_tokens_t *t);

/* Loads by content: a Hugging Face tokenizer.json, a tiktoken rank file, or a directory holding
 * GPT-2's encoder.json + vocab.bpe. Errors name the file and the problem. */
int anv_tokenizer_load(const char *path, anv_tokenizer_t **out);
int anv_tokenizer_load_gpt2(const char *encoder_json, const char *vocab_bpe, anv_tokenizer_t **out);
int anv_tokenizer_load_tiktoken(const char *path, anv_tokenizer_t **out);

/* Builds a tokenizer from training output. Ids 0..255 are the single bytes 0..255 (id = byte
 * value), merge i (ranked by order, left/right are earlier ids) creates id 256 + i, then the
 * special tokens follow in the order given. The first special is the end-of-text token. */
int anv_tokenizer_create(anv_pretok_t pattern, const uint32_t (*merges)[2], size_t n_merges,
                         const char *const *specials, size_t n_specials, anv_tokenizer_t **out);
/* The byte-level tokenizer: 256 bytes + <|endoftext|> (id 256), no merges. */
int anv_tokenizer_create_bytes(anv_tokenizer_t **out);
void anv_tokenizer_free(anv_tokenizer_t *t);

/* Writes Hugging Face tokenizer.json (BPE model, ByteLevel pre-tokenizer/decoder), atomically. */
int anv_tokenizer_save(const anv_tokenizer_t *t, const char *path);

size_t anv_tokenizer_vocab_size(const anv_tokenizer_t *t); /* highest id + 1 */
int64_t anv_tokenizer_eot(const anv_tokenizer_t *t);       /* end-of-text id, -1 if none */
uint64_t anv_tokenizer_hash(const anv_tokenizer_t *t);     /* identity of vocabulary + merges */
/* Bytes of one token; NULL when id is out of range. */
const char *anv_tokenizer_token_bytes(const anv_tokenizer_t *t, uint32_t id, size_t *len);

/* Appends the ids of ordinary text (special-token strings are encoded as plain text). Thread-safe. */
int anv_tokenizer_encode(const anv_tokenizer_t *t, const char *text, size_t len, anv_tokens_t *out);
/* Like encode, but occurrences of the special tokens' strings become their ids. */
int anv_tokenizer_encode_special(const anv_tokenizer_t *t, const char *text, size_t len, anv_tokens_t *out);
/* Appends the bytes of ids to out; fails on an id outside the vocabulary. */
int anv_tokenizer_decode(const anv_tokenizer_t *t, const uint32_t *ids, size_t n, anv_buf_t *out);

#endif

/* Byte-level BPE tokenizer: GPT-2 compatible, trainable, lossless for any byte string.
 *
 * A tokenizer is immutable once built and safe to use from many threads at once. Token ids:
 * every id maps to a non-empty byte string; special tokens (<|endoftext|>, user-defined) are only
 * produced by anv_tokenizer_encode_special(), never from ordinary text. Pre-tokenization follows the
 * GPT-2 or cl100k regex exactly on valid UTF-8; a byte that is not valid UTF-8 counts as one
 * character that is neither letter, number nor space (tiktoken only takes valid text). */
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
 * GPT-2's encoder.json + vocab.bpe (or a tokenizer.json). Errors name the file and the problem.
 * tiktoken files carry no specials: cl100k_base gets tiktoken's, any other file <|endoftext|> at
 * the lowest free id (50256 for r50k_base). */
int anv_tokenizer_load(const char *path, anv_tokenizer_t **out);
int anv_tokenizer_load_gpt2(const char *encoder_json, const char *vocab_bpe, anv_tokenizer_t **out);
int anv_tokenizer_load_tiktoken(const char *path, anv_tokenizer_t **out);

/* Builds a tokenizer from training output. Ids 0..255 are the single bytes 0..255 (id = byte
 * value), merge i (ranked by order, left/right are earlier ids) creates id 256 + i, then the
 * special tokens follow in the order given. The first special is the end-of-text token. Fails
 * when two tokens would have the same bytes (tokenizer.json could not express it) or a special is
 * empty or not valid UTF-8. */
int anv_tokenizer_create(anv_pretok_t pattern, const uint32_t (*merges)[2], size_t n_merges,
                         const char *const *specials, size_t n_specials, anv_tokenizer_t **out);
/* The byte-level tokenizer: 256 bytes + <|endoftext|> (id 256), no merges. */
int anv_tokenizer_create_bytes(anv_tokenizer_t **out);
void anv_tokenizer_free(anv_tokenizer_t *t);

/* Writes Hugging Face tokenizer.json (BPE model, ByteLevel pre-tokenizer/decoder), atomically. */
int anv_tokenizer_save(const anv_tokenizer_t *t, const char *path);

size_t anv_tokenizer_vocab_size(const anv_tokenizer_t *t); /* highest id + 1 */
anv_pretok_t anv_tokenizer_pattern(const anv_tokenizer_t *t);
size_t anv_tokenizer_n_merges(const anv_tokenizer_t *t);
size_t anv_tokenizer_n_specials(const anv_tokenizer_t *t);
uint32_t anv_tokenizer_special(const anv_tokenizer_t *t, size_t i); /* id of special i (0 = end of text) */
int64_t anv_tokenizer_eot(const anv_tokenizer_t *t);                /* end-of-text id, -1 if none */
uint64_t anv_tokenizer_hash(const anv_tokenizer_t *t); /* identity: pattern, vocabulary, merges, specials */
/* Bytes of one token; NULL when id is out of range. */
const char *anv_tokenizer_token_bytes(const anv_tokenizer_t *t, uint32_t id, size_t *len);

/* Appends the ids of ordinary text (special-token strings are encoded as plain text). Thread-safe. */
int anv_tokenizer_encode(const anv_tokenizer_t *t, const char *text, size_t len, anv_tokens_t *out);
/* Like encode, but occurrences of the special tokens' strings become their ids (the longest one
 * where several start at the same byte). */
int anv_tokenizer_encode_special(const anv_tokenizer_t *t, const char *text, size_t len, anv_tokens_t *out);
/* Encodes n_docs texts on `threads` threads (<= 0: all), each into its own outs[i] (appended to,
 * as anv_tokenizer_encode does). Same ids as encoding one by one. */
int anv_tokenizer_encode_batch(const anv_tokenizer_t *t, const char *const *texts, const size_t *lens, size_t n_docs,
                               anv_tokens_t *outs, int threads);
/* Appends the bytes of ids to out; fails on an id outside the vocabulary. */
int anv_tokenizer_decode(const anv_tokenizer_t *t, const uint32_t *ids, size_t n, anv_buf_t *out);

#endif

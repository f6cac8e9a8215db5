/* Token shards in llm.c's layout: a header of 256 int32 — [0] magic 20240520, [1] version
 * (1 = uint16 tokens, 2 = uint32 tokens for vocabularies over 65,535), [2] token count — then the
 * tokens, little-endian. Documents are separated by the end-of-text token. */
#ifndef ANVIL_SHARD_H
#define ANVIL_SHARD_H

#include "anvil/base.h"

#define ANV_SHARD_MAGIC 20240520
#define ANV_SHARD_HEADER_INTS 256
#define ANV_SHARD_MAX_TOKENS 2147483647u /* the count is an int32 */

typedef struct {
    anv_mmap_t map;
    char *path;
    int version;  /* 1 or 2 */
    size_t count; /* tokens */
    const void *tokens;
} anv_shard_t;

/* Opens and validates (magic, version, count against the file size). */
int anv_shard_open(const char *path, anv_shard_t *s);
void anv_shard_close(anv_shard_t *s);
static inline uint32_t anv_shard_token(const anv_shard_t *s, size_t i) {
    return s->version == 1 ? ((const uint16_t *)s->tokens)[i] : ((const uint32_t *)s->tokens)[i];
}

/* Streaming writer: header is rewritten with the final count, then the file is committed atomically. */
typedef struct {
    anv_atomic_file_t file;
    int version;
    uint32_t max_token;
    size_t count;
} anv_shard_writer_t;

/* The version follows from the vocabulary size (<= 65,536 ids -> 1, else 2). */
int anv_shard_writer_open(anv_shard_writer_t *w, const char *path, size_t vocab_size);
int anv_shard_writer_append(anv_shard_writer_t *w, const uint32_t *tokens, size_t n);
int anv_shard_writer_close(anv_shard_writer_t *w); /* commit */
void anv_shard_writer_abort(anv_shard_writer_t *w);

#endif

/* Token shard reading (memory-mapped, validated) and atomic streaming writing. */
#include "anvil/shard.h"

#include <string.h>

int anv_shard_open(const char *path, anv_shard_t *s) {
    memset(s, 0, sizeof *s);
    if (anv_mmap_open(path, &s->map) != 0) return -1;
    const size_t header_bytes = ANV_SHARD_HEADER_INTS * sizeof(int32_t);
    int rc = 0;
    if (s->map.size < header_bytes) {
        rc = anv_error("%s: not a token shard: %zu bytes is shorter than the %zu-byte header", path, s->map.size,
                       header_bytes);
    } else {
        int32_t h[3];
        memcpy(h, s->map.data, sizeof h);
        if (h[0] != ANV_SHARD_MAGIC)
            rc =
                anv_error("%s: not a token shard: bad magic %d at offset 0 (expected %d)", path, h[0], ANV_SHARD_MAGIC);
        else if (h[1] != 1 && h[1] != 2)
            rc = anv_error("%s: unsupported shard version %d at offset 4 (expected 1 or 2)", path, h[1]);
        else if (h[2] <= 0)
            rc = anv_error("%s: shard holds no tokens (count %d at offset 8)", path, h[2]);
        else {
            size_t width = h[1] == 1 ? 2 : 4;
            size_t want = header_bytes + (size_t)h[2] * width;
            if (s->map.size != want)
                rc = anv_error("%s: %s: header says %d tokens (%zu bytes) but the file has %zu bytes", path,
                               s->map.size < want ? "truncated" : "trailing bytes", h[2], want, s->map.size);
            else {
                s->version = h[1];
                s->count = (size_t)h[2];
                s->tokens = (const char *)s->map.data + header_bytes;
            }
        }
    }
    if (rc == 0) s->path = anv_strdup(path);
    if (rc != 0 || !s->path) {
        anv_mmap_close(&s->map);
        memset(s, 0, sizeof *s);
        return -1;
    }
    return 0;
}

void anv_shard_close(anv_shard_t *s) {
    anv_mmap_close(&s->map);
    anv_free(s->path);
    memset(s, 0, sizeof *s);
}

static int write_header(anv_shard_writer_t *w) {
    int32_t header[ANV_SHARD_HEADER_INTS] = {0};
    header[0] = ANV_SHARD_MAGIC;
    header[1] = w->version;
    header[2] = (int32_t)w->count;
    return anv_atomic_write(&w->file, header, sizeof header);
}

int anv_shard_writer_open(anv_shard_writer_t *w, const char *path, size_t vocab_size) {
    memset(w, 0, sizeof *w);
    if (vocab_size == 0 || vocab_size > 0xFFFFFFFFull)
        return anv_error("%s: vocabulary size %zu cannot be stored in a shard", path, vocab_size);
    w->version = vocab_size <= 65536 ? 1 : 2;
    w->max_token = (uint32_t)(vocab_size - 1);
    if (anv_atomic_open(&w->file, path) != 0) return -1;
    if (write_header(w) != 0) {
        anv_atomic_abort(&w->file);
        return -1;
    }
    return 0;
}

int anv_shard_writer_append(anv_shard_writer_t *w, const uint32_t *tokens, size_t n) {
    if (w->count + n > ANV_SHARD_MAX_TOKENS)
        return anv_error("%s: shard would exceed %u tokens", w->file.path, ANV_SHARD_MAX_TOKENS);
    uint16_t narrow[1024];
    for (size_t i = 0; i < n; i++)
        if (tokens[i] > w->max_token)
            return anv_error("%s: token id %u is outside the vocabulary (max %u)", w->file.path, tokens[i],
                             w->max_token);
    if (w->version == 2) {
        if (anv_atomic_write(&w->file, tokens, n * sizeof *tokens) != 0) return -1;
    } else {
        for (size_t i = 0; i < n; i += 1024) {
            size_t m = n - i < 1024 ? n - i : 1024;
            for (size_t j = 0; j < m; j++) narrow[j] = (uint16_t)tokens[i + j];
            if (anv_atomic_write(&w->file, narrow, m * sizeof *narrow) != 0) return -1;
        }
    }
    w->count += n;
    return 0;
}

int anv_shard_writer_close(anv_shard_writer_t *w) {
    if (w->count == 0) {
        anv_error("%s: refusing to write a shard with no tokens", w->file.path);
        anv_atomic_abort(&w->file);
        return -1;
    }
    if (anv_atomic_seek(&w->file, 0) != 0 || write_header(w) != 0) {
        anv_atomic_abort(&w->file);
        return -1;
    }
    return anv_atomic_commit(&w->file);
}

void anv_shard_writer_abort(anv_shard_writer_t *w) { anv_atomic_abort(&w->file); }

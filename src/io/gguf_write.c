/* GGUF v3 writer: metadata is serialised as it is added; tensors are kept (owned) until the write. */
#include "anvil/gguf.h"

#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF writer assumes a little-endian host"
#endif

typedef struct {
    char *name;
    anv_ggml_type_t type;
    int n_dims;
    uint64_t ne[ANV_GGUF_MAX_DIMS];
    void *data;
    size_t nbytes;
} wtensor_t;

struct anv_gguf_writer {
    anv_buf_t kv; /* serialised key/value pairs */
    char **keys;  /* for the uniqueness check */
    size_t n_kv;
    wtensor_t *tensors;
    size_t n_tensors;
};

int anv_gguf_writer_create(anv_gguf_writer_t **out) {
    *out = anv_calloc(sizeof **out, "GGUF writer");
    return *out ? 0 : -1;
}

void anv_gguf_writer_free(anv_gguf_writer_t *w) {
    if (!w) return;
    anv_buf_free(&w->kv);
    for (size_t i = 0; i < w->n_kv; i++) anv_free(w->keys[i]);
    anv_free(w->keys);
    for (size_t i = 0; i < w->n_tensors; i++) {
        anv_free(w->tensors[i].name);
        anv_free(w->tensors[i].data);
    }
    anv_free(w->tensors);
    anv_free(w);
}

static int put_u32(anv_buf_t *b, uint32_t v) { return anv_buf_append(b, &v, 4); }
static int put_u64(anv_buf_t *b, uint64_t v) { return anv_buf_append(b, &v, 8); }
static int put_str(anv_buf_t *b, const char *s, size_t n) { return put_u64(b, n) != 0 ? -1 : anv_buf_append(b, s, n); }

/* Starts a pair: checks the key is new, then writes the key and the value type. */
static int begin_kv(anv_gguf_writer_t *w, const char *key, anv_gguf_type_t type) {
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->keys[i], key)) return anv_error("GGUF: duplicate metadata key '%s'", key);
    char **keys = anv_realloc(w->keys, (w->n_kv + 1) * sizeof *keys, "GGUF keys");
    if (!keys) return -1;
    w->keys = keys;
    if (!(w->keys[w->n_kv] = anv_strdup(key))) return -1;
    w->n_kv++;
    if (put_str(&w->kv, key, strlen(key)) != 0) return -1;
    return put_u32(&w->kv, (uint32_t)type);
}

int anv_gguf_add_u32(anv_gguf_writer_t *w, const char *key, uint32_t v) {
    return begin_kv(w, key, ANV_GGUF_U32) != 0 ? -1 : put_u32(&w->kv, v);
}

int anv_gguf_add_i32(anv_gguf_writer_t *w, const char *key, int32_t v) {
    return begin_kv(w, key, ANV_GGUF_I32) != 0 ? -1 : anv_buf_append(&w->kv, &v, 4);
}

int anv_gguf_add_f32(anv_gguf_writer_t *w, const char *key, float v) {
    return begin_kv(w, key, ANV_GGUF_F32) != 0 ? -1 : anv_buf_append(&w->kv, &v, 4);
}

int anv_gguf_add_bool(anv_gguf_writer_t *w, const char *key, int v) {
    uint8_t b = v != 0;
    return begin_kv(w, key, ANV_GGUF_BOOL) != 0 ? -1 : anv_buf_append(&w->kv, &b, 1);
}

int anv_gguf_add_string(anv_gguf_writer_t *w, const char *key, const char *s, size_t len) {
    return begin_kv(w, key, ANV_GGUF_STRING) != 0 ? -1 : put_str(&w->kv, s, len);
}

int anv_gguf_add_strings(anv_gguf_writer_t *w, const char *key, const char *const *s, const size_t *lens, size_t n) {
    if (begin_kv(w, key, ANV_GGUF_ARRAY) != 0 || put_u32(&w->kv, ANV_GGUF_STRING) != 0 || put_u64(&w->kv, n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (put_str(&w->kv, s[i], lens[i]) != 0) return -1;
    return 0;
}

int anv_gguf_add_i32s(anv_gguf_writer_t *w, const char *key, const int32_t *v, size_t n) {
    if (begin_kv(w, key, ANV_GGUF_ARRAY) != 0 || put_u32(&w->kv, ANV_GGUF_I32) != 0 || put_u64(&w->kv, n) != 0)
        return -1;
    return anv_buf_append(&w->kv, v, n * 4);
}

int anv_gguf_add_tensor(anv_gguf_writer_t *w, const char *name, anv_ggml_type_t t, int n_dims, const uint64_t *ne,
                        void *data) {
    int rc = -1;
    uint64_t numel = 1;
    if (strlen(name) > ANV_GGUF_MAX_NAME) {
        anv_error("GGUF: tensor name '%s' is longer than %d bytes", name, ANV_GGUF_MAX_NAME);
        goto done;
    }
    if (n_dims < 1 || n_dims > ANV_GGUF_MAX_DIMS) {
        anv_error("GGUF: tensor '%s' has %d dimensions (1..%d allowed)", name, n_dims, ANV_GGUF_MAX_DIMS);
        goto done;
    }
    for (int d = 0; d < n_dims; d++) numel *= ne[d];
    if (anv_ggml_nbytes(t, numel) == 0 || (t == ANV_GGML_Q8_0 && ne[0] % ANV_Q8_0_BLOCK != 0)) {
        anv_error("GGUF: tensor '%s': type %s does not fit ne[0] = %llu", name, anv_ggml_type_name(t),
                  (unsigned long long)ne[0]);
        goto done;
    }
    for (size_t i = 0; i < w->n_tensors; i++)
        if (!strcmp(w->tensors[i].name, name)) {
            anv_error("GGUF: duplicate tensor '%s'", name);
            goto done;
        }
    wtensor_t *ts = anv_realloc(w->tensors, (w->n_tensors + 1) * sizeof *ts, "GGUF tensor list");
    if (!ts) goto done;
    w->tensors = ts;
    wtensor_t *x = &ts[w->n_tensors];
    memset(x, 0, sizeof *x);
    if (!(x->name = anv_strdup(name))) goto done;
    x->type = t;
    x->n_dims = n_dims;
    memcpy(x->ne, ne, (size_t)n_dims * sizeof *ne);
    x->data = data;
    x->nbytes = anv_ggml_nbytes(t, numel);
    data = NULL;
    w->n_tensors++;
    rc = 0;
done:
    anv_free(data);
    return rc;
}

static size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

int anv_gguf_write(const anv_gguf_writer_t *w, const char *path) {
    const size_t align = ANV_GGUF_DEFAULT_ALIGNMENT;
    static const uint8_t zeros[ANV_GGUF_DEFAULT_ALIGNMENT];
    anv_buf_t head = {0};
    int rc = -1;
    if (anv_buf_append(&head, "GGUF", 4) != 0 || put_u32(&head, ANV_GGUF_VERSION) != 0 ||
        put_u64(&head, w->n_tensors) != 0 || put_u64(&head, w->n_kv) != 0 ||
        anv_buf_append(&head, w->kv.data, w->kv.len) != 0)
        goto done;
    size_t offset = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor_t *t = &w->tensors[i];
        if (put_str(&head, t->name, strlen(t->name)) != 0 || put_u32(&head, (uint32_t)t->n_dims) != 0) goto done;
        for (int d = 0; d < t->n_dims; d++)
            if (put_u64(&head, t->ne[d]) != 0) goto done;
        if (put_u32(&head, (uint32_t)t->type) != 0 || put_u64(&head, offset) != 0) goto done;
        offset = align_up(offset + t->nbytes, align);
    }
    if (anv_buf_append(&head, zeros, align_up(head.len, align) - head.len) != 0) goto done;

    anv_atomic_file_t af;
    if (anv_atomic_open(&af, path) != 0) goto done;
    int ok = anv_atomic_write(&af, head.data, head.len) == 0;
    for (size_t i = 0; ok && i < w->n_tensors; i++) {
        const wtensor_t *t = &w->tensors[i];
        ok = anv_atomic_write(&af, t->data, t->nbytes) == 0 &&
             anv_atomic_write(&af, zeros, align_up(t->nbytes, align) - t->nbytes) == 0;
    }
    if (!ok) {
        anv_atomic_abort(&af);
        goto done;
    }
    rc = anv_atomic_commit(&af);
done:
    anv_buf_free(&head);
    return rc;
}

/* GGUF reader: validates a whole file image before anything is handed out, so that a hostile or
 * truncated file yields one error naming the file, the byte offset and the problem. */
#include "anvil/gguf.h"

#include <stdlib.h>
#include <string.h>

struct anv_gguf {
    anv_mmap_t map; /* when opened from a path */
    const uint8_t *data;
    size_t size;
    const char *source;
    char *source_copy;
    uint32_t version, alignment;
    anv_gguf_kv_t *kv;
    size_t n_kv;
    anv_gguf_tensor_t *tensors;
    size_t n_tensors;
};

typedef struct {
    const uint8_t *p;
    size_t size, pos;
    const char *src;
} cursor_t;

static int need(cursor_t *c, uint64_t n, const char *what) {
    if (n > c->size - c->pos)
        return anv_error("%s: truncated at offset %zu: %s needs %llu bytes, %zu left", c->src, c->pos, what,
                         (unsigned long long)n, c->size - c->pos);
    return 0;
}

static int rd_u32(cursor_t *c, uint32_t *v, const char *what) {
    if (need(c, 4, what) != 0) return -1;
    memcpy(v, c->p + c->pos, 4);
    c->pos += 4;
    return 0;
}

static int rd_u64(cursor_t *c, uint64_t *v, const char *what) {
    if (need(c, 8, what) != 0) return -1;
    memcpy(v, c->p + c->pos, 8);
    c->pos += 8;
    return 0;
}

/* A string: u64 length + bytes. Returns a pointer into the image. */
static int rd_str(cursor_t *c, const char **s, uint64_t *len, const char *what) {
    if (rd_u64(c, len, what) != 0 || need(c, *len, what) != 0) return -1;
    *s = (const char *)c->p + c->pos;
    c->pos += *len;
    return 0;
}

/* A NUL-terminated copy of a name that must be non-empty, short enough and free of NUL bytes. */
static int rd_name(cursor_t *c, size_t max, const char *what, char **out) {
    size_t at = c->pos;
    const char *s;
    uint64_t len;
    if (rd_str(c, &s, &len, what) != 0) return -1;
    if (len == 0 || len > max || memchr(s, 0, len))
        return anv_error("%s: bad %s at offset %zu (length %llu)", c->src, what, at, (unsigned long long)len);
    if (!(*out = anv_alloc(len + 1, "GGUF name"))) return -1;
    memcpy(*out, s, len);
    (*out)[len] = 0;
    return 0;
}

static size_t scalar_size(uint32_t t) {
    switch (t) {
    case ANV_GGUF_U8:
    case ANV_GGUF_I8:
    case ANV_GGUF_BOOL:
        return 1;
    case ANV_GGUF_U16:
    case ANV_GGUF_I16:
        return 2;
    case ANV_GGUF_U32:
    case ANV_GGUF_I32:
    case ANV_GGUF_F32:
        return 4;
    case ANV_GGUF_U64:
    case ANV_GGUF_I64:
    case ANV_GGUF_F64:
        return 8;
    }
    return 0;
}

static int rd_value(cursor_t *c, anv_gguf_kv_t *kv) {
    uint32_t t;
    size_t at = c->pos;
    if (rd_u32(c, &t, "value type") != 0) return -1;
    kv->type = (anv_gguf_type_t)t;
    if (t == ANV_GGUF_STRING) {
        const char *s;
        if (rd_str(c, &s, &kv->n, "string value") != 0) return -1;
        kv->value = (const uint8_t *)s;
        return 0;
    }
    if (t == ANV_GGUF_ARRAY) {
        uint32_t it;
        if (rd_u32(c, &it, "array type") != 0 || rd_u64(c, &kv->n, "array length") != 0) return -1;
        kv->arr_type = (anv_gguf_type_t)it;
        kv->value = c->p + c->pos;
        if (it == ANV_GGUF_STRING) {
            if (kv->n > (c->size - c->pos) / 8) return need(c, kv->n * 8, "string array");
            for (uint64_t i = 0; i < kv->n; i++) {
                const char *s;
                uint64_t len;
                if (rd_str(c, &s, &len, "array string") != 0) return -1;
            }
            return 0;
        }
        size_t sz = scalar_size(it);
        if (sz == 0) return anv_error("%s: unsupported array item type %u at offset %zu", c->src, it, at + 4);
        if (kv->n > (c->size - c->pos) / sz) return need(c, kv->n * sz, "array items");
        c->pos += kv->n * sz;
        return 0;
    }
    size_t sz = scalar_size(t);
    if (sz == 0) return anv_error("%s: unknown value type %u at offset %zu", c->src, t, at);
    if (need(c, sz, "value") != 0) return -1;
    kv->value = c->p + c->pos;
    c->pos += sz;
    return 0;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Fails naming the first name that occurs twice among names[0..n). */
static int check_unique(const char *const *names, size_t n, const char *src, const char *what) {
    if (n < 2) return 0;
    const char **sorted = anv_alloc(n * sizeof *sorted, "GGUF name check");
    if (!sorted) return -1;
    memcpy(sorted, names, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_names);
    int rc = 0;
    for (size_t i = 1; i < n && rc == 0; i++)
        if (!strcmp(sorted[i - 1], sorted[i])) rc = anv_error("%s: duplicate %s '%s'", src, what, sorted[i]);
    anv_free(sorted);
    return rc;
}

static int cmp_offsets(const void *a, const void *b) {
    const anv_gguf_tensor_t *x = *(anv_gguf_tensor_t *const *)a, *y = *(anv_gguf_tensor_t *const *)b;
    return x->data < y->data ? -1 : x->data > y->data;
}

static int check_no_overlap(anv_gguf_t *g) {
    if (g->n_tensors < 2) return 0;
    anv_gguf_tensor_t **by = anv_alloc(g->n_tensors * sizeof *by, "GGUF overlap check");
    if (!by) return -1;
    for (size_t i = 0; i < g->n_tensors; i++) by[i] = &g->tensors[i];
    qsort(by, g->n_tensors, sizeof *by, cmp_offsets);
    int rc = 0;
    for (size_t i = 1; i < g->n_tensors && rc == 0; i++)
        if ((const uint8_t *)by[i - 1]->data + by[i - 1]->nbytes > (const uint8_t *)by[i]->data)
            rc = anv_error("%s: tensors '%s' and '%s' overlap", g->source, by[i - 1]->name, by[i]->name);
    anv_free(by);
    return rc;
}

static int rd_tensor_info(cursor_t *c, anv_gguf_tensor_t *t) {
    size_t at = c->pos;
    char *name = NULL;
    if (rd_name(c, ANV_GGUF_MAX_NAME, "tensor name", &name) != 0) return -1;
    t->name = name;
    uint32_t nd, type;
    if (rd_u32(c, &nd, "tensor dimensions") != 0) return -1;
    if (nd < 1 || nd > ANV_GGUF_MAX_DIMS)
        return anv_error("%s: tensor '%s' at offset %zu has %u dimensions (1..%d allowed)", c->src, name, at, nd,
                         ANV_GGUF_MAX_DIMS);
    t->n_dims = (int)nd;
    t->numel = 1;
    for (uint32_t d = 0; d < nd; d++) {
        if (rd_u64(c, &t->ne[d], "tensor shape") != 0) return -1;
        /* Bound every dimension and the product so that byte counts cannot overflow. */
        if (t->ne[d] == 0 || t->ne[d] > ((uint64_t)1 << 40) || t->numel > ((uint64_t)1 << 40) / t->ne[d])
            return anv_error("%s: tensor '%s' has a bad shape (ne[%u] = %llu)", c->src, name, d,
                             (unsigned long long)t->ne[d]);
        t->numel *= t->ne[d];
    }
    if (rd_u32(c, &type, "tensor type") != 0) return -1;
    t->type = (anv_ggml_type_t)type;
    t->nbytes = anv_ggml_nbytes(t->type, t->numel);
    if (t->nbytes == 0)
        return anv_error("%s: tensor '%s' has ggml type %u (anvil reads F32, F16, Q8_0)", c->src, name, type);
    if (t->type == ANV_GGML_Q8_0 && t->ne[0] % ANV_Q8_0_BLOCK != 0)
        return anv_error("%s: Q8_0 tensor '%s' has rows of %llu values, not a multiple of 32", c->src, name,
                         (unsigned long long)t->ne[0]);
    uint64_t off;
    if (rd_u64(c, &off, "tensor offset") != 0) return -1;
    t->data = (const void *)(uintptr_t)off; /* resolved once the data section is known */
    return 0;
}

static int parse(anv_gguf_t *g) {
    cursor_t c = {g->data, g->size, 0, g->source};
    uint32_t magic;
    uint64_t n_tensors, n_kv;
    if (rd_u32(&c, &magic, "magic") != 0) return -1;
    if (memcmp(g->data, "GGUF", 4) != 0)
        return anv_error("%s: bad magic 0x%08x at offset 0 (not GGUF)", g->source, magic);
    if (rd_u32(&c, &g->version, "version") != 0) return -1;
    if (g->version != 2 && g->version != 3)
        return anv_error("%s: unsupported GGUF version %u at offset 4 (2 and 3 are read)", g->source, g->version);
    if (rd_u64(&c, &n_tensors, "tensor count") != 0 || rd_u64(&c, &n_kv, "metadata count") != 0) return -1;
    /* Each pair takes at least 13 bytes and each tensor info at least 33: bound before allocating. */
    if (n_kv > g->size / 13 || n_tensors > g->size / 33)
        return anv_error("%s: %llu tensors / %llu metadata pairs cannot fit in %zu bytes", g->source,
                         (unsigned long long)n_tensors, (unsigned long long)n_kv, g->size);
    /* One spare entry each: a failed parse leaves the name it read there, for anv_gguf_close. */
    g->kv = anv_calloc(((size_t)n_kv + 1) * sizeof *g->kv, "GGUF metadata");
    g->tensors = anv_calloc(((size_t)n_tensors + 1) * sizeof *g->tensors, "GGUF tensors");
    if (!g->kv || !g->tensors) return -1;
    g->alignment = ANV_GGUF_DEFAULT_ALIGNMENT;
    for (; g->n_kv < n_kv; g->n_kv++) {
        anv_gguf_kv_t *kv = &g->kv[g->n_kv];
        char *key = NULL;
        if (rd_name(&c, 65535, "metadata key", &key) != 0) return -1;
        kv->key = key;
        if (rd_value(&c, kv) != 0) return -1;
        if (!strcmp(key, "general.alignment")) {
            uint32_t a;
            if (kv->type != ANV_GGUF_U32) return anv_error("%s: general.alignment is not a u32", g->source);
            memcpy(&a, kv->value, 4);
            if (a == 0 || (a & (a - 1)) != 0 || a > 65536)
                return anv_error("%s: general.alignment %u is not a power of two <= 65536", g->source, a);
            g->alignment = a;
        }
    }
    for (; g->n_tensors < n_tensors; g->n_tensors++)
        if (rd_tensor_info(&c, &g->tensors[g->n_tensors]) != 0) return -1;

    size_t start = (c.pos + g->alignment - 1) / g->alignment * g->alignment;
    if (start > g->size)
        return anv_error("%s: truncated: data section would start at %zu past the end %zu", g->source, start, g->size);
    for (size_t i = 0; i < g->n_tensors; i++) {
        anv_gguf_tensor_t *t = &g->tensors[i];
        uint64_t off = (uint64_t)(uintptr_t)t->data;
        if (off % g->alignment != 0)
            return anv_error("%s: tensor '%s' offset %llu is not a multiple of the alignment %u", g->source, t->name,
                             (unsigned long long)off, g->alignment);
        if (off > g->size - start || t->nbytes > g->size - start - off)
            return anv_error("%s: truncated: tensor '%s' needs bytes %llu..%llu of the data section, which has %zu",
                             g->source, t->name, (unsigned long long)off, (unsigned long long)(off + t->nbytes),
                             g->size - start);
        t->data = g->data + start + off;
    }
    const char **names = anv_alloc((g->n_kv + g->n_tensors + 1) * sizeof *names, "GGUF name check");
    if (!names) return -1;
    for (size_t i = 0; i < g->n_kv; i++) names[i] = g->kv[i].key;
    for (size_t i = 0; i < g->n_tensors; i++) names[g->n_kv + i] = g->tensors[i].name;
    int rc = check_unique(names, g->n_kv, g->source, "metadata key");
    if (rc == 0) rc = check_unique(names + g->n_kv, g->n_tensors, g->source, "tensor");
    anv_free(names);
    return rc != 0 ? -1 : check_no_overlap(g);
}

int anv_gguf_parse(const void *data, size_t size, const char *source, anv_gguf_t **out) {
    *out = NULL;
    anv_gguf_t *g = anv_calloc(sizeof *g, "GGUF reader");
    if (!g) return -1;
    g->data = data;
    g->size = size;
    g->source_copy = anv_strdup(source);
    g->source = g->source_copy ? g->source_copy : "GGUF";
    if (!g->source_copy || parse(g) != 0) {
        anv_gguf_close(g);
        return -1;
    }
    *out = g;
    return 0;
}

int anv_gguf_open(const char *path, anv_gguf_t **out) {
    anv_mmap_t map;
    *out = NULL;
    if (anv_mmap_open(path, &map) != 0) return -1;
    if (anv_gguf_parse(map.data, map.size, path, out) != 0) {
        anv_mmap_close(&map);
        return -1;
    }
    (*out)->map = map;
    return 0;
}

void anv_gguf_close(anv_gguf_t *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_kv; i++) anv_free((char *)g->kv[i].key);
    if (g->kv && g->kv[g->n_kv].key) anv_free((char *)g->kv[g->n_kv].key);
    for (size_t i = 0; i < g->n_tensors; i++) anv_free((char *)g->tensors[i].name);
    if (g->tensors && g->tensors[g->n_tensors].name) anv_free((char *)g->tensors[g->n_tensors].name);
    anv_free(g->kv);
    anv_free(g->tensors);
    anv_free(g->source_copy);
    if (g->map.data) anv_mmap_close(&g->map);
    anv_free(g);
}

uint32_t anv_gguf_version(const anv_gguf_t *g) { return g->version; }
uint32_t anv_gguf_alignment(const anv_gguf_t *g) { return g->alignment; }
int anv_gguf_n_kv(const anv_gguf_t *g) { return (int)g->n_kv; }
const anv_gguf_kv_t *anv_gguf_kv(const anv_gguf_t *g, int i) { return &g->kv[i]; }
int anv_gguf_n_tensors(const anv_gguf_t *g) { return (int)g->n_tensors; }
const anv_gguf_tensor_t *anv_gguf_tensor(const anv_gguf_t *g, int i) { return &g->tensors[i]; }

const anv_gguf_kv_t *anv_gguf_find_kv(const anv_gguf_t *g, const char *key) {
    for (size_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const anv_gguf_tensor_t *anv_gguf_find_tensor(const anv_gguf_t *g, const char *name) {
    for (size_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

static double scalar_value(anv_gguf_type_t t, const uint8_t *p) {
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        uint64_t u64;
        int64_t i64;
        double f64;
    } v;
    memcpy(&v, p, scalar_size(t));
    switch (t) {
    case ANV_GGUF_U8:
    case ANV_GGUF_BOOL:
        return v.u8;
    case ANV_GGUF_I8:
        return v.i8;
    case ANV_GGUF_U16:
        return v.u16;
    case ANV_GGUF_I16:
        return v.i16;
    case ANV_GGUF_U32:
        return v.u32;
    case ANV_GGUF_I32:
        return v.i32;
    case ANV_GGUF_F32:
        return v.f32;
    case ANV_GGUF_U64:
        return (double)v.u64;
    case ANV_GGUF_I64:
        return (double)v.i64;
    case ANV_GGUF_F64:
        return v.f64;
    default:
        return 0;
    }
}

static const anv_gguf_kv_t *find_typed(const anv_gguf_t *g, const char *key, int numeric) {
    const anv_gguf_kv_t *kv = anv_gguf_find_kv(g, key);
    if (!kv) {
        anv_error("%s: missing metadata key '%s'", g->source, key);
        return NULL;
    }
    int ok = numeric ? scalar_size(kv->type) != 0 && kv->type != ANV_GGUF_BOOL : kv->type == ANV_GGUF_STRING;
    if (!ok) {
        anv_error("%s: metadata key '%s' has type %u, expected %s", g->source, key, (unsigned)kv->type,
                  numeric ? "a number" : "a string");
        return NULL;
    }
    return kv;
}

int anv_gguf_get_u32(const anv_gguf_t *g, const char *key, uint32_t *out) {
    const anv_gguf_kv_t *kv = find_typed(g, key, 1);
    if (!kv) return -1;
    double v = scalar_value(kv->type, kv->value);
    if (kv->type == ANV_GGUF_F32 || kv->type == ANV_GGUF_F64 || v < 0 || v > 4294967295.0)
        return anv_error("%s: metadata key '%s' is not a u32 value", g->source, key);
    *out = (uint32_t)v;
    return 0;
}

int anv_gguf_get_f32(const anv_gguf_t *g, const char *key, float *out) {
    const anv_gguf_kv_t *kv = find_typed(g, key, 1);
    if (!kv) return -1;
    *out = (float)scalar_value(kv->type, kv->value);
    return 0;
}

int anv_gguf_get_string(const anv_gguf_t *g, const char *key, const char **s, size_t *len) {
    const anv_gguf_kv_t *kv = find_typed(g, key, 0);
    if (!kv) return -1;
    *s = (const char *)kv->value;
    *len = (size_t)kv->n;
    return 0;
}

void anv_gguf_array_strings(const anv_gguf_kv_t *kv, const char **s, size_t *lens) {
    const uint8_t *p = kv->value;
    for (uint64_t i = 0; i < kv->n; i++) {
        uint64_t n;
        memcpy(&n, p, 8);
        s[i] = (const char *)p + 8;
        lens[i] = (size_t)n;
        p += 8 + n;
    }
}

double anv_gguf_array_number(const anv_gguf_kv_t *kv, uint64_t i) {
    return scalar_value(kv->arr_type, kv->value + i * scalar_size(kv->arr_type));
}

void anv_gguf_tensor_to_f32(const anv_gguf_tensor_t *t, float *dst) {
    switch (t->type) {
    case ANV_GGML_F32:
        memcpy(dst, t->data, t->numel * 4);
        break;
    case ANV_GGML_F16:
        for (uint64_t i = 0; i < t->numel; i++) {
            uint16_t h;
            memcpy(&h, (const uint8_t *)t->data + 2 * i, 2);
            dst[i] = anv_f16_to_f32(h);
        }
        break;
    case ANV_GGML_Q8_0:
        anv_q8_0_dequantize(t->data, t->numel, dst);
        break;
    }
}

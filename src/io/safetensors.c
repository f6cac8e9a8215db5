/* safetensors reading (memory-mapped, fully validated) and F32 writing (atomic). */
#include "anvil/safetensors.h"

#include "anvil/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADER_BYTES (100u << 20) /* the format's own limit */

struct anv_safetensors {
    anv_mmap_t map; /* empty when parsing a caller's buffer */
    char *source;
    anv_json_doc_t *doc;
    int n;
    anv_st_tensor_t *tensors;
    const anv_json_t *metadata;
};

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
              {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1}};

/* A JSON number that is an exact non-negative integer below 2^53. */
static int get_index(const anv_json_t *v, uint64_t *out) {
    if (!anv_json_is_integer(v, 0, 9007199254740992.0)) return -1;
    *out = (uint64_t)v->number;
    return 0;
}

static int parse_tensor(const char *src, const char *name, const anv_json_t *v, size_t data_size, anv_st_tensor_t *t,
                        uint64_t *begin) {
    t->name = name;
    if (v->type != ANV_JSON_OBJECT) return anv_error("%s: tensor '%s': entry is not an object", src, name);
    const anv_json_t *dt = anv_json_get(v, "dtype"), *shape = anv_json_get(v, "shape"),
                     *offs = anv_json_get(v, "data_offsets");
    if (!dt || dt->type != ANV_JSON_STRING) return anv_error("%s: tensor '%s': missing dtype", src, name);
    size_t k = 0, n_dtypes = sizeof dtypes / sizeof dtypes[0];
    while (k < n_dtypes && strcmp(dtypes[k].name, dt->str) != 0) k++;
    if (k == n_dtypes) return anv_error("%s: tensor '%s': unsupported dtype '%s'", src, name, dt->str);
    t->dtype = (anv_st_dtype_t)k;
    if (!shape || shape->type != ANV_JSON_ARRAY) return anv_error("%s: tensor '%s': missing shape", src, name);
    if (shape->len > ANV_ST_MAX_DIMS)
        return anv_error("%s: tensor '%s': %zu dimensions (at most %d)", src, name, shape->len, ANV_ST_MAX_DIMS);
    t->ndim = (int)shape->len;
    uint64_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t d;
        if (get_index(&shape->items[i], &d) != 0)
            return anv_error("%s: tensor '%s': shape[%d] is not a non-negative integer", src, name, i);
        if (d && numel > UINT64_MAX / d / 8) return anv_error("%s: tensor '%s': shape is too large", src, name);
        numel *= d;
        t->shape[i] = (int64_t)d;
    }
    uint64_t b, e;
    if (!offs || offs->type != ANV_JSON_ARRAY || offs->len != 2 || get_index(&offs->items[0], &b) != 0 ||
        get_index(&offs->items[1], &e) != 0)
        return anv_error("%s: tensor '%s': data_offsets must be [begin, end]", src, name);
    if (b > e || e > data_size)
        return anv_error("%s: tensor '%s': data_offsets [%llu, %llu] outside the %zu-byte data section%s", src, name,
                         (unsigned long long)b, (unsigned long long)e, data_size,
                         b <= e && e > data_size ? " (truncated file?)" : "");
    if (e - b != numel * dtypes[k].size)
        return anv_error("%s: tensor '%s': shape holds %llu x %zu bytes but data_offsets span %llu bytes", src, name,
                         (unsigned long long)numel, dtypes[k].size, (unsigned long long)(e - b));
    t->numel = (size_t)numel;
    t->nbytes = (size_t)(e - b);
    *begin = b;
    return 0;
}

static int parse_metadata(const char *src, const anv_json_t *v) {
    if (v->type != ANV_JSON_OBJECT) return anv_error("%s: __metadata__ is not an object", src);
    for (size_t i = 0; i < v->len; i++)
        if (v->items[i].type != ANV_JSON_STRING)
            return anv_error("%s: __metadata__ value '%s' is not a string", src, v->keys[i]);
    return 0;
}

typedef struct {
    uint64_t begin;
    int index;
} span_t;

static int cmp_span(const void *a, const void *b) {
    const span_t *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : x->index - y->index;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const anv_st_tensor_t *)a)->name, ((const anv_st_tensor_t *)b)->name);
}

/* Tensors must tile the data section exactly: sorted by offset, each starts where the last ended. */
static int check_layout(anv_safetensors_t *st, span_t *spans, size_t data_size) {
    const char *src = st->source;
    qsort(spans, (size_t)st->n, sizeof *spans, cmp_span);
    uint64_t at = 0;
    for (int i = 0; i < st->n; i++) {
        const anv_st_tensor_t *t = &st->tensors[spans[i].index];
        if (spans[i].begin < at) return anv_error("%s: tensor '%s' overlaps another tensor", src, t->name);
        if (spans[i].begin > at)
            return anv_error("%s: hole of %llu bytes in the data section before tensor '%s'", src,
                             (unsigned long long)(spans[i].begin - at), t->name);
        at += t->nbytes;
    }
    if (at != data_size)
        return anv_error("%s: data section has %zu bytes but the tensors cover %llu", src, data_size,
                         (unsigned long long)at);
    /* Duplicate names (JSON objects may repeat keys). */
    anv_st_tensor_t *sorted = anv_alloc((size_t)st->n * sizeof *sorted + 1, "tensor names");
    if (!sorted) return -1;
    memcpy(sorted, st->tensors, (size_t)st->n * sizeof *sorted);
    qsort(sorted, (size_t)st->n, sizeof *sorted, cmp_name);
    int rc = 0;
    for (int i = 1; i < st->n && rc == 0; i++)
        if (!strcmp(sorted[i - 1].name, sorted[i].name))
            rc = anv_error("%s: tensor '%s' appears twice", src, sorted[i].name);
    anv_free(sorted);
    return rc;
}

static int parse_image(anv_safetensors_t *st, const unsigned char *data, size_t size) {
    const char *src = st->source;
    if (size < 8) return anv_error("%s: not a safetensors file: %zu bytes (header length needs 8)", src, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | data[i];
    if (hlen > size - 8)
        return anv_error("%s: header length %llu at offset 0 exceeds the file size %zu (truncated?)", src,
                         (unsigned long long)hlen, size);
    if (hlen > MAX_HEADER_BYTES || hlen < 2)
        return anv_error("%s: implausible header length %llu at offset 0", src, (unsigned long long)hlen);
    if (anv_json_parse((const char *)data + 8, (size_t)hlen, src, &st->doc) != 0) return -1;
    const anv_json_t *root = anv_json_root(st->doc);
    if (root->type != ANV_JSON_OBJECT) return anv_error("%s: header is not a JSON object", src);
    size_t data_size = size - 8 - (size_t)hlen;
    const unsigned char *base = data + 8 + hlen;
    st->tensors = anv_calloc((root->len + 1) * sizeof *st->tensors, "tensor table");
    span_t *spans = anv_alloc((root->len + 1) * sizeof *spans, "tensor table");
    int rc = st->tensors && spans ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < root->len; i++) {
        if (!strcmp(root->keys[i], "__metadata__")) {
            if (st->metadata)
                rc = anv_error("%s: __metadata__ appears twice", src);
            else if ((rc = parse_metadata(src, &root->items[i])) == 0)
                st->metadata = &root->items[i];
            continue;
        }
        anv_st_tensor_t *t = &st->tensors[st->n];
        rc = parse_tensor(src, root->keys[i], &root->items[i], data_size, t, &spans[st->n].begin);
        if (rc == 0) {
            t->data = base + spans[st->n].begin;
            spans[st->n].index = st->n;
            st->n++;
        }
    }
    if (rc == 0) rc = check_layout(st, spans, data_size);
    anv_free(spans);
    return rc;
}

static int finish_open(anv_safetensors_t *st, const void *data, size_t size, anv_safetensors_t **out) {
    if (parse_image(st, data, size) != 0) {
        anv_safetensors_close(st);
        return -1;
    }
    *out = st;
    return 0;
}

static anv_safetensors_t *new_handle(const char *source) {
    anv_safetensors_t *st = anv_calloc(sizeof *st, "safetensors");
    if (st && !(st->source = anv_strdup(source))) {
        anv_free(st);
        st = NULL;
    }
    return st;
}

int anv_safetensors_parse(const void *data, size_t size, const char *source, anv_safetensors_t **out) {
    *out = NULL;
    anv_safetensors_t *st = new_handle(source);
    return st ? finish_open(st, data, size, out) : -1;
}

int anv_safetensors_open(const char *path, anv_safetensors_t **out) {
    *out = NULL;
    anv_safetensors_t *st = new_handle(path);
    if (!st) return -1;
    if (anv_mmap_open(path, &st->map) != 0) {
        anv_safetensors_close(st);
        return -1;
    }
    return finish_open(st, st->map.data, st->map.size, out);
}

void anv_safetensors_close(anv_safetensors_t *st) {
    if (!st) return;
    anv_mmap_close(&st->map);
    if (st->doc) anv_json_free(st->doc);
    anv_free(st->tensors);
    anv_free(st->source);
    anv_free(st);
}

int anv_safetensors_count(const anv_safetensors_t *st) { return st->n; }
const anv_st_tensor_t *anv_safetensors_tensor(const anv_safetensors_t *st, int i) { return &st->tensors[i]; }
const char *anv_safetensors_source(const anv_safetensors_t *st) { return st->source; }

const anv_st_tensor_t *anv_safetensors_find(const anv_safetensors_t *st, const char *name) {
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

const char *anv_safetensors_metadata(const anv_safetensors_t *st, const char *key) {
    const anv_json_t *v = st->metadata ? anv_json_get(st->metadata, key) : NULL;
    return v ? v->str : NULL;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023;
    float f;
    if (exp == 0) { /* zero or subnormal: man * 2^-24 */
        f = ldexpf((float)man, -24);
        return sign ? -f : f;
    }
    uint32_t bits = exp == 31 ? sign | 0x7F800000u | man << 13 : sign | (exp + 112) << 23 | man << 13;
    memcpy(&f, &bits, 4);
    return f;
}

int anv_safetensors_read_f32(const anv_safetensors_t *st, const char *name, int ndim, const int64_t *shape,
                             float *dst) {
    const anv_st_tensor_t *t = anv_safetensors_find(st, name);
    if (!t) return anv_error("%s: tensor '%s' is missing", st->source, name);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char got[128] = "", want[128] = "";
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        for (int i = 0; i < ndim; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? ", " : "", (long long)shape[i]);
        return anv_error("%s: tensor '%s' has shape [%s], expected [%s]", st->source, name, got, want);
    }
    const unsigned char *p = t->data;
    if (t->dtype == ANV_ST_F32) {
        memcpy(dst, p, t->nbytes);
    } else if (t->dtype == ANV_ST_F16 || t->dtype == ANV_ST_BF16) {
        for (size_t i = 0; i < t->numel; i++) {
            uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            if (t->dtype == ANV_ST_F16) {
                dst[i] = half_to_float(h);
            } else {
                uint32_t bits = (uint32_t)h << 16;
                memcpy(&dst[i], &bits, 4);
            }
        }
    } else {
        return anv_error("%s: tensor '%s' has dtype %s, expected a float type", st->source, name,
                         dtypes[t->dtype].name);
    }
    return 0;
}

int anv_safetensors_write_f32(const char *path, const anv_st_write_t *tensors, int n, const char *const *meta,
                              int n_meta) {
    anv_buf_t h = {0};
    int rc = anv_buf_puts(&h, "{");
    if (n_meta > 0) {
        rc |= anv_buf_puts(&h, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            rc |= anv_buf_puts(&h, i ? "," : "");
            rc |= anv_buf_json_string(&h, meta[2 * i], strlen(meta[2 * i]));
            rc |= anv_buf_puts(&h, ":");
            rc |= anv_buf_json_string(&h, meta[2 * i + 1], strlen(meta[2 * i + 1]));
        }
        rc |= anv_buf_puts(&h, n ? "}," : "}");
    }
    size_t offset = 0;
    for (int i = 0; i < n; i++) {
        const anv_st_write_t *t = &tensors[i];
        size_t numel = 1;
        rc |= anv_buf_puts(&h, i ? "," : "");
        rc |= anv_buf_json_string(&h, t->name, strlen(t->name));
        rc |= anv_buf_puts(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            rc |= anv_buf_printf(&h, "%s%lld", d ? "," : "", (long long)t->shape[d]);
            numel *= (size_t)t->shape[d];
        }
        rc |= anv_buf_printf(&h, "],\"data_offsets\":[%zu,%zu]}", offset, offset + numel * 4);
        offset += numel * 4;
    }
    rc |= anv_buf_puts(&h, "}");
    while (rc == 0 && h.len % 8) rc |= anv_buf_puts(&h, " "); /* data section 8-byte aligned */
    if (rc != 0) {
        anv_buf_free(&h);
        return -1;
    }
    unsigned char len_le[8];
    for (int i = 0; i < 8; i++) len_le[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    anv_atomic_file_t af;
    if (anv_atomic_open(&af, path) != 0) {
        anv_buf_free(&h);
        return -1;
    }
    rc = anv_atomic_write(&af, len_le, 8);
    if (rc == 0) rc = anv_atomic_write(&af, h.data, h.len);
    for (int i = 0; rc == 0 && i < n; i++) {
        size_t numel = 1;
        for (int d = 0; d < tensors[i].ndim; d++) numel *= (size_t)tensors[i].shape[d];
        rc = anv_atomic_write(&af, tensors[i].data, numel * 4);
    }
    anv_buf_free(&h);
    if (rc != 0) {
        anv_atomic_abort(&af);
        return -1;
    }
    return anv_atomic_commit(&af);
}

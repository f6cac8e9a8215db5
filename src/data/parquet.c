/* Parquet reader: the Thrift compact protocol of the footer and page headers, the schema walk that
 * finds the column, the page codecs, and the level and value decoders. See anvil/parquet.h; the
 * format is Apache Parquet's (parquet.thrift, Encodings.md). */
#include "anvil/parquet.h"

#include <errno.h>
#include <snappy-c.h>
#include <stdarg.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#define MAX_FOOTER (256u << 20)
#define MAX_PAGE (1u << 30)
#define MAX_HEADER (16u << 20)

enum { REQUIRED, OPTIONAL, REPEATED };
enum { BOOLEAN, INT32, INT64, INT96, FLOAT, DOUBLE, BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY };
enum { UNCOMPRESSED, SNAPPY, GZIP, LZO, BROTLI, LZ4, ZSTD, LZ4_RAW };
enum { DATA_PAGE, INDEX_PAGE, DICTIONARY_PAGE, DATA_PAGE_V2 };
enum {
    PLAIN = 0,
    PLAIN_DICTIONARY = 2,
    RLE = 3,
    DELTA_LENGTH_BYTE_ARRAY = 6,
    DELTA_BYTE_ARRAY = 7,
    RLE_DICTIONARY = 8
};

static const char *const TYPE_NAMES[] = {"BOOLEAN", "INT32",  "INT64",      "INT96",
                                         "FLOAT",   "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"};
static const char *const CODEC_NAMES[] = {"UNCOMPRESSED", "SNAPPY", "GZIP", "LZO", "BROTLI", "LZ4", "ZSTD", "LZ4_RAW"};

/* ---- Thrift compact protocol: a cursor that turns bad on running out of bytes ---- */

enum { T_STOP, T_TRUE, T_FALSE, T_BYTE, T_I16, T_I32, T_I64, T_DOUBLE, T_BINARY, T_LIST, T_SET, T_MAP, T_STRUCT };

typedef struct {
    const uint8_t *p, *end;
    int bad;
} cursor_t;

static uint64_t varint(cursor_t *c) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && c->p < c->end; shift += 7) {
        uint8_t b = *c->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    c->bad = 1;
    return 0;
}

static int64_t zigzag(cursor_t *c) {
    uint64_t v = varint(c);
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static int32_t int32_field(cursor_t *c) {
    int64_t v = zigzag(c);
    if (v < INT32_MIN || v > INT32_MAX) c->bad = 1;
    return (int32_t)v;
}

static void bytes(cursor_t *c, const uint8_t **s, size_t *n) {
    uint64_t len = varint(c);
    if (c->bad || len > (uint64_t)(c->end - c->p)) {
        c->bad = 1;
        *s = NULL;
        *n = 0;
        return;
    }
    *s = c->p;
    *n = (size_t)len;
    c->p += len;
}

/* The next field of a struct: its type (T_STOP at the end) and id. */
static int field(cursor_t *c, int *id) {
    if (c->p >= c->end) {
        c->bad = 1;
        return T_STOP;
    }
    uint8_t b = *c->p++;
    int type = b & 15, delta = b >> 4;
    if (type == T_STOP) return T_STOP;
    *id = delta ? *id + delta : (int)zigzag(c);
    return type;
}

/* A list's header: its length (each element takes at least a byte) and element type. */
static uint64_t list_header(cursor_t *c, int *elem) {
    if (c->p >= c->end) {
        c->bad = 1;
        return 0;
    }
    uint8_t b = *c->p++;
    uint64_t n = b >> 4;
    *elem = b & 15;
    if (n == 15) n = varint(c);
    if (n > (uint64_t)(c->end - c->p)) c->bad = 1;
    return c->bad ? 0 : n;
}

/* Skips a value; booleans take a byte inside collections and none as struct fields. */
static void skip(cursor_t *c, int type, int in_collection, int depth) {
    const uint8_t *s;
    size_t n;
    if (depth > 32) c->bad = 1;
    if (c->bad) return;
    switch (type) {
    case T_TRUE:
    case T_FALSE:
    case T_BYTE:
        if (type == T_BYTE || in_collection) c->p < c->end ? (void)c->p++ : (void)(c->bad = 1);
        break;
    case T_I16:
    case T_I32:
    case T_I64:
        varint(c);
        break;
    case T_DOUBLE:
        if (c->end - c->p < 8)
            c->bad = 1;
        else
            c->p += 8;
        break;
    case T_BINARY:
        bytes(c, &s, &n);
        break;
    case T_LIST:
    case T_SET: {
        int elem;
        for (uint64_t i = list_header(c, &elem); i > 0 && !c->bad; i--) skip(c, elem, 1, depth + 1);
        break;
    }
    case T_MAP: {
        uint64_t count = varint(c);
        if (count == 0) break;
        if (c->p >= c->end || count > (uint64_t)(c->end - c->p)) {
            c->bad = 1;
            break;
        }
        uint8_t kv = *c->p++;
        for (uint64_t i = 0; i < count && !c->bad; i++) {
            skip(c, kv >> 4, 1, depth + 1);
            skip(c, kv & 15, 1, depth + 1);
        }
        break;
    }
    case T_STRUCT: {
        int id = 0, t;
        while (!c->bad && (t = field(c, &id)) != T_STOP) skip(c, t, 0, depth + 1);
        break;
    }
    default:
        c->bad = 1;
    }
}

/* ---- the footer: schema, row groups, the column's chunks ---- */

typedef struct {
    int type, repetition, num_children;
    const uint8_t *name;
    size_t name_len;
} schema_node_t;

typedef struct {
    int64_t num_rows, num_values, compressed_size, data_offset, dict_offset;
    int codec, type, has_dict, external;
} chunk_t;

typedef struct {
    const uint8_t *s;
    size_t n;
} span_t;

struct anv_parquet {
    FILE *f;
    const char *name, *column;
    uint64_t size;
    /* the column */
    int max_def, leaf, found;
    chunk_t *chunks; /* one per row group */
    size_t n_groups;
    /* where reading is */
    size_t group;
    int64_t row_base, values_done; /* rows before this row group; values of its chunk read */
    uint64_t pos, chunk_end, nulls;
    int chunk_open;
    ZSTD_DCtx *zstd;
    uint8_t *header, *raw, *page, *dict_data, *dba;
    size_t header_cap, raw_cap, page_cap, dict_cap, dba_cap;
    span_t *dict, *values;
    size_t n_dict, dict_span_cap, values_cap;
    int has_dict;     /* this chunk's dictionary page has been read */
    uint32_t *levels; /* definition levels, dictionary indices, lengths: one page's at a time */
    size_t levels_cap;
    uint8_t *null_flags;
    size_t null_cap;
    /* the page being handed out */
    uint64_t page_at;
    const uint8_t *page_nulls; /* NULL: no nulls on the page */
    size_t page_values, page_i, value_i;
};

static int failv(anv_parquet_t *p, const char *fmt, va_list ap) {
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (p->chunk_open)
        return anv_error("%s: row group %zu, column \"%s\", page at byte %llu: %s", p->name, p->group, p->column,
                         (unsigned long long)p->page_at, msg);
    return anv_error("%s: %s", p->name, msg);
}

static int fail(anv_parquet_t *p, const char *fmt, ...) ANV_PRINTF(2, 3);
static int fail(anv_parquet_t *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    failv(p, fmt, ap);
    va_end(ap);
    return -1;
}

static int read_at(anv_parquet_t *p, uint64_t off, void *buf, size_t n, const char *what) {
    if (off > p->size || n > p->size - off)
        return fail(p, "%s of %zu bytes at byte %llu runs past the end of the file (%llu bytes): truncated?", what, n,
                    (unsigned long long)off, (unsigned long long)p->size);
    if (fseeko(p->f, (off_t)off, SEEK_SET) != 0 || fread(buf, 1, n, p->f) != n)
        return fail(p, "cannot read %s at byte %llu: %s", what, (unsigned long long)off,
                    ferror(p->f) ? strerror(errno) : "short read");
    return 0;
}

static void schema_node(cursor_t *c, schema_node_t *e) {
    int id = 0, t;
    memset(e, 0, sizeof *e);
    e->type = -1;
    while (!c->bad && (t = field(c, &id)) != T_STOP) {
        if (id == 1 && t == T_I32)
            e->type = int32_field(c);
        else if (id == 3 && t == T_I32)
            e->repetition = int32_field(c);
        else if (id == 4 && t == T_BINARY)
            bytes(c, &e->name, &e->name_len);
        else if (id == 5 && t == T_I32)
            e->num_children = int32_field(c);
        else
            skip(c, t, 0, 1);
    }
}

static void column_meta(cursor_t *c, chunk_t *k) {
    int id = 0, t;
    while (!c->bad && (t = field(c, &id)) != T_STOP) {
        if (id == 1 && t == T_I32)
            k->type = int32_field(c);
        else if (id == 4 && t == T_I32)
            k->codec = int32_field(c);
        else if (id == 5 && t == T_I64)
            k->num_values = zigzag(c);
        else if (id == 7 && t == T_I64)
            k->compressed_size = zigzag(c);
        else if (id == 9 && t == T_I64)
            k->data_offset = zigzag(c);
        else if (id == 11 && t == T_I64)
            k->dict_offset = zigzag(c), k->has_dict = 1;
        else
            skip(c, t, 0, 1);
    }
}

static void column_chunk(cursor_t *c, chunk_t *k) {
    int id = 0, t;
    while (!c->bad && (t = field(c, &id)) != T_STOP) {
        if (id == 1 && t == T_BINARY) {
            skip(c, t, 0, 1);
            k->external = 1;
        } else if (id == 3 && t == T_STRUCT) {
            column_meta(c, k);
        } else {
            skip(c, t, 0, 1);
        }
    }
}

/* RowGroup: its row count, and of its column chunks the one of our leaf. */
static void row_group(cursor_t *c, int leaf, chunk_t *k) {
    int id = 0, t, elem;
    memset(k, 0, sizeof *k);
    k->type = -1;
    while (!c->bad && (t = field(c, &id)) != T_STOP) {
        if (id == 1 && t == T_LIST) {
            uint64_t n = list_header(c, &elem);
            for (uint64_t i = 0; i < n && !c->bad; i++) {
                if (elem != T_STRUCT)
                    c->bad = 1;
                else if ((int)i == leaf)
                    column_chunk(c, k);
                else
                    skip(c, elem, 1, 1);
            }
        } else if (id == 3 && t == T_I64) {
            k->num_rows = zigzag(c);
        } else {
            skip(c, t, 0, 1);
        }
    }
}

/* Walks the schema tree below nodes[*i]; the leaf whose dotted path is the column gives its index
 * and definition level. `names` collects leaf paths for the error message. */
static int walk(anv_parquet_t *p, const schema_node_t *nodes, size_t n, size_t *i, char *path, size_t path_len, int def,
                int rep, int depth, int *leaf, anv_buf_t *names) {
    if (*i >= n || depth > 64)
        return fail(p, "footer: corrupt schema (%s)", *i >= n ? "fewer nodes than children" : "nested too deep");
    const schema_node_t *e = &nodes[(*i)++];
    if (depth > 0) {
        if (!e->name) return fail(p, "footer: corrupt schema (a column without a name)");
        def += e->repetition == OPTIONAL;
        rep += e->repetition == REPEATED;
        if (path_len + e->name_len + 2 > 1024) return fail(p, "footer: a column path longer than 1024 bytes");
        if (depth > 1) path[path_len++] = '.';
        memcpy(path + path_len, e->name, e->name_len);
        path_len += e->name_len;
        path[path_len] = 0;
    }
    if (e->num_children < 0) return fail(p, "footer: corrupt schema (negative child count)");
    if (depth == 0 || e->num_children > 0) {
        for (int k = 0; k < e->num_children; k++)
            if (walk(p, nodes, n, i, path, path_len, def, rep, depth + 1, leaf, names) != 0) return -1;
        return 0;
    }
    if (!strcmp(path, p->column) && strlen(path) == path_len) {
        if (e->type != BYTE_ARRAY)
            return fail(p, "column \"%s\" holds %s values, not strings", path,
                        e->type >= 0 && e->type <= FIXED_LEN_BYTE_ARRAY ? TYPE_NAMES[e->type] : "unknown");
        if (rep > 0) return fail(p, "column \"%s\" is repeated (a list): anvil reads one string per row", path);
        p->found = 1;
        p->leaf = *leaf;
        p->max_def = def;
    }
    if (names->len < 400 && (names->len == 0 || anv_buf_puts(names, ", ") == 0)) anv_buf_puts(names, path);
    (*leaf)++;
    return 0;
}

static int parse_footer(anv_parquet_t *p, const uint8_t *buf, size_t len) {
    cursor_t c = {buf, buf + len, 0};
    schema_node_t *nodes = NULL;
    size_t n_nodes = 0;
    cursor_t groups = {0};
    uint64_t n_groups = 0;
    int id = 0, t, elem, rc = -1;
    while (!c.bad && (t = field(&c, &id)) != T_STOP) {
        if (id == 2 && t == T_LIST && !nodes) {
            n_nodes = list_header(&c, &elem);
            if (elem != T_STRUCT || n_nodes == 0) c.bad = 1;
            if (c.bad || !(nodes = anv_alloc(n_nodes * sizeof *nodes, "Parquet schema"))) break;
            for (size_t i = 0; i < n_nodes && !c.bad; i++) schema_node(&c, &nodes[i]);
        } else if (id == 4 && t == T_LIST) {
            groups = c; /* read once the schema has named the column's leaf */
            n_groups = list_header(&c, &elem);
            if (elem != T_STRUCT && n_groups) c.bad = 1;
            for (uint64_t i = 0; i < n_groups && !c.bad; i++) skip(&c, T_STRUCT, 1, 1);
        } else {
            skip(&c, t, 0, 0);
        }
    }
    if (c.bad || !nodes) {
        if (c.bad || n_nodes)
            fail(p, "corrupt footer (file metadata of %zu bytes)", len);
        else
            fail(p, "footer: no schema");
        anv_free(nodes);
        return -1;
    }
    char path[1024] = "";
    size_t i = 0;
    int leaf = 0;
    anv_buf_t names = {0};
    if (walk(p, nodes, n_nodes, &i, path, 0, 0, 0, 0, &leaf, &names) == 0) {
        if (!p->found)
            fail(p, "no column \"%s\" (columns: %s); choose one with --text-field", p->column,
                 names.len ? names.data : "none");
        else if (n_groups && !(p->chunks = anv_calloc(n_groups * sizeof *p->chunks, "Parquet row groups")))
            ;
        else
            rc = 0;
    }
    anv_buf_free(&names);
    anv_free(nodes);
    if (rc != 0) return -1;
    list_header(&groups, &elem);
    for (size_t g = 0; g < n_groups; g++) {
        chunk_t *k = &p->chunks[g];
        row_group(&groups, p->leaf, k);
        if (groups.bad) return fail(p, "corrupt footer (row group %zu)", g);
        if (k->type == -1) return fail(p, "footer: row group %zu has no chunk for column \"%s\"", g, p->column);
        if (k->external)
            return fail(p, "row group %zu keeps column \"%s\" in another file: not supported", g, p->column);
        if (k->num_rows < 0 || k->num_values < 0 || k->num_values > k->num_rows || k->compressed_size < 0 ||
            k->data_offset < 4)
            return fail(p, "footer: row group %zu: impossible sizes or offsets for column \"%s\"", g, p->column);
    }
    p->n_groups = n_groups;
    return 0;
}

int anv_parquet_open(FILE *f, uint64_t size, const char *name, const char *column, anv_parquet_t **out) {
    *out = NULL;
    anv_parquet_t *p = anv_calloc(sizeof *p, "Parquet reader");
    if (!p) {
        fclose(f);
        return -1;
    }
    p->f = f;
    p->size = size;
    p->name = name;
    p->column = column;
    uint8_t tail[8], head[4];
    uint8_t *footer = NULL;
    int rc = -1;
    if (size < 12) {
        fail(p, "not a Parquet file: %llu bytes is too short", (unsigned long long)size);
    } else if (read_at(p, 0, head, 4, "magic") == 0 && read_at(p, size - 8, tail, 8, "footer length") == 0) {
        uint32_t len = (uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16 | (uint32_t)tail[3] << 24;
        if (memcmp(head, "PAR1", 4) || memcmp(tail + 4, "PAR1", 4))
            fail(p, "not a Parquet file (no PAR1 at its %s): truncated?", memcmp(head, "PAR1", 4) ? "start" : "end");
        else if (len > size - 12 || len > MAX_FOOTER)
            fail(p, "corrupt footer length %u for a file of %llu bytes", len, (unsigned long long)size);
        else if ((footer = anv_alloc(len ? len : 1, "Parquet footer")) &&
                 read_at(p, size - 8 - len, footer, len, "footer") == 0 && parse_footer(p, footer, len) == 0)
            rc = 0;
    }
    anv_free(footer);
    if (rc != 0 || !(p->zstd = ZSTD_createDCtx())) {
        if (rc == 0) anv_error("out of memory: zstd decoder for %s", name);
        anv_parquet_close(p);
        return -1;
    }
    *out = p;
    return 0;
}

void anv_parquet_close(anv_parquet_t *p) {
    if (!p) return;
    if (p->f) fclose(p->f);
    ZSTD_freeDCtx(p->zstd);
    anv_free(p->chunks);
    anv_free(p->header);
    anv_free(p->raw);
    anv_free(p->page);
    anv_free(p->dict_data);
    anv_free(p->dba);
    anv_free(p->dict);
    anv_free(p->values);
    anv_free(p->levels);
    anv_free(p->null_flags);
    anv_free(p);
}

uint64_t anv_parquet_offset(const anv_parquet_t *p) { return p->pos; }
uint64_t anv_parquet_nulls(const anv_parquet_t *p) { return p->nulls; }

/* ---- pages ---- */

typedef struct {
    int type, encoding, def_encoding, compressed;
    int32_t uncompressed_size, compressed_size, num_values, def_len, rep_len;
} page_header_t;

static void data_page_header(cursor_t *c, page_header_t *h, int v2) {
    int id = 0, t;
    while (!c->bad && (t = field(c, &id)) != T_STOP) {
        if (id == 1 && t == T_I32)
            h->num_values = int32_field(c);
        else if (!v2 && id == 2 && t == T_I32)
            h->encoding = int32_field(c);
        else if (!v2 && id == 3 && t == T_I32)
            h->def_encoding = int32_field(c);
        else if (v2 && id == 4 && t == T_I32)
            h->encoding = int32_field(c);
        else if (v2 && id == 5 && t == T_I32)
            h->def_len = int32_field(c);
        else if (v2 && id == 6 && t == T_I32)
            h->rep_len = int32_field(c);
        else if (v2 && id == 7 && (t == T_TRUE || t == T_FALSE))
            h->compressed = t == T_TRUE;
        else
            skip(c, t, 0, 1);
    }
}

static void page_header(cursor_t *c, page_header_t *h) {
    int id = 0, t;
    memset(h, 0, sizeof *h);
    h->type = -1;
    h->compressed = 1;
    while (!c->bad && (t = field(c, &id)) != T_STOP) {
        if (id == 1 && t == T_I32)
            h->type = int32_field(c);
        else if (id == 2 && t == T_I32)
            h->uncompressed_size = int32_field(c);
        else if (id == 3 && t == T_I32)
            h->compressed_size = int32_field(c);
        else if ((id == 5 || id == 7 || id == 8) && t == T_STRUCT)
            data_page_header(c, h, id == 8);
        else
            skip(c, t, 0, 1);
    }
}

/* Reads the header of the page at p->pos and moves p->pos past it. */
static int read_page_header(anv_parquet_t *p, page_header_t *h) {
    size_t want = 256;
    for (;;) {
        size_t n = p->chunk_end - p->pos < want ? (size_t)(p->chunk_end - p->pos) : want;
        if (anv_grow(&p->header, &p->header_cap, n, 1, "Parquet page header") != 0 ||
            read_at(p, p->pos, p->header, n, "page header") != 0)
            return -1;
        cursor_t c = {p->header, p->header + n, 0};
        page_header(&c, h);
        if (!c.bad) {
            p->pos += (uint64_t)(c.p - p->header);
            break;
        }
        if (n < want || want >= MAX_HEADER) return fail(p, "corrupt page header");
        want *= 4;
    }
    if (h->compressed_size < 0 || h->uncompressed_size < 0 || (uint32_t)h->uncompressed_size > MAX_PAGE ||
        h->num_values < 0 || h->def_len < 0 || h->rep_len < 0)
        return fail(p, "corrupt page header (negative or impossible sizes)");
    if ((uint64_t)h->compressed_size > p->chunk_end - p->pos)
        return fail(p, "a page of %d bytes runs past the end of its column chunk (byte %llu)", h->compressed_size,
                    (unsigned long long)p->chunk_end);
    return 0;
}

/* Decompresses src (n bytes) into exactly out_n bytes at dst. */
static int decompress(anv_parquet_t *p, int codec, const uint8_t *src, size_t n, uint8_t *dst, size_t out_n) {
    size_t got = 0;
    switch (codec) {
    case UNCOMPRESSED:
        if (n != out_n) break;
        memcpy(dst, src, n);
        return 0;
    case SNAPPY:
        if (snappy_uncompressed_length((const char *)src, n, &got) != SNAPPY_OK || got != out_n)
            return fail(p, "corrupt snappy page (its length header says %zu bytes, the page header %zu)", got, out_n);
        if (snappy_uncompress((const char *)src, n, (char *)dst, &got) != SNAPPY_OK || got != out_n)
            return fail(p, "corrupt snappy page");
        return 0;
    case GZIP: {
        z_stream z = {0};
        if (inflateInit2(&z, 15 + 32) != Z_OK) return fail(p, "zlib could not start");
        z.next_in = (uint8_t *)src;
        z.avail_in = (uInt)n;
        z.next_out = dst;
        z.avail_out = (uInt)out_n;
        int zr = inflate(&z, Z_FINISH);
        got = out_n - z.avail_out;
        inflateEnd(&z);
        if (zr != Z_STREAM_END)
            return fail(p, "corrupt gzip page: %s", z.msg ? z.msg : "it does not end where it should");
        if (got != out_n) break;
        return 0;
    }
    case ZSTD:
        got = ZSTD_decompressDCtx(p->zstd, dst, out_n, src, n);
        if (ZSTD_isError(got)) return fail(p, "corrupt zstd page: %s", ZSTD_getErrorName(got));
        if (got != out_n) break;
        return 0;
    default:
        return fail(p, "pages compressed with %s: not supported (uncompressed, snappy, gzip and zstd are)",
                    codec >= 0 && codec <= LZ4_RAW ? CODEC_NAMES[codec] : "an unknown codec");
    }
    return fail(p, "page decompresses to %zu bytes, its header says %zu", got, out_n);
}

/* ---- encodings ---- */

/* bw (0-64) bits at bit offset pos of s[0..n), least significant first; bytes past n read as 0. */
static uint64_t bits_at(const uint8_t *s, size_t n, uint64_t pos, int bw) {
    uint64_t v = 0;
    size_t byte = (size_t)(pos >> 3);
    int shift = (int)(pos & 7), got = 0;
    while (got < bw) {
        uint64_t b = byte < n ? s[byte] : 0;
        v |= (b >> shift) << got;
        got += 8 - shift;
        shift = 0;
        byte++;
    }
    return bw < 64 ? v & ((UINT64_C(1) << bw) - 1) : v;
}

/* n values of the RLE / bit-packed hybrid encoding of width bw (at most 32). */
static int rle_hybrid(anv_parquet_t *p, const uint8_t *s, size_t len, int bw, uint32_t *out, size_t n) {
    cursor_t c = {s, s + len, 0};
    size_t got = 0;
    if (bw > 32) return fail(p, "corrupt page: bit width %d", bw);
    while (got < n) {
        uint64_t header = varint(&c);
        if (c.bad) return fail(p, "corrupt page: levels or indices end after %zu of %zu values", got, n);
        if (header & 1) { /* bit-packed groups of 8 */
            uint64_t count = (header >> 1) * 8, avail = (uint64_t)(c.end - c.p);
            uint64_t need = (header >> 1) * (uint64_t)bw;
            for (uint64_t j = 0; j < count && got < n; j++) out[got++] = (uint32_t)bits_at(c.p, avail, j * bw, bw);
            c.p += need < avail ? need : avail;
        } else { /* a run of one value */
            uint64_t run = header >> 1;
            int nb = (bw + 7) / 8;
            if (c.end - c.p < nb) return fail(p, "corrupt page: a run's value is cut off");
            uint32_t v = (uint32_t)bits_at(c.p, (size_t)nb, 0, bw);
            c.p += nb;
            for (uint64_t j = 0; j < run && got < n; j++) out[got++] = v;
        }
    }
    return 0;
}

/* DELTA_BINARY_PACKED integers at c (at most max of them) into out[]; *count is how many. */
static int delta_binary_packed(anv_parquet_t *p, cursor_t *c, int64_t *out, size_t max, size_t *count) {
    uint64_t block = varint(c), minis = varint(c), total = varint(c);
    uint64_t last = (uint64_t)zigzag(c);
    if (c->bad || block == 0 || block % 128 || minis == 0 || block % minis || (block / minis) % 32 || total > max)
        return fail(p, "corrupt DELTA_BINARY_PACKED header");
    uint64_t per_mini = block / minis, got = 0;
    if (total > 0) out[got++] = (int64_t)last;
    while (got < total) {
        uint64_t min_delta = (uint64_t)zigzag(c);
        if (c->bad || (uint64_t)(c->end - c->p) < minis) return fail(p, "corrupt DELTA_BINARY_PACKED block");
        const uint8_t *widths = c->p;
        c->p += minis;
        for (uint64_t m = 0; m < minis && got < total; m++) {
            int bw = widths[m];
            uint64_t need = per_mini * (uint64_t)bw / 8;
            if (bw > 64 || need > (uint64_t)(c->end - c->p)) return fail(p, "corrupt DELTA_BINARY_PACKED miniblock");
            for (uint64_t j = 0; j < per_mini && got < total; j++) {
                last += min_delta + bits_at(c->p, (size_t)need, j * (uint64_t)bw, bw);
                out[got++] = (int64_t)last;
            }
            c->p += need;
        }
    }
    *count = (size_t)total;
    return 0;
}

/* Lengths that must each be >= 0 and fit, all together, in `avail` bytes. */
static int check_lengths(anv_parquet_t *p, const int64_t *len, size_t n, uint64_t avail, const char *what) {
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (len[i] < 0 || (uint64_t)len[i] > avail - sum) return fail(p, "corrupt page: %s beyond the page", what);
        sum += (uint64_t)len[i];
    }
    return 0;
}

/* n byte-array values of the given encoding at s[0..len) into p->values. */
static int decode_values(anv_parquet_t *p, int encoding, const uint8_t *s, size_t len, size_t n) {
    if (anv_grow(&p->values, &p->values_cap, n, sizeof *p->values, "Parquet page values") != 0) return -1;
    span_t *v = p->values;
    if (encoding == PLAIN) {
        const uint8_t *q = s, *end = s + len;
        for (size_t i = 0; i < n; i++) {
            if (end - q < 4) return fail(p, "corrupt PLAIN page: value %zu of %zu is cut off", i, n);
            uint32_t l = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
            q += 4;
            if (l > (size_t)(end - q)) return fail(p, "corrupt PLAIN page: value %zu of %zu is cut off", i, n);
            v[i] = (span_t){q, l};
            q += l;
        }
        return 0;
    }
    if (encoding == PLAIN_DICTIONARY || encoding == RLE_DICTIONARY) {
        if (!p->has_dict) return fail(p, "dictionary-encoded page without a dictionary page");
        if (n == 0) return 0;
        if (len < 1) return fail(p, "corrupt dictionary-encoded page: empty");
        if (anv_grow(&p->levels, &p->levels_cap, n, sizeof *p->levels, "Parquet dictionary indices") != 0 ||
            rle_hybrid(p, s + 1, len - 1, s[0], p->levels, n) != 0)
            return -1;
        for (size_t i = 0; i < n; i++) {
            if (p->levels[i] >= p->n_dict)
                return fail(p, "corrupt page: dictionary index %u of a dictionary of %zu", p->levels[i], p->n_dict);
            v[i] = p->dict[p->levels[i]];
        }
        return 0;
    }
    if (encoding != DELTA_LENGTH_BYTE_ARRAY && encoding != DELTA_BYTE_ARRAY)
        return fail(p, "value encoding %d: not supported for strings", encoding);
    /* lengths (and prefix lengths) are int64s: borrow the dictionary-index buffer, two per value */
    if (anv_grow(&p->levels, &p->levels_cap, 4 * n + 2, sizeof *p->levels, "Parquet lengths") != 0) return -1;
    int64_t *prefix = (int64_t *)(void *)p->levels, *lens = prefix + n;
    cursor_t c = {s, s + len, 0};
    size_t got_prefix = n, got = 0;
    if (encoding == DELTA_BYTE_ARRAY && delta_binary_packed(p, &c, prefix, n, &got_prefix) != 0) return -1;
    if (delta_binary_packed(p, &c, lens, n, &got) != 0) return -1;
    if (got != n || got_prefix != n) return fail(p, "corrupt page: %zu lengths for %zu values", got, n);
    uint64_t avail = (uint64_t)(c.end - c.p);
    if (check_lengths(p, lens, n, avail, "values") != 0) return -1;
    if (encoding == DELTA_LENGTH_BYTE_ARRAY) {
        for (size_t i = 0; i < n; i++) {
            v[i] = (span_t){c.p, (size_t)lens[i]};
            c.p += lens[i];
        }
        return 0;
    }
    /* DELTA_BYTE_ARRAY: each value is a prefix of the one before plus its suffix */
    uint64_t total = 0, prev = 0;
    for (size_t i = 0; i < n; i++) {
        if (prefix[i] < 0 || (uint64_t)prefix[i] > prev) return fail(p, "corrupt page: a prefix longer than its value");
        prev = (uint64_t)prefix[i] + (uint64_t)lens[i];
        total += prev;
        if (total > MAX_PAGE) return fail(p, "page values exceed 1 GiB");
    }
    if (anv_grow(&p->dba, &p->dba_cap, (size_t)total + 1, 1, "Parquet page values") != 0) return -1;
    size_t at = 0, prev_at = 0;
    for (size_t i = 0; i < n; i++) {
        memmove(p->dba + at, p->dba + prev_at, (size_t)prefix[i]);
        memcpy(p->dba + at + prefix[i], c.p, (size_t)lens[i]);
        c.p += lens[i];
        v[i] = (span_t){p->dba + at, (size_t)(prefix[i] + lens[i])};
        prev_at = at;
        at += v[i].n;
    }
    return 0;
}

static int dictionary_page(anv_parquet_t *p, const page_header_t *h, const uint8_t *raw) {
    if (anv_grow(&p->dict_data, &p->dict_cap, (size_t)h->uncompressed_size + 1, 1, "Parquet dictionary") != 0 ||
        decompress(p, p->chunks[p->group].codec, raw, (size_t)h->compressed_size, p->dict_data,
                   (size_t)h->uncompressed_size) != 0)
        return -1;
    if (h->encoding != PLAIN && h->encoding != PLAIN_DICTIONARY)
        return fail(p, "dictionary page encoding %d: not supported", h->encoding);
    size_t n = (size_t)h->num_values;
    if (n > (size_t)h->uncompressed_size / 4) return fail(p, "corrupt dictionary page: %zu values", n);
    if (decode_values(p, PLAIN, p->dict_data, (size_t)h->uncompressed_size, n) != 0) return -1;
    if (anv_grow(&p->dict, &p->dict_span_cap, n ? n : 1, sizeof *p->dict, "Parquet dictionary") != 0) return -1;
    if (n) memcpy(p->dict, p->values, n * sizeof *p->dict);
    p->n_dict = n;
    p->has_dict = 1;
    return 0;
}

/* A data page (v1 or v2): decompresses it, decodes its definition levels into p->levels (when the
 * column may hold nulls) and its non-null values into p->values. */
static int data_page(anv_parquet_t *p, const page_header_t *h, const uint8_t *raw) {
    const chunk_t *k = &p->chunks[p->group];
    size_t n = (size_t)h->num_values, size = (size_t)h->uncompressed_size, levels_len = 0;
    const uint8_t *data;
    if (h->type == DATA_PAGE_V2) { /* levels come first, never compressed */
        levels_len = (size_t)h->def_len + (size_t)h->rep_len;
        if (h->rep_len) return fail(p, "repetition levels in a column that is not repeated");
        if (levels_len > (size_t)h->compressed_size || levels_len > size)
            return fail(p, "corrupt data page v2: levels longer than the page");
    }
    if (k->codec == UNCOMPRESSED || (h->type == DATA_PAGE_V2 && !h->compressed)) {
        if ((size_t)h->compressed_size != size) return fail(p, "corrupt page: uncompressed sizes disagree");
        data = raw;
    } else {
        if (anv_grow(&p->page, &p->page_cap, size + 1, 1, "Parquet page") != 0) return -1;
        memcpy(p->page, raw, levels_len);
        if (decompress(p, k->codec, raw + levels_len, (size_t)h->compressed_size - levels_len, p->page + levels_len,
                       size - levels_len) != 0)
            return -1;
        data = p->page;
    }
    const uint8_t *levels = data, *values = data + levels_len;
    size_t values_len = size - levels_len, defined = n;
    if (h->type == DATA_PAGE && p->max_def > 0) {
        if (h->def_encoding != RLE)
            return fail(p, "definition levels encoded with %d: only RLE is supported", h->def_encoding);
        if (size < 4) return fail(p, "corrupt data page: no definition levels");
        levels_len = (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 | (size_t)data[3] << 24;
        if (levels_len > size - 4) return fail(p, "corrupt data page: definition levels longer than the page");
        levels = data + 4;
        values = levels + levels_len;
        values_len = size - 4 - levels_len;
    }
    if (p->max_def > 0) {
        int bw = 0;
        while ((1 << bw) <= p->max_def) bw++;
        if (anv_grow(&p->levels, &p->levels_cap, n, sizeof *p->levels, "Parquet definition levels") != 0 ||
            rle_hybrid(p, levels, h->type == DATA_PAGE ? levels_len : (size_t)h->def_len, bw, p->levels, n) != 0)
            return -1;
        defined = 0;
        for (size_t i = 0; i < n; i++) defined += p->levels[i] == (uint32_t)p->max_def;
    }
    /* the decoders borrow p->levels too: keep the definition levels as one byte (null or not) each */
    uint8_t *is_null = NULL;
    if (p->max_def > 0 && defined < n) {
        if (anv_grow(&p->null_flags, &p->null_cap, n, 1, "Parquet null flags") != 0) return -1;
        is_null = p->null_flags;
        for (size_t i = 0; i < n; i++) is_null[i] = p->levels[i] != (uint32_t)p->max_def;
    }
    if (decode_values(p, h->encoding, values, values_len, defined) != 0) return -1;
    p->page_values = n;
    p->page_i = p->value_i = 0;
    p->page_nulls = is_null;
    return 0;
}

/* ---- streaming: row group by row group, page by page ---- */

/* Reads pages up to the next data page holding values: 1 one is ready, 0 the file is done, -1 error. */
static int next_page(anv_parquet_t *p) {
    for (;;) {
        if (!p->chunk_open) {
            if (p->group == p->n_groups) return 0;
            const chunk_t *k = &p->chunks[p->group];
            int64_t start =
                k->has_dict && k->dict_offset >= 4 && k->dict_offset < k->data_offset ? k->dict_offset : k->data_offset;
            p->chunk_open = 1;
            p->page_at = p->pos = (uint64_t)start;
            if ((uint64_t)start > p->size - 8 || (uint64_t)k->compressed_size > p->size - 8 - (uint64_t)start)
                return fail(p, "the column chunk (%lld bytes) runs past the end of the file: truncated?",
                            (long long)k->compressed_size);
            if (k->type != BYTE_ARRAY) return fail(p, "the column chunk is not of strings");
            p->chunk_end = (uint64_t)start + (uint64_t)k->compressed_size;
            p->values_done = 0;
            p->has_dict = 0;
        }
        const chunk_t *k = &p->chunks[p->group];
        if (p->values_done == k->num_values) {
            p->row_base += k->num_rows;
            p->group++;
            p->chunk_open = 0;
            continue;
        }
        p->page_at = p->pos;
        if (p->pos >= p->chunk_end)
            return fail(p, "the column chunk ends after %lld of its %lld values", (long long)p->values_done,
                        (long long)k->num_values);
        page_header_t h;
        if (read_page_header(p, &h) != 0 ||
            anv_grow(&p->raw, &p->raw_cap, (size_t)h.compressed_size + 1, 1, "Parquet page") != 0 ||
            read_at(p, p->pos, p->raw, (size_t)h.compressed_size, "page") != 0)
            return -1;
        p->pos += (uint64_t)h.compressed_size;
        if (h.type == DICTIONARY_PAGE) {
            if (dictionary_page(p, &h, p->raw) != 0) return -1;
        } else if (h.type == DATA_PAGE || h.type == DATA_PAGE_V2) {
            if (h.num_values > k->num_values - p->values_done)
                return fail(p, "the page holds more values than its column chunk has left");
            if (data_page(p, &h, p->raw) != 0) return -1;
            if (p->page_values > 0) return 1;
        } /* index pages and page types of later versions carry no values */
    }
}

int anv_parquet_next(anv_parquet_t *p, const char **value, size_t *len, uint64_t *row) {
    for (;;) {
        while (p->page_i < p->page_values) {
            size_t i = p->page_i++;
            p->values_done++;
            if (p->page_nulls && p->page_nulls[i]) {
                p->nulls++;
                continue;
            }
            span_t v = p->values[p->value_i++];
            *value = (const char *)v.s;
            *len = v.n;
            *row = (uint64_t)(p->row_base + p->values_done);
            return 1;
        }
        int r = next_page(p);
        if (r <= 0) return r;
    }
}

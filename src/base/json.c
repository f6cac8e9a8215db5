/* JSON reader: recursive descent into an arena. Strict RFC 8259 (no comments, no trailing commas),
 * nesting limited to MAX_DEPTH so hostile input cannot exhaust the stack. */
#include "anvil/json.h"

#include "anvil/base.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 256

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    char data[];
} arena_block;

struct anv_json_doc {
    arena_block *blocks;
    anv_json_t root;
};

typedef struct {
    const char *s, *end, *start;
    const char *source;
    anv_json_doc_t *doc;
} parser;

static void *arena_alloc(anv_json_doc_t *doc, size_t n) {
    n = (n + 15) & ~(size_t)15;
    arena_block *b = doc->blocks;
    if (!b || b->used + n > b->cap) {
        size_t cap = n > 65536 ? n : 65536;
        b = anv_alloc(sizeof *b + cap, "JSON document");
        if (!b) return NULL;
        b->next = doc->blocks;
        b->used = 0;
        b->cap = cap;
        doc->blocks = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static int parse_fail(parser *p, const char *what) {
    size_t line = 1;
    for (const char *c = p->start; c < p->s && c < p->end; c++) line += *c == '\n';
    return anv_error("%s: invalid JSON at line %zu (byte %zu): %s", p->source, line, (size_t)(p->s - p->start), what);
}

static void skip_ws(parser *p) {
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')) p->s++;
}

static int hex4(parser *p, unsigned *out) {
    if (p->end - p->s < 4) return parse_fail(p, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return parse_fail(p, "bad hex digit in \\u escape");
    }
    p->s += 4;
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) return o[0] = (char)(0xC0 | cp >> 6), o[1] = (char)(0x80 | (cp & 63)), 2;
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12), o[1] = (char)(0x80 | ((cp >> 6) & 63)), o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18), o[1] = (char)(0x80 | ((cp >> 12) & 63));
    o[2] = (char)(0x80 | ((cp >> 6) & 63)), o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

/* Parses a string literal (p->s at the opening quote). Decoded bytes never exceed the raw length. */
static int parse_string(parser *p, const char **out, size_t *out_len) {
    p->s++;
    const char *q = p->s;
    while (q < p->end && *q != '"') q += (*q == '\\' && q + 1 < p->end) ? 2 : 1;
    if (q >= p->end) return parse_fail(p, "unterminated string");
    char *dst = arena_alloc(p->doc, (size_t)(q - p->s) + 1);
    if (!dst) return -1;
    size_t n = 0;
    while (*p->s != '"') {
        unsigned char c = (unsigned char)*p->s;
        if (c < 0x20) return parse_fail(p, "control character in string");
        if (c != '\\') {
            dst[n++] = (char)c;
            p->s++;
            continue;
        }
        p->s++;
        char e = *p->s++;
        switch (e) {
        case '"':
            dst[n++] = '"';
            break;
        case '\\':
            dst[n++] = '\\';
            break;
        case '/':
            dst[n++] = '/';
            break;
        case 'b':
            dst[n++] = '\b';
            break;
        case 'f':
            dst[n++] = '\f';
            break;
        case 'n':
            dst[n++] = '\n';
            break;
        case 'r':
            dst[n++] = '\r';
            break;
        case 't':
            dst[n++] = '\t';
            break;
        case 'u': {
            unsigned cp;
            if (hex4(p, &cp) != 0) return -1;
            if (cp >= 0xD800 && cp <= 0xDBFF && p->end - p->s >= 6 && p->s[0] == '\\' && p->s[1] == 'u') {
                const char *save = p->s;
                unsigned lo;
                p->s += 2;
                if (hex4(p, &lo) != 0) return -1;
                if (lo >= 0xDC00 && lo <= 0xDFFF)
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                else
                    p->s = save;
            }
            if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD; /* lone surrogate */
            n += put_utf8(dst + n, cp);
            break;
        }
        default:
            p->s--;
            return parse_fail(p, "bad escape in string");
        }
    }
    p->s++;
    dst[n] = 0;
    *out = dst;
    *out_len = n;
    return 0;
}

static int parse_value(parser *p, anv_json_t *v, int depth);

/* Children are parsed into a temporary growable array, then copied into the arena. */
static int parse_container(parser *p, anv_json_t *v, int depth, int is_object) {
    char close = is_object ? '}' : ']';
    p->s++;
    size_t n = 0, cap = 0;
    anv_json_t *items = NULL;
    const char **keys = NULL;
    size_t *key_lens = NULL;
    int rc = -1;
    skip_ws(p);
    if (p->s < p->end && *p->s == close) {
        p->s++;
        rc = 0;
        goto done;
    }
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            anv_json_t *ni = anv_realloc(items, cap * sizeof *items, "JSON document");
            if (!ni) goto done;
            items = ni;
            if (is_object) {
                const char **nk = anv_realloc(keys, cap * sizeof *keys, "JSON document");
                if (!nk) goto done;
                keys = nk;
                size_t *nl = anv_realloc(key_lens, cap * sizeof *key_lens, "JSON document");
                if (!nl) goto done;
                key_lens = nl;
            }
        }
        skip_ws(p);
        if (is_object) {
            if (p->s >= p->end || *p->s != '"') {
                parse_fail(p, "expected a string key");
                goto done;
            }
            if (parse_string(p, &keys[n], &key_lens[n]) != 0) goto done;
            skip_ws(p);
            if (p->s >= p->end || *p->s != ':') {
                parse_fail(p, "expected ':'");
                goto done;
            }
            p->s++;
        }
        if (parse_value(p, &items[n], depth + 1) != 0) goto done;
        n++;
        skip_ws(p);
        if (p->s < p->end && *p->s == ',') {
            p->s++;
            continue;
        }
        if (p->s < p->end && *p->s == close) {
            p->s++;
            rc = 0;
            break;
        }
        parse_fail(p, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
        goto done;
    }
done:
    if (rc == 0) {
        v->type = is_object ? ANV_JSON_OBJECT : ANV_JSON_ARRAY;
        v->len = n;
        if (n) {
            v->items = arena_alloc(p->doc, n * sizeof *items);
            if (!v->items)
                rc = -1;
            else
                memcpy(v->items, items, n * sizeof *items);
            if (rc == 0 && is_object) {
                v->keys = arena_alloc(p->doc, n * sizeof *keys);
                v->key_lens = arena_alloc(p->doc, n * sizeof *key_lens);
                if (!v->keys || !v->key_lens)
                    rc = -1;
                else {
                    memcpy(v->keys, keys, n * sizeof *keys);
                    memcpy(v->key_lens, key_lens, n * sizeof *key_lens);
                }
            }
        }
    }
    anv_free(items);
    anv_free(keys);
    anv_free(key_lens);
    return rc;
}

static int parse_number(parser *p, anv_json_t *v) {
    const char *s = p->s;
    if (s < p->end && *s == '-') s++;
    if (s >= p->end || *s < '0' || *s > '9') return parse_fail(p, "unexpected character");
    if (*s == '0')
        s++;
    else
        while (s < p->end && *s >= '0' && *s <= '9') s++;
    if (s < p->end && *s == '.') {
        s++;
        if (s >= p->end || *s < '0' || *s > '9') return parse_fail(p, "digit expected after '.'");
        while (s < p->end && *s >= '0' && *s <= '9') s++;
    }
    if (s < p->end && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < p->end && (*s == '+' || *s == '-')) s++;
        if (s >= p->end || *s < '0' || *s > '9') return parse_fail(p, "digit expected in exponent");
        while (s < p->end && *s >= '0' && *s <= '9') s++;
    }
    char tmp[64];
    size_t n = (size_t)(s - p->s);
    if (n >= sizeof tmp) return parse_fail(p, "number too long");
    memcpy(tmp, p->s, n);
    tmp[n] = 0;
    v->type = ANV_JSON_NUMBER;
    v->number = strtod(tmp, NULL);
    p->s = s;
    return 0;
}

static int match_word(parser *p, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(p->end - p->s) < n || memcmp(p->s, w, n) != 0) return parse_fail(p, "unexpected character");
    p->s += n;
    return 0;
}

static int parse_value(parser *p, anv_json_t *v, int depth) {
    memset(v, 0, sizeof *v);
    if (depth > MAX_DEPTH) return parse_fail(p, "nesting too deep");
    skip_ws(p);
    if (p->s >= p->end) return parse_fail(p, "unexpected end of input");
    switch (*p->s) {
    case '{':
        return parse_container(p, v, depth, 1);
    case '[':
        return parse_container(p, v, depth, 0);
    case '"':
        v->type = ANV_JSON_STRING;
        return parse_string(p, &v->str, &v->len);
    case 't':
        v->type = ANV_JSON_BOOL;
        v->boolean = 1;
        return match_word(p, "true");
    case 'f':
        v->type = ANV_JSON_BOOL;
        return match_word(p, "false");
    case 'n':
        v->type = ANV_JSON_NULL;
        return match_word(p, "null");
    default:
        return parse_number(p, v);
    }
}

int anv_json_parse(const char *text, size_t len, const char *source, anv_json_doc_t **out) {
    *out = NULL;
    anv_json_doc_t *doc = anv_calloc(sizeof *doc, "JSON document");
    if (!doc) return -1;
    parser p = {text, text + len, text, source ? source : "JSON", doc};
    if (parse_value(&p, &doc->root, 0) != 0) {
        anv_json_free(doc);
        return -1;
    }
    skip_ws(&p);
    if (p.s != p.end) {
        parse_fail(&p, "trailing characters after the value");
        anv_json_free(doc);
        return -1;
    }
    *out = doc;
    return 0;
}

int anv_json_parse_file(const char *path, anv_json_doc_t **doc) {
    char *data;
    size_t len;
    *doc = NULL;
    if (anv_read_file(path, &data, &len) != 0) return -1;
    int rc = anv_json_parse(data, len, path, doc);
    anv_free(data);
    return rc;
}

const anv_json_t *anv_json_root(const anv_json_doc_t *doc) { return &doc->root; }

void anv_json_free(anv_json_doc_t *doc) {
    if (!doc) return;
    arena_block *b = doc->blocks;
    while (b) {
        arena_block *next = b->next;
        anv_free(b);
        b = next;
    }
    anv_free(doc);
}

const char *anv_json_type_name(anv_json_type_t type) {
    static const char *const names[] = {"null", "a boolean", "a number", "a string", "an array", "an object"};
    return names[type];
}

const anv_json_t *anv_json_get(const anv_json_t *obj, const char *key) {
    if (!obj || obj->type != ANV_JSON_OBJECT) return NULL;
    size_t klen = strlen(key);
    for (size_t i = 0; i < obj->len; i++)
        if (obj->key_lens[i] == klen && memcmp(obj->keys[i], key, klen) == 0) return &obj->items[i];
    return NULL;
}

int anv_json_get_double(const anv_json_t *obj, const char *key, const char *source, double *out) {
    const anv_json_t *v = anv_json_get(obj, key);
    if (!v) return anv_error("%s: missing \"%s\"", source, key);
    if (v->type != ANV_JSON_NUMBER) return anv_error("%s: \"%s\" must be a number", source, key);
    *out = v->number;
    return 0;
}

int anv_json_is_integer(const anv_json_t *v, double lo, double hi) {
    return v && v->type == ANV_JSON_NUMBER && v->number >= lo && v->number <= hi && v->number == floor(v->number);
}

int anv_json_get_int(const anv_json_t *obj, const char *key, const char *source, long long *out) {
    double d = 0;
    if (anv_json_get_double(obj, key, source, &d) != 0) return -1;
    if (!anv_json_is_integer(anv_json_get(obj, key), -9007199254740992.0, 9007199254740992.0))
        return anv_error("%s: \"%s\" must be an integer, got %g", source, key, d);
    *out = (long long)d;
    return 0;
}

int anv_json_get_string(const anv_json_t *obj, const char *key, const char *source, const char **out) {
    const anv_json_t *v = anv_json_get(obj, key);
    if (!v) return anv_error("%s: missing \"%s\"", source, key);
    if (v->type != ANV_JSON_STRING) return anv_error("%s: \"%s\" must be a string", source, key);
    *out = v->str;
    return 0;
}

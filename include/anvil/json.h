/* A small JSON reader (DOM, arena-allocated) for configs, tokenizer.json, safetensors headers and
 * state files. Writing JSON is done with anv_buf_t helpers (base.h). */
#ifndef ANVIL_JSON_H
#define ANVIL_JSON_H

#include <stddef.h>

typedef enum {
    ANV_JSON_NULL,
    ANV_JSON_BOOL,
    ANV_JSON_NUMBER,
    ANV_JSON_STRING,
    ANV_JSON_ARRAY,
    ANV_JSON_OBJECT
} anv_json_type_t;

typedef struct anv_json anv_json_t;
struct anv_json {
    anv_json_type_t type;
    int boolean;
    double number;
    const char *str;   /* STRING: decoded UTF-8 bytes, NUL-terminated (may contain NUL) */
    size_t len;        /* STRING: byte length; ARRAY/OBJECT: number of children */
    anv_json_t *items; /* ARRAY/OBJECT: children */
    const char **keys; /* OBJECT: key of each child (NUL-terminated) */
    size_t *key_lens;  /* OBJECT: byte length of each key */
};

typedef struct anv_json_doc anv_json_doc_t;

/* Parses text[0..len). `source` names the file in error messages ("config.json: line 3: ..."). */
int anv_json_parse(const char *text, size_t len, const char *source, anv_json_doc_t **doc);
int anv_json_parse_file(const char *path, anv_json_doc_t **doc);
const anv_json_t *anv_json_root(const anv_json_doc_t *doc);
void anv_json_free(anv_json_doc_t *doc);

/* "null", "a boolean", "a number", "a string", "an array" or "an object", for messages. */
const char *anv_json_type_name(anv_json_type_t type);
/* Member lookup; NULL when obj is not an object or has no such key. */
const anv_json_t *anv_json_get(const anv_json_t *obj, const char *key);
/* 1 when v is a number with an integral value in [lo, hi]; checks the range before any conversion,
 * so hostile values (1e300, NaN) never reach an out-of-range cast. */
int anv_json_is_integer(const anv_json_t *v, double lo, double hi);
/* Typed getters: return -1 with an error naming `source` and `key` when missing or mistyped. */
int anv_json_get_int(const anv_json_t *obj, const char *key, const char *source, long long *out);
int anv_json_get_double(const anv_json_t *obj, const char *key, const char *source, double *out);
int anv_json_get_string(const anv_json_t *obj, const char *key, const char *source, const char **out);

#endif

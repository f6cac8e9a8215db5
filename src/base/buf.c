/* Growable byte buffer and JSON string escaping. */
#include "anvil/base.h"

#include <string.h>

static int buf_reserve(anv_buf_t *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = anv_realloc(b->data, cap, "text buffer");
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int anv_buf_append(anv_buf_t *b, const void *data, size_t n) {
    if (buf_reserve(b, n) != 0) return -1;
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int anv_buf_puts(anv_buf_t *b, const char *s) { return anv_buf_append(b, s, strlen(s)); }

int anv_buf_printf(anv_buf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n) != 0) return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_valid_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    return len;
}

int anv_utf8_valid(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0, len; i < n; i += len)
        if ((len = utf8_valid_len(u + i, n - i)) == 0) return 0;
    return 1;
}

int anv_buf_json_string(anv_buf_t *b, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    if (anv_buf_append(b, "\"", 1) != 0) return -1;
    size_t i = 0;
    while (i < n) {
        unsigned c = u[i];
        int rc;
        if (c == '"')
            rc = anv_buf_append(b, "\\\"", 2), i++;
        else if (c == '\\')
            rc = anv_buf_append(b, "\\\\", 2), i++;
        else if (c == '\n')
            rc = anv_buf_append(b, "\\n", 2), i++;
        else if (c == '\t')
            rc = anv_buf_append(b, "\\t", 2), i++;
        else if (c == '\r')
            rc = anv_buf_append(b, "\\r", 2), i++;
        else if (c < 0x20 || c == 0x7F)
            rc = anv_buf_printf(b, "\\u%04x", c), i++;
        else {
            size_t len = utf8_valid_len(u + i, n - i);
            if (len == 0)
                rc = anv_buf_append(b, "\xEF\xBF\xBD", 3), i++;
            else
                rc = anv_buf_append(b, u + i, len), i += len;
        }
        if (rc != 0) return -1;
    }
    return anv_buf_append(b, "\"", 1);
}

void anv_buf_free(anv_buf_t *b) {
    anv_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Aligned allocation that reports how much was asked for, with a test hook for failure. */
#include "anvil/base.h"

#include <stdlib.h>
#include <string.h>

static size_t alloc_limit(void) {
    const char *s = getenv("ANVIL_ALLOC_LIMIT");
    return s && *s ? (size_t)strtoull(s, NULL, 10) : (size_t)-1;
}

static int fail(size_t bytes, const char *what) {
    return anv_error("out of memory: %s needs %zu bytes (%.1f MiB)", what ? what : "allocation", bytes,
                     bytes / 1048576.0);
}

void *anv_alloc(size_t bytes, const char *what) {
    if (bytes == 0) bytes = 1;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes || bytes > alloc_limit()) {
        fail(bytes, what);
        return NULL;
    }
    void *p = aligned_alloc(64, rounded);
    if (!p) fail(bytes, what);
    return p;
}

void *anv_calloc(size_t bytes, const char *what) {
    void *p = anv_alloc(bytes, what);
    if (p) memset(p, 0, bytes);
    return p;
}

void *anv_realloc(void *p, size_t bytes, const char *what) {
    if (bytes == 0) bytes = 1;
    if (bytes > alloc_limit()) {
        fail(bytes, what);
        return NULL;
    }
    void *q = realloc(p, bytes);
    if (!q) fail(bytes, what);
    return q;
}

int anv_grow(void *pp, size_t *cap, size_t need, size_t elem, const char *what) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *q = anv_realloc(*(void **)pp, c * elem, what);
    if (!q) return -1;
    *(void **)pp = q;
    *cap = c;
    return 0;
}

void anv_free(void *p) { free(p); }

char *anv_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = anv_alloc(n, "string");
    if (d) memcpy(d, s, n);
    return d;
}

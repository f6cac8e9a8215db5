/* A user's list of words and phrases: a document that contains one, as whole words and in any case,
 * is dropped (as C4 dropped pages with words from its list). See anvil/filters.h. */
#include "filter_internal.h"

#include <string.h>
#include <utf8proc.h>

#define MAX_PHRASE_WORDS 16

struct anv_blocklist {
    uint64_t *keys; /* hashes of the entries' word sequences; 0 is empty */
    size_t cap, n;
    int longest; /* words in the longest entry */
};

static int is_word_byte(unsigned char c) {
    return c >= 0x80 || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '\'';
}

/* The case-folded hash of the word s[0..n). */
static uint64_t word_hash(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) { /* a byte that is not UTF-8: itself */
            cp = (unsigned char)s[i];
            k = 1;
        }
        cp = utf8proc_tolower(cp);
        h = (h ^ (uint64_t)cp) * 0x100000001b3ull;
        i += (size_t)k;
    }
    return h;
}

static uint64_t extend(uint64_t phrase, uint64_t word) {
    uint64_t h = (phrase ^ word) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 31;
    return h ? h : 1;
}

/* The next word of s[*at..n) as its hash: 1, or 0 at the end. */
static int next_word(const char *s, size_t n, size_t *at, uint64_t *hash) {
    size_t i = *at;
    for (;;) {
        while (i < n && !is_word_byte((unsigned char)s[i])) i++;
        size_t a = i;
        while (i < n && is_word_byte((unsigned char)s[i])) i++;
        while (a < i && s[a] == '\'') a++; /* quotes around a word are not part of it */
        size_t b = i;
        while (b > a && s[b - 1] == '\'') b--;
        if (a < b) {
            *at = i;
            *hash = word_hash(s + a, b - a);
            return 1;
        }
        if (i >= n) return 0;
    }
}

static uint64_t *slot(uint64_t *keys, size_t cap, uint64_t key) {
    size_t j = (size_t)(key >> 7) & (cap - 1);
    while (keys[j] && keys[j] != key) j = (j + 1) & (cap - 1);
    return &keys[j];
}

static int insert(anv_blocklist_t *bl, uint64_t key) {
    if (2 * (bl->n + 1) > bl->cap) {
        size_t cap = bl->cap ? 2 * bl->cap : 1024;
        uint64_t *k = anv_calloc(cap * sizeof *k, "blocklist");
        if (!k) return -1;
        for (size_t i = 0; i < bl->cap; i++)
            if (bl->keys[i]) *slot(k, cap, bl->keys[i]) = bl->keys[i];
        anv_free(bl->keys);
        bl->keys = k;
        bl->cap = cap;
    }
    uint64_t *e = slot(bl->keys, bl->cap, key);
    if (!*e) bl->n++;
    *e = key;
    return 0;
}

int anv_blocklist_load(const char *path, anv_blocklist_t **out) {
    *out = NULL;
    char *data;
    size_t len;
    if (anv_read_file(path, &data, &len) != 0) return -1;
    anv_blocklist_t *bl = anv_calloc(sizeof *bl, "blocklist");
    int rc = bl ? 0 : -1;
    size_t line = 0;
    for (size_t i = 0; rc == 0 && i < len; line++) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - data) : len;
        uint64_t h = 0, w;
        int n = 0;
        for (size_t at = i; next_word(data, end, &at, &w); n++) h = extend(h, w);
        if (n > MAX_PHRASE_WORDS) {
            rc = anv_error("%s:%zu: a phrase of %d words; at most %d", path, line + 1, n, MAX_PHRASE_WORDS);
        } else if (n > 0) {
            rc = insert(bl, h);
            bl->longest = (int)n > bl->longest ? (int)n : bl->longest;
        }
        i = end + 1;
    }
    anv_free(data);
    if (rc == 0 && bl->n == 0) rc = anv_error("%s: no words or phrases in the blocklist", path);
    if (rc != 0) {
        anv_blocklist_free(bl);
        return -1;
    }
    *out = bl;
    return 0;
}

size_t anv_blocklist_size(const anv_blocklist_t *bl) { return bl->n; }

void anv_blocklist_free(anv_blocklist_t *bl) {
    if (!bl) return;
    anv_free(bl->keys);
    anv_free(bl);
}

int anv_blocklist_match(const anv_blocklist_t *bl, const char *text, size_t len) {
    uint64_t open[MAX_PHRASE_WORDS]; /* phrases that start at each of the last `longest` words, oldest first */
    int k = 0;
    uint64_t w;
    for (size_t at = 0; bl->longest > 0 && next_word(text, len, &at, &w);) {
        if (k == bl->longest) memmove(open, open + 1, (size_t)--k * sizeof *open);
        open[k++] = 0;
        for (int j = 0; j < k; j++) {
            open[j] = extend(open[j], w);
            if (*slot(bl->keys, bl->cap, open[j])) return 1;
        }
    }
    return 0;
}

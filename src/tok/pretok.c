/* Pre-tokenizer: a hand-written matcher for GPT-2's and GPT-4's (cl100k) split patterns.
 *
 * GPT-2:  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * cl100k: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 *         \s*[\r\n]+|\s+(?!\S)|\s+
 * Alternatives are tried in order at each position (leftmost-first, as the regex engines do).
 * Classes: \p{L} = Unicode categories L*, \p{N} = N* (utf8proc), \s = the Unicode White_Space
 * property (what tiktoken's Rust regex uses). A byte that does not start valid UTF-8 (including
 * overlong forms and surrogates) is one character of its own, of class "other". */
#include "tok_internal.h"

#include <utf8proc.h>

enum { CL_L, CL_N, CL_S, CL_O };

/* ASCII classes: letters, digits, \t \n \v \f \r and space; the rest is "other". */
#define O_ CL_O
static const unsigned char ascii_class[128] = {
    O_,   O_,   O_,   O_,   O_,   O_,   O_,   O_,   O_,   CL_S, CL_S, CL_S, CL_S, CL_S, O_,   O_,   O_,   O_,   O_,
    O_,   O_,   O_,   O_,   O_,   O_,   O_,   O_,   O_,   O_,   O_,   O_,   O_,   CL_S, O_,   O_,   O_,   O_,   O_,
    O_,   O_,   O_,   O_,   O_,   O_,   O_,   O_,   O_,   O_,   CL_N, CL_N, CL_N, CL_N, CL_N, CL_N, CL_N, CL_N, CL_N,
    CL_N, O_,   O_,   O_,   O_,   O_,   O_,   O_,   CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L,
    CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, O_,   O_,   O_,   O_,
    O_,   O_,   CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L,
    CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, CL_L, O_,   O_,   O_,   O_,   O_,
};
#undef O_

static int white_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

/* Decodes one character at s[i] (i < n): its class, code point (UINT32_MAX for an invalid byte)
 * and byte length. */
static int char_slow(const unsigned char *s, size_t i, size_t n, uint32_t *cp, size_t *clen) {
    unsigned c = s[i];
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, v = c & 0x07, min = 0x10000;
    else
        goto invalid;
    if (n - i < len) goto invalid;
    for (size_t k = 1; k < len; k++) {
        if ((s[i + k] & 0xC0) != 0x80) goto invalid;
        v = v << 6 | (s[i + k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) goto invalid;
    *cp = v;
    *clen = len;
    if (white_space(v)) return CL_S;
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)v);
    if (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) return CL_L;
    if (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO) return CL_N;
    return CL_O;
invalid:
    *cp = UINT32_MAX;
    *clen = 1;
    return CL_O;
}

static inline int char_at(const unsigned char *s, size_t i, size_t n, uint32_t *cp, size_t *clen) {
    if (s[i] < 0x80) {
        *cp = s[i];
        *clen = 1;
        return ascii_class[s[i]];
    }
    return char_slow(s, i, n, cp, clen);
}

/* End of the run of characters of class `cls` starting at i. */
static inline size_t run_of(const unsigned char *s, size_t i, size_t n, int cls) {
    while (i < n) {
        if (s[i] < 0x80) {
            if (ascii_class[s[i]] != cls) break;
            i++;
            continue;
        }
        uint32_t cp;
        size_t len;
        if (char_slow(s, i, n, &cp, &len) != cls) break;
        i += len;
    }
    return i;
}

/* Length of a contraction ('s 't 're 've 'm 'll 'd) at s[i] == '\'', 0 if none. Case-insensitive
 * for cl100k, where (?i) also lets U+017F LATIN SMALL LETTER LONG S match 's'. */
static size_t contraction(const unsigned char *s, size_t i, size_t n, int fold) {
    if (n - i < 2) return 0;
    unsigned a = s[i + 1], b = n - i >= 3 ? s[i + 2] : 0;
    if (fold) {
        if (a == 0xC5 && b == 0xBF) return 3;
        a |= (a >= 'A' && a <= 'Z') ? 0x20 : 0;
        b |= (b >= 'A' && b <= 'Z') ? 0x20 : 0;
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* Whitespace run starting at i (s[i] is white space): the end of \s+(?!\S), else of \s+, as
 * GPT-2's last two alternatives pick it. `nl_end` receives the end of the last \r or \n in the run
 * (0 if none), for cl100k's \s*[\r\n]+. */
static size_t space_run(const unsigned char *s, size_t i, size_t n, size_t *nl_end) {
    size_t last = i, j = i;
    *nl_end = 0;
    while (j < n) {
        uint32_t cp;
        size_t len;
        if (char_at(s, j, n, &cp, &len) != CL_S) break;
        if (cp == '\r' || cp == '\n') *nl_end = j + len;
        last = j;
        j += len;
    }
    if (j == n) return j;      /* followed by the end: \s+(?!\S) takes it all */
    if (last > i) return last; /* keep the last space for the next word */
    return j;                  /* a single space before a non-space: \s+ */
}

static size_t next_gpt2(const unsigned char *s, size_t i, size_t n) {
    uint32_t cp;
    size_t len;
    int cls = char_at(s, i, n, &cp, &len);
    if (cp == '\'') {
        size_t k = contraction(s, i, n, 0);
        if (k) return i + k;
    }
    if (cp == ' ' && i + 1 < n) {
        uint32_t cp2;
        size_t len2;
        int cls2 = char_at(s, i + 1, n, &cp2, &len2);
        if (cls2 != CL_S) return run_of(s, i + 1 + len2, n, cls2);
    }
    if (cls != CL_S) return run_of(s, i + len, n, cls);
    size_t nl_end;
    return space_run(s, i, n, &nl_end);
}

static size_t newlines(const unsigned char *s, size_t i, size_t n) {
    while (i < n && (s[i] == '\r' || s[i] == '\n')) i++;
    return i;
}

static size_t next_cl100k(const unsigned char *s, size_t i, size_t n) {
    uint32_t cp, cp2 = 0;
    size_t len, len2 = 0;
    int cls = char_at(s, i, n, &cp, &len), cls2 = -1;
    if (i + len < n) cls2 = char_at(s, i + len, n, &cp2, &len2);
    if (cp == '\'') {
        size_t k = contraction(s, i, n, 1);
        if (k) return i + k;
    }
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (cls == CL_L) return run_of(s, i + len, n, CL_L);
    if (cls2 == CL_L && cls != CL_N && cp != '\r' && cp != '\n') return run_of(s, i + len + len2, n, CL_L);
    /* \p{N}{1,3} */
    if (cls == CL_N) {
        size_t j = i + len;
        for (int k = 1; k < 3 && j < n; k++) {
            uint32_t c;
            size_t l;
            if (char_at(s, j, n, &c, &l) != CL_N) break;
            j += l;
        }
        return j;
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    if (cls == CL_O) return newlines(s, run_of(s, i + len, n, CL_O), n);
    if (cp == ' ' && cls2 == CL_O) return newlines(s, run_of(s, i + len + len2, n, CL_O), n);
    /* \s*[\r\n]+ | \s+(?!\S) | \s+ */
    size_t nl_end, end = space_run(s, i, n, &nl_end);
    return nl_end ? nl_end : end;
}

size_t tok_pretok_next(anv_pretok_t pattern, const unsigned char *s, size_t pos, size_t n) {
    return pattern == ANV_PRETOK_CL100K ? next_cl100k(s, pos, n) : next_gpt2(s, pos, n);
}

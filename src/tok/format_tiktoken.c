/* tiktoken rank files: one "<base64 of the token's bytes> <rank>" per line; the rank is the id.
 * The single bytes are ranks like any other (in GPT-2's files they follow the byte-level order).
 * tiktoken keeps no merge list: it merges the adjacent pair whose concatenation has the lowest
 * rank. We recover the equivalent merges: token r is the merge of the two pieces that BPE with the
 * tokens below rank r leaves of its bytes (tokens that do not end in two pieces are unreachable).
 * Specials are not in the file: cl100k_base (100256 ranks) gets GPT-4's split pattern and
 * tiktoken's specials (<|endoftext|> 100257, <|fim_prefix|> 100258, <|fim_middle|> 100259,
 * <|fim_suffix|> 100260, <|endofprompt|> 100276); any other file GPT-2's pattern and
 * <|endoftext|> at the lowest id the file leaves free (50256 for r50k_base, p50k_base). */
#include "tok_internal.h"

#include <string.h>

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Strict base64 (padding required); returns the decoded length or -1. */
static long b64_decode(const char *s, size_t n, unsigned char *out) {
    if (n == 0 || n % 4) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            v[k] = b64_value((unsigned char)s[i + k]);
            if (v[k] < 0 && !(s[i + k] == '=' && i + 4 == n && k >= 2)) return -1;
        }
        if (v[2] < 0 && v[3] >= 0) return -1;
        out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
        if (v[2] >= 0) out[o++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
        if (v[3] >= 0) out[o++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
    }
    return (long)o;
}

typedef struct {
    size_t line;
    const char *b64;
    size_t b64_len;
    uint32_t rank;
} entry_t;

static int parse_lines(const char *text, size_t len, const char *path, entry_t **out, size_t *count) {
    size_t cap = 0, n = 0, line = 0;
    entry_t *e = NULL;
    for (size_t pos = 0; pos < len;) {
        const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
        size_t m = nl ? (size_t)(nl - s) : len - pos;
        pos += m + 1;
        line++;
        if (m && s[m - 1] == '\r') m--;
        if (m == 0) continue;
        const char *sp = memchr(s, ' ', m);
        size_t digits = sp ? m - (size_t)(sp + 1 - s) : 0;
        unsigned long long rank = 0;
        int ok = sp && sp > s && digits > 0 && digits <= 9;
        for (size_t k = 0; ok && k < digits; k++) {
            char c = sp[1 + k];
            ok = c >= '0' && c <= '9';
            rank = rank * 10 + (unsigned)(c - '0');
        }
        if (!ok) {
            anv_free(e);
            return anv_error("%s: line %zu: expected \"<base64 token> <rank>\", got '%.*s'", path, line,
                             (int)(m > 40 ? 40 : m), s);
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            entry_t *ne = anv_realloc(e, cap * sizeof *e, "tiktoken ranks");
            if (!ne) {
                anv_free(e);
                return -1;
            }
            e = ne;
        }
        e[n++] = (entry_t){line, s, (size_t)(sp - s), (uint32_t)rank};
    }
    *out = e;
    *count = n;
    return 0;
}

/* Recovers the merge list from the ranks (see the top of the file). */
static int derive_merges(anv_tokenizer_t *t) {
    uint32_t *ids = NULL;
    size_t ids_cap = 0;
    tok_work_t work = {0};
    int rc = -1;
    if (tok_table_reset(t, t->n_vocab) != 0) goto done;
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        size_t n = t->len[id];
        if (n < 2 || t->is_special[id]) continue;
        if (n > ids_cap) {
            anv_free(ids);
            ids_cap = n * 2;
            if (!(ids = anv_alloc(ids_cap * sizeof *ids, "tiktoken merges"))) goto done;
        }
        long m = tok_bpe(t, (const unsigned char *)t->blob + t->off[id], n, ids, &work);
        if (m < 0) goto done;
        if (m != 2) continue;
        tok_table_insert(t, ids[0], ids[1], (uint32_t)t->n_merges, id);
        if (tok_add_merge(t, ids[0], ids[1], id) != 0) goto done;
    }
    rc = 0;
done:
    anv_free(ids);
    anv_free(work.mem);
    return rc;
}

int tok_load_tiktoken_text(const char *text, size_t len, const char *path, anv_tokenizer_t **out) {
    static const char *const cl100k_names[] = {"<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
                                               "<|endofprompt|>"};
    static const uint32_t cl100k_ids[] = {100257, 100258, 100259, 100260, 100276};
    *out = NULL;
    entry_t *e = NULL;
    size_t n = 0;
    if (parse_lines(text, len, path, &e, &n) != 0) return -1;
    anv_tokenizer_t *t = NULL;
    unsigned char *buf = NULL;
    uint32_t max_rank = 0;
    for (size_t i = 0; i < n; i++) max_rank = e[i].rank > max_rank ? e[i].rank : max_rank;
    if (n == 0) {
        anv_error("%s: no ranks in the file", path);
        goto fail;
    }
    if (max_rank > 2 * n + 1024) {
        anv_error("%s: rank %u is far beyond the file's %zu tokens", path, max_rank, n);
        goto fail;
    }
    int cl100k = n == 100256 && max_rank == 100255;
    anv_pretok_t pattern = cl100k ? ANV_PRETOK_CL100K : ANV_PRETOK_GPT2;
    t = tok_new(pattern, cl100k ? 100277 : max_rank + 2);
    size_t buf_cap = 0;
    if (!t) goto fail;
    for (size_t i = 0; i < n; i++) {
        if (e[i].b64_len > buf_cap) {
            anv_free(buf);
            buf_cap = e[i].b64_len * 2;
            if (!(buf = anv_alloc(buf_cap, "tiktoken token"))) goto fail;
        }
        long m = b64_decode(e[i].b64, e[i].b64_len, buf);
        if (m <= 0) {
            anv_error("%s: line %zu: bad base64 token '%.*s'", path, e[i].line,
                      (int)(e[i].b64_len > 40 ? 40 : e[i].b64_len), e[i].b64);
            goto fail;
        }
        char where[48];
        snprintf(where, sizeof where, "%s: line %zu", path, e[i].line);
        if (tok_set_token(t, e[i].rank, buf, (size_t)m, where) != 0) goto fail;
    }
    if (cl100k) {
        for (size_t i = 0; i < 5; i++)
            if (tok_set_token(t, cl100k_ids[i], cl100k_names[i], strlen(cl100k_names[i]), path) != 0 ||
                tok_add_special(t, cl100k_ids[i]) != 0)
                goto fail;
    } else {
        uint32_t eot = 0;
        while (t->len[eot]) eot++;
        if (tok_set_token(t, eot, "<|endoftext|>", 13, path) != 0 || tok_add_special(t, eot) != 0) goto fail;
        if (eot < max_rank + 1) t->n_vocab = max_rank + 1; /* the spare last id stays unused */
    }
    if (tok_byte_ids(t, path) != 0 || derive_merges(t) != 0 || tok_finish(t, path) != 0) goto fail;
    anv_free(e);
    anv_free(buf);
    *out = t;
    return 0;
fail:
    anv_free(e);
    anv_free(buf);
    anv_tokenizer_free(t);
    return -1;
}

int anv_tokenizer_load_tiktoken(const char *path, anv_tokenizer_t **out) {
    char *text;
    size_t len;
    *out = NULL;
    if (anv_read_file(path, &text, &len) != 0) return -1;
    int rc = tok_load_tiktoken_text(text, len, path, out);
    anv_free(text);
    return rc;
}

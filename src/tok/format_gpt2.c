/* GPT-2's original files: encoder.json ({"byte-level string": id}, with "<|endoftext|>") and
 * vocab.bpe ("#version: 0.2" then one merge "left right" per line, in rank order). */
#include "tok_internal.h"

#include "anvil/json.h"

#include <string.h>

static int read_merges(anv_tokenizer_t *t, const char *text, size_t len, const char *path) {
    size_t line = 0;
    for (size_t pos = 0; pos < len;) {
        const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + 1;
        line++;
        if (n && s[n - 1] == '\r') n--;
        if (n == 0 || (line == 1 && s[0] == '#')) continue;
        char where[32];
        snprintf(where, sizeof where, "line %zu", line);
        const char *sp = memchr(s, ' ', n);
        if (!sp || sp == s || sp == s + n - 1 || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - s)))
            return anv_error("%s: line %zu: expected \"left right\", got '%.*s'", path, line, (int)(n > 40 ? 40 : n),
                             s);
        if (tok_merge_from_strings(t, s, (size_t)(sp - s), sp + 1, n - (size_t)(sp + 1 - s), path, where) != 0)
            return -1;
    }
    return 0;
}

int anv_tokenizer_load_gpt2(const char *encoder_json, const char *vocab_bpe, anv_tokenizer_t **out) {
    *out = NULL;
    static const char *const eot = "<|endoftext|>";
    anv_json_doc_t *doc = NULL;
    anv_tokenizer_t *t = NULL;
    char *merges = NULL;
    size_t merges_len;
    long long max_id;
    if (anv_json_parse_file(encoder_json, &doc) != 0) goto fail;
    const anv_json_t *vocab = anv_json_root(doc);
    if (tok_vocab_max_id(vocab, encoder_json, &max_id) != 0) goto fail;
    if (max_id < 0) {
        anv_error("%s: empty vocabulary", encoder_json);
        goto fail;
    }
    t = tok_new(ANV_PRETOK_GPT2, (uint32_t)max_id + 1);
    if (!t || tok_vocab_from_json(t, vocab, &eot, 1, encoder_json) != 0) goto fail;
    const anv_json_t *eot_id = anv_json_get(vocab, eot);
    if (eot_id && tok_add_special(t, (uint32_t)eot_id->number) != 0) goto fail;
    if (tok_index_build(t) != 0 || anv_read_file(vocab_bpe, &merges, &merges_len) != 0 ||
        read_merges(t, merges, merges_len, vocab_bpe) != 0 || tok_finish(t, encoder_json) != 0)
        goto fail;
    anv_json_free(doc);
    anv_free(merges);
    *out = t;
    return 0;
fail:
    anv_json_free(doc);
    anv_free(merges);
    anv_tokenizer_free(t);
    return -1;
}

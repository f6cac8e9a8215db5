/* Hugging Face tokenizer.json: BPE model over GPT-2's byte-level alphabet.
 *
 * Written: vocab {"byte-level string": id} (specials included, as GPT-2's file does), merges as
 * "a b" strings in rank order, added_tokens for the specials (special: true), pre_tokenizer
 * ByteLevel (add_prefix_space false) for GPT-2's pattern or Split(cl100k regex) + ByteLevel,
 * decoder ByteLevel. Read: the same, merges also as [["a", "b"]]; every added token is treated as
 * a special token (recognised only by anv_tokenizer_encode_special); "<|endoftext|>", when
 * present, is the end-of-text token, else the first added token. */
#include "tok_internal.h"

#include <string.h>

int tok_vocab_max_id(const anv_json_t *vocab, const char *source, long long *max_id) {
    *max_id = -1;
    if (!vocab || vocab->type != ANV_JSON_OBJECT) return anv_error("%s: the vocabulary must be a JSON object", source);
    for (size_t i = 0; i < vocab->len; i++) {
        const anv_json_t *v = &vocab->items[i];
        if (!anv_json_is_integer(v, 0, 9007199254740992.0))
            return anv_error("%s: vocabulary entry %zu ('%.40s') has no valid id", source, i, vocab->keys[i]);
        /* Ids are dense in real files; a far larger id is a corrupt or hostile file. */
        if (v->number > 2.0 * (double)vocab->len + 1024)
            return anv_error("%s: vocabulary entry %zu has id %.0f, far beyond its %zu entries", source, i, v->number,
                             vocab->len);
        if ((long long)v->number > *max_id) *max_id = (long long)v->number;
    }
    return 0;
}

int tok_vocab_from_json(anv_tokenizer_t *t, const anv_json_t *vocab, const char *const *specials, size_t n_specials,
                        const char *source) {
    char *tmp = NULL;
    size_t tmp_cap = 0;
    int rc = -1;
    for (size_t i = 0; i < vocab->len; i++) {
        const char *key = vocab->keys[i];
        size_t klen = vocab->key_lens[i], n = 0;
        uint32_t id = (uint32_t)vocab->items[i].number;
        int special = 0;
        for (size_t k = 0; k < n_specials && !special; k++)
            special = strlen(specials[k]) == klen && !memcmp(specials[k], key, klen);
        if (special) {
            if (tok_set_token(t, id, key, klen, source) != 0) goto done;
            continue;
        }
        if (klen > tmp_cap) {
            anv_free(tmp);
            tmp_cap = klen * 2;
            tmp = anv_alloc(tmp_cap, "tokenizer vocabulary");
            if (!tmp) goto done;
        }
        if (tok_bytelevel_decode(key, klen, tmp, &n) != 0) {
            anv_error("%s: vocabulary entry %zu ('%.40s') is not a byte-level token", source, i, key);
            goto done;
        }
        if (tok_set_token(t, id, tmp, n, source) != 0) goto done;
    }
    rc = 0;
done:
    anv_free(tmp);
    return rc;
}

int tok_merge_from_strings(anv_tokenizer_t *t, const char *a, size_t na, const char *b, size_t nb, const char *source,
                           const char *where) {
    char small[256], *buf = small;
    if (na + nb > sizeof small && !(buf = anv_alloc(na + nb, "tokenizer merge"))) return -1;
    size_t la, lb;
    uint32_t ida = TOK_NONE, idb = TOK_NONE, idab = TOK_NONE;
    if (tok_bytelevel_decode(a, na, buf, &la) == 0 && tok_bytelevel_decode(b, nb, buf + la, &lb) == 0) {
        ida = tok_index_find(t, buf, la);
        idb = tok_index_find(t, buf + la, lb);
        idab = tok_index_find(t, buf, la + lb);
    }
    if (buf != small) anv_free(buf);
    if (ida == TOK_NONE || idb == TOK_NONE || idab == TOK_NONE)
        return anv_error("%s: %s: merge '%.*s %.*s' uses a token that is not in the vocabulary", source, where,
                         (int)(na > 40 ? 40 : na), a, (int)(nb > 40 ? 40 : nb), b);
    return tok_add_merge(t, ida, idb, idab);
}

/* The split pattern named by a pre_tokenizer: ByteLevel (GPT-2's regex) or a Split by one of the
 * two known regexes followed by ByteLevel without its own regex. */
static int pattern_of(const anv_json_t *pre, const char *source, anv_pretok_t *out) {
    const anv_json_t *type = anv_json_get(pre, "type");
    if (!type || type->type != ANV_JSON_STRING) return anv_error("%s: pre_tokenizer has no \"type\"", source);
    if (!strcmp(type->str, "ByteLevel")) {
        const anv_json_t *aps = anv_json_get(pre, "add_prefix_space");
        if (aps && aps->type == ANV_JSON_BOOL && aps->boolean)
            return anv_error("%s: pre_tokenizer ByteLevel with add_prefix_space true is not supported", source);
        *out = ANV_PRETOK_GPT2;
        return 0;
    }
    if (!strcmp(type->str, "Sequence")) {
        const anv_json_t *list = anv_json_get(pre, "pretokenizers");
        if (list && list->type == ANV_JSON_ARRAY && list->len == 2) {
            const anv_json_t *split = &list->items[0];
            const anv_json_t *pat = anv_json_get(anv_json_get(split, "pattern"), "Regex");
            const anv_json_t *t2 = anv_json_get(&list->items[1], "type");
            if (pat && pat->type == ANV_JSON_STRING && t2 && t2->type == ANV_JSON_STRING &&
                !strcmp(t2->str, "ByteLevel")) {
                if (!strcmp(pat->str, tok_regex_cl100k)) return *out = ANV_PRETOK_CL100K, 0;
                if (!strcmp(pat->str, tok_regex_gpt2)) return *out = ANV_PRETOK_GPT2, 0;
            }
        }
    }
    return anv_error("%s: unsupported pre_tokenizer (anvil reads ByteLevel with GPT-2's split pattern or "
                     "Split with GPT-2's or cl100k's pattern followed by ByteLevel)",
                     source);
}

static int merges_from_json(anv_tokenizer_t *t, const anv_json_t *merges, const char *source) {
    if (!merges || merges->type != ANV_JSON_ARRAY) return anv_error("%s: model.merges must be an array", source);
    for (size_t i = 0; i < merges->len; i++) {
        const anv_json_t *m = &merges->items[i];
        char where[48];
        snprintf(where, sizeof where, "merge %zu", i);
        if (m->type == ANV_JSON_STRING) {
            const char *sp = memchr(m->str, ' ', m->len);
            if (!sp || memchr(sp + 1, ' ', m->len - (size_t)(sp + 1 - m->str)))
                return anv_error("%s: %s: expected \"left right\", got '%.40s'", source, where, m->str);
            if (tok_merge_from_strings(t, m->str, (size_t)(sp - m->str), sp + 1, m->len - (size_t)(sp + 1 - m->str),
                                       source, where) != 0)
                return -1;
        } else if (m->type == ANV_JSON_ARRAY && m->len == 2 && m->items[0].type == ANV_JSON_STRING &&
                   m->items[1].type == ANV_JSON_STRING) {
            if (tok_merge_from_strings(t, m->items[0].str, m->items[0].len, m->items[1].str, m->items[1].len, source,
                                       where) != 0)
                return -1;
        } else {
            return anv_error("%s: %s: expected \"left right\" or [\"left\", \"right\"]", source, where);
        }
    }
    return 0;
}

int tok_load_hf(const anv_json_t *root, const char *source, anv_tokenizer_t **out) {
    *out = NULL;
    const anv_json_t *model = anv_json_get(root, "model");
    if (!model || model->type != ANV_JSON_OBJECT) return anv_error("%s: no \"model\" object", source);
    const anv_json_t *type = anv_json_get(model, "type");
    if (type && (type->type != ANV_JSON_STRING || strcmp(type->str, "BPE") != 0))
        return anv_error("%s: model.type is not \"BPE\"", source);
    const anv_json_t *vocab = anv_json_get(model, "vocab");
    long long max_id;
    if (tok_vocab_max_id(vocab, source, &max_id) != 0) return -1;

    /* Added tokens: (content, id); kept in file order with <|endoftext|> moved first. */
    const anv_json_t *added = anv_json_get(root, "added_tokens");
    size_t n_added = 0;
    if (added && added->type != ANV_JSON_ARRAY && added->type != ANV_JSON_NULL)
        return anv_error("%s: added_tokens must be an array", source);
    if (added && added->type == ANV_JSON_ARRAY) n_added = added->len;
    const char **contents = anv_calloc((n_added + 1) * sizeof *contents, "added tokens");
    uint32_t *ids = anv_calloc((n_added + 1) * sizeof *ids, "added tokens");
    anv_tokenizer_t *t = NULL;
    if (!contents || !ids) goto fail;
    for (size_t i = 0; i < n_added; i++) {
        const anv_json_t *a = &added->items[i];
        long long id;
        const char *content;
        if (anv_json_get_int(a, "id", source, &id) != 0 || anv_json_get_string(a, "content", source, &content) != 0) {
            anv_error("%s: added_tokens[%zu] needs an integer \"id\" and a string \"content\"", source, i);
            goto fail;
        }
        const anv_json_t *c = anv_json_get(a, "content");
        if (id < 0 || id > max_id + 1024 || c->len == 0 || strlen(content) != c->len) {
            anv_error("%s: added_tokens[%zu]: bad id %lld or empty content", source, i, id);
            goto fail;
        }
        size_t at = i;
        if (!strcmp(content, "<|endoftext|>") && i > 0) {
            memmove(contents + 1, contents, i * sizeof *contents);
            memmove(ids + 1, ids, i * sizeof *ids);
            at = 0;
        }
        contents[at] = content;
        ids[at] = (uint32_t)id;
        if (id > max_id) max_id = id;
    }
    anv_pretok_t pattern = ANV_PRETOK_GPT2;
    const anv_json_t *pre = anv_json_get(root, "pre_tokenizer");
    if (!pre || pre->type != ANV_JSON_OBJECT) {
        anv_error("%s: no pre_tokenizer (anvil reads byte-level BPE tokenizers)", source);
        goto fail;
    }
    if (pattern_of(pre, source, &pattern) != 0) goto fail;
    if (max_id < 0) {
        anv_error("%s: empty vocabulary", source);
        goto fail;
    }
    t = tok_new(pattern, (uint32_t)max_id + 1);
    if (!t || tok_vocab_from_json(t, vocab, contents, n_added, source) != 0) goto fail;
    for (size_t i = 0; i < n_added; i++) {
        size_t n;
        const char *have = anv_tokenizer_token_bytes(t, ids[i], &n);
        if (!have && tok_set_token(t, ids[i], contents[i], strlen(contents[i]), source) != 0) goto fail;
        if (have && (n != strlen(contents[i]) || memcmp(have, contents[i], n))) {
            anv_error("%s: added token '%s' has id %u, which the vocabulary gives to another token", source,
                      contents[i], ids[i]);
            goto fail;
        }
        if (t->is_special[ids[i]]) {
            anv_error("%s: added token id %u appears twice", source, ids[i]);
            goto fail;
        }
        if (tok_add_special(t, ids[i]) != 0) goto fail;
    }
    if (tok_index_build(t) != 0 || merges_from_json(t, anv_json_get(model, "merges"), source) != 0 ||
        tok_finish(t, source) != 0)
        goto fail;
    anv_free(contents);
    anv_free(ids);
    *out = t;
    return 0;
fail:
    anv_tokenizer_free(t);
    anv_free(contents);
    anv_free(ids);
    return -1;
}

int anv_tokenizer_save(const anv_tokenizer_t *t, const char *path) {
    anv_buf_t b = {0};
    int rc = anv_buf_puts(&b, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n"
                              "  \"added_tokens\": [");
    for (size_t i = 0; i < t->n_specials && rc == 0; i++) {
        uint32_t id = t->specials[i];
        rc |= anv_buf_printf(&b, "%s\n    {\"id\": %u, \"content\": ", i ? "," : "", id);
        rc |= anv_buf_json_string(&b, t->blob + t->off[id], t->len[id]);
        rc |= anv_buf_puts(&b, ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
                               "\"normalized\": false, \"special\": true}");
    }
    rc |= anv_buf_puts(&b, "\n  ],\n  \"normalizer\": null,\n  \"pre_tokenizer\": ");
    if (t->pattern == ANV_PRETOK_CL100K) {
        rc |= anv_buf_puts(&b, "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
                               "{\"Regex\": ");
        rc |= anv_buf_json_string(&b, tok_regex_cl100k, strlen(tok_regex_cl100k));
        rc |= anv_buf_puts(&b, "}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", "
                               "\"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}]},\n");
    } else {
        rc |= anv_buf_puts(&b, "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, "
                               "\"use_regex\": true},\n");
    }
    rc |=
        anv_buf_puts(&b, "  \"post_processor\": null,\n  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": "
                         "true, \"trim_offsets\": true, \"use_regex\": true},\n  \"model\": {\"type\": \"BPE\", "
                         "\"dropout\": null, \"unk_token\": null, \"continuing_subword_prefix\": \"\", "
                         "\"end_of_word_suffix\": \"\", \"fuse_unk\": false, \"byte_fallback\": false,\n"
                         "    \"vocab\": {");
    anv_buf_t tmp = {0};
    int first = 1;
    for (uint32_t id = 0; id < t->n_vocab && rc == 0; id++) {
        if (!t->len[id]) continue;
        tmp.len = 0;
        if (t->is_special[id])
            rc |= anv_buf_append(&tmp, t->blob + t->off[id], t->len[id]);
        else
            rc |= tok_bytelevel_encode(&tmp, t->blob + t->off[id], t->len[id]);
        rc |= anv_buf_puts(&b, first ? "\n      " : ",\n      ");
        rc |= anv_buf_json_string(&b, tmp.data, tmp.len);
        rc |= anv_buf_printf(&b, ": %u", id);
        first = 0;
    }
    rc |= anv_buf_puts(&b, "\n    },\n    \"merges\": [");
    for (size_t r = 0; r < t->n_merges && rc == 0; r++) {
        tmp.len = 0;
        rc |= tok_bytelevel_encode(&tmp, t->blob + t->off[t->merges[r][0]], t->len[t->merges[r][0]]);
        rc |= anv_buf_append(&tmp, " ", 1);
        rc |= tok_bytelevel_encode(&tmp, t->blob + t->off[t->merges[r][1]], t->len[t->merges[r][1]]);
        rc |= anv_buf_puts(&b, r ? ",\n      " : "\n      ");
        rc |= anv_buf_json_string(&b, tmp.data, tmp.len);
    }
    rc |= anv_buf_puts(&b, "\n    ]\n  }\n}\n");
    anv_buf_free(&tmp);
    if (rc == 0) rc = anv_write_file_atomic(path, b.data, b.len);
    anv_buf_free(&b);
    return rc == 0 ? 0 : -1;
}

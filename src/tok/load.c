/* anv_tokenizer_load: picks the reader by content. */
#include "tok_internal.h"

#include "anvil/json.h"

#include <string.h>

static int load_json(const char *text, size_t len, const char *path, anv_tokenizer_t **out) {
    anv_json_doc_t *doc;
    if (anv_json_parse(text, len, path, &doc) != 0) return -1;
    const anv_json_t *root = anv_json_root(doc);
    int rc;
    if (anv_json_get(root, "model"))
        rc = tok_load_hf(root, path, out);
    else if (anv_json_get(root, "<|endoftext|>") || anv_json_get(root, "!"))
        rc = anv_error("%s: this is GPT-2's encoder.json; pass the directory holding it and vocab.bpe", path);
    else
        rc = anv_error("%s: a JSON file without a \"model\" is not a tokenizer.json", path);
    anv_json_free(doc);
    return rc;
}

int anv_tokenizer_load(const char *path, anv_tokenizer_t **out) {
    *out = NULL;
    if (anv_is_dir(path)) {
        char enc[4096], bpe[4096], hf[4096];
        if (anv_path_join(enc, sizeof enc, path, "encoder.json") != 0 ||
            anv_path_join(bpe, sizeof bpe, path, "vocab.bpe") != 0 ||
            anv_path_join(hf, sizeof hf, path, "tokenizer.json") != 0)
            return -1;
        if (anv_path_exists(enc) && anv_path_exists(bpe)) return anv_tokenizer_load_gpt2(enc, bpe, out);
        if (anv_path_exists(hf)) return anv_tokenizer_load(hf, out);
        return anv_error("%s: directory holds neither encoder.json + vocab.bpe nor tokenizer.json", path);
    }
    char *text;
    size_t len;
    if (anv_read_file(path, &text, &len) != 0) return -1;
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n')) i++;
    int rc;
    if (i == len)
        rc = anv_error("%s: empty file is not a tokenizer", path);
    else if (text[i] == '{')
        rc = load_json(text, len, path, out);
    else if (memchr(text, ' ', len < 512 ? len : 512) && i == 0)
        rc = tok_load_tiktoken_text(text, len, path, out);
    else
        rc = anv_error("%s: not a tokenizer file (expected tokenizer.json, a tiktoken rank file or a directory with "
                       "encoder.json and vocab.bpe)",
                       path);
    anv_free(text);
    return rc;
}

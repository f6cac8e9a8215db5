/* libFuzzer target: the JSON reader must reject or accept any bytes without crashing, and what it
 * accepts must be walkable. */
#include "anvil/json.h"

#include <stdint.h>

static size_t walk(const anv_json_t *v) {
    size_t n = 1;
    if (v->type == ANV_JSON_ARRAY || v->type == ANV_JSON_OBJECT)
        for (size_t i = 0; i < v->len; i++) n += walk(&v->items[i]);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    anv_json_doc_t *doc;
    if (anv_json_parse((const char *)data, size, "fuzz.json", &doc) == 0) {
        walk(anv_json_root(doc));
        anv_json_free(doc);
    }
    return 0;
}

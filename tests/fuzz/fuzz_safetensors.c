/* libFuzzer target: safetensors parsing and tensor reads on arbitrary bytes. */
#include "anvil/safetensors.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    anv_safetensors_t *st;
    if (anv_safetensors_parse(data, size, "fuzz.safetensors", &st) != 0) return 0;
    anv_safetensors_metadata(st, "format");
    for (int i = 0; i < anv_safetensors_count(st); i++) {
        const anv_st_tensor_t *t = anv_safetensors_tensor(st, i);
        if (t->numel > (1u << 20)) continue;
        float *dst = malloc(t->numel * sizeof(float) + 1);
        if (!dst) continue;
        anv_safetensors_read_f32(st, t->name, t->ndim, t->shape, dst);
        free(dst);
        if (anv_safetensors_find(st, t->name) == NULL) abort(); /* every listed tensor can be found */
    }
    anv_safetensors_close(st);
    return 0;
}

/* libFuzzer target: the GGUF reader must reject or accept any bytes without crashing, and for what it
 * accepts, every metadata value and every tensor must be readable within the image. */
#include "anvil/gguf.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    anv_gguf_t *g;
    if (anv_gguf_parse(data, size, "fuzz.gguf", &g) != 0) return 0;
    for (int i = 0; i < anv_gguf_n_kv(g); i++) {
        const anv_gguf_kv_t *kv = anv_gguf_kv(g, i);
        if (kv->type != ANV_GGUF_ARRAY || kv->n == 0 || kv->n > 4096) continue;
        if (kv->arr_type == ANV_GGUF_STRING) {
            const char **s = anv_alloc(kv->n * sizeof *s, "fuzz");
            size_t *lens = anv_alloc(kv->n * sizeof *lens, "fuzz");
            if (s && lens) anv_gguf_array_strings(kv, s, lens);
            anv_free(s);
            anv_free(lens);
        } else {
            (void)anv_gguf_array_number(kv, kv->n - 1);
        }
    }
    uint32_t u;
    float f;
    (void)anv_gguf_get_u32(g, "general.alignment", &u);
    (void)anv_gguf_get_f32(g, "gpt2.attention.layer_norm_epsilon", &f);
    for (int i = 0; i < anv_gguf_n_tensors(g); i++) {
        const anv_gguf_tensor_t *t = anv_gguf_tensor(g, i);
        if (t->numel > (1u << 16)) continue;
        float *x = anv_alloc(t->numel * sizeof *x, "fuzz");
        if (x) anv_gguf_tensor_to_f32(t, x);
        anv_free(x);
    }
    anv_gguf_close(g);
    return 0;
}

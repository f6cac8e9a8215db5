/* --weights of sample, serve and eval: f32 (the run's own weights) or q8 (int8 copies of the matrices,
 * anv_model_quantize_q8), with the size and the logits' error against f32 on a probe printed. */
#include "cli.h"

#include <math.h>
#include <string.h>

int cli_weights(anv_model_t *m, const char *weights) {
    if (!weights || !strcmp(weights, "f32")) return 0;
    if (strcmp(weights, "q8") != 0) return anv_error("--weights %s: expected f32 or q8", weights);
    const anv_config_t *c = anv_model_config(m);
    int T = c->block_size < 64 ? c->block_size : 64, V = c->vocab_size;
    int32_t probe[64];
    for (int t = 0; t < T; t++) probe[t] = (int32_t)(((uint64_t)t * 2654435761u + 17) % (uint64_t)V);
    float *f32 = anv_alloc(sizeof(float) * (size_t)T * V * 2, "probe logits"), *q8 = f32 ? f32 + (size_t)T * V : NULL;
    size_t bytes = 0;
    int rc = f32 && anv_model_logits(m, probe, 1, T, f32) == 0 && anv_model_quantize_q8(m, &bytes) == 0 &&
                     anv_model_logits(m, probe, 1, T, q8) == 0
                 ? 0
                 : -1;
    if (rc == 0) {
        double diff = 0, top = 0;
        for (size_t i = 0; i < (size_t)T * V; i++) {
            diff = fmax(diff, fabs((double)q8[i] - f32[i]));
            top = fmax(top, fabs((double)f32[i]));
        }
        fprintf(stderr,
                "weights: int8 (q8_0 blocks of %d), %.1f MiB of matrices; logits on a %d-token probe within %.2e of "
                "f32 (max |difference| / max |logit|)\n",
                ANV_Q8_BLOCK, (double)bytes / (1 << 20), T, top > 0 ? diff / top : diff);
    }
    anv_free(f32);
    return rc;
}

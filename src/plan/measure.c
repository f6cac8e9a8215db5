/* The time of a training step on this machine, for turning wall time into FLOPs. */
#include "anvil/kernels.h"
#include "anvil/optim.h"
#include "anvil/plan.h"

int anv_plan_time_step(const anv_config_t *cfg, int B, int T, int steps, double *seconds) {
    anv_model_t *m = NULL;
    anv_adamw_t opt = {0};
    int32_t *tokens = NULL;
    int rc = -1;
    size_t n_tok = (size_t)B * T + 1;
    if (anv_model_create(cfg, &m) != 0 || anv_adamw_init(&opt, anv_model_n_params(m)) != 0 ||
        !(tokens = anv_alloc(n_tok * sizeof *tokens, "timing tokens")))
        goto done;
    anv_model_init(m, 1);
    anv_rng_t rng;
    anv_rng_seed(&rng, 2);
    for (size_t i = 0; i < n_tok; i++) tokens[i] = (int32_t)(anv_rng_u64(&rng) % (uint64_t)cfg->vocab_size);
    const anv_adamw_config_t oc = {0.9f, 0.95f, 1e-8f, 0.1f};
    double fastest = 0;
    for (int s = 0; s <= steps; s++) { /* step 0 warms up */
        float loss;
        double t0 = anv_now();
        anv_model_zero_grad(m);
        if (anv_model_forward(m, tokens, tokens + 1, B, T, &loss) != 0 || anv_model_backward(m, 1.0f) != 0) goto done;
        anv_clip_grad_norm(anv_model_grads(m), anv_model_n_params(m), 1.0f);
        anv_adamw_step(&opt, m, &oc, 1e-4f);
        anv_device_sync();
        double dt = anv_now() - t0;
        if (s > 0 && (s == 1 || dt < fastest)) fastest = dt;
    }
    *seconds = fastest;
    rc = 0;
done:
    anv_free(tokens);
    anv_adamw_free(&opt);
    anv_model_free(m);
    return rc;
}

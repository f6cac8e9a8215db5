/* Training speed on this machine against model size, and the model that a time budget trains best. */
#include "anvil/kernels.h"
#include "anvil/optim.h"
#include "anvil/plan.h"

#include <math.h>

#define ASSUMED_MFU 0.3   /* before any step is timed */
#define SIZE_GRID 160     /* sizes tried, log-spaced from the smallest model to LARGEST_SIZE */
#define LARGEST_SIZE 1e13 /* parameters */
#define TIMING_WINDOW 1.0 /* seconds of steps timed per size, after a warm-up step */

/* The mean time of a training step: one warm-up step, then steps until TIMING_WINDOW seconds have
 * passed (at least one). A mean over many steps is what a run's length is made of: a tiny model's step
 * varies by half from one hundred steps to the next on a shared machine, and its fastest step would
 * promise more than a run gets. */
static int time_step(const anv_config_t *cfg, int B, int T, double *seconds) {
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
    double start = 0;
    int timed = 0;
    for (int s = 0; s == 0 || anv_now() - start < TIMING_WINDOW; s++) { /* step 0 warms up */
        float loss;
        anv_model_zero_grad(m);
        if (anv_model_forward(m, tokens, tokens + 1, NULL, B, T, &loss) != 0 || anv_model_backward(m, 1.0f) != 0)
            goto done;
        anv_clip_grad_norm(anv_model_grads(m), anv_model_n_params(m), 1.0f);
        anv_adamw_step(&opt, m, &oc, 1e-4f);
        anv_device_sync();
        if (s == 0)
            start = anv_now();
        else
            timed++;
    }
    *seconds = (anv_now() - start) / timed;
    rc = 0;
done:
    anv_free(tokens);
    anv_adamw_free(&opt);
    anv_model_free(m);
    return rc;
}

int anv_speed_add(anv_speed_t *s, const anv_config_t *cfg, int B, int T, double *seconds) {
    if (s->n == ANV_SPEED_POINTS) return anv_error("speed model: at most %d timed shapes", ANV_SPEED_POINTS);
    if (time_step(cfg, B, T, seconds) != 0) return -1;
    double params = (double)anv_config_num_params(cfg);
    double mfu = anv_model_flops_per_token(cfg, T) * B * T / *seconds / s->peak;
    int at = s->n++;
    for (; at > 0 && s->params[at - 1] > params; at--) s->params[at] = s->params[at - 1], s->mfu[at] = s->mfu[at - 1];
    s->params[at] = params;
    s->mfu[at] = mfu;
    return 0;
}

double anv_speed_mfu(const anv_speed_t *s, double params) {
    if (s->n == 0) return ASSUMED_MFU;
    if (params <= s->params[0]) return s->mfu[0];
    for (int i = 1; i < s->n; i++)
        if (params <= s->params[i]) {
            double t = log(params / s->params[i - 1]) / log(s->params[i] / s->params[i - 1]);
            return s->mfu[i - 1] + t * (s->mfu[i] - s->mfu[i - 1]);
        }
    return s->mfu[s->n - 1];
}

double anv_speed_tokens_per_s(const anv_speed_t *s, const anv_config_t *cfg, int T) {
    return s->peak * anv_speed_mfu(s, (double)anv_config_num_params(cfg)) / anv_model_flops_per_token(cfg, T);
}

int anv_plan_for_seconds(const anv_law_t *law, const anv_speed_t *speed, anv_arch_t arch, int vocab, int seq,
                         double seconds, double unique, anv_optimum_t *out, anv_config_t *shape) {
    anv_config_t smallest = anv_plan_smallest(arch, vocab, seq);
    double lo = log((double)anv_config_num_params(&smallest)), hi = log(LARGEST_SIZE);
    int found = 0;
    for (int k = 0; k <= SIZE_GRID; k++) {
        double target = exp(lo + (hi - lo) * k / SIZE_GRID);
        anv_config_t shapes[5];
        int n = anv_plan_shapes(arch, target, vocab, seq, shapes, 5);
        if (n == 0) continue;
        const anv_config_t *c = &shapes[anv_plan_nearest(shapes, n, target)];
        double params = (double)anv_config_num_params(c);
        double tokens = seconds * anv_speed_tokens_per_s(speed, c, seq);
        double loss =
            unique > 0 ? anv_law_loss_repeated(law, params, tokens, unique) : anv_law_loss(law, params, tokens);
        if (!found || loss < out->loss) {
            *out = (anv_optimum_t){6.0 * params * tokens, params, tokens, loss};
            *shape = *c;
            found = 1;
        }
    }
    return found ? 0 : anv_error("plan: no %s model shape for vocabulary %d", anv_arch_name(arch), vocab);
}

int anv_plan_precision(anv_arch_t arch, double params, int vocab_size, int B, int T, anv_config_t *shape,
                       anv_precision_timing_t *out) {
    anv_config_t shapes[5];
    int n = anv_plan_shapes(arch, params, vocab_size, T, shapes, 5);
    *shape = n ? shapes[anv_plan_nearest(shapes, n, params)] : anv_plan_smallest(arch, vocab_size, T);
    return anv_precision_measure(shape, B, T, out);
}

/* AdamW (decoupled weight decay on 2-D weights only) and global-norm gradient clipping. */
#include "anvil/optim.h"

#include "anvil/kernels.h"

#include <math.h>
#include <string.h>

int anv_adamw_init(anv_adamw_t *opt, size_t n_params) { return anv_adamw_init_shard(opt, 0, n_params); }

int anv_adamw_init_shard(anv_adamw_t *opt, size_t lo, size_t hi) {
    memset(opt, 0, sizeof *opt);
    size_t n = hi - lo, bytes = (n ? n : 1) * sizeof(float);
    opt->m = anv_device_alloc(bytes, "AdamW first moments");
    opt->v = opt->m ? anv_device_alloc(bytes, "AdamW second moments") : NULL;
    if (!opt->v) {
        anv_adamw_free(opt);
        return -1;
    }
    opt->lo = lo;
    opt->n = n;
    return 0;
}

void anv_adamw_free(anv_adamw_t *opt) {
    anv_device_free(opt->m);
    anv_device_free(opt->v);
    memset(opt, 0, sizeof *opt);
}

void anv_adamw_step(anv_adamw_t *opt, anv_model_t *model, const anv_adamw_config_t *cfg, float lr) {
    anv_adamw_step_shard(opt, model, anv_model_trainable(model)->grads + opt->lo, cfg, lr);
}

void anv_adamw_step_shard(anv_adamw_t *opt, anv_model_t *model, const float *grad, const anv_adamw_config_t *cfg,
                          float lr) {
    opt->t++;
    float bc1 = (float)(1.0 - pow(cfg->beta1, (double)opt->t));
    float bc2_sqrt = (float)sqrt(1.0 - pow(cfg->beta2, (double)opt->t));
    const anv_trainable_t *t = anv_model_trainable(model);
    anv_adamw_update(t->params + opt->lo, grad, opt->m, opt->v, opt->lo, opt->n, t->segments, lr, cfg->beta1,
                     cfg->beta2, cfg->eps, cfg->weight_decay, bc1, bc2_sqrt);
}

float anv_clip_grads_by(float *grads, size_t n, double sumsq, float max_norm) {
    double norm = sqrt(sumsq);
    if (max_norm > 0 && norm > max_norm) {
        anv_scale_into(grads, grads, (float)(max_norm / norm), n);
    }
    return (float)norm;
}

float anv_clip_grad_norm(float *grads, size_t n, float max_norm) {
    return anv_clip_grads_by(grads, n, anv_sumsq(grads, n), max_norm);
}

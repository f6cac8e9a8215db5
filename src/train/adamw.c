/* AdamW (decoupled weight decay on 2-D weights only) and global-norm gradient clipping. */
#include "anvil/optim.h"

#include <math.h>
#include <string.h>

int anv_adamw_init(anv_adamw_t *opt, size_t n_params) {
    memset(opt, 0, sizeof *opt);
    opt->m = anv_calloc(n_params * sizeof(float), "AdamW first moments");
    opt->v = opt->m ? anv_calloc(n_params * sizeof(float), "AdamW second moments") : NULL;
    if (!opt->v) {
        anv_adamw_free(opt);
        return -1;
    }
    opt->n = n_params;
    return 0;
}

void anv_adamw_free(anv_adamw_t *opt) {
    anv_free(opt->m);
    anv_free(opt->v);
    memset(opt, 0, sizeof *opt);
}

/* p -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * p), element-wise over one tensor. */
static void update(float *p, const float *g, float *m, float *v, size_t n, const anv_adamw_config_t *c, float lr,
                   float wd, float bc1, float bc2_sqrt) {
    float b1 = c->beta1, b2 = c->beta2, eps = c->eps;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float mi = b1 * m[i] + (1.0f - b1) * g[i];
        float vi = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / bc1, denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] -= lr * (mhat / denom + wd * p[i]);
    }
}

void anv_adamw_step(anv_adamw_t *opt, anv_model_t *model, const anv_adamw_config_t *cfg, float lr) {
    opt->t++;
    float bc1 = (float)(1.0 - pow(cfg->beta1, (double)opt->t));
    float bc2_sqrt = (float)sqrt(1.0 - pow(cfg->beta2, (double)opt->t));
    float *params = anv_model_params(model), *grads = anv_model_grads(model);
    for (int i = 0; i < anv_model_n_tensors(model); i++) {
        const anv_param_t *t = anv_model_tensor(model, i);
        size_t o = t->offset;
        update(params + o, grads + o, opt->m + o, opt->v + o, t->numel, cfg, lr, t->decay ? cfg->weight_decay : 0.0f,
               bc1, bc2_sqrt);
    }
}

/* The norm sums fixed chunks in double, then the chunk sums in order: the same bits for any thread
 * count. */
float anv_clip_grad_norm(float *grads, size_t n, float max_norm) {
    enum { CHUNKS = 256 };
    double part[CHUNKS];
    size_t per = (n + CHUNKS - 1) / CHUNKS;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < CHUNKS; c++) {
        size_t a = (size_t)c * per, b = a + per < n ? a + per : n;
        double s = 0;
        for (size_t i = a; i < b; i++) s += (double)grads[i] * grads[i];
        part[c] = s;
    }
    double total = 0;
    for (int c = 0; c < CHUNKS; c++) total += part[c];
    double norm = sqrt(total);
    if (max_norm > 0 && norm > max_norm) {
        float scale = (float)(max_norm / norm);
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) grads[i] *= scale;
    }
    return (float)norm;
}

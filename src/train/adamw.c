/* AdamW (decoupled weight decay on 2-D weights only) and global-norm gradient clipping. */
#include "anvil/optim.h"

#include <math.h>
#include <string.h>

int anv_adamw_init(anv_adamw_t *opt, size_t n_params) { return anv_adamw_init_shard(opt, 0, n_params); }

int anv_adamw_init_shard(anv_adamw_t *opt, size_t lo, size_t hi) {
    memset(opt, 0, sizeof *opt);
    size_t n = hi - lo, bytes = (n ? n : 1) * sizeof(float);
    opt->m = anv_calloc(bytes, "AdamW first moments");
    opt->v = opt->m ? anv_calloc(bytes, "AdamW second moments") : NULL;
    if (!opt->v) {
        anv_adamw_free(opt);
        return -1;
    }
    opt->lo = lo;
    opt->n = n;
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
    anv_adamw_step_shard(opt, model, anv_model_grads(model) + opt->lo, cfg, lr);
}

void anv_adamw_step_shard(anv_adamw_t *opt, anv_model_t *model, const float *grad, const anv_adamw_config_t *cfg,
                          float lr) {
    opt->t++;
    float bc1 = (float)(1.0 - pow(cfg->beta1, (double)opt->t));
    float bc2_sqrt = (float)sqrt(1.0 - pow(cfg->beta2, (double)opt->t));
    float *params = anv_model_params(model);
    size_t lo = opt->lo, hi = opt->lo + opt->n;
    for (int i = 0; i < anv_model_n_tensors(model); i++) {
        const anv_param_t *t = anv_model_tensor(model, i);
        size_t a = t->offset > lo ? t->offset : lo, b = t->offset + t->numel < hi ? t->offset + t->numel : hi;
        if (a >= b) continue; /* the tensor lies outside this shard */
        update(params + a, grad + (a - lo), opt->m + (a - lo), opt->v + (a - lo), b - a, cfg, lr,
               t->decay ? cfg->weight_decay : 0.0f, bc1, bc2_sqrt);
    }
}

/* The norm sums fixed chunks in double (8 lanes each), then the chunk sums in order: the same bits for
 * any thread count. */
double anv_grad_sumsq(const float *grads, size_t n) {
    enum { CHUNKS = 256 };
    double part[CHUNKS];
    size_t per = (n + CHUNKS - 1) / CHUNKS;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < CHUNKS; c++) {
        size_t a = (size_t)c * per, b = a + per < n ? a + per : n;
        double lane[8] = {0}; /* independent partial sums, so that the loop vectorises */
        size_t i = a;
        for (; i + 8 <= b; i += 8)
            for (int l = 0; l < 8; l++) lane[l] += (double)grads[i + l] * grads[i + l];
        double s = 0;
        for (; i < b; i++) s += (double)grads[i] * grads[i];
        for (int l = 0; l < 8; l++) s += lane[l];
        part[c] = s;
    }
    double total = 0;
    for (int c = 0; c < CHUNKS; c++) total += part[c];
    return total;
}

float anv_clip_grads_by(float *grads, size_t n, double sumsq, float max_norm) {
    double norm = sqrt(sumsq);
    if (max_norm > 0 && norm > max_norm) {
        float scale = (float)(max_norm / norm);
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) grads[i] *= scale;
    }
    return (float)norm;
}

float anv_clip_grad_norm(float *grads, size_t n, float max_norm) {
    return anv_clip_grads_by(grads, n, anv_grad_sumsq(grads, n), max_norm);
}

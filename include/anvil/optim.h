/* Optimisation: AdamW with decoupled weight decay (2-D weights only), learning-rate schedules and
 * global-norm gradient clipping. State is plain arrays so checkpoints can save and restore it. */
#ifndef ANVIL_OPTIM_H
#define ANVIL_OPTIM_H

#include "anvil/model.h"

typedef struct {
    float beta1, beta2, eps, weight_decay; /* GPT-2-style defaults: 0.9, 0.95, 1e-8, 0.1 */
} anv_adamw_config_t;

typedef struct {
    float *m, *v; /* first and second moments, one per parameter float of [lo, lo + n) */
    size_t lo, n; /* the floats of the parameter block this state covers: all of it, or a ZeRO-1 shard */
    long long t;  /* steps taken (bias correction uses t after increment) */
} anv_adamw_t;

int anv_adamw_init(anv_adamw_t *opt, size_t n_params);
/* ZeRO-1: state for the parameter floats [lo, hi) only (one rank's shard). */
int anv_adamw_init_shard(anv_adamw_t *opt, size_t lo, size_t hi);
void anv_adamw_free(anv_adamw_t *opt);
/* One update of every trainable parameter of m (anv_model_trainable) from its gradients, at learning rate lr. Weight
 * decay applies to tensors with decay=1 only: p -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * p). */
void anv_adamw_step(anv_adamw_t *opt, anv_model_t *m, const anv_adamw_config_t *cfg, float lr);
/* The same update of the parameters [opt->lo, opt->lo + opt->n) only, from grad (opt->n floats of
 * that range); each float gets bitwise the update anv_adamw_step would give it. */
void anv_adamw_step_shard(anv_adamw_t *opt, anv_model_t *m, const float *grad, const anv_adamw_config_t *cfg, float lr);

/* Global L2 norm of the gradient block; when max_norm > 0 and the norm exceeds it, scales the
 * gradients by max_norm / norm. Returns the norm before clipping. */
float anv_clip_grad_norm(float *grads, size_t n, float max_norm);
/* Clipping when the gradients are spread over ranks: sumsq is the sum of every rank's anv_sumsq
 * (kernels.h) of its shard;
 * scales these n gradients like anv_clip_grad_norm and returns the global norm. */
float anv_clip_grads_by(float *grads, size_t n, double sumsq, float max_norm);

typedef enum {
    ANV_SCHEDULE_COSINE,   /* linear warmup, then cosine from max_lr to min_lr at total steps */
    ANV_SCHEDULE_CONSTANT, /* linear warmup, then max_lr */
    ANV_SCHEDULE_WSD       /* linear warmup, stable at max_lr, linear decay to min_lr over the last decay_steps */
} anv_schedule_kind_t;

typedef struct {
    anv_schedule_kind_t kind;
    float max_lr, min_lr;
    long long warmup, total, decay_steps;
} anv_schedule_t;

int anv_schedule_parse(const char *name, anv_schedule_kind_t *kind); /* "cosine", "constant", "wsd" */
/* Learning rate for step (0-based). Warmup: max_lr * (step + 1) / warmup. */
float anv_schedule_lr(const anv_schedule_t *s, long long step);

#endif

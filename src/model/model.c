/* The model: its parameter block laid out by the architecture table, views, creation, initialisation,
 * accessors. */
#include "anvil/kernels.h"
#include "model/model_internal.h"

#include <math.h>
#include <string.h>

/* Points the views of w at the tensors of block, as the table's view fields say. */
static void make_views(const anv_model_t *m, float *block, anv_weights_t *w) {
    for (int i = 0; i < m->n_tensors; i++) {
        const anv_tensor_origin_t *o = &m->origins[i];
        if (o->spec->view == NO_VIEW) continue;
        char *base = o->layer < 0 ? (char *)w : (char *)&w->h[o->layer];
        *(float **)(base + o->spec->view) = block + m->tensors[i].offset;
    }
    if (m->cfg.tie_embeddings) w->head = w->wte;
}

/* The segments' block holds the start and end offsets, then the decay flags. */
int anv_make_segments(const anv_param_t *tensors, int n, anv_adamw_segments_t *segs, void **block) {
    int count = 0;
    for (int i = 0; i < n; i++) {
        const anv_param_t *t = &tensors[i], *prev = i ? &tensors[i - 1] : NULL;
        count += !prev || prev->offset + prev->numel != t->offset || prev->decay != t->decay;
    }
    size_t *start = anv_device_alloc(count * (2 * sizeof(size_t) + 1), "AdamW segments");
    if (!start) return -1;
    size_t *end = start + count;
    unsigned char *decay = (unsigned char *)(end + count);
    int s = -1;
    for (int i = 0; i < n; i++) {
        const anv_param_t *t = &tensors[i];
        if (s < 0 || end[s] != t->offset || decay[s] != t->decay) {
            s++;
            start[s] = t->offset;
            decay[s] = (unsigned char)t->decay;
        }
        end[s] = t->offset + t->numel;
    }
    *block = start;
    *segs = (anv_adamw_segments_t){count, start, end, decay};
    return 0;
}

/* RoPE's inverse frequencies, computed once on the host and uploaded. */
static int make_rope(anv_model_t *m) {
    if (m->arch->positions != ANV_POS_ROTARY) return 0;
    size_t bytes = (size_t)anv_config_head_size(&m->cfg) / 2 * sizeof(float);
    float *inv_freq = anv_alloc(bytes, "RoPE frequencies");
    m->rope_inv_freq = inv_freq ? anv_device_alloc(bytes, "RoPE frequencies") : NULL;
    if (m->rope_inv_freq) {
        anv_config_rope_inv_freq(&m->cfg, inv_freq);
        anv_device_upload(m->rope_inv_freq, inv_freq, bytes);
    }
    anv_free(inv_freq);
    return m->rope_inv_freq ? 0 : -1;
}

int anv_model_create(const anv_config_t *cfg, anv_model_t **out) {
    *out = NULL;
    if (anv_config_validate(cfg, "model config")) return -1;
    anv_model_t *m = anv_calloc(sizeof *m, "model");
    if (!m) return -1;
    m->cfg = *cfg;
    m->arch = anv_arch_info(cfg->arch);
    m->Vp = anv_config_padded_vocab(cfg);
    anv_arch_layout(cfg, NULL, NULL, &m->n_tensors);
    m->tensors = anv_calloc(sizeof *m->tensors * m->n_tensors, "model tensor table");
    m->origins = anv_calloc(sizeof *m->origins * m->n_tensors, "model tensor table");
    m->w.h = anv_calloc(sizeof *m->w.h * cfg->n_layer, "model layer views");
    m->g.h = anv_calloc(sizeof *m->g.h * cfg->n_layer, "model layer views");
    if (!m->tensors || !m->origins || !m->w.h || !m->g.h) goto fail;
    m->n_params = anv_arch_layout(cfg, m->tensors, m->origins, &m->n_tensors);
    m->params = anv_device_alloc(m->n_params * sizeof(float), "model parameters");
    m->grads = m->params ? anv_device_alloc(m->n_params * sizeof(float), "model gradients") : NULL;
    if (!m->grads || anv_make_segments(m->tensors, m->n_tensors, &m->segments, &m->segment_block) != 0 ||
        make_rope(m) != 0)
        goto fail;
    make_views(m, m->params, &m->w);
    make_views(m, m->grads, &m->g);
    m->base = (anv_trainable_t){m->params,    m->grads,     m->n_params,        m->tensors,
                                m->n_tensors, &m->segments, "model.safetensors"};
    *out = m;
    return 0;
fail:
    anv_model_free(m);
    return -1;
}

void anv_model_free(anv_model_t *m) {
    if (!m) return;
    anv_device_free(m->acts.block);
    anv_device_free(m->acts.inputs);
    anv_device_free(m->acts.att_scratch);
    anv_lora_free(m->lora);
    anv_q8_free(m->q8);
    anv_device_free(m->params);
    anv_device_free(m->grads);
    anv_device_free(m->segment_block);
    anv_device_free(m->rope_inv_freq);
    anv_free(m->tensors);
    anv_free(m->origins);
    anv_free(m->w.h);
    anv_free(m->g.h);
    anv_free(m);
}

const anv_config_t *anv_model_config(const anv_model_t *m) { return &m->cfg; }
float *anv_model_params(anv_model_t *m) {
    anv_device_sync();
    return m->params;
}
float *anv_model_grads(anv_model_t *m) {
    anv_device_sync();
    return m->grads;
}
size_t anv_model_n_params(const anv_model_t *m) { return m->n_params; }
const anv_adamw_segments_t *anv_model_segments(const anv_model_t *m) { return &m->segments; }
int anv_model_n_tensors(const anv_model_t *m) { return m->n_tensors; }
const anv_param_t *anv_model_tensor(const anv_model_t *m, int i) {
    return i >= 0 && i < m->n_tensors ? &m->tensors[i] : NULL;
}

void anv_model_init(anv_model_t *m, uint64_t seed) {
    anv_rng_t rng;
    anv_rng_seed(&rng, seed);
    double residual_std = 0.02 / sqrt(2.0 * m->cfg.n_layer);
    anv_device_sync();
    memset(m->params, 0, m->n_params * sizeof(float)); /* biases and padding rows */
    for (int i = 0; i < m->n_tensors; i++) {
        const anv_param_t *t = &m->tensors[i];
        anv_init_t init = m->origins[i].spec->init;
        float *p = m->params + t->offset;
        if (init == INIT_ONE)
            for (size_t j = 0; j < t->numel; j++) p[j] = 1.0f;
        if (init != INIT_NORMAL && init != INIT_RESIDUAL) continue;
        double std = init == INIT_RESIDUAL ? residual_std : 0.02;
        for (size_t j = 0; j < t->numel; j++) p[j] = (float)(std * anv_rng_normal(&rng));
    }
}

void anv_model_zero_grad(anv_model_t *m) {
    const anv_trainable_t *t = anv_model_trainable(m);
    anv_fill(t->grads, 0.0f, t->n_params);
}

const anv_trainable_t *anv_model_trainable(anv_model_t *m) {
    anv_device_sync();
    return m->lora ? &m->lora->set : &m->base;
}

/* Activations are laid out for the model as it is: adding adapters changes them. */
void anv_model_drop_activations(anv_model_t *m) {
    anv_device_free(m->acts.block);
    anv_device_free(m->acts.inputs);
    m->acts.block = NULL;
    m->acts.inputs = NULL;
    m->acts.cap_n = 0;
    m->have_forward = 0;
}

int anv_model_add_lora(anv_model_t *m, const anv_lora_config_t *lc, uint64_t seed) {
    if (m->lora) return anv_error("LoRA: the model already has adapters");
    if (anv_lora_create(m, lc, seed, &m->lora) != 0) return -1;
    anv_model_drop_activations(m);
    anv_device_free(m->grads);
    m->grads = NULL;
    m->base.grads = NULL;
    anv_layer_t *h = m->g.h;
    memset(h, 0, sizeof *h * m->cfg.n_layer);
    m->g = (anv_weights_t){.h = h};
    for (int l = 0; l < m->cfg.n_layer; l++) m->w.h[l].lora = &m->lora->layers[l];
    return 0;
}

const anv_lora_config_t *anv_model_lora(const anv_model_t *m) { return m->lora ? &m->lora->cfg : NULL; }

void anv_model_lora_dropout_seed(anv_model_t *m, uint64_t seed) {
    if (m->lora) m->lora->dropout_seed = seed;
}

uint64_t anv_model_weights_hash(anv_model_t *m) {
    anv_device_sync();
    return anv_hash64(m->params, m->n_params * sizeof(float), 0);
}

double anv_model_flops_per_token(const anv_config_t *cfg, int T) {
    return 6.0 * (double)anv_config_num_params(cfg) + 12.0 * cfg->n_layer * cfg->n_embd * (double)T;
}

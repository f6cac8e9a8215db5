/* GPT-2 model: parameter layout with Hugging Face names, creation, initialisation, accessors. */
#include "anvil/kernels.h"
#include "model/gpt_internal.h"

#include <math.h>
#include <string.h>

/* Adds one named tensor at the end of the block (when tensors is NULL, only counts). The tensor spans
 * `rows` rows in the block, of which shape[0] are stored (wte's padding rows are the difference). */
static void add_tensor(anv_model_t *m, size_t *off, const char *name, int rows, int d0, int d1) {
    if (m->tensors) {
        anv_param_t *p = &m->tensors[m->n_tensors];
        snprintf(p->name, sizeof p->name, "%s", name);
        p->ndim = d1 ? 2 : 1;
        p->shape[0] = d0;
        p->shape[1] = d1;
        p->offset = *off;
        p->numel = (size_t)d0 * (d1 ? d1 : 1);
        p->decay = d1 ? 1 : 0;
    }
    m->n_tensors++;
    *off += (size_t)rows * (d1 ? d1 : 1);
}

/* Lays out every tensor in the order of gpt_internal.h; returns the block size in floats. */
static size_t layout(anv_model_t *m) {
    const anv_config_t *c = &m->cfg;
    int C = c->n_embd;
    size_t off = 0;
    char name[64];
    m->n_tensors = 0;
    add_tensor(m, &off, "transformer.wte.weight", m->Vp, c->vocab_size, C);
    add_tensor(m, &off, "transformer.wpe.weight", c->block_size, c->block_size, C);
    enum { NONE, DIM_C, DIM_3C, DIM_F };
    const int dim[] = {0, C, 3 * C, c->n_ff};
    static const struct {
        const char *suffix;
        int in, out; /* dimensions; out NONE for 1-D tensors */
    } per_layer[] = {
        {"ln_1.weight", DIM_C, NONE},       {"ln_1.bias", DIM_C, NONE},           {"attn.c_attn.weight", DIM_C, DIM_3C},
        {"attn.c_attn.bias", DIM_3C, NONE}, {"attn.c_proj.weight", DIM_C, DIM_C}, {"attn.c_proj.bias", DIM_C, NONE},
        {"ln_2.weight", DIM_C, NONE},       {"ln_2.bias", DIM_C, NONE},           {"mlp.c_fc.weight", DIM_C, DIM_F},
        {"mlp.c_fc.bias", DIM_F, NONE},     {"mlp.c_proj.weight", DIM_F, DIM_C},  {"mlp.c_proj.bias", DIM_C, NONE},
    };
    for (int l = 0; l < c->n_layer; l++) {
        for (size_t i = 0; i < sizeof per_layer / sizeof per_layer[0]; i++) {
            snprintf(name, sizeof name, "transformer.h.%d.%s", l, per_layer[i].suffix);
            int d0 = dim[per_layer[i].in], d1 = dim[per_layer[i].out];
            add_tensor(m, &off, name, d0, d0, d1);
        }
    }
    add_tensor(m, &off, "transformer.ln_f.weight", C, C, 0);
    add_tensor(m, &off, "transformer.ln_f.bias", C, C, 0);
    return off;
}

/* Fills the named pointer views of a block laid out by layout(). */
static void make_views(anv_model_t *m, float *block, anv_gpt_weights_t *w) {
    const anv_param_t *t = m->tensors;
    w->wte = block + t[0].offset;
    w->wpe = block + t[1].offset;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        const anv_param_t *p = t + 2 + 12 * l;
        anv_gpt_layer_t *h = &w->h[l];
        float **dst[12] = {&h->ln1_w, &h->ln1_b, &h->attn_w, &h->attn_b, &h->proj_w,   &h->proj_b,
                           &h->ln2_w, &h->ln2_b, &h->fc_w,   &h->fc_b,   &h->fcproj_w, &h->fcproj_b};
        for (int i = 0; i < 12; i++) *dst[i] = block + p[i].offset;
    }
    w->lnf_w = block + t[m->n_tensors - 2].offset;
    w->lnf_b = block + t[m->n_tensors - 1].offset;
}

/* The tensors (in increasing offset) as AdamW segments in device memory: start and end offsets, then
 * the decay flags, in one block. */
static int make_segments(anv_model_t *m) {
    int count = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const anv_param_t *t = &m->tensors[i], *prev = i ? &m->tensors[i - 1] : NULL;
        count += !prev || prev->offset + prev->numel != t->offset || prev->decay != t->decay;
    }
    size_t *start = anv_device_alloc(count * (2 * sizeof(size_t) + 1), "AdamW segments");
    if (!start) return -1;
    size_t *end = start + count;
    unsigned char *decay = (unsigned char *)(end + count);
    int s = -1;
    for (int i = 0; i < m->n_tensors; i++) {
        const anv_param_t *t = &m->tensors[i];
        if (s < 0 || end[s] != t->offset || decay[s] != t->decay) {
            s++;
            start[s] = t->offset;
            decay[s] = (unsigned char)t->decay;
        }
        end[s] = t->offset + t->numel;
    }
    m->segment_block = start;
    m->segments = (anv_adamw_segments_t){count, start, end, decay};
    return 0;
}

int anv_model_create(const anv_config_t *cfg, anv_model_t **out) {
    *out = NULL;
    if (anv_config_validate(cfg, "model config")) return -1;
    anv_model_t *m = anv_calloc(sizeof *m, "model");
    if (!m) return -1;
    m->cfg = *cfg;
    m->Vp = anv_config_padded_vocab(cfg);
    layout(m); /* counts the tensors */
    m->tensors = anv_calloc(sizeof *m->tensors * m->n_tensors, "model tensor table");
    m->w.h = anv_calloc(sizeof *m->w.h * cfg->n_layer, "model layer views");
    m->g.h = anv_calloc(sizeof *m->g.h * cfg->n_layer, "model layer views");
    if (!m->tensors || !m->w.h || !m->g.h) goto fail;
    m->n_params = layout(m);
    m->params = anv_device_alloc(m->n_params * sizeof(float), "model parameters");
    m->grads = m->params ? anv_device_alloc(m->n_params * sizeof(float), "model gradients") : NULL;
    if (!m->grads) goto fail;
    if (make_segments(m) != 0) goto fail;
    make_views(m, m->params, &m->w);
    make_views(m, m->grads, &m->g);
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
    anv_device_free(m->params);
    anv_device_free(m->grads);
    anv_device_free(m->segment_block);
    anv_free(m->tensors);
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

void anv_model_init_gpt2(anv_model_t *m, uint64_t seed) {
    anv_rng_t rng;
    anv_rng_seed(&rng, seed);
    double proj_std = 0.02 / sqrt(2.0 * m->cfg.n_layer);
    memset(m->params, 0, m->n_params * sizeof(float)); /* biases, LayerNorm biases, padding rows */
    for (int i = 0; i < m->n_tensors; i++) {
        const anv_param_t *t = &m->tensors[i];
        float *p = m->params + t->offset;
        size_t len = strlen(t->name);
        int is_weight = len > 7 && !strcmp(t->name + len - 7, ".weight");
        if (!is_weight) continue;
        if (t->ndim == 1) { /* LayerNorm scale */
            for (size_t j = 0; j < t->numel; j++) p[j] = 1.0f;
            continue;
        }
        int residual_proj = strstr(t->name, "c_proj.weight") != NULL;
        double std = residual_proj ? proj_std : 0.02;
        for (size_t j = 0; j < t->numel; j++) p[j] = (float)(std * anv_rng_normal(&rng));
    }
}

void anv_model_zero_grad(anv_model_t *m) { anv_fill(m->grads, 0.0f, m->n_params); }

double anv_model_flops_per_token(const anv_config_t *cfg, int T) {
    return 6.0 * (double)anv_config_num_params(cfg) + 12.0 * cfg->n_layer * cfg->n_embd * (double)T;
}

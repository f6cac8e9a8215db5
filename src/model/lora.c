/* LoRA adapters: which linear layers an architecture offers (the `lora` names of its table, arch.c), the
 * adapter block laid out beside the frozen base, its initialisation, and folding it into the base. The
 * block applies them (block.c). */
#include "anvil/kernels.h"
#include "model/model_internal.h"

#include <math.h>
#include <string.h>

const char *anv_lora_target_names(anv_arch_t arch) {
    return arch == ANV_ARCH_GPT2 ? "c_attn, c_proj, c_fc" : "q, k, v, o, gate, up, down";
}

/* The product that a layer tensor's view writes: the four weight views; -1 for the others. */
static int product_of_view(ptrdiff_t view) {
    if (view == (ptrdiff_t)offsetof(anv_layer_t, qkv_w)) return PRODUCT_QKV;
    if (view == (ptrdiff_t)offsetof(anv_layer_t, attn_proj_w)) return PRODUCT_ATTN_OUT;
    if (view == (ptrdiff_t)offsetof(anv_layer_t, mlp_in_w)) return PRODUCT_MLP_IN;
    if (view == (ptrdiff_t)offsetof(anv_layer_t, mlp_out_w)) return PRODUCT_MLP_OUT;
    return -1;
}

/* The next name of a comma-separated list at *p, without the spaces around it; 0 at the list's end. */
static int next_name(const char **p, const char **name, size_t *len) {
    while (**p == ' ' || **p == ',') ++*p;
    if (!**p) return 0;
    const char *end = *p, *last;
    while (*end && *end != ',') end++;
    for (last = end; last > *p && last[-1] == ' ';) last--;
    *name = *p, *len = (size_t)(last - *p), *p = end;
    return 1;
}

/* Whether `name` is in the comma-separated list; "" holds every name. */
static int listed(const char *list, const char *name) {
    if (!*list) return 1;
    const char *item;
    size_t n;
    while (next_name(&list, &item, &n))
        if (n == strlen(name) && memcmp(item, name, n) == 0) return 1;
    return 0;
}

int anv_lora_config_validate(const anv_lora_config_t *lc, const anv_config_t *cfg, const char *source) {
    const anv_arch_info_t *a = anv_arch_info(cfg->arch);
    int narrowest = cfg->n_kv_head * anv_config_head_size(cfg);
    if (cfg->n_embd < narrowest) narrowest = cfg->n_embd;
    if (lc->rank < 1 || lc->rank > narrowest)
        return anv_error("%s: rank %d is outside 1..%d (the narrowest adapted layer)", source, lc->rank, narrowest);
    if (!(lc->alpha > 0) || !isfinite(lc->alpha))
        return anv_error("%s: alpha must be positive, not %g", source, (double)lc->alpha);
    if (!(lc->dropout >= 0 && lc->dropout < 1))
        return anv_error("%s: dropout must be at least 0 and below 1, not %g", source, (double)lc->dropout);
    const char *list = lc->targets, *item;
    size_t n;
    while (next_name(&list, &item, &n)) {
        int found = 0;
        for (int i = 0; !found && i < a->n_layer; i++) {
            const char *t = a->layer[i].lora;
            found = t && strlen(t) == n && memcmp(t, item, n) == 0;
        }
        if (!found)
            return anv_error("%s: %s has no LoRA target '%.*s' (its targets: %s)", source, anv_arch_name(cfg->arch),
                             (int)n, item, anv_lora_target_names(cfg->arch));
    }
    return 0;
}

/* Lays out one layer's adapters from the architecture's table: which weights, their widths and where
 * their columns fall in the product (k after q, v after k; up after gate). */
static int layer_adapters(const anv_config_t *c, const anv_lora_config_t *lc, anv_layer_adapters_t *la) {
    const anv_arch_info_t *a = anv_arch_info(c->arch);
    memset(la, 0, sizeof *la);
    int product = -1, col = 0, count = 0;
    for (int i = 0; i < a->n_layer; i++) {
        const anv_tensor_spec_t *s = &a->layer[i];
        if (s->cols == DIM_NONE) continue;
        int rows = anv_arch_dim(c, s->rows), cols = anv_arch_dim(c, s->cols);
        int in = a->weights == ANV_WEIGHTS_OUT_IN ? cols : rows, out = a->weights == ANV_WEIGHTS_OUT_IN ? rows : cols;
        if (s->view != NO_VIEW) {
            product = product_of_view(s->view);
            col = 0;
        }
        if (product >= 0 && s->lora && listed(lc->targets, s->lora)) {
            la->ad[product][la->n[product]++] = (anv_adapter_t){.in = in, .out = out, .col = col, .index = count};
            count++;
        }
        col += out;
    }
    return count;
}

uint64_t anv_lora_adapter_seed(uint64_t seed, int layer, int index) {
    return seed ^ ((uint64_t)layer * 64 + (uint64_t)index + 1) * 0xD1B54A32D192ED03ull;
}

size_t anv_lora_row_floats(const anv_model_t *m) {
    return m->lora ? (size_t)m->lora->per_layer * m->lora->cfg.rank : 0;
}

/* "model.layers.3.self_attn.q_proj.weight" -> "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight"
 * and "blk.3.attn_q.weight" -> "blk.3.attn_q.weight.lora_a". */
static int adapter_names(const anv_param_t *base, char which, anv_param_t *t) {
    size_t stem = strlen(base->name) - strlen(".weight");
    int n = snprintf(t->name, sizeof t->name, "base_model.model.%.*s.lora_%c.weight", (int)stem, base->name, which);
    int g = snprintf(t->gguf, sizeof t->gguf, "%s.lora_%c", base->gguf, which == 'A' ? 'a' : 'b');
    if (n >= (int)sizeof t->name || g >= (int)sizeof t->gguf)
        return anv_error("LoRA: the adapter of %s has too long a name", base->name);
    return 0;
}

int anv_lora_create(const anv_model_t *m, const anv_lora_config_t *lc, uint64_t seed, anv_lora_t **out) {
    *out = NULL;
    const anv_config_t *c = &m->cfg;
    if (anv_lora_config_validate(lc, c, "LoRA") != 0) return -1;
    anv_lora_t *l = anv_calloc(sizeof *l, "LoRA adapters");
    if (!l) return -1;
    l->cfg = *lc;
    l->scale = lc->alpha / (float)lc->rank;
    l->layers = anv_calloc(sizeof *l->layers * c->n_layer, "LoRA adapters");
    if (!l->layers) goto fail;
    for (int i = 0; i < c->n_layer; i++) l->per_layer = layer_adapters(c, lc, &l->layers[i]);
    if (l->per_layer == 0) {
        anv_error("LoRA: no layer of %s matches the targets '%s'", anv_arch_name(c->arch), lc->targets);
        goto fail;
    }
    int n = 2 * l->per_layer * c->n_layer, r = lc->rank;
    l->tensors = anv_calloc(sizeof *l->tensors * n, "LoRA tensor table");
    if (!l->tensors) goto fail;
    /* The base tensor of each adapter, in the table's order: the same walk as layer_adapters. */
    const anv_arch_info_t *a = m->arch;
    size_t off = 0;
    int k = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        const anv_tensor_origin_t *o = &m->origins[t];
        if (o->layer < 0 || o->spec->cols == DIM_NONE || !o->spec->lora || !listed(lc->targets, o->spec->lora))
            continue;
        const anv_param_t *base = &m->tensors[t];
        int in = a->weights == ANV_WEIGHTS_OUT_IN ? base->shape[1] : base->shape[0];
        int outw = a->weights == ANV_WEIGHTS_OUT_IN ? base->shape[0] : base->shape[1];
        for (int which = 0; which < 2; which++) {
            anv_param_t *p = &l->tensors[k++];
            if (adapter_names(base, which ? 'B' : 'A', p) != 0) goto fail;
            p->ndim = 2;
            p->shape[0] = which ? outw : r;
            p->shape[1] = which ? r : in;
            p->offset = off;
            p->numel = (size_t)p->shape[0] * p->shape[1];
            p->decay = 1;
            p->rope_heads = which ? base->rope_heads : 0; /* B's rows are the weight's output rows */
            off += p->numel;
        }
    }
    l->params = anv_device_alloc(off * sizeof(float), "LoRA adapters");
    l->grads = l->params ? anv_device_alloc(off * sizeof(float), "LoRA gradients") : NULL;
    if (!l->grads || anv_make_segments(l->tensors, n, &l->segments, &l->segment_block) != 0) goto fail;
    /* views: the k-th adapter of the layer walk is tensors 2k (A) and 2k + 1 (B) */
    for (int layer = 0, t = 0; layer < c->n_layer; layer++)
        for (int idx = 0; idx < l->per_layer; idx++, t += 2)
            for (int p = 0; p < N_PRODUCTS; p++)
                for (int j = 0; j < l->layers[layer].n[p]; j++) {
                    anv_adapter_t *ad = &l->layers[layer].ad[p][j];
                    if (ad->index != idx) continue;
                    ad->a = l->params + l->tensors[t].offset;
                    ad->b = l->params + l->tensors[t + 1].offset;
                    ad->da = l->grads + l->tensors[t].offset;
                    ad->db = l->grads + l->tensors[t + 1].offset;
                }
    /* A ~ N(0, 1/r) (PEFT's "gaussian" initialisation), B = 0 */
    anv_rng_t rng;
    anv_rng_seed(&rng, seed);
    anv_device_sync();
    memset(l->params, 0, off * sizeof(float));
    memset(l->grads, 0, off * sizeof(float));
    for (int t = 0; t < n; t += 2) {
        float *A = l->params + l->tensors[t].offset;
        for (size_t j = 0; j < l->tensors[t].numel; j++) A[j] = (float)(anv_rng_normal(&rng) / r);
    }
    l->set = (anv_trainable_t){l->params, l->grads, off, l->tensors, n, &l->segments, "adapter_model.safetensors"};
    *out = l;
    return 0;
fail:
    anv_lora_free(l);
    return -1;
}

void anv_lora_free(anv_lora_t *l) {
    if (!l) return;
    anv_device_free(l->params);
    anv_device_free(l->grads);
    anv_device_free(l->segment_block);
    anv_free(l->tensors);
    anv_free(l->layers);
    anv_free(l);
}

/* W += scale B A: an (out, in) weight gets (B A)[o][i], a Conv1D (in, out) one its transpose. */
static void fold(float *w, int layout_in_out, const anv_adapter_t *ad, int cols_total, int r, float scale) {
    for (int o = 0; o < ad->out; o++)
        for (int i = 0; i < ad->in; i++) {
            double s = 0;
            for (int k = 0; k < r; k++) s += (double)ad->b[(size_t)o * r + k] * ad->a[(size_t)k * ad->in + i];
            size_t at = layout_in_out ? (size_t)i * cols_total + ad->col + o : (size_t)(ad->col + o) * ad->in + i;
            w[at] += (float)(scale * s);
        }
}

void anv_model_merge_lora(anv_model_t *m) {
    anv_lora_t *l = m->lora;
    if (!l) return;
    anv_device_sync();
    int in_out = m->arch->weights == ANV_WEIGHTS_IN_OUT;
    for (int layer = 0; layer < m->cfg.n_layer; layer++) {
        anv_layer_t *w = &m->w.h[layer];
        float *weights[N_PRODUCTS] = {w->qkv_w, w->attn_proj_w, w->mlp_in_w, w->mlp_out_w};
        int widths[N_PRODUCTS] = {anv_qkv_width(&m->cfg), m->cfg.n_embd, anv_mlp_in_width(&m->cfg), m->cfg.n_embd};
        for (int p = 0; p < N_PRODUCTS; p++)
            for (int j = 0; j < l->layers[layer].n[p]; j++)
                fold(weights[p], in_out, &l->layers[layer].ad[p][j], widths[p], l->cfg.rank, l->scale);
        w->lora = NULL;
    }
    anv_lora_free(l);
    m->lora = NULL;
    anv_model_drop_activations(m);
}

/* What each architecture is, in one place: its tensors in parameter-block order (Hugging Face and
 * llama.cpp names, stored shape, init rule, the view that reads it) and the places its block differs.
 * Layout, views, initialisation, the parameter count, the memory budget, both exporters and the
 * importer all follow these tables; adding an architecture is a table here and its kernels. */
#include "model/model_internal.h"

#include <string.h>

#define LAYER(field) ((ptrdiff_t)offsetof(anv_layer_t, field))
#define GLOBAL(field) ((ptrdiff_t)offsetof(anv_weights_t, field))

/* GPT2LMHeadModel: Conv1D weights (in, out) with biases, LayerNorm, learned positions, tied head. */
static const anv_tensor_spec_t gpt2_before[] = {
    {"transformer.wte.weight", "token_embd.weight", DIM_V, DIM_C, INIT_NORMAL, 0, 0, GLOBAL(wte), NULL},
    {"transformer.wpe.weight", "position_embd.weight", DIM_T, DIM_C, INIT_NORMAL, 0, 0, GLOBAL(wpe), NULL},
};
static const anv_tensor_spec_t gpt2_layer[] = {
    {"transformer.h.%d.ln_1.weight", "blk.%d.attn_norm.weight", DIM_C, DIM_NONE, INIT_ONE, 0, 0, LAYER(norm1_w), NULL},
    {"transformer.h.%d.ln_1.bias", "blk.%d.attn_norm.bias", DIM_C, DIM_NONE, INIT_ZERO, 0, 0, LAYER(norm1_b), NULL},
    {"transformer.h.%d.attn.c_attn.weight", "blk.%d.attn_qkv.weight", DIM_C, DIM_3C, INIT_NORMAL, 0, 0, LAYER(qkv_w),
     "c_attn"},
    {"transformer.h.%d.attn.c_attn.bias", "blk.%d.attn_qkv.bias", DIM_3C, DIM_NONE, INIT_ZERO, 0, 0, LAYER(qkv_b),
     NULL},
    {"transformer.h.%d.attn.c_proj.weight", "blk.%d.attn_output.weight", DIM_C, DIM_C, INIT_RESIDUAL, 0, 0,
     LAYER(attn_proj_w), "c_proj"},
    {"transformer.h.%d.attn.c_proj.bias", "blk.%d.attn_output.bias", DIM_C, DIM_NONE, INIT_ZERO, 0, 0,
     LAYER(attn_proj_b), NULL},
    {"transformer.h.%d.ln_2.weight", "blk.%d.ffn_norm.weight", DIM_C, DIM_NONE, INIT_ONE, 0, 0, LAYER(norm2_w), NULL},
    {"transformer.h.%d.ln_2.bias", "blk.%d.ffn_norm.bias", DIM_C, DIM_NONE, INIT_ZERO, 0, 0, LAYER(norm2_b), NULL},
    {"transformer.h.%d.mlp.c_fc.weight", "blk.%d.ffn_up.weight", DIM_C, DIM_F, INIT_NORMAL, 0, 0, LAYER(mlp_in_w),
     "c_fc"},
    {"transformer.h.%d.mlp.c_fc.bias", "blk.%d.ffn_up.bias", DIM_F, DIM_NONE, INIT_ZERO, 0, 0, LAYER(mlp_in_b), NULL},
    {"transformer.h.%d.mlp.c_proj.weight", "blk.%d.ffn_down.weight", DIM_F, DIM_C, INIT_RESIDUAL, 0, 0,
     LAYER(mlp_out_w), "c_proj"},
    {"transformer.h.%d.mlp.c_proj.bias", "blk.%d.ffn_down.bias", DIM_C, DIM_NONE, INIT_ZERO, 0, 0, LAYER(mlp_out_b),
     NULL},
};
static const anv_tensor_spec_t gpt2_after[] = {
    {"transformer.ln_f.weight", "output_norm.weight", DIM_C, DIM_NONE, INIT_ONE, 0, 0, GLOBAL(norm_w), NULL},
    {"transformer.ln_f.bias", "output_norm.bias", DIM_C, DIM_NONE, INIT_ZERO, 0, 0, GLOBAL(norm_b), NULL},
};

/* LlamaForCausalLM: nn.Linear weights (out, in) without biases, RMSNorm, RoPE, SwiGLU, grouped-query
 * attention, tied or untied head. q, k, v (and gate, up) are adjacent: the block multiplies by each
 * group at once. */
static const anv_tensor_spec_t llama_before[] = {
    {"model.embed_tokens.weight", "token_embd.weight", DIM_V, DIM_C, INIT_NORMAL, 0, 0, GLOBAL(wte), NULL},
};
static const anv_tensor_spec_t llama_layer[] = {
    {"model.layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight", DIM_C, DIM_NONE, INIT_ONE, 0, 0,
     LAYER(norm1_w), NULL},
    {"model.layers.%d.self_attn.q_proj.weight", "blk.%d.attn_q.weight", DIM_C, DIM_C, INIT_NORMAL, 0, 'q', LAYER(qkv_w),
     "q"},
    {"model.layers.%d.self_attn.k_proj.weight", "blk.%d.attn_k.weight", DIM_KV, DIM_C, INIT_NORMAL, 0, 'k', NO_VIEW,
     "k"},
    {"model.layers.%d.self_attn.v_proj.weight", "blk.%d.attn_v.weight", DIM_KV, DIM_C, INIT_NORMAL, 0, 0, NO_VIEW, "v"},
    {"model.layers.%d.self_attn.o_proj.weight", "blk.%d.attn_output.weight", DIM_C, DIM_C, INIT_RESIDUAL, 0, 0,
     LAYER(attn_proj_w), "o"},
    {"model.layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight", DIM_C, DIM_NONE, INIT_ONE, 0, 0,
     LAYER(norm2_w), NULL},
    {"model.layers.%d.mlp.gate_proj.weight", "blk.%d.ffn_gate.weight", DIM_F, DIM_C, INIT_NORMAL, 0, 0, LAYER(mlp_in_w),
     "gate"},
    {"model.layers.%d.mlp.up_proj.weight", "blk.%d.ffn_up.weight", DIM_F, DIM_C, INIT_NORMAL, 0, 0, NO_VIEW, "up"},
    {"model.layers.%d.mlp.down_proj.weight", "blk.%d.ffn_down.weight", DIM_C, DIM_F, INIT_RESIDUAL, 0, 0,
     LAYER(mlp_out_w), "down"},
};
static const anv_tensor_spec_t llama_after[] = {
    {"model.norm.weight", "output_norm.weight", DIM_C, DIM_NONE, INIT_ONE, 0, 0, GLOBAL(norm_w), NULL},
    {"lm_head.weight", "output.weight", DIM_V, DIM_C, INIT_NORMAL, 1, 0, GLOBAL(head), NULL},
};

#define N(a) ((int)(sizeof a / sizeof a[0]))
static const anv_arch_info_t archs[] = {
    [ANV_ARCH_GPT2] = {ANV_NORM_LAYER, ANV_POS_LEARNED, ANV_MLP_GELU, ANV_WEIGHTS_IN_OUT, gpt2_before, gpt2_layer,
                       gpt2_after, N(gpt2_before), N(gpt2_layer), N(gpt2_after)},
    [ANV_ARCH_LLAMA] = {ANV_NORM_RMS, ANV_POS_ROTARY, ANV_MLP_SWIGLU, ANV_WEIGHTS_OUT_IN, llama_before, llama_layer,
                        llama_after, N(llama_before), N(llama_layer), N(llama_after)},
};

const anv_arch_info_t *anv_arch_info(anv_arch_t arch) { return &archs[arch]; }

int anv_qkv_width(const anv_config_t *c) { return c->n_embd + 2 * c->n_kv_head * anv_config_head_size(c); }

int anv_mlp_in_width(const anv_config_t *c) {
    return anv_arch_info(c->arch)->mlp == ANV_MLP_SWIGLU ? 2 * c->n_ff : c->n_ff;
}

int anv_arch_dim(const anv_config_t *c, anv_dim_t d) {
    switch (d) {
    case DIM_NONE:
        return 0;
    case DIM_C:
        return c->n_embd;
    case DIM_3C:
        return 3 * c->n_embd;
    case DIM_KV:
        return c->n_kv_head * anv_config_head_size(c);
    case DIM_F:
        return c->n_ff;
    case DIM_V:
        return c->vocab_size;
    case DIM_T:
        return c->block_size;
    }
    return 0;
}

/* Appends one tensor of the table at *off (layer -1 for global ones). */
static void add(const anv_config_t *c, const anv_tensor_spec_t *s, int layer, size_t *off, int *count,
                anv_param_t *params, anv_tensor_origin_t *origins) {
    if (s->untied_only && c->tie_embeddings) return;
    int d0 = anv_arch_dim(c, s->rows), d1 = anv_arch_dim(c, s->cols);
    int rows = s->rows == DIM_V ? anv_config_padded_vocab(c) : d0; /* the block reserves the padding rows */
    if (params) {
        anv_param_t *p = &params[*count];
        memset(p, 0, sizeof *p);
        snprintf(p->name, sizeof p->name, s->hf, layer);
        snprintf(p->gguf, sizeof p->gguf, s->gguf, layer);
        p->ndim = d1 ? 2 : 1;
        p->shape[0] = d0;
        p->shape[1] = d1;
        p->offset = *off;
        p->numel = (size_t)d0 * (d1 ? d1 : 1);
        p->decay = d1 ? 1 : 0;
        /* Embedding tables (a row per token or position) are (rows, C) in every layout. */
        int table = s->rows == DIM_V || s->rows == DIM_T;
        p->in_out = d1 && !table && anv_arch_info(c->arch)->weights == ANV_WEIGHTS_IN_OUT;
        p->rope_heads = s->rope_heads == 'q' ? c->n_head : s->rope_heads == 'k' ? c->n_kv_head : 0;
    }
    if (origins) origins[*count] = (anv_tensor_origin_t){s, layer};
    (*count)++;
    *off += (size_t)rows * (d1 ? d1 : 1);
}

size_t anv_arch_layout(const anv_config_t *cfg, anv_param_t *params, anv_tensor_origin_t *origins, int *count) {
    const anv_arch_info_t *a = anv_arch_info(cfg->arch);
    size_t off = 0;
    *count = 0;
    for (int i = 0; i < a->n_before; i++) add(cfg, &a->before[i], -1, &off, count, params, origins);
    for (int l = 0; l < cfg->n_layer; l++)
        for (int i = 0; i < a->n_layer; i++) add(cfg, &a->layer[i], l, &off, count, params, origins);
    for (int i = 0; i < a->n_after; i++) add(cfg, &a->after[i], -1, &off, count, params, origins);
    return off;
}

size_t anv_config_num_params(const anv_config_t *cfg) {
    size_t n = anv_arch_layout(cfg, NULL, NULL, &(int){0});
    int heads = 1 + !cfg->tie_embeddings; /* the rows of padding the block holds beyond Hugging Face's count */
    return n - (size_t)heads * (anv_config_padded_vocab(cfg) - cfg->vocab_size) * cfg->n_embd;
}

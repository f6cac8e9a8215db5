/* The transformer block, written once for every architecture and for both training (forward.c) and
 * KV-cached decoding (infer.c). Architectures differ only where the table says (model_internal.h):
 * the norm, the positions, the MLP, the weights' layout and the number of key/value heads. */
#include "model/model_internal.h"

void anv_block_norm(const anv_model_t *m, float *out, float *mean, float *rstd, const float *inp, const float *w,
                    const float *b, int n) {
    if (m->arch->norm == ANV_NORM_RMS)
        anv_rmsnorm_forward(out, rstd, inp, w, m->cfg.norm_eps, n, m->cfg.n_embd);
    else
        anv_layernorm_forward(out, mean, rstd, inp, w, b, n, m->cfg.n_embd);
}

void anv_block_norm_backward(const anv_model_t *m, float *dinp, float *dw, float *db, const float *dout,
                             const float *inp, const float *w, const float *mean, const float *rstd, int n) {
    if (m->arch->norm == ANV_NORM_RMS)
        anv_rmsnorm_backward(dinp, dw, dout, inp, w, rstd, n, m->cfg.n_embd);
    else
        anv_layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, n, m->cfg.n_embd);
}

/* out (n, OC) = inp (n, IC) through a weight stored (IC, OC) with a bias (Conv1D) or (OC, IC) without, or
 * through its int8 copy q (NULL: none). */
static void linear(const anv_model_t *m, float *out, const float *inp, const float *w, const float *b,
                   const anv_q8_matrix_t *q, int n, int IC, int OC) {
    if (q)
        anv_matmul_q8_forward(out, inp, q->q, q->d, b, n, IC, OC);
    else if (m->arch->weights == ANV_WEIGHTS_IN_OUT)
        anv_matmul_forward(out, inp, w, b, n, IC, OC);
    else
        anv_matmul_nt_forward(out, inp, w, n, IC, OC);
}

/* dinp (n, IC) = dout (n, OC) through the weight's transpose (overwritten); dw, db accumulate. */
static void linear_backward(const anv_model_t *m, float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, int n, int IC, int OC) {
    if (m->arch->weights == ANV_WEIGHTS_IN_OUT) {
        anv_matmul_backward(dinp, dw, db, dout, inp, w, n, IC, OC);
        return;
    }
    anv_fill(dinp, 0.0f, (size_t)n * IC);
    anv_matmul_nt_backward(dinp, dw, dout, inp, w, n, IC, OC);
}

/* The LoRA adapters on product p add to its columns: out (n, ld) += scale B A inp, keeping A inp in the
 * layer's u. With dropout (b->lora_x), each adapter reads its own dropped copy of inp. */
static void adapters_forward(const anv_model_t *m, const anv_layer_t *w, const anv_block_bufs_t *b, anv_product_t p,
                             float *out, int ld, const float *inp, int n) {
    if (!w->lora) return;
    const anv_lora_t *l = m->lora;
    int r = l->cfg.rank;
    for (int i = 0; i < w->lora->n[p]; i++) {
        const anv_adapter_t *ad = &w->lora->ad[p][i];
        const float *x = inp;
        if (b->lora_x) {
            anv_dropout(b->lora_x, inp, (size_t)n * ad->in, l->cfg.dropout,
                        anv_lora_adapter_seed(l->dropout_seed, b->layer, ad->index), 0);
            x = b->lora_x;
        }
        anv_lora_forward(out + ad->col, ld, b->lora_u + (size_t)ad->index * n * r, x, ad->a, ad->b, l->scale, n, ad->in,
                         ad->out, r);
    }
}

/* Their gradients from dout (n, ld): into the adapters' A and B, and added to dinp (through the dropout
 * mask, drawn again, when there is one). */
static void adapters_backward(const anv_model_t *m, const anv_layer_t *w, const anv_block_bufs_t *b,
                              const anv_block_grads_t *d, anv_product_t p, float *dinp, const float *dout, int ld,
                              const float *inp, int n) {
    if (!w->lora) return;
    const anv_lora_t *l = m->lora;
    int r = l->cfg.rank;
    for (int i = 0; i < w->lora->n[p]; i++) {
        const anv_adapter_t *ad = &w->lora->ad[p][i];
        const float *u = b->lora_u + (size_t)ad->index * n * r;
        size_t nx = (size_t)n * ad->in;
        if (!b->lora_x) {
            anv_lora_backward(dinp, ad->da, ad->db, d->lora_du, dout + ad->col, ld, inp, u, ad->a, ad->b, l->scale, n,
                              ad->in, ad->out, r);
            continue;
        }
        uint64_t seed = anv_lora_adapter_seed(l->dropout_seed, b->layer, ad->index);
        anv_dropout(b->lora_x, inp, nx, l->cfg.dropout, seed, 0);
        anv_fill(d->lora_dx, 0.0f, nx);
        anv_lora_backward(d->lora_dx, ad->da, ad->db, d->lora_du, dout + ad->col, ld, b->lora_x, u, ad->a, ad->b,
                          l->scale, n, ad->in, ad->out, r);
        anv_dropout(dinp, d->lora_dx, nx, l->cfg.dropout, seed, 1);
    }
}

void anv_block_forward(const anv_model_t *m, const anv_layer_t *w, const anv_block_bufs_t *b,
                       const anv_block_attention_t *att) {
    const anv_config_t *c = &m->cfg;
    int C = c->n_embd, NH = c->n_head, NKV = c->n_kv_head, F = c->n_ff, n = att->B * att->T;
    int QKV = anv_qkv_width(c), FI = anv_mlp_in_width(c);
    size_t nC = (size_t)n * C;
    const anv_q8_layer_t *q8 = m->q8 ? &m->q8->h[b->layer] : NULL; /* inference on int8 weights */
    /* attention: res2 (n, C) = x + proj(attention(rope(qkv(norm1(x))))) */
    anv_block_norm(m, b->ln1, b->ln1_mean, b->ln1_rstd, b->x, w->norm1_w, w->norm1_b, n);
    linear(m, b->qkv, b->ln1, w->qkv_w, w->qkv_b, q8 ? &q8->qkv : NULL, n, C, QKV); /* (n, QKV) */
    adapters_forward(m, w, b, PRODUCT_QKV, b->qkv, QKV, b->ln1, n);
    if (m->arch->positions == ANV_POS_ROTARY)
        anv_rope_forward(b->qkv, att->starts, m->rope_inv_freq, att->B, att->T, att->pos, NH, NKV, C / NH);
    if (att->decode)
        anv_attention_decode(b->atty, att->kc, att->vc, b->qkv, att->pos, n, C, NH, NKV);
    else
        anv_attention_forward(b->atty, att->lse, att->scratch, b->qkv, att->starts, att->B, att->T, C, NH, NKV);
    linear(m, b->tmp, b->atty, w->attn_proj_w, w->attn_proj_b, q8 ? &q8->attn_proj : NULL, n, C, C);
    adapters_forward(m, w, b, PRODUCT_ATTN_OUT, b->tmp, C, b->atty, n);
    anv_residual_forward(b->res2, b->x, b->tmp, nC);
    /* MLP: out (n, C) = res2 + mlp_out(act(mlp_in(norm2(res2)))) */
    anv_block_norm(m, b->ln2, b->ln2_mean, b->ln2_rstd, b->res2, w->norm2_w, w->norm2_b, n);
    linear(m, b->fch, b->ln2, w->mlp_in_w, w->mlp_in_b, q8 ? &q8->mlp_in : NULL, n, C, FI); /* (n, FI) */
    adapters_forward(m, w, b, PRODUCT_MLP_IN, b->fch, FI, b->ln2, n);
    if (m->arch->mlp == ANV_MLP_SWIGLU)
        anv_swiglu_forward(b->fch_act, b->fch, n, F);
    else
        anv_gelu_forward(b->fch_act, b->fch, (size_t)n * F);
    linear(m, b->tmp, b->fch_act, w->mlp_out_w, w->mlp_out_b, q8 ? &q8->mlp_out : NULL, n, F, C);
    adapters_forward(m, w, b, PRODUCT_MLP_OUT, b->tmp, C, b->fch_act, n);
    anv_residual_forward(b->out, b->res2, b->tmp, nC);
}

void anv_block_backward(const anv_model_t *m, const anv_layer_t *w, anv_layer_t *g, const anv_block_bufs_t *b,
                        const anv_block_attention_t *att, float *dres, const anv_block_grads_t *d) {
    const anv_config_t *c = &m->cfg;
    int C = c->n_embd, NH = c->n_head, NKV = c->n_kv_head, F = c->n_ff, n = att->B * att->T;
    int QKV = anv_qkv_width(c), FI = anv_mlp_in_width(c);
    /* MLP branch; dres is the gradient of out, which flows unchanged into the branch and res2. */
    float *dfch_act = m->arch->mlp == ANV_MLP_SWIGLU ? d->dact : d->dbranch; /* GELU's is taken in place */
    linear_backward(m, dfch_act, g->mlp_out_w, g->mlp_out_b, dres, b->fch_act, w->mlp_out_w, n, F, C);
    adapters_backward(m, w, b, d, PRODUCT_MLP_OUT, dfch_act, dres, C, b->fch_act, n);
    if (m->arch->mlp == ANV_MLP_SWIGLU)
        anv_swiglu_backward(d->dbranch, b->fch, d->dact, n, F);
    else
        anv_gelu_backward(d->dbranch, b->fch, d->dbranch, (size_t)n * F);
    linear_backward(m, d->tmp, g->mlp_in_w, g->mlp_in_b, d->dbranch, b->ln2, w->mlp_in_w, n, C, FI);
    adapters_backward(m, w, b, d, PRODUCT_MLP_IN, d->tmp, d->dbranch, FI, b->ln2, n);
    anv_block_norm_backward(m, dres, g->norm2_w, g->norm2_b, d->tmp, b->res2, w->norm2_w, b->ln2_mean, b->ln2_rstd, n);
    /* Attention branch; dres is now the gradient of res2. */
    linear_backward(m, d->tmp, g->attn_proj_w, g->attn_proj_b, dres, b->atty, w->attn_proj_w, n, C, C);
    adapters_backward(m, w, b, d, PRODUCT_ATTN_OUT, d->tmp, dres, C, b->atty, n);
    anv_attention_backward(d->dbranch, att->scratch, d->tmp, b->qkv, b->atty, att->lse, att->starts, att->B, att->T, C,
                           NH, NKV);
    if (m->arch->positions == ANV_POS_ROTARY)
        anv_rope_backward(d->dbranch, att->starts, m->rope_inv_freq, att->B, att->T, att->pos, NH, NKV, C / NH);
    linear_backward(m, d->tmp, g->qkv_w, g->qkv_b, d->dbranch, b->ln1, w->qkv_w, n, C, QKV);
    adapters_backward(m, w, b, d, PRODUCT_QKV, d->tmp, d->dbranch, QKV, b->ln1, n);
    anv_block_norm_backward(m, dres, g->norm1_w, g->norm1_b, d->tmp, b->x, w->norm1_w, b->ln1_mean, b->ln1_rstd, n);
}

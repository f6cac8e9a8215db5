/* The transformer block, written once for training (gpt_train.c) and KV-cached decoding (infer.c). */
#include "model/gpt_internal.h"

void anv_block_forward(const anv_config_t *c, const anv_gpt_layer_t *w, const anv_block_bufs_t *b,
                       const anv_block_attention_t *att, int n) {
    int C = c->n_embd, NH = c->n_head, F = c->n_ff;
    size_t nC = (size_t)n * C, nF = (size_t)n * F;
    /* attention: res2 (n, C) = x + proj(attention(qkv(ln_1(x)))) */
    anv_layernorm_forward(b->ln1, b->ln1_mean, b->ln1_rstd, b->x, w->ln1_w, w->ln1_b, n, C);
    anv_matmul_forward(b->qkv, b->ln1, w->attn_w, w->attn_b, n, C, 3 * C);
    if (att->decode)
        anv_attention_decode(b->atty, att->kc, att->vc, b->qkv, att->pos, n, C, NH, NH);
    else
        anv_attention_forward(b->atty, att->lse, att->scratch, b->qkv, att->B, att->T, C, NH, NH);
    anv_matmul_forward(b->tmp, b->atty, w->proj_w, w->proj_b, n, C, C);
    anv_residual_forward(b->res2, b->x, b->tmp, nC);
    /* MLP: out (n, C) = res2 + c_proj(gelu(c_fc(ln_2(res2)))) */
    anv_layernorm_forward(b->ln2, b->ln2_mean, b->ln2_rstd, b->res2, w->ln2_w, w->ln2_b, n, C);
    anv_matmul_forward(b->fch, b->ln2, w->fc_w, w->fc_b, n, C, F);
    anv_gelu_forward(b->fch_gelu, b->fch, nF);
    anv_matmul_forward(b->tmp, b->fch_gelu, w->fcproj_w, w->fcproj_b, n, F, C);
    anv_residual_forward(b->out, b->res2, b->tmp, nC);
}

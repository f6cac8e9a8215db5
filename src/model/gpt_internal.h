/* The GPT-2 model's internals, shared by training (gpt.c, gpt_train.c) and KV-cached inference (infer.c).
 *
 * Parameter block layout (floats, in this order, Hugging Face GPT-2 names):
 *   transformer.wte.weight   (Vp, C)   rows >= vocab_size are padding, always zero
 *   transformer.wpe.weight   (block_size, C)
 *   per layer i: transformer.h.{i}.ln_1.{weight,bias} (C), attn.c_attn.{weight (C,3C), bias (3C)},
 *                attn.c_proj.{weight (C,C), bias (C)}, ln_2.{weight,bias} (C),
 *                mlp.c_fc.{weight (C,F), bias (F)}, mlp.c_proj.{weight (F,C), bias (C)}; F = n_ff
 *   transformer.ln_f.{weight,bias} (C)
 * Conv1D weights are (in, out): y = x @ W + b. The gradient block has the same layout. */
#ifndef ANVIL_MODEL_GPT_INTERNAL_H
#define ANVIL_MODEL_GPT_INTERNAL_H

#include "anvil/kernels.h"
#include "anvil/model.h"

/* Views of one transformer block's parameters (or of their gradients). */
typedef struct {
    float *ln1_w, *ln1_b;       /* (C), (C) */
    float *attn_w, *attn_b;     /* c_attn: (C, 3C), (3C); output columns are q | k | v */
    float *proj_w, *proj_b;     /* attn.c_proj: (C, C), (C) */
    float *ln2_w, *ln2_b;       /* (C), (C) */
    float *fc_w, *fc_b;         /* mlp.c_fc: (C, F), (F) */
    float *fcproj_w, *fcproj_b; /* mlp.c_proj: (F, C), (C) */
} anv_gpt_layer_t;

/* Views of the whole parameter (or gradient) block. */
typedef struct {
    float *wte;         /* (Vp, C), tied LM head */
    float *wpe;         /* (block_size, C) */
    anv_gpt_layer_t *h; /* n_layer entries */
    float *lnf_w, *lnf_b;
} anv_gpt_weights_t;

/* Activations of the last forward, sized for up to cap_n = B*T token rows (L = n_layer). */
typedef struct {
    size_t cap_n;
    float *encoded;             /* (B, T, C) embeddings, input of layer 0 */
    float *ln1;                 /* (L, B, T, C) */
    float *ln1_mean, *ln1_rstd; /* (L, B, T) */
    float *qkv;                 /* (L, B, T, 3C) */
    float *atty;                /* (L, B, T, C) attention output, input of attn.c_proj */
    float *att_lse;             /* (L, B, NH, T) log-sum-exp of each attention softmax row */
    float *res2;                /* (L, B, T, C) residual stream after attention */
    float *ln2;                 /* (L, B, T, C) */
    float *ln2_mean, *ln2_rstd; /* (L, B, T) */
    float *fch;                 /* (L, B, T, F) c_fc output, GELU input */
    float *fch_gelu;            /* (L, B, T, F) */
    float *res3;                /* (L, B, T, C) residual stream after the MLP: each layer's output */
    float *lnf;                 /* (B, T, C) */
    float *lnf_mean, *lnf_rstd; /* (B, T) */
    float *ce_lse;              /* (B, T) log-sum-exp of each logits row over the real vocabulary */
    float *ce_tlogit;           /* (B, T) logit of each row's target */
    float *ce_logits;           /* (R, Vp) logits of one block of R token rows (row stride Vp), then their dlogits */
    float *ce_dlnf;             /* (B, T, C) gradient of lnf from the head, for a loss scale of 1 */
    float *ce_dwte;             /* (Vp, C) gradient of the head's wte rows, for a loss scale of 1 */
    float *tmp;                 /* (B, T, C) branch output (forward), activation gradient (backward) */
    float *dres;                /* (B, T, C) gradient of the residual stream */
    float *dbranch;             /* (B, T, max(F, 3C)) gradient inside a branch (MLP hidden, qkv) */
    float *block;               /* the allocation all of the float views above point into */
    int32_t *inputs, *targets;  /* (B, T) copies of the last forward's tokens (inputs owns both) */
    float *att_scratch;         /* attention's per-thread (T, T) work areas */
    size_t att_scratch_n;       /* floats in att_scratch */
} anv_gpt_acts_t;

/* The buffers of one transformer block over n token rows. Training passes the layer's activations,
 * kept for the backward pass; decoding passes scratch that every layer reuses, NULL for the
 * normalisation statistics, and the residual stream itself for res2 and out (residuals in place). */
typedef struct {
    const float *x;                          /* (n, C) the residual stream entering the block */
    float *ln1, *ln1_mean, *ln1_rstd;        /* (n, C), (n), (n) */
    float *qkv, *atty;                       /* (n, 3C), (n, C) */
    float *res2, *ln2, *ln2_mean, *ln2_rstd; /* (n, C), (n, C), (n), (n) */
    float *fch, *fch_gelu;                   /* (n, F) each */
    float *tmp;                              /* (n, C) a branch's output before its residual */
    float *out;                              /* (n, C) the residual stream leaving the block */
} anv_block_bufs_t;

/* Causal self-attention of the block's qkv: over a whole batch of sequences (training: lse and
 * scratch as anv_attention_forward takes them), or of n new rows of one sequence at positions pos..
 * against a KV cache (decoding: kc, vc as anv_attention_decode takes them). */
typedef struct {
    int decode;
    float *lse, *scratch; /* training */
    int B, T;
    float *kc, *vc; /* decoding */
    int pos;
} anv_block_attention_t;

/* One GPT-2 block, the same for training and decoding: x -> out through the attention and the MLP. */
void anv_block_forward(const anv_config_t *c, const anv_gpt_layer_t *w, const anv_block_bufs_t *b,
                       const anv_block_attention_t *att, int n);

struct anv_model {
    anv_config_t cfg;
    int Vp;                /* vocab_size rounded up to a multiple of 64 */
    size_t n_params;       /* floats in the block, padding included */
    float *params, *grads; /* (n_params) each */
    anv_param_t *tensors;  /* named views, n_tensors entries */
    int n_tensors;
    anv_adamw_segments_t segments; /* the tensors for AdamW: adjacent ones with the same decay merged */
    void *segment_block;           /* device memory of the segments' arrays */
    anv_gpt_weights_t w;           /* views into params */
    anv_gpt_weights_t g;           /* the same views into grads */
    anv_gpt_acts_t acts;           /* training activations, allocated by the first forward */
    int B, T;                      /* shape of the last forward */
    int n_targets;                 /* non-ignored targets of the last forward */
    int have_forward;              /* a forward with targets ran and backward may follow */
};

#endif

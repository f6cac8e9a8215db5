/* The model's internals, shared by the architecture tables (arch.c), the parameter block (model.c), the
 * transformer block (block.c), training (forward.c) and KV-cached inference (infer.c).
 *
 * The parameter block holds every tensor of the architecture's table (arch.c) in the table's order,
 * Hugging Face names and layouts; the gradient block has the same layout. The token embedding (and an
 * untied LM head) span Vp = vocab_size rounded up to 64 rows, of which those past vocab_size are
 * padding, always zero. */
#ifndef ANVIL_MODEL_INTERNAL_H
#define ANVIL_MODEL_INTERNAL_H

#include "anvil/kernels.h"
#include "anvil/model.h"

#include <stddef.h>

/* ---- architectures (arch.c) ---- */

/* The three places a block differs between architectures, and the layout of its weights. */
typedef enum { ANV_NORM_LAYER, ANV_NORM_RMS } anv_norm_kind_t;        /* LayerNorm with bias | RMSNorm */
typedef enum { ANV_POS_LEARNED, ANV_POS_ROTARY } anv_pos_kind_t;      /* wpe | RoPE on q and k */
typedef enum { ANV_MLP_GELU, ANV_MLP_SWIGLU } anv_mlp_kind_t;         /* c_fc, GELU | gate, up, SwiGLU */
typedef enum { ANV_WEIGHTS_IN_OUT, ANV_WEIGHTS_OUT_IN } anv_layout_t; /* Conv1D | nn.Linear, no bias */

/* The dimensions shapes are made of: n_embd, 3 n_embd, n_kv_head * head size, n_ff, vocab_size (the
 * block reserves Vp rows), block_size. */
typedef enum { DIM_NONE, DIM_C, DIM_3C, DIM_KV, DIM_F, DIM_V, DIM_T } anv_dim_t;
typedef enum {
    INIT_ZERO,
    INIT_ONE,
    INIT_NORMAL,  /* N(0, 0.02) */
    INIT_RESIDUAL /* N(0, 0.02 / sqrt(2 n_layer)): projections into the residual stream */
} anv_init_t;
enum { NO_VIEW = -1 };

/* One tensor of an architecture. */
typedef struct {
    const char *hf, *gguf; /* Hugging Face and llama.cpp names; "%d" in a layer's tensors is the layer */
    anv_dim_t rows, cols;  /* the shape as stored; cols DIM_NONE for a vector */
    anv_init_t init;
    int untied_only;  /* the LM head: present only when it is not the token embedding */
    int rope_heads;   /* 'q' or 'k': rows of query or key heads that RoPE rotates; else 0 */
    ptrdiff_t view;   /* offsetof its pointer in anv_layer_t (layer tensors) or anv_weights_t; NO_VIEW */
    const char *lora; /* a linear layer: its name as a LoRA target (--lora-targets); else NULL */
} anv_tensor_spec_t;

typedef struct {
    anv_norm_kind_t norm;
    anv_pos_kind_t positions;
    anv_mlp_kind_t mlp;
    anv_layout_t weights;
    const anv_tensor_spec_t *before, *layer, *after; /* the tensors before, of each, and after the layers */
    int n_before, n_layer, n_after;
} anv_arch_info_t;

const anv_arch_info_t *anv_arch_info(anv_arch_t arch);

/* Where a laid-out tensor comes from: its table entry and layer (-1 for global tensors). */
typedef struct {
    const anv_tensor_spec_t *spec;
    int layer;
} anv_tensor_origin_t;

/* Lays out cfg's tensors in the table's order: fills params and origins (either may be NULL), sets
 * *count, and returns the parameter block's size in floats (padding rows included). */
size_t anv_arch_layout(const anv_config_t *cfg, anv_param_t *params, anv_tensor_origin_t *origins, int *count);

/* The size of a dimension for cfg (vocabulary: the real vocab_size). */
int anv_arch_dim(const anv_config_t *cfg, anv_dim_t d);

/* Widths of the block's fused products: q | k | v = (NH + 2 NKV) hs; the MLP's first product = F
 * (c_fc) or 2F (gate | up). */
int anv_qkv_width(const anv_config_t *c);
int anv_mlp_in_width(const anv_config_t *c);

/* ---- LoRA adapters (lora.c) ---- */

/* The block's four products, which adapters add to. */
typedef enum { PRODUCT_QKV, PRODUCT_ATTN_OUT, PRODUCT_MLP_IN, PRODUCT_MLP_OUT, N_PRODUCTS } anv_product_t;

/* One adapter: on the weight that makes the columns [col, col + out) of a product, from `in` inputs. */
typedef struct {
    int in, out, col;
    int index;      /* its place among its layer's adapters: which (n, r) block of the layer's u it uses */
    float *a, *b;   /* A (r, in), B (out, r) in the adapter block */
    float *da, *db; /* their gradients */
} anv_adapter_t;

/* A layer's adapters by product (q, k and v: three on one product). */
typedef struct {
    anv_adapter_t ad[N_PRODUCTS][3];
    int n[N_PRODUCTS];
} anv_layer_adapters_t;

typedef struct {
    anv_lora_config_t cfg;
    float scale;                  /* alpha / r */
    int per_layer;                /* adapters in each layer */
    anv_layer_adapters_t *layers; /* n_layer entries */
    float *params, *grads;        /* the adapter block and its gradients */
    anv_param_t *tensors;         /* A then B of each adapter, layer by layer */
    anv_trainable_t set;
    anv_adamw_segments_t segments;
    void *segment_block;
    uint64_t dropout_seed; /* of the next training forward (anv_model_lora_dropout_seed) */
} anv_lora_t;

/* Frees the activations, to be laid out again by the next forward (adapters added or removed). */
void anv_model_drop_activations(anv_model_t *m);
int anv_lora_create(const anv_model_t *m, const anv_lora_config_t *lc, uint64_t seed, anv_lora_t **out);
void anv_lora_free(anv_lora_t *l);
/* The seed of the dropout mask of adapter `index` of layer `layer` in a forward seeded with `seed`. */
uint64_t anv_lora_adapter_seed(uint64_t seed, int layer, int index);
/* Floats of u per token row: every adapter of one layer keeps r values (times n_layer in training). */
size_t anv_lora_row_floats(const anv_model_t *m);

/* The tensors in increasing offset as AdamW segments (adjacent ones with the same decay merged), in one
 * block of device memory (*block, to free). */
int anv_make_segments(const anv_param_t *t, int n, anv_adamw_segments_t *segs, void **block);

/* ---- views ---- */

/* One transformer block's parameters (or their gradients). Biases are NULL where the architecture has
 * none. Llama's q_proj, k_proj, v_proj (and gate_proj, up_proj) are adjacent in the block, so each
 * group is one (out, in) matrix and one matrix product. */
typedef struct {
    float *norm1_w, *norm1_b;         /* (C): ln_1 | input_layernorm */
    float *qkv_w, *qkv_b;             /* c_attn (C, 3C), (3C) | q_proj, k_proj, v_proj ((NH + 2 NKV) hs, C) */
    float *attn_proj_w, *attn_proj_b; /* attn.c_proj (C, C), (C) | o_proj (C, C) */
    float *norm2_w, *norm2_b;         /* (C): ln_2 | post_attention_layernorm */
    float *mlp_in_w, *mlp_in_b;       /* c_fc (C, F), (F) | gate_proj, up_proj (2F, C) */
    float *mlp_out_w, *mlp_out_b;     /* mlp.c_proj (F, C), (C) | down_proj (C, F) */
    const anv_layer_adapters_t *lora; /* the layer's LoRA adapters (weights' views only); NULL without */
} anv_layer_t;

/* The whole parameter (or gradient) block. */
typedef struct {
    float *wte;             /* (Vp, C) token embedding */
    float *wpe;             /* (block_size, C) learned positions; NULL for rotary models */
    anv_layer_t *h;         /* n_layer entries */
    float *norm_w, *norm_b; /* (C): the final norm (ln_f | model.norm) */
    float *head;            /* (Vp, C): the LM head, lm_head.weight or wte when tied */
} anv_weights_t;

/* Activations of the last forward, sized for up to cap_n = B*T token rows (L = n_layer; QKV, FI: the
 * widths above). ln1, ln2, lnf are the normalised rows (LayerNorm or RMSNorm; the means only for
 * LayerNorm). */
typedef struct {
    size_t cap_n;
    float *encoded;             /* (B, T, C) embeddings, input of layer 0 */
    float *ln1;                 /* (L, B, T, C) */
    float *ln1_mean, *ln1_rstd; /* (L, B, T) */
    float *qkv;                 /* (L, B, T, QKV) after RoPE: what attention read */
    float *atty;                /* (L, B, T, C) attention output, input of the output projection */
    float *att_lse;             /* (L, B, NH, T) log-sum-exp of each attention softmax row */
    float *res2;                /* (L, B, T, C) residual stream after attention */
    float *ln2;                 /* (L, B, T, C) */
    float *ln2_mean, *ln2_rstd; /* (L, B, T) */
    float *fch;                 /* (L, B, T, FI) the MLP's first product */
    float *fch_act;             /* (L, B, T, F) its activation (GELU or SwiGLU) */
    float *res3;                /* (L, B, T, C) residual stream after the MLP: each layer's output */
    float *lnf;                 /* (B, T, C) */
    float *lnf_mean, *lnf_rstd; /* (B, T) */
    float *ce_lse;              /* (B, T) log-sum-exp of each logits row over the real vocabulary */
    float *ce_tlogit;           /* (B, T) logit of each row's target */
    float *ce_logits;           /* (R, Vp) logits of one block of R token rows (row stride Vp), then their dlogits */
    float *ce_dlnf;             /* (B, T, C) gradient of lnf from the head, for a loss scale of 1 */
    float *ce_dhead;            /* (Vp, C) gradient of the head's rows, for a loss scale of 1 */
    float *tmp;                 /* (B, T, C) branch output (forward), activation gradient (backward) */
    float *dres;                /* (B, T, C) gradient of the residual stream */
    float *dbranch;             /* (B, T, max(FI, QKV)) gradient inside a branch (MLP hidden, qkv) */
    float *dact;                /* (B, T, F) gradient of SwiGLU's output (GELU's is taken in place) */
    float *lora_u;              /* (L, per-layer adapters, B, T, r) each adapter's A x */
    float *lora_du;             /* (B, T, r) an adapter's gradient of A x */
    float *lora_x, *lora_dx;    /* (B, T, max(C, F)) LoRA dropout: an adapter's dropped input, its gradient */
    float *block;               /* the allocation all of the float views above point into */
    int32_t *inputs, *targets;  /* (B, T) copies of the last forward's tokens (inputs owns both and starts) */
    int32_t *starts;            /* (B, T) copy of the last forward's sequence starts, when packed */
    int packed;                 /* the last forward's rows pack several sequences: pass starts */
    float *att_scratch;         /* attention's per-thread (T, T) work areas */
    size_t att_scratch_n;       /* floats in att_scratch */
} anv_acts_t;

/* ---- the block (block.c) ---- */

/* The buffers of one transformer block over n token rows. Training passes the layer's activations,
 * kept for the backward pass; decoding passes scratch that every layer reuses, NULL for the
 * normalisation statistics, and the residual stream itself for res2 and out (residuals in place). */
typedef struct {
    const float *x;                          /* (n, C) the residual stream entering the block */
    float *ln1, *ln1_mean, *ln1_rstd;        /* (n, C), (n), (n) */
    float *qkv, *atty;                       /* (n, QKV), (n, C) */
    float *res2, *ln2, *ln2_mean, *ln2_rstd; /* (n, C), (n, C), (n), (n) */
    float *fch, *fch_act;                    /* (n, FI), (n, F) */
    float *tmp;                              /* (n, C) a branch's output before its residual */
    float *out;                              /* (n, C) the residual stream leaving the block */
    float *lora_u;                           /* (adapters, n, r) the layer's adapters' A x; NULL without */
    float *lora_x;                           /* (n, max(C, F)) scratch for a dropped adapter input: training
                                                with LoRA dropout; NULL: no dropout */
    int layer;                               /* the block's index, which seeds its dropout masks */
} anv_block_bufs_t;

/* Positions and attention of the block's n = B*T rows: B rows of T tokens at positions pos..pos+T-1.
 * Training: a whole batch from position 0, with lse and scratch as anv_attention_forward takes them, and
 * starts (B, T) where rows pack several sequences (kernel_list.h), else NULL. Decoding: B = 1 sequence
 * of n new rows at pos.. against a KV cache (kc, vc as anv_attention_decode takes them). */
typedef struct {
    int decode;
    int B, T, pos;
    const int32_t *starts;
    float *lse, *scratch; /* training */
    float *kc, *vc;       /* decoding */
} anv_block_attention_t;

/* Gradient buffers of the backward pass over n rows: tmp (n, C), dbranch (n, max(FI, QKV)), dact (n, F),
 * lora_du (n, r), lora_dx (n, max(C, F)) with LoRA dropout. */
typedef struct {
    float *tmp, *dbranch, *dact, *lora_du, *lora_dx;
} anv_block_grads_t;

/* One block, the same for training and decoding: x -> out through the attention and the MLP. */
void anv_block_forward(const anv_model_t *m, const anv_layer_t *w, const anv_block_bufs_t *b,
                       const anv_block_attention_t *att);
/* Its backward pass from the forward's buffers: dres (n, C) holds the gradient of out and becomes the
 * gradient of x; the parameter gradients accumulate into g. */
void anv_block_backward(const anv_model_t *m, const anv_layer_t *w, anv_layer_t *g, const anv_block_bufs_t *b,
                        const anv_block_attention_t *att, float *dres, const anv_block_grads_t *d);
/* The architecture's normalisation: LayerNorm (w, b; mean and rstd saved) or RMSNorm (w; rstd saved). */
void anv_block_norm(const anv_model_t *m, float *out, float *mean, float *rstd, const float *inp, const float *w,
                    const float *b, int n);
void anv_block_norm_backward(const anv_model_t *m, float *dinp, float *dw, float *db, const float *dout,
                             const float *inp, const float *w, const float *mean, const float *rstd, int n);

/* Int8 weights for inference (quant.c): a weight (out, in) quantized row by row in kernel_list.h's q8
 * blocks, q (out, in) and d (out, in / 32). */
typedef struct {
    int8_t *q;
    float *d;
} anv_q8_matrix_t;

typedef struct {
    anv_q8_matrix_t qkv, attn_proj, mlp_in, mlp_out;
} anv_q8_layer_t;

typedef struct {
    anv_q8_layer_t *h; /* n_layer entries */
    anv_q8_matrix_t head;
    void *block; /* device memory of every q and d */
    size_t bytes;
} anv_q8_weights_t;

void anv_q8_free(anv_q8_weights_t *q8);

/* The LM head: logits (n, Vp) = x (n, C) @ head^T, on the int8 head where the model has one. */
void anv_model_head_forward(const anv_model_t *m, float *logits, const float *x, int n);

struct anv_model {
    anv_config_t cfg;
    const anv_arch_info_t *arch;
    int Vp;                       /* vocab_size rounded up to a multiple of 64 */
    size_t n_params;              /* floats in the block, padding included */
    float *params, *grads;        /* (n_params) each */
    anv_param_t *tensors;         /* named views, n_tensors entries */
    anv_tensor_origin_t *origins; /* the table entry of each tensor */
    int n_tensors;
    anv_adamw_segments_t segments; /* the tensors for AdamW: adjacent ones with the same decay merged */
    void *segment_block;           /* device memory of the segments' arrays */
    float *rope_inv_freq;          /* (hs / 2) device memory; NULL without rotary positions */
    anv_weights_t w;               /* views into params */
    anv_weights_t g;               /* the same views into grads; all NULL when the base is frozen */
    anv_trainable_t base;          /* the parameter block as a trainable set */
    anv_lora_t *lora;              /* LoRA adapters (the base is frozen); NULL without */
    anv_q8_weights_t *q8;          /* int8 copies of the matrices that inference runs on; NULL: fp32 */
    anv_acts_t acts;               /* training activations, allocated by the first forward */
    int B, T;                      /* shape of the last forward */
    int n_targets;                 /* non-ignored targets of the last forward */
    int have_forward;              /* a forward with targets ran and backward may follow */
};

#endif

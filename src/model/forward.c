/* Training forward and backward, the loss and the logits: the embedding, the blocks (block.c), the
 * final norm and the LM head, as a sequence of kernel calls (kernels.h). */
#include "anvil/kernels.h"
#include "model/model_internal.h"

#include <math.h>

/* Sizes the attention work area for T at the current thread count. */
static int ensure_att_scratch(anv_model_t *m, int T) {
    anv_acts_t *a = &m->acts;
    size_t n = anv_attention_scratch_floats(T);
    if (n <= a->att_scratch_n) return 0;
    anv_device_free(a->att_scratch);
    a->att_scratch_n = 0;
    a->att_scratch = anv_device_alloc(n * sizeof(float), "attention work area");
    if (!a->att_scratch) return -1;
    a->att_scratch_n = n;
    return 0;
}

/* Rows of logits per LM-head block for N token rows: the (R, Vp) block (Vp = the padded vocabulary, the
 * row stride) holds about the device's block size. */
static int ce_block_rows(size_t N, int Vp) {
    size_t floats = anv_device_block_floats();
    size_t r = floats / (size_t)Vp;
    r = r < 1 ? 1 : r;
    return r < N ? (int)r : (int)N;
}

typedef struct {
    float **p;
    size_t n;
} act_view_t;

/* The float views of the activation block for N token rows, in allocation order; returns the count.
 * lora_row: floats of the adapters' u per token row and layer (0 without); dropout: LoRA dropout's scratch;
 * frozen: no head gradient. */
static int act_views(anv_acts_t *a, const anv_config_t *c, size_t N, size_t lora_row, int dropout, int frozen,
                     act_view_t *v) {
    const anv_arch_info_t *arch = anv_arch_info(c->arch);
    size_t L = c->n_layer, C = c->n_embd, NH = c->n_head, F = c->n_ff, Vp = anv_config_padded_vocab(c);
    size_t QKV = anv_qkv_width(c), FI = anv_mlp_in_width(c);
    size_t means = arch->norm == ANV_NORM_LAYER; /* RMSNorm keeps no mean */
    size_t dact = arch->mlp == ANV_MLP_SWIGLU;   /* GELU's gradient is taken in place */
    act_view_t t[] = {
        {&a->encoded, N * C},
        {&a->ln1, L * N * C},
        {&a->ln1_mean, means * L * N},
        {&a->ln1_rstd, L * N},
        {&a->qkv, L * N * QKV},
        {&a->atty, L * N * C},
        {&a->att_lse, L * N * NH},
        {&a->res2, L * N * C},
        {&a->ln2, L * N * C},
        {&a->ln2_mean, means * L * N},
        {&a->ln2_rstd, L * N},
        {&a->fch, L * N * FI},
        {&a->fch_act, L * N * F},
        {&a->res3, L * N * C},
        {&a->lnf, N * C},
        {&a->lnf_mean, means * N},
        {&a->lnf_rstd, N},
        {&a->ce_lse, N},
        {&a->ce_tlogit, N},
        {&a->ce_dlnf, N * C},
        {&a->ce_logits, (size_t)ce_block_rows(N, (int)Vp) * Vp},
        {&a->ce_dhead, !frozen * Vp * C},
        {&a->tmp, N * C},
        {&a->dres, N * C},
        {&a->dbranch, N * (FI > QKV ? FI : QKV)},
        {&a->dact, dact * N * F},
        {&a->lora_u, L * N * lora_row},
        {&a->lora_du, N * lora_row},
        {&a->lora_x, dropout * N * (C > F ? C : F)},
        {&a->lora_dx, dropout * N * (C > F ? C : F)},
    };
    int n = (int)(sizeof t / sizeof t[0]);
    for (int i = 0; i < n; i++) v[i] = t[i];
    return n;
}
enum { MAX_ACT_VIEWS = 32 };

/* Floats of the activation block: every view rounded up to 16 floats (64-byte alignment). */
static size_t act_floats(const act_view_t *v, int n) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (v[i].n + 15) / 16 * 16;
    return total;
}

/* Whether training forwards drop the adapters' inputs. */
static int lora_dropout(const anv_model_t *m) { return m->lora && m->lora->cfg.dropout > 0; }

/* Sizes the activation block for N = B*T token rows; keeps one that is already big enough. */
static int ensure_acts(anv_model_t *m, int B, int T) {
    anv_acts_t *a = &m->acts;
    size_t N = (size_t)B * T;
    if (ensure_att_scratch(m, T)) return -1;
    if (N <= a->cap_n) return 0;
    act_view_t views[MAX_ACT_VIEWS];
    int nv = act_views(a, &m->cfg, N, anv_lora_row_floats(m), lora_dropout(m), m->lora != NULL, views);
    anv_device_free(a->block);
    anv_device_free(a->inputs);
    a->cap_n = 0;
    a->inputs = NULL;
    a->block = anv_device_alloc(act_floats(views, nv) * sizeof(float), "model activations");
    if (!a->block) return -1;
    a->inputs = anv_device_alloc(3 * N * sizeof(int32_t), "model token copies");
    if (!a->inputs) return -1;
    a->targets = a->inputs + N;
    a->starts = a->inputs + 2 * N;
    float *p = a->block;
    for (int i = 0; i < nv; i++) {
        *views[i].p = p;
        p += (views[i].n + 15) / 16 * 16; /* keeps every view 64-byte aligned */
    }
    a->cap_n = N;
    return 0;
}

void anv_model_memory_budget(const anv_config_t *cfg, int B, int T, anv_memory_budget_t *out) {
    size_t N = (size_t)B * T;
    size_t n_params = anv_arch_layout(cfg, NULL, NULL, &(int){0}); /* padding rows included */
    anv_acts_t dummy;
    act_view_t views[MAX_ACT_VIEWS];
    int nv = act_views(&dummy, cfg, N, 0, 0, 0, views);
    out->params = n_params * sizeof(float);
    out->grads = n_params * sizeof(float);
    out->optimizer = 2 * n_params * sizeof(float); /* AdamW m and v */
    out->activations = act_floats(views, nv) * sizeof(float) + 3 * N * sizeof(int32_t) +
                       anv_attention_scratch_floats(T) * sizeof(float);
    out->activations_per_token = (double)out->activations / (double)N;
    out->total = out->params + out->grads + out->optimizer + out->activations;
}

/* Whether starts (B, T) packs sequences (a nonzero entry); an error when it does not describe
 * contiguous sequences (kernel_list.h). */
static int check_starts(const int32_t *starts, int B, int T, int *packed) {
    *packed = 0;
    if (!starts) return 0;
    for (int b = 0; b < B; b++) {
        const int32_t *st = starts + (size_t)b * T;
        for (int t = 0; t < T; t++) {
            if (st[t] != t && (t == 0 || st[t] != st[t - 1]))
                return anv_error("model forward: sequence start %d of row %d, column %d is neither the column nor "
                                 "the start of the column before",
                                 (int)st[t], b, t);
            *packed |= st[t] != 0;
        }
    }
    return 0;
}

static int check_tokens(const anv_model_t *m, const int32_t *inputs, const int32_t *targets, int B, int T) {
    const anv_config_t *c = &m->cfg;
    if (B < 1 || T < 1 || T > c->block_size)
        return anv_error("model forward: batch %d x %d tokens does not fit block_size %d", B, T, c->block_size);
    if ((long long)B * T > (1 << 24)) return anv_error("model forward: batch %d x %d is too many tokens", B, T);
    for (size_t i = 0; i < (size_t)B * T; i++) {
        if (inputs[i] < 0 || inputs[i] >= c->vocab_size)
            return anv_error("model forward: input token %d at position %zu is outside the vocabulary (%d)",
                             (int)inputs[i], i, c->vocab_size);
        if (targets && (targets[i] < -1 || targets[i] >= c->vocab_size))
            return anv_error("model forward: target %d at position %zu is outside the vocabulary (%d)", (int)targets[i],
                             i, c->vocab_size);
    }
    return 0;
}

/* The buffers and attention of layer l over the activations of a (B, T) batch; with LoRA dropout when
 * `dropout` (training). */
static void layer_bufs(anv_model_t *m, int l, int B, int T, int dropout, anv_block_bufs_t *b,
                       anv_block_attention_t *att) {
    const anv_config_t *c = &m->cfg;
    anv_acts_t *a = &m->acts;
    size_t N = (size_t)B * T, lN = l * N, NC = N * c->n_embd;
    int means = m->arch->norm == ANV_NORM_LAYER;
    *b = (anv_block_bufs_t){
        .x = l ? a->res3 + (l - 1) * NC : a->encoded,
        .ln1 = a->ln1 + l * NC,
        .ln1_mean = means ? a->ln1_mean + lN : NULL,
        .ln1_rstd = a->ln1_rstd + lN,
        .qkv = a->qkv + lN * anv_qkv_width(c),
        .atty = a->atty + l * NC,
        .res2 = a->res2 + l * NC,
        .ln2 = a->ln2 + l * NC,
        .ln2_mean = means ? a->ln2_mean + lN : NULL,
        .ln2_rstd = a->ln2_rstd + lN,
        .fch = a->fch + lN * anv_mlp_in_width(c),
        .fch_act = a->fch_act + lN * c->n_ff,
        .tmp = a->tmp,
        .out = a->res3 + l * NC,
        .lora_u = m->lora ? a->lora_u + l * N * anv_lora_row_floats(m) : NULL,
        .lora_x = dropout ? a->lora_x : NULL,
        .layer = l,
    };
    *att = (anv_block_attention_t){.B = B,
                                   .T = T,
                                   .starts = a->packed ? a->starts : NULL,
                                   .lse = a->att_lse + lN * c->n_head,
                                   .scratch = a->att_scratch};
}

/* Runs the network up to the final norm's output (B, T, C) in acts.lnf (with LoRA dropout when `dropout`). */
static void forward_hidden(anv_model_t *m, int B, int T, int dropout) {
    const anv_config_t *c = &m->cfg;
    anv_acts_t *a = &m->acts;
    int N = B * T;
    anv_embedding_forward(a->encoded, a->inputs, a->packed ? a->starts : NULL, m->w.wte, m->w.wpe, B, T, c->n_embd);
    anv_block_bufs_t bufs;
    anv_block_attention_t att;
    for (int l = 0; l < c->n_layer; l++) {
        layer_bufs(m, l, B, T, dropout, &bufs, &att);
        anv_block_forward(m, &m->w.h[l], &bufs, &att);
    }
    anv_block_norm(m, a->lnf, a->lnf_mean, a->lnf_rstd, bufs.out, m->w.norm_w, m->w.norm_b, N);
}

/* The LM head and the cross-entropy, forward and backward together, one block of R token rows at a
 * time so the (N, V) logits never exist: logits (R, Vp) = lnf @ head^T, each row's log-sum-exp and
 * target logit over the real vocabulary [0, V), then dlogits = (softmax - onehot) / n_targets in place,
 * ce_dlnf (N, C) = dlogits @ head and ce_dhead (Vp, C) += dlogits^T @ lnf. Backward scales these into the
 * gradients; a row block of the full vocabulary needs no recomputation of the logits. Without
 * `grads`, only the loss terms (ce_lse, ce_tlogit).
 *
 * The products run over all Vp (a multiple of 64) rows of the head, the padding rows included: those are
 * zero and stay zero (their gradient is never added), so their logits and dlogits are exactly 0 and
 * add nothing. What it buys: every extent of the head's GEMMs is a multiple of 64, which the GPU's
 * vectorised GEMM kernels need: with V = 50257, cuBLASLt could only pick kernels without vector loads
 * (align1 CUTLASS kernels of an older architecture, seen in a profile on an H200). */
static void head_loss(anv_model_t *m, int N, int grads) {
    anv_acts_t *a = &m->acts;
    int C = m->cfg.n_embd, V = m->cfg.vocab_size, Vp = m->Vp, R = ce_block_rows((size_t)N, Vp);
    float *dhead = m->g.head ? a->ce_dhead : NULL; /* NULL: the head is frozen */
    if (grads) {
        anv_fill(a->ce_dlnf, 0.0f, (size_t)N * C);
        if (dhead) anv_fill(dhead, 0.0f, (size_t)Vp * C);
    }
    float dloss = m->n_targets ? 1.0f / m->n_targets : 0.0f;
    for (int r0 = 0; r0 < N; r0 += R) {
        int n = N - r0 < R ? N - r0 : R;
        const int32_t *tg = a->targets + r0;
        float *lse = a->ce_lse + r0, *lnf = a->lnf + (size_t)r0 * C;
        anv_fill(lse, -INFINITY, (size_t)n);
        anv_model_head_forward(m, a->ce_logits, lnf, n);
        anv_crossentropy_chunk_forward(lse, a->ce_tlogit + r0, a->ce_logits, Vp, tg, n, 0, V);
        if (!grads) continue;
        anv_crossentropy_chunk_backward(a->ce_logits, Vp, lse, tg, dloss, n, 0, V);
        anv_matmul_nt_backward(a->ce_dlnf + (size_t)r0 * C, dhead, a->ce_logits, lnf, m->w.head, n, C, Vp);
    }
}

void anv_model_head_forward(const anv_model_t *m, float *logits, const float *x, int n) {
    if (m->q8)
        anv_matmul_q8_forward(logits, x, m->q8->head.q, m->q8->head.d, NULL, n, m->cfg.n_embd, m->Vp);
    else
        anv_matmul_nt_forward(logits, x, m->w.head, n, m->cfg.n_embd, m->Vp);
}

/* Validates the tokens, sizes the activations and copies the tokens in (targets and starts may be NULL). */
static int begin_forward(anv_model_t *m, const int32_t *inputs, const int32_t *targets, const int32_t *starts, int B,
                         int T) {
    m->have_forward = 0;
    int packed;
    if (check_tokens(m, inputs, targets, B, T) || check_starts(starts, B, T, &packed) || ensure_acts(m, B, T))
        return -1;
    size_t N = (size_t)B * T;
    /* a backward still running on a GPU may read the previous tokens: upload waits for it */
    anv_device_upload(m->acts.inputs, inputs, N * sizeof(int32_t));
    if (targets) anv_device_upload(m->acts.targets, targets, N * sizeof(int32_t));
    if (packed) anv_device_upload(m->acts.starts, starts, N * sizeof(int32_t));
    m->acts.packed = packed;
    m->B = B;
    m->T = T;
    return 0;
}

/* The network and the loss for inputs/targets; the head's gradients too when `grads`. */
static int loss_forward(anv_model_t *m, const int32_t *inputs, const int32_t *targets, const int32_t *starts, int B,
                        int T, int grads, float *loss) {
    if (!targets) return anv_error("model forward: training forward needs targets");
    if (grads && m->q8) return anv_error("model forward: a model with int8 weights is for inference, not training");
    if (begin_forward(m, inputs, targets, starts, B, T)) return -1;
    forward_hidden(m, B, T, grads && lora_dropout(m));
    int N = B * T;
    m->n_targets = 0;
    for (int i = 0; i < N; i++) m->n_targets += targets[i] >= 0;
    head_loss(m, N, grads);
    double total = anv_crossentropy_loss_sum(m->acts.ce_lse, m->acts.ce_tlogit, m->acts.targets, N);
    *loss = m->n_targets ? (float)(total / m->n_targets) : 0.0f;
    if (anv_kernel_status() != 0) return anv_error_prefix("model forward");
    m->have_forward = grads;
    return 0;
}

int anv_model_forward(anv_model_t *m, const int32_t *inputs, const int32_t *targets, const int32_t *starts, int B,
                      int T, float *loss) {
    return loss_forward(m, inputs, targets, starts, B, T, 1, loss);
}

int anv_model_loss(anv_model_t *m, const int32_t *inputs, const int32_t *targets, const int32_t *starts, int B, int T,
                   float *loss) {
    return loss_forward(m, inputs, targets, starts, B, T, 0, loss);
}

int anv_model_backward(anv_model_t *m, float loss_scale) {
    if (!m->have_forward) return anv_error("model backward: no training forward to differentiate");
    m->have_forward = 0;
    if (m->n_targets == 0) return 0;
    if (ensure_att_scratch(m, m->T)) return -1;
    const anv_config_t *c = &m->cfg;
    anv_acts_t *a = &m->acts;
    int B = m->B, T = m->T, C = c->n_embd, L = c->n_layer;
    int N = B * T;
    size_t NC = (size_t)N * C;

    /* The head's gradients, computed by the forward for a loss scale of 1. */
    anv_scale_into(a->tmp, a->ce_dlnf, loss_scale, NC);
    if (m->g.head) anv_add_scaled(m->g.head, a->ce_dhead, loss_scale, (size_t)c->vocab_size * C);
    anv_fill(a->dres, 0.0f, NC);
    anv_block_norm_backward(m, a->dres, m->g.norm_w, m->g.norm_b, a->tmp, a->res3 + (L - 1) * NC, m->w.norm_w,
                            a->lnf_mean, a->lnf_rstd, N);
    anv_block_grads_t d = {a->tmp, a->dbranch, a->dact, a->lora_du, a->lora_dx};
    anv_block_bufs_t bufs;
    anv_block_attention_t att;
    for (int l = L - 1; l >= 0; l--) {
        layer_bufs(m, l, B, T, lora_dropout(m), &bufs, &att);
        anv_block_backward(m, &m->w.h[l], &m->g.h[l], &bufs, &att, a->dres, &d);
    }
    if (m->g.wte) anv_embedding_backward(m->g.wte, m->g.wpe, a->dres, a->inputs, a->packed ? a->starts : NULL, B, T, C);
    return anv_kernel_status() == 0 ? 0 : anv_error_prefix("model backward");
}

/* The logits are computed a block of rows at a time into the head's device buffer and copied out, so
 * `logits` may be ordinary host memory whatever the device. */
int anv_model_logits(anv_model_t *m, const int32_t *inputs, int B, int T, float *logits) {
    if (begin_forward(m, inputs, NULL, NULL, B, T)) return -1;
    forward_hidden(m, B, T, 0);
    int N = B * T, C = m->cfg.n_embd, V = m->cfg.vocab_size, Vp = m->Vp, R = ce_block_rows((size_t)N, Vp);
    for (int r0 = 0; r0 < N; r0 += R) {
        int n = N - r0 < R ? N - r0 : R;
        anv_model_head_forward(m, m->acts.ce_logits, m->acts.lnf + (size_t)r0 * C, n);
        for (int i = 0; i < n; i++)
            anv_device_download(logits + (size_t)(r0 + i) * V, m->acts.ce_logits + (size_t)i * Vp,
                                (size_t)V * sizeof(float));
    }
    return anv_kernel_status() == 0 ? 0 : anv_error_prefix("model logits");
}

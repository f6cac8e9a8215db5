/* KV-cached inference for one sequence: each layer's keys and values are kept for the positions
 * seen so far, so a new token costs one row through the network instead of the whole prefix. New
 * tokens are processed in chunks of up to CHUNK rows (a prompt is prefilled with matrix products).
 * Everything runs through the kernels of the current device. */
#include "anvil/kernels.h"
#include "model/model_internal.h"

#define CHUNK 256     /* rows per pass: each pass reads every weight once */
#define LOGIT_ROWS 64 /* rows per pass of the head, whose output is a vocabulary wide */

struct anv_kv_cache {
    int max_len, len;
    float *k, *v;         /* (L, max_len, KV) each: KV = n_kv_head * head size */
    float *x, *ln, *qkv;  /* (CHUNK, C), (CHUNK, C), (CHUNK, QKV) */
    float *atty, *tmp;    /* (CHUNK, C) each */
    float *fch, *fch_act; /* (CHUNK, FI), (CHUNK, F) */
    float *logits;        /* (LOGIT_ROWS, Vp) */
    float *lora_u;        /* (adapters per layer, CHUNK, r) the LoRA adapters' A x; empty without */
    int32_t *tokens;      /* (CHUNK) the chunk's tokens where the device's kernels can read them */
    float *block;
};

/* Lays out the cache's buffers in one block: returns its size in floats and, when kv->block is set,
 * points the views into it. */
static size_t kv_layout(const anv_model_t *m, int max_len, anv_kv_cache_t *kv) {
    const anv_config_t *c = &m->cfg;
    size_t C = (size_t)c->n_embd, L = (size_t)c->n_layer, T = (size_t)max_len, F = (size_t)c->n_ff;
    size_t KV = (size_t)c->n_kv_head * anv_config_head_size(c), QKV = anv_qkv_width(c), FI = anv_mlp_in_width(c);
    struct {
        float **p;
        size_t n;
    } views[] = {{&kv->k, L * T * KV},
                 {&kv->v, L * T * KV},
                 {&kv->x, CHUNK * C},
                 {&kv->ln, CHUNK * C},
                 {&kv->qkv, CHUNK * QKV},
                 {&kv->atty, CHUNK * C},
                 {&kv->tmp, CHUNK * C},
                 {&kv->fch, CHUNK * FI},
                 {&kv->fch_act, CHUNK * F},
                 {&kv->logits, LOGIT_ROWS * (size_t)m->Vp},
                 {&kv->lora_u, CHUNK * anv_lora_row_floats(m)}};
    size_t total = CHUNK; /* the tokens first: int32 and float have the same size */
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) {
        if (kv->block) *views[i].p = kv->block + total;
        total += (views[i].n + 15) / 16 * 16;
    }
    if (kv->block) kv->tokens = (int32_t *)kv->block;
    return total;
}

size_t anv_kv_cache_bytes(const anv_model_t *m, int max_len) {
    anv_kv_cache_t probe = {0};
    return kv_layout(m, max_len, &probe) * sizeof(float);
}

int anv_kv_cache_create(const anv_model_t *m, int max_len, anv_kv_cache_t **out) {
    *out = NULL;
    const anv_config_t *c = &m->cfg;
    if (max_len < 1 || max_len > c->block_size)
        return anv_error("kv cache: length %d is outside 1..block_size %d", max_len, c->block_size);
    anv_kv_cache_t *kv = anv_calloc(sizeof *kv, "kv cache");
    if (!kv) return -1;
    kv->max_len = max_len;
    kv->block = anv_device_alloc(anv_kv_cache_bytes(m, max_len), "kv cache");
    if (!kv->block) {
        anv_free(kv);
        return -1;
    }
    kv_layout(m, max_len, kv);
    *out = kv;
    return 0;
}

void anv_kv_cache_free(anv_kv_cache_t *c) {
    if (!c) return;
    anv_device_free(c->block);
    anv_free(c);
}

void anv_kv_cache_reset(anv_kv_cache_t *c) { c->len = 0; }
int anv_kv_cache_len(const anv_kv_cache_t *c) { return c->len; }
void anv_kv_cache_truncate(anv_kv_cache_t *c, int len) {
    if (len >= 0 && len < c->len) c->len = len;
}

/* Runs n <= CHUNK tokens at the cache position through the layers; leaves the final residual rows in x. */
static void decode_chunk(anv_model_t *m, anv_kv_cache_t *kv, const int32_t *tokens, int n) {
    const anv_config_t *c = &m->cfg;
    int C = c->n_embd, pos = kv->len;
    size_t LKV = (size_t)kv->max_len * c->n_kv_head * anv_config_head_size(c);
    anv_device_upload(kv->tokens, tokens, (size_t)n * sizeof *tokens); /* waits for the previous chunk */
    anv_embedding_forward(kv->x, kv->tokens, NULL, m->w.wte, m->w.wpe ? m->w.wpe + (size_t)pos * C : NULL, 1, n, C);
    /* every layer reuses the same scratch; the residual stream x is updated in place */
    anv_block_bufs_t bufs = {.x = kv->x,
                             .ln1 = kv->ln,
                             .qkv = kv->qkv,
                             .atty = kv->atty,
                             .res2 = kv->x,
                             .ln2 = kv->ln,
                             .fch = kv->fch,
                             .fch_act = kv->fch_act,
                             .tmp = kv->tmp,
                             .out = kv->x,
                             .lora_u = kv->lora_u};
    anv_block_attention_t att = {.decode = 1, .B = 1, .T = n, .pos = pos};
    for (int l = 0; l < c->n_layer; l++) {
        bufs.layer = l;
        att.kc = kv->k + l * LKV;
        att.vc = kv->v + l * LKV;
        anv_block_forward(m, &m->w.h[l], &bufs, &att);
    }
    kv->len += n;
}

/* The logits of rows [first, first + rows) of the chunk in x: the final norm, then the head. */
static void chunk_logits(anv_model_t *m, anv_kv_cache_t *c, int first, int rows, float *logits) {
    const anv_config_t *cfg = &m->cfg;
    int C = cfg->n_embd;
    anv_block_norm(m, c->ln, NULL, NULL, c->x + (size_t)first * C, m->w.norm_w, m->w.norm_b, rows);
    for (int at = 0; at < rows; at += LOGIT_ROWS) {
        int n = rows - at < LOGIT_ROWS ? rows - at : LOGIT_ROWS;
        anv_model_head_forward(m, c->logits, c->ln + (size_t)at * C, n); /* (n, Vp) */
        for (int i = 0; i < n; i++)
            anv_device_download(logits + (size_t)(at + i) * cfg->vocab_size, c->logits + (size_t)i * m->Vp,
                                (size_t)cfg->vocab_size * sizeof *logits);
    }
}

/* Appends n tokens; writes the logits of every one (all) or of the last. */
static int decode(anv_model_t *m, anv_kv_cache_t *c, const int32_t *tokens, int n, float *logits, int all) {
    const anv_config_t *cfg = &m->cfg;
    if (n < 1) return anv_error("decode: no tokens");
    if (c->len + n > c->max_len)
        return anv_error("decode: %d cached + %d new tokens exceed the cache length %d", c->len, n, c->max_len);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= cfg->vocab_size)
            return anv_error("decode: token %d is outside the vocabulary (%d)", (int)tokens[i], cfg->vocab_size);
    for (int at = 0; at < n; at += CHUNK) {
        int rows = n - at < CHUNK ? n - at : CHUNK;
        decode_chunk(m, c, tokens + at, rows);
        if (all) chunk_logits(m, c, 0, rows, logits + (size_t)at * cfg->vocab_size);
    }
    if (!all) chunk_logits(m, c, (n - 1) % CHUNK, 1, logits);
    return anv_kernel_status() == 0 ? 0 : anv_error_prefix("decode");
}

int anv_model_decode(anv_model_t *m, anv_kv_cache_t *c, const int32_t *tokens, int n, float *logits) {
    return decode(m, c, tokens, n, logits, 0);
}

int anv_model_decode_all(anv_model_t *m, anv_kv_cache_t *c, const int32_t *tokens, int n, float *logits) {
    return decode(m, c, tokens, n, logits, 1);
}

/* KV-cached inference for one sequence: each layer's keys and values are kept for the positions
 * seen so far, so a new token costs one row through the network instead of the whole prefix. New
 * tokens are processed in chunks of up to CHUNK rows (a prompt is prefilled with matrix products).
 * One new row is a matrix-vector product, bound by reading the weights once: with OpenBLAS it goes
 * to sgemv, which streams them, where a GEMM call would first pack (copy) the whole weight matrix. */
#include "anvil/kernels.h"
#include "model/gpt_internal.h"

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef ANVIL_HAVE_OPENBLAS
#include <cblas.h>
#endif

#define CHUNK 64

struct anv_kv_cache {
    int max_len, len, n_threads;
    float *k, *v;          /* (L, max_len, C) each */
    float *x, *ln, *qkv;   /* (CHUNK, C), (CHUNK, C), (CHUNK, 3C) */
    float *atty, *tmp;     /* (CHUNK, C) each */
    float *fch, *fch_gelu; /* (CHUNK, 4C) each */
    float *scores;         /* (n_threads, max_len) */
    float *logits;         /* (Vp) */
    float *block;
};

int anv_kv_cache_create(const anv_model_t *m, int max_len, anv_kv_cache_t **out) {
    *out = NULL;
    const anv_config_t *c = &m->cfg;
    if (max_len < 1 || max_len > c->block_size)
        return anv_error("kv cache: length %d is outside 1..block_size %d", max_len, c->block_size);
    if (strcmp(anv_device(), "cpu") != 0)
        return anv_error("generation runs on the CPU only for now; the device is %s (unset ANVIL_DEVICE)",
                         anv_device());
    anv_kv_cache_t *kv = anv_calloc(sizeof *kv, "kv cache");
    if (!kv) return -1;
    kv->max_len = max_len;
    kv->n_threads = anv_threads_count();
    size_t C = (size_t)c->n_embd, L = (size_t)c->n_layer, T = (size_t)max_len;
    struct {
        float **p;
        size_t n;
    } views[] = {{&kv->k, L * T * C},       {&kv->v, L * T * C},         {&kv->x, CHUNK * C},
                 {&kv->ln, CHUNK * C},      {&kv->qkv, CHUNK * 3 * C},   {&kv->atty, CHUNK * C},
                 {&kv->tmp, CHUNK * C},     {&kv->fch, CHUNK * 4 * C},   {&kv->fch_gelu, CHUNK * 4 * C},
                 {&kv->scores, (size_t)kv->n_threads * T}, {&kv->logits, (size_t)m->Vp}};
    size_t total = 0;
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) total += (views[i].n + 15) / 16 * 16;
    kv->block = anv_alloc(total * sizeof(float), "kv cache");
    if (!kv->block) {
        anv_free(kv);
        return -1;
    }
    float *p = kv->block;
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) {
        *views[i].p = p;
        p += (views[i].n + 15) / 16 * 16;
    }
    *out = kv;
    return 0;
}

void anv_kv_cache_free(anv_kv_cache_t *c) {
    if (!c) return;
    anv_free(c->block);
    anv_free(c);
}

void anv_kv_cache_reset(anv_kv_cache_t *c) { c->len = 0; }
int anv_kv_cache_len(const anv_kv_cache_t *c) { return c->len; }

/* atty (n, C): causal attention of the n new rows (positions pos..pos+n-1) over the cached keys and
 * values K, V (pos + n, C) of one layer; q from qkv (n, 3C). */
static void cached_attention(anv_kv_cache_t *kv, const float *qkv, const float *K, const float *V, int pos, int n,
                             int C, int NH) {
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for num_threads(kv->n_threads) schedule(static) collapse(2)
    for (int i = 0; i < n; i++)
        for (int h = 0; h < NH; h++) {
#ifdef _OPENMP
            float *s = kv->scores + (size_t)omp_get_thread_num() * kv->max_len;
#else
            float *s = kv->scores;
#endif
            const float *q = qkv + (size_t)i * 3 * C + h * hs;
            int last = pos + i; /* attends to positions 0..last */
            float max = -INFINITY;
            for (int t = 0; t <= last; t++) {
                const float *k = K + (size_t)t * C + h * hs;
                float d = 0;
                for (int j = 0; j < hs; j++) d += q[j] * k[j];
                s[t] = d * scale;
                max = s[t] > max ? s[t] : max;
            }
            float sum = 0;
            for (int t = 0; t <= last; t++) sum += s[t] = expf(s[t] - max);
            float *o = kv->atty + (size_t)i * C + h * hs;
            memset(o, 0, (size_t)hs * sizeof *o);
            for (int t = 0; t <= last; t++) {
                const float *v = V + (size_t)t * C + h * hs;
                float p = s[t] / sum;
                for (int j = 0; j < hs; j++) o[j] += p * v[j];
            }
        }
}

/* out (n, OC) = inp (n, C) @ w (C, OC) + bias (OC). */
static void linear(float *out, const float *inp, const float *w, const float *bias, int n, int C, int OC) {
#ifdef ANVIL_HAVE_OPENBLAS
    if (n == 1) { /* out (OC) = w^T (OC, C) inp (C) + bias */
        if (bias) memcpy(out, bias, (size_t)OC * sizeof *out);
        cblas_sgemv(CblasRowMajor, CblasTrans, C, OC, 1.0f, w, OC, inp, 1, bias ? 1.0f : 0.0f, out, 1);
        return;
    }
#endif
    anv_matmul_forward(out, inp, w, bias, n, C, OC);
}

/* logits (V) = wte (V, C) x (C): the tied head for one row, over the real vocabulary only. */
static void head(float *logits, const float *x, const float *wte, int V, int C, float *scratch, int Vp) {
#ifdef ANVIL_HAVE_OPENBLAS
    (void)scratch, (void)Vp;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, V, C, 1.0f, wte, C, x, 1, 0.0f, logits, 1);
#else
    anv_matmul_nt_forward(scratch, x, wte, 1, C, Vp);
    memcpy(logits, scratch, (size_t)V * sizeof *logits);
#endif
}

/* Runs n <= CHUNK tokens at the cache position through the layers; leaves the final residual rows in x. */
static void decode_chunk(anv_model_t *m, anv_kv_cache_t *kv, const int32_t *tokens, int n) {
    const anv_config_t *c = &m->cfg;
    int C = c->n_embd, pos = kv->len;
    size_t nC = (size_t)n * C, LC = (size_t)kv->max_len * C;
    anv_embedding_forward(kv->x, tokens, m->w.wte, m->w.wpe + (size_t)pos * C, 1, n, C);
    for (int l = 0; l < c->n_layer; l++) {
        const anv_gpt_layer_t *w = &m->w.h[l];
        float *K = kv->k + l * LC, *V = kv->v + l * LC;
        anv_layernorm_forward(kv->ln, NULL, NULL, kv->x, w->ln1_w, w->ln1_b, n, C);
        linear(kv->qkv, kv->ln, w->attn_w, w->attn_b, n, C, 3 * C);
        for (int i = 0; i < n; i++) {
            memcpy(K + (size_t)(pos + i) * C, kv->qkv + (size_t)i * 3 * C + C, (size_t)C * sizeof(float));
            memcpy(V + (size_t)(pos + i) * C, kv->qkv + (size_t)i * 3 * C + 2 * C, (size_t)C * sizeof(float));
        }
        cached_attention(kv, kv->qkv, K, V, pos, n, C, c->n_head);
        linear(kv->tmp, kv->atty, w->proj_w, w->proj_b, n, C, C);
        anv_residual_forward(kv->x, kv->x, kv->tmp, nC);
        anv_layernorm_forward(kv->ln, NULL, NULL, kv->x, w->ln2_w, w->ln2_b, n, C);
        linear(kv->fch, kv->ln, w->fc_w, w->fc_b, n, C, 4 * C);
        anv_gelu_forward(kv->fch_gelu, kv->fch, 4 * nC);
        linear(kv->tmp, kv->fch_gelu, w->fcproj_w, w->fcproj_b, n, 4 * C, C);
        anv_residual_forward(kv->x, kv->x, kv->tmp, nC);
    }
    kv->len += n;
}

int anv_model_decode(anv_model_t *m, anv_kv_cache_t *c, const int32_t *tokens, int n, float *logits) {
    const anv_config_t *cfg = &m->cfg;
    if (n < 1) return anv_error("decode: no tokens");
    if (c->len + n > c->max_len)
        return anv_error("decode: %d cached + %d new tokens exceed the cache length %d", c->len, n, c->max_len);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= cfg->vocab_size)
            return anv_error("decode: token %d is outside the vocabulary (%d)", (int)tokens[i], cfg->vocab_size);
    for (int at = 0; at < n; at += CHUNK) decode_chunk(m, c, tokens + at, n - at < CHUNK ? n - at : CHUNK);
    /* The logits of the last token only: ln_f of its row, then the tied head. */
    int C = cfg->n_embd, last = (n - 1) % CHUNK;
    anv_layernorm_forward(c->ln, NULL, NULL, c->x + (size_t)last * C, m->w.lnf_w, m->w.lnf_b, 1, C);
    head(logits, c->ln, m->w.wte, cfg->vocab_size, C, c->logits, m->Vp);
    return 0;
}

/* Controlled generation: penalties, min-p, stop strings and max tokens around the KV cache and the
 * sampler (see generate.h for the order of operations). */
#include "anvil/generate.h"

#include <math.h>
#include <string.h>

#define ROWS 64 /* prompt positions per decode when their log-probabilities are recorded */

struct anv_generator {
    anv_model_t *m;
    const anv_tokenizer_t *tok;
    anv_kv_cache_t *kv;
    int block, vocab;
    int32_t *ctx;    /* (block) the tokens in the cache */
    float *logits;   /* (vocab) */
    float *raw;      /* (vocab) the logits before adjustment, when recording log-probabilities */
    float *rows;     /* (ROWS, vocab) the prompt's logits, when recording its log-probabilities */
    uint8_t *seen;   /* (vocab) ids of prompt and completion */
    int32_t *counts; /* (vocab) ids of the completion */
    anv_buf_t bytes; /* bytes of the token being passed to the stopper */
};

anv_gen_config_t anv_gen_config_default(void) {
    anv_gen_config_t c;
    memset(&c, 0, sizeof c);
    c.sampler.top_p = 1;
    c.max_tokens = 16;
    c.repetition_penalty = 1;
    return c;
}

/* ---- stop strings ---- */

void anv_stopper_init(anv_stopper_t *s, const char *const *stop, int n_stop) {
    memset(s, 0, sizeof *s);
    s->stop = stop;
    s->n_stop = n_stop;
}

void anv_stopper_free(anv_stopper_t *s) { anv_buf_free(&s->pending); }

/* Bytes of buf[0..n) that end on a UTF-8 character boundary (an incomplete last character is held
 * back; invalid bytes pass). */
static size_t utf8_ready(const unsigned char *buf, size_t n) {
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        unsigned char c = buf[n - back];
        if ((c & 0xC0) == 0x80) continue;
        size_t need = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
        return back < need ? n - back : n;
    }
    return n;
}

static int stopper_emit(anv_stopper_t *s, size_t n, anv_gen_text_fn fn, void *ctx) {
    int rc = fn(ctx, s->pending.data ? s->pending.data : "", n);
    if (n) {
        memmove(s->pending.data, s->pending.data + n, s->pending.len - n);
        s->pending.len -= n;
        s->pending.data[s->pending.len] = 0;
    }
    return rc;
}

int anv_stopper_push(anv_stopper_t *s, const char *bytes, size_t n, anv_gen_text_fn fn, void *ctx) {
    if (s->stopped) return fn(ctx, "", 0);
    if (n && anv_buf_append(&s->pending, bytes, n) != 0) return -1;
    const char *p = s->pending.data ? s->pending.data : "";
    size_t len = s->pending.len, cut = len, hold = 0;
    /* Emitted text never holds the start of a stop string, so a match lies wholly in pending. */
    for (int i = 0; i < s->n_stop; i++) {
        size_t sl = strlen(s->stop[i]);
        for (size_t at = 0; at + sl <= len && at < cut; at++)
            if (!memcmp(p + at, s->stop[i], sl)) {
                cut = at;
                break;
            }
        for (size_t k = sl - 1 < len ? sl - 1 : len; k > hold; k--) /* longest tail that starts stop i */
            if (!memcmp(p + len - k, s->stop[i], k)) {
                hold = k;
                break;
            }
    }
    if (cut < len) {
        s->stopped = 1;
        s->pending.len = cut;
        s->pending.data[cut] = 0;
        return stopper_emit(s, cut, fn, ctx);
    }
    return stopper_emit(s, utf8_ready((const unsigned char *)p, len - hold), fn, ctx);
}

int anv_stopper_flush(anv_stopper_t *s, anv_gen_text_fn fn, void *ctx) {
    return stopper_emit(s, s->pending.len, fn, ctx);
}

/* ---- generator ---- */

size_t anv_generator_bytes(const anv_model_t *m) {
    const anv_config_t *cfg = anv_model_config(m);
    size_t vocab = (size_t)cfg->vocab_size;
    return anv_kv_cache_bytes(m, cfg->block_size) + (size_t)cfg->block_size * sizeof(int32_t) +
           vocab * (sizeof(float) + 1 + sizeof(int32_t));
}

int anv_generator_create(anv_model_t *m, const anv_tokenizer_t *tok, anv_generator_t **out) {
    *out = NULL;
    const anv_config_t *cfg = anv_model_config(m);
    anv_generator_t *g = anv_calloc(sizeof *g, "generator");
    if (!g) return -1;
    g->m = m;
    g->tok = tok;
    g->block = cfg->block_size;
    g->vocab = cfg->vocab_size;
    g->ctx = anv_alloc((size_t)g->block * sizeof *g->ctx, "generator context");
    g->logits = anv_alloc((size_t)g->vocab * sizeof *g->logits, "generator logits");
    g->seen = anv_alloc((size_t)g->vocab, "generator token flags");
    g->counts = anv_alloc((size_t)g->vocab * sizeof *g->counts, "generator token counts");
    if (!g->ctx || !g->logits || !g->seen || !g->counts || anv_kv_cache_create(m, g->block, &g->kv) != 0) {
        anv_generator_free(g);
        return -1;
    }
    *out = g;
    return 0;
}

void anv_generator_free(anv_generator_t *g) {
    if (!g) return;
    anv_kv_cache_free(g->kv);
    anv_free(g->ctx);
    anv_free(g->logits);
    anv_free(g->raw);
    anv_free(g->rows);
    anv_free(g->seen);
    anv_free(g->counts);
    anv_buf_free(&g->bytes);
    anv_free(g);
}

int anv_generate_prompt(const anv_tokenizer_t *tok, const char *text, size_t len, anv_tokens_t *out) {
    int64_t eot = anv_tokenizer_eot(tok);
    if (eot >= 0 && anv_tokens_push(out, (uint32_t)eot) != 0) return -1;
    return anv_tokenizer_encode(tok, text, len, out);
}

void anv_generate_adjust_logits(float *logits, int vocab, const anv_gen_config_t *cfg, const uint8_t *seen,
                                const int32_t *counts) {
    float r = cfg->repetition_penalty, fp = cfg->frequency_penalty, pp = cfg->presence_penalty;
    if (r != 1 || fp != 0 || pp != 0)
        for (int i = 0; i < vocab; i++) {
            if (r != 1 && seen[i]) logits[i] = logits[i] > 0 ? logits[i] / r : logits[i] * r;
            if (counts[i] > 0) logits[i] -= (float)counts[i] * fp + pp;
        }
    float t = cfg->sampler.temperature;
    if (cfg->min_p > 0 && t > 0) {
        float max = logits[0];
        for (int i = 1; i < vocab; i++) max = logits[i] > max ? logits[i] : max;
        float floor = max + t * logf(cfg->min_p);
        for (int i = 0; i < vocab; i++)
            if (logits[i] < floor) logits[i] = -INFINITY;
    }
}

static int check_config(const anv_gen_config_t *c) {
    if (c->max_tokens < 0) return anv_error("max_tokens must be >= 0, got %d", c->max_tokens);
    if (!(c->min_p >= 0 && c->min_p <= 1)) return anv_error("min_p must be in [0, 1], got %g", c->min_p);
    if (!(c->repetition_penalty > 0) || !isfinite(c->repetition_penalty))
        return anv_error("repetition_penalty must be > 0, got %g", c->repetition_penalty);
    if (!isfinite(c->frequency_penalty) || !isfinite(c->presence_penalty))
        return anv_error("frequency_penalty and presence_penalty must be finite");
    if (c->n_stop < 0 || c->n_stop > ANV_GEN_MAX_STOP)
        return anv_error("at most %d stop strings, got %d", ANV_GEN_MAX_STOP, c->n_stop);
    for (int i = 0; i < c->n_stop; i++)
        if (!c->stop[i] || !c->stop[i][0]) return anv_error("stop string %d is empty", i);
    return 0;
}

/* Appends one token to the cache, sliding the window when it is full (as `anvil sample` does). */
static int feed(anv_generator_t *g, int32_t token) {
    int len = anv_kv_cache_len(g->kv);
    if (len + 1 > g->block) {
        int keep = g->block / 2 > 1 ? g->block / 2 - 1 : 0;
        memmove(g->ctx, g->ctx + len - keep, (size_t)keep * sizeof *g->ctx);
        anv_kv_cache_reset(g->kv);
        g->ctx[keep] = token;
        return anv_model_decode(g->m, g->kv, g->ctx, keep + 1, g->logits);
    }
    g->ctx[len] = token;
    return anv_model_decode(g->m, g->kv, &token, 1, g->logits);
}

void anv_gen_logprobs_free(anv_gen_logprobs_t *lp) {
    anv_free(lp->items);
    lp->items = NULL;
    lp->n = lp->cap = 0;
}

/* Appends token's log-probability under a row of raw logits (row NULL: none) and the top alternatives. */
static int record(anv_gen_logprobs_t *lp, const float *row, int vocab, uint32_t token) {
    if (lp->n == lp->cap) {
        size_t cap = lp->cap ? 2 * lp->cap : 64;
        anv_token_logprob_t *p = anv_realloc(lp->items, cap * sizeof *p, "log-probabilities");
        if (!p) return -1;
        lp->items = p, lp->cap = cap;
    }
    anv_token_logprob_t *t = &lp->items[lp->n++];
    memset(t, 0, sizeof *t);
    t->token = token;
    t->logprob = NAN;
    if (!row) return 0;
    double lse = anv_logits_lse(row, vocab, NULL);
    t->logprob = (float)(row[token] - lse);
    for (int i = 0; i < vocab; i++) { /* insertion into the sorted top list; the lower id first on ties */
        int at = t->n_top;
        while (at > 0 && row[i] > row[t->top[at - 1]]) at--;
        if (at >= lp->top) continue;
        int last = t->n_top < lp->top ? t->n_top++ : t->n_top - 1;
        memmove(t->top + at + 1, t->top + at, (size_t)(last - at) * sizeof *t->top);
        t->top[at] = (uint32_t)i;
    }
    for (int k = 0; k < t->n_top; k++) t->top_logprob[k] = (float)(row[t->top[k]] - lse);
    return 0;
}

/* Decodes the prompt in the cache, leaving its last position's logits in g->logits; with lp->prompt,
 * records the log-probability of each prompt token. */
static int decode_prompt(anv_generator_t *g, size_t n, anv_gen_logprobs_t *lp) {
    if (!lp || !lp->prompt) return anv_model_decode(g->m, g->kv, g->ctx, (int)n, g->logits);
    if (!g->rows && !(g->rows = anv_alloc((size_t)ROWS * (size_t)g->vocab * sizeof *g->rows, "prompt logits")))
        return -1;
    if (record(lp, NULL, g->vocab, (uint32_t)g->ctx[0]) != 0) return -1;
    for (size_t at = 0; at < n; at += ROWS) {
        int rows = n - at < ROWS ? (int)(n - at) : ROWS;
        if (anv_model_decode_all(g->m, g->kv, g->ctx + at, rows, g->rows) != 0) return -1;
        for (int r = 0; r < rows; r++) {
            const float *row = g->rows + (size_t)r * (size_t)g->vocab;
            size_t pos = at + (size_t)r;
            if (pos + 1 < n && record(lp, row, g->vocab, (uint32_t)g->ctx[pos + 1]) != 0) return -1;
            if (pos + 1 == n) memcpy(g->logits, row, (size_t)g->vocab * sizeof *row);
        }
    }
    return 0;
}

int anv_generate(anv_generator_t *g, const uint32_t *prompt, size_t n_prompt, const anv_gen_config_t *cfg,
                 anv_gen_text_fn fn, void *ctx, anv_gen_result_t *res, anv_gen_logprobs_t *lp) {
    memset(res, 0, sizeof *res);
    if (check_config(cfg) != 0) return -1;
    if (lp && (lp->top < 0 || lp->top > ANV_GEN_MAX_TOP))
        return anv_error("log-probabilities: %d alternatives, 0 to %d are given", lp->top, ANV_GEN_MAX_TOP);
    if (n_prompt < 1) return anv_error("the prompt is empty (and the tokenizer has no end-of-text token)");
    if (n_prompt > (size_t)g->block)
        return anv_error("the prompt has %zu tokens, more than the model's context of %d", n_prompt, g->block);
    for (size_t i = 0; i < n_prompt; i++) {
        if (prompt[i] >= (uint32_t)g->vocab)
            return anv_error("prompt token %u is outside the vocabulary (%d)", prompt[i], g->vocab);
        g->ctx[i] = (int32_t)prompt[i];
    }
    if (lp && !g->raw && !(g->raw = anv_alloc((size_t)g->vocab * sizeof *g->raw, "generator logits"))) return -1;
    anv_sampler_t s;
    if (anv_sampler_init(&s, &cfg->sampler, g->vocab) != 0) return -1;
    memset(g->seen, 0, (size_t)g->vocab);
    memset(g->counts, 0, (size_t)g->vocab * sizeof *g->counts);
    for (size_t i = 0; i < n_prompt; i++) g->seen[prompt[i]] = 1;
    res->prompt_tokens = (int)n_prompt;
    res->finish = ANV_GEN_LENGTH;
    anv_stopper_t stopper;
    anv_stopper_init(&stopper, cfg->stop, cfg->n_stop);
    int64_t eot = anv_tokenizer_eot(g->tok);
    int rc = -1;
    anv_kv_cache_reset(g->kv);
    if (decode_prompt(g, n_prompt, lp) != 0) goto done;
    for (int produced = 0; produced < cfg->max_tokens; produced++) {
        if (lp) memcpy(g->raw, g->logits, (size_t)g->vocab * sizeof *g->raw);
        anv_generate_adjust_logits(g->logits, g->vocab, cfg, g->seen, g->counts);
        int32_t next = anv_sampler_next(&s, g->logits);
        if (next == eot) {
            res->finish = ANV_GEN_STOP;
            break;
        }
        if (lp && record(lp, g->raw, g->vocab, (uint32_t)next) != 0) goto done;
        res->completion_tokens++;
        g->seen[next] = 1;
        g->counts[next]++;
        uint32_t id = (uint32_t)next;
        g->bytes.len = 0;
        if (anv_tokenizer_decode(g->tok, &id, 1, &g->bytes) != 0) goto done;
        int cb = anv_stopper_push(&stopper, g->bytes.data, g->bytes.len, fn, ctx);
        if (cb < 0) goto done;
        if (stopper.stopped) {
            res->finish = ANV_GEN_STOP;
            break;
        }
        if (cb != 0) {
            res->finish = ANV_GEN_CANCELLED;
            break;
        }
        if (produced + 1 < cfg->max_tokens && feed(g, next) != 0) goto done;
    }
    if (res->finish != ANV_GEN_CANCELLED && anv_stopper_flush(&stopper, fn, ctx) > 0) res->finish = ANV_GEN_CANCELLED;
    rc = 0;
done:
    anv_stopper_free(&stopper);
    anv_sampler_free(&s);
    return rc;
}

/* Log-probabilities of continuations and of text windows, through the KV-cached decoder: a context is
 * decoded once and each continuation after it; logits come ROWS positions at a time. */
#include "anvil/eval.h"
#include "anvil/kernels.h"
#include "anvil/sampler.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define ROWS 64 /* logits rows per decode call */

struct anv_scorer {
    anv_model_t *m;
    const anv_tokenizer_t *tok;
    anv_kv_cache_t *kv;
    int V, T;
    float *logits;      /* (ROWS, V) */
    float *after_ctx;   /* (V): the logits that predict each continuation's first token */
    int32_t *ids;       /* (T) the tokens being decoded */
    anv_tokens_t ctx;   /* [end-of-text] + context */
    anv_tokens_t *cont; /* each continuation's tokens */
    int cont_cap;
};

int anv_scorer_create(anv_model_t *m, const anv_tokenizer_t *tok, anv_scorer_t **out) {
    *out = NULL;
    const anv_config_t *c = anv_model_config(m);
    anv_scorer_t *s = anv_calloc(sizeof *s, "scorer");
    if (!s) return -1;
    s->m = m, s->tok = tok, s->V = c->vocab_size, s->T = c->block_size;
    if (anv_kv_cache_create(m, s->T, &s->kv) != 0 ||
        !(s->logits = anv_alloc((size_t)ROWS * (size_t)s->V * sizeof(float), "logits")) ||
        !(s->after_ctx = anv_alloc((size_t)s->V * sizeof(float), "logits")) ||
        !(s->ids = anv_alloc((size_t)s->T * sizeof(int32_t), "tokens"))) {
        anv_scorer_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void anv_scorer_free(anv_scorer_t *s) {
    if (!s) return;
    for (int i = 0; i < s->cont_cap; i++) anv_tokens_free(&s->cont[i]);
    anv_free(s->cont);
    anv_tokens_free(&s->ctx);
    anv_free(s->ids);
    anv_free(s->after_ctx);
    anv_free(s->logits);
    anv_kv_cache_free(s->kv);
    anv_free(s);
}

/* log p(target) under a row of logits, and whether target is its (first) most likely token. */
static double row_logprob(const float *row, int V, uint32_t target, int *greedy) {
    int best;
    double lse = anv_logits_lse(row, V, &best);
    *greedy = best == (int)target;
    return (double)row[target] - lse;
}

typedef struct {
    double logprob; /* sum over the targets */
    int greedy;     /* every target the most likely token */
} tally_t;

/* Decodes tokens[0..n) at the cache position, ROWS at a time, adding up the log-probability of each
 * targets[r] under the logits after tokens[r]. */
static int decode_scored(anv_scorer_t *s, const uint32_t *tokens, size_t n, const uint32_t *targets, tally_t *t) {
    for (size_t at = 0; at < n; at += ROWS) {
        int rows = n - at < ROWS ? (int)(n - at) : ROWS;
        for (int r = 0; r < rows; r++) s->ids[r] = (int32_t)tokens[at + (size_t)r];
        if (anv_model_decode_all(s->m, s->kv, s->ids, rows, s->logits) != 0) return -1;
        for (int r = 0; r < rows; r++) {
            int greedy;
            t->logprob += row_logprob(s->logits + (size_t)r * (size_t)s->V, s->V, targets[at + (size_t)r], &greedy);
            t->greedy &= greedy;
        }
    }
    return 0;
}

/* Decodes tokens without their logits (a prefix), leaving the last one's in out. */
static int decode_prefix(anv_scorer_t *s, const uint32_t *tokens, size_t n, float *out) {
    for (size_t i = 0; i < n; i++) s->ids[i] = (int32_t)tokens[i];
    return anv_model_decode(s->m, s->kv, s->ids, (int)n, out);
}

/* Appends text's tokens, each checked against the model's vocabulary. */
static int encode(anv_scorer_t *s, const char *text, anv_tokens_t *out) {
    size_t from = out->len;
    if (anv_tokenizer_encode(s->tok, text, strlen(text), out) != 0) return -1;
    for (size_t i = from; i < out->len; i++)
        if (out->ids[i] >= (uint32_t)s->V)
            return anv_error("token %u is outside the model's vocabulary (%d)", out->ids[i], s->V);
    return 0;
}

int anv_score_example(anv_scorer_t *s, const anv_example_t *ex, anv_choice_score_t *scores,
                      anv_context_use_t *context) {
    int n = ex->n_continuations;
    if (n > s->cont_cap) {
        anv_tokens_t *p = anv_realloc(s->cont, (size_t)n * sizeof *p, "continuations");
        if (!p) return -1;
        memset(p + s->cont_cap, 0, (size_t)(n - s->cont_cap) * sizeof *p);
        s->cont = p, s->cont_cap = n;
    }
    s->ctx.len = 0;
    int64_t eot = anv_tokenizer_eot(s->tok);
    if ((eot >= 0 && anv_tokens_push(&s->ctx, (uint32_t)eot) != 0) || encode(s, ex->context, &s->ctx) != 0) return -1;
    size_t longest = 0;
    for (int i = 0; i < n; i++) {
        s->cont[i].len = 0;
        if (encode(s, ex->continuations[i], &s->cont[i]) != 0) return -1;
        if (s->cont[i].len > longest) longest = s->cont[i].len;
    }
    if (longest >= (size_t)s->T)
        return anv_error("line %llu: a continuation of %zu tokens leaves no room for context in the block of %d",
                         (unsigned long long)ex->line, longest, s->T);
    if (s->ctx.len == 0)
        return anv_error("line %llu: no context and no end-of-text token", (unsigned long long)ex->line);
    size_t keep = (size_t)s->T + 1 - longest;
    keep = s->ctx.len < keep ? s->ctx.len : keep;
    anv_kv_cache_reset(s->kv);
    if (decode_prefix(s, s->ctx.ids + (s->ctx.len - keep), keep, s->after_ctx) != 0) return -1;
    for (int i = 0; i < n; i++) {
        const anv_tokens_t *c = &s->cont[i];
        tally_t t = {0, 1};
        t.logprob = row_logprob(s->after_ctx, s->V, c->ids[0], &t.greedy);
        anv_kv_cache_truncate(s->kv, (int)keep);
        if (decode_scored(s, c->ids, c->len - 1, c->ids + 1, &t) != 0) return -1;
        scores[i] = (anv_choice_score_t){t.logprob, (int)c->len, strlen(ex->continuations[i]), t.greedy};
    }
    *context = (anv_context_use_t){(int)keep, (int)(s->ctx.len - keep)};
    return 0;
}

int anv_text_windows(size_t doc, size_t n, int block_size, int stride, anv_text_window_t **windows, size_t *count,
                     size_t *cap) {
    if (stride < 1 || stride > block_size)
        return anv_error("--stride %d: must be 1 to block_size %d", stride, block_size);
    size_t scored = 1; /* the first target not yet scored: position 0 (end-of-text) is never a target */
    for (size_t start = 0; scored < n; start += (size_t)stride) {
        size_t end = start + (size_t)block_size + 1 < n ? start + (size_t)block_size + 1 : n;
        if (*count == *cap) {
            size_t c = *cap ? 2 * *cap : 256;
            anv_text_window_t *p = anv_realloc(*windows, c * sizeof *p, "text windows");
            if (!p) return -1;
            *windows = p, *cap = c;
        }
        (*windows)[(*count)++] = (anv_text_window_t){doc, start, scored, end, 0};
        scored = end;
    }
    return 0;
}

int anv_score_window(anv_scorer_t *s, const uint32_t *tokens, anv_text_window_t *w) {
    /* inputs tokens[start, end - 1); those before first - 1 only give context */
    anv_kv_cache_reset(s->kv);
    size_t context = w->first - 1 - w->start;
    if (context && decode_prefix(s, tokens + w->start, context, s->logits) != 0) return -1;
    tally_t t = {0, 1};
    if (decode_scored(s, tokens + w->first - 1, w->end - w->first, tokens + w->first, &t) != 0) return -1;
    w->nll = -t.logprob;
    return 0;
}

int anv_choice_best(const anv_choice_score_t *scores, int n, anv_choice_rule_t rule) {
    int best = 0;
    double best_v = -INFINITY;
    for (int i = 0; i < n; i++) {
        double d = rule == ANV_BY_BYTES ? (double)scores[i].bytes : rule == ANV_BY_TOKENS ? scores[i].tokens : 1;
        double v = scores[i].logprob / d;
        if (v > best_v) best = i, best_v = v;
    }
    return best;
}

double anv_mean_stderr(double k, double n) {
    if (n < 2) return 0;
    double p = k / n;
    return sqrt(p * (1 - p) / (n - 1));
}

/* Runs job(scorer, i, arg) for i < n on every thread, each with a scorer of its own. The first failure
 * stops the others and its message becomes this thread's error. */
typedef int (*job_fn)(anv_scorer_t *s, size_t i, void *arg);

static int for_each(anv_model_t *m, const anv_tokenizer_t *tok, size_t n, job_fn job, void *arg,
                    anv_progress_fn progress, void *progress_ctx, const char *phase) {
    int threads = strcmp(anv_device(), "cpu") == 0 ? anv_threads_count() : 1, failed = 0;
    size_t done = 0;
    char message[1024] = "";
#pragma omp parallel num_threads(threads)
    {
        anv_scorer_t *s = NULL;
        int ok = anv_scorer_create(m, tok, &s) == 0;
#pragma omp for schedule(dynamic, 1)
        for (size_t i = 0; i < n; i++) {
            int stop;
#pragma omp atomic read
            stop = failed;
            if (stop) continue;
            if (!ok || job(s, i, arg) != 0) {
#pragma omp critical(anv_score_failure)
                if (!failed) {
                    failed = 1;
                    snprintf(message, sizeof message, "%s", anv_last_error());
                }
                continue;
            }
            size_t d;
#pragma omp atomic capture
            d = ++done;
            if (progress && anv_thread_id() == 0 && d < n) progress(progress_ctx, phase, d, n);
        }
        anv_scorer_free(s);
    }
    if (failed) return anv_error("%s", message);
    if (progress) progress(progress_ctx, phase, n, n);
    return 0;
}

typedef struct {
    const anv_examples_t *ex;
    anv_choice_score_t *scores;
    size_t *offsets;
    anv_context_use_t *context;
} examples_job_t;

static int score_one_example(anv_scorer_t *s, size_t i, void *arg) {
    examples_job_t *j = arg;
    return anv_score_example(s, &j->ex->items[i], j->scores + j->offsets[i], &j->context[i]);
}

int anv_score_examples(anv_model_t *m, const anv_tokenizer_t *tok, const anv_examples_t *ex, anv_choice_score_t *scores,
                       anv_context_use_t *context, anv_progress_fn progress, void *progress_ctx) {
    size_t *offsets = anv_alloc((ex->n + 1) * sizeof *offsets, "offsets");
    if (!offsets) return -1;
    offsets[0] = 0;
    for (size_t i = 0; i < ex->n; i++) offsets[i + 1] = offsets[i] + (size_t)ex->items[i].n_continuations;
    examples_job_t j = {ex, scores, offsets, context};
    int rc = for_each(m, tok, ex->n, score_one_example, &j, progress, progress_ctx, "examples");
    anv_free(offsets);
    return rc;
}

typedef struct {
    const uint32_t *const *doc_tokens;
    anv_text_window_t *windows;
} windows_job_t;

static int score_one_window(anv_scorer_t *s, size_t i, void *arg) {
    windows_job_t *j = arg;
    return anv_score_window(s, j->doc_tokens[j->windows[i].doc], &j->windows[i]);
}

int anv_score_windows(anv_model_t *m, const anv_tokenizer_t *tok, const uint32_t *const *doc_tokens,
                      anv_text_window_t *windows, size_t n, anv_progress_fn progress, void *progress_ctx) {
    windows_job_t j = {doc_tokens, windows};
    return for_each(m, tok, n, score_one_window, &j, progress, progress_ctx, "windows");
}

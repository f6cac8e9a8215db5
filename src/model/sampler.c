/* Temperature / top-k / top-p sampling over one row of logits. */
#include "anvil/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int anv_sampler_init(anv_sampler_t *s, const anv_sampler_config_t *cfg, int vocab) {
    memset(s, 0, sizeof *s);
    if (!(cfg->temperature >= 0) || !isfinite(cfg->temperature))
        return anv_error("--temperature must be >= 0, got %g", cfg->temperature);
    if (cfg->top_k < 0) return anv_error("--top-k must be >= 0, got %d", cfg->top_k);
    if (!(cfg->top_p > 0 && cfg->top_p <= 1)) return anv_error("--top-p must be in (0, 1], got %g", cfg->top_p);
    s->cfg = *cfg;
    s->vocab = vocab;
    anv_rng_seed(&s->rng, cfg->seed);
    s->cand = anv_alloc((size_t)vocab * sizeof *s->cand, "sampler candidates");
    return s->cand ? 0 : -1;
}

void anv_sampler_free(anv_sampler_t *s) {
    anv_free(s->cand);
    s->cand = NULL;
}

static int by_prob_desc(const void *a, const void *b) {
    const struct anv_sample_cand *x = a, *y = b;
    return x->p > y->p ? -1 : x->p < y->p ? 1 : x->id - y->id;
}

/* Quickselect: moves the k best candidates (by_prob_desc order) to c[0..k), in any order. */
static void select_top(struct anv_sample_cand *c, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        struct anv_sample_cand pivot = c[lo + (hi - lo) / 2], t;
        int i = lo, j = hi;
        while (i <= j) {
            while (by_prob_desc(&c[i], &pivot) < 0) i++;
            while (by_prob_desc(&c[j], &pivot) > 0) j--;
            if (i <= j) {
                t = c[i];
                c[i++] = c[j];
                c[j--] = t;
            }
        }
        if (k - 1 <= j)
            hi = j;
        else if (k - 1 >= i)
            lo = i;
        else
            break;
    }
}

int anv_sampler_next(anv_sampler_t *s, const float *logits) {
    int V = s->vocab;
    if (s->cfg.temperature == 0) {
        int best = 0;
        for (int i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    float max = logits[0];
    for (int i = 1; i < V; i++) max = logits[i] > max ? logits[i] : max;
    double sum = 0;
    for (int i = 0; i < V; i++) {
        s->cand[i].p = expf((logits[i] - max) / s->cfg.temperature); /* unnormalised probability */
        s->cand[i].id = i;
        sum += s->cand[i].p;
    }
    int n = V;
    if (s->cfg.top_k > 0 || s->cfg.top_p < 1) {
        if (s->cfg.top_k > 0 && s->cfg.top_k < n) {
            n = s->cfg.top_k;
            select_top(s->cand, V, n); /* O(V): only the k kept candidates get sorted */
        }
        qsort(s->cand, (size_t)n, sizeof *s->cand, by_prob_desc);
        double kept = 0;
        for (int i = 0; i < n; i++) kept += s->cand[i].p;
        if (s->cfg.top_p < 1) { /* smallest prefix whose share of the kept mass reaches top_p */
            double cum = 0;
            int m = 0;
            while (m < n && cum < s->cfg.top_p * kept) cum += s->cand[m++].p;
            n = m;
            kept = cum;
        }
        sum = kept;
    }
    double r = anv_rng_uniform(&s->rng) * sum, cum = 0;
    for (int i = 0; i < n; i++) {
        cum += s->cand[i].p;
        if (r < cum) return s->cand[i].id;
    }
    return s->cand[n - 1].id;
}

double anv_logits_lse(const float *logits, int n, int *argmax) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    double sum = 0, max = logits[best];
    for (int i = 0; i < n; i++) sum += exp((double)logits[i] - max);
    if (argmax) *argmax = best;
    return max + log(sum);
}

size_t anv_utf8_ready(const unsigned char *buf, size_t n) {
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        unsigned char c = buf[n - back];
        if ((c & 0xC0) == 0x80) continue; /* continuation byte: look further back for the lead */
        size_t need = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
        return back < need ? n - back : n;
    }
    return n;
}

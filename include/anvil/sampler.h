/* Token sampling from logits: temperature, top-k, top-p (nucleus), seeded. Temperature 0 is greedy
 * (argmax, lowest id on ties). Order: temperature scaling, then top-k, then top-p over what remains. */
#ifndef ANVIL_SAMPLER_H
#define ANVIL_SAMPLER_H

#include "anvil/base.h"

typedef struct {
    float temperature; /* 0 = greedy; > 0 divides the logits */
    int top_k;         /* keep the k most likely tokens; 0 = all */
    float top_p;       /* keep the smallest set whose probability reaches top_p; 1 = all */
    uint64_t seed;
} anv_sampler_config_t;

typedef struct {
    anv_sampler_config_t cfg;
    anv_rng_t rng;
    int vocab;
    struct anv_sample_cand {
        float p;
        int id;
    } * cand; /* (vocab) scratch: candidates, sorted by falling probability when filtering */
} anv_sampler_t;

/* Fails on a negative temperature, top_k < 0 or top_p outside (0, 1]. */
int anv_sampler_init(anv_sampler_t *s, const anv_sampler_config_t *cfg, int vocab);
void anv_sampler_free(anv_sampler_t *s);
/* Draws one token id from logits (vocab). */
int anv_sampler_next(anv_sampler_t *s, const float *logits);

/* log(sum(exp(logits))) over n logits, summed in double from the largest; *argmax (may be NULL) gets
 * the index of the first largest. A token's log-probability is logits[id] minus it. */
double anv_logits_lse(const float *logits, int n, int *argmax);

/* Streaming decoded tokens: how many bytes of buf[0..n) can be written now. A UTF-8 character whose
 * bytes are split across tokens is held back until complete; invalid bytes are passed through. */
size_t anv_utf8_ready(const unsigned char *buf, size_t n);

#endif

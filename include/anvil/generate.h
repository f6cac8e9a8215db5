/* Text generation with control: KV-cached decoding of a prompt, then up to max_tokens tokens drawn by
 * the sampler (sampler.h) after penalties and min-p, cut at the end-of-text token or at a stop string.
 * Text reaches the caller through a callback as soon as it is safe to show: never half a UTF-8
 * character (until the end) and never the beginning of a stop string.
 *
 * Order applied to the logits of each step:
 *   1. repetition_penalty r (CTRL / Hugging Face): for every token id present in the prompt or the
 *      completion so far, a logit l > 0 becomes l / r and l <= 0 becomes l * r;
 *   2. frequency and presence penalties (OpenAI): l -= count * frequency_penalty
 *      + (count > 0) * presence_penalty, count = occurrences of the id in the completion so far;
 *   3. min-p: with temperature T > 0, ids whose probability after temperature is below min_p times the
 *      most likely one's are removed, i.e. l < max_l + T * ln(min_p);
 *   4. the sampler: temperature, top-k, top-p, draw (temperature 0 = argmax, lowest id on ties).
 * A generation longer than the model's block_size slides its window as `anvil sample` does: when the
 * cache is full, the last block_size/2 - 1 tokens are re-encoded with the new one.
 *
 * A generator owns its KV cache and scratch; different generators over one model may run on different
 * threads at the same time (the model's weights are only read). */
#ifndef ANVIL_GENERATE_H
#define ANVIL_GENERATE_H

#include "anvil/model.h"
#include "anvil/sampler.h"
#include "anvil/tokenizer.h"

#define ANV_GEN_MAX_STOP 8

typedef struct {
    anv_sampler_config_t sampler;
    int max_tokens;                            /* >= 0 */
    float min_p;                               /* 0 = off, else (0, 1] */
    float repetition_penalty;                  /* 1 = off, else > 0 */
    float frequency_penalty, presence_penalty; /* 0 = off */
    const char *stop[ANV_GEN_MAX_STOP];        /* non-empty strings, n_stop of them */
    int n_stop;
} anv_gen_config_t;

/* Defaults: greedy, no penalties, no stop strings, max_tokens 16, seed 0. */
anv_gen_config_t anv_gen_config_default(void);

typedef enum {
    ANV_GEN_LENGTH,   /* max_tokens reached */
    ANV_GEN_STOP,     /* the end-of-text token or a stop string */
    ANV_GEN_CANCELLED /* the text callback asked to stop */
} anv_gen_finish_t;

typedef struct {
    int prompt_tokens, completion_tokens; /* the end-of-text token that ends a generation is not counted */
    anv_gen_finish_t finish;
} anv_gen_result_t;

/* Receives text that is ready to show (len may be 0: it is called after every token, so that it can
 * cancel). Returns 0 to go on, 1 to stop the generation (finish = ANV_GEN_CANCELLED). */
typedef int (*anv_gen_text_fn)(void *ctx, const char *text, size_t len);

/* ---- stop strings over a stream of bytes (used by anv_generate; public for tests and other loops) ---- */
typedef struct {
    const char *const *stop;
    int n_stop;
    anv_buf_t pending; /* bytes received but not yet passed on */
    int stopped;       /* 1 once a stop string was seen: everything from it on is dropped */
} anv_stopper_t;

void anv_stopper_init(anv_stopper_t *s, const char *const *stop, int n_stop);
void anv_stopper_free(anv_stopper_t *s);
/* Appends bytes and passes on (through fn, called exactly once) the longest prefix of the pending bytes
 * that can no longer become part of a stop string and ends on a whole UTF-8 character; on a stop
 * string, passes on what precedes it and sets s->stopped. Returns fn's result (0 or 1), or -1 when out
 * of memory (error recorded). */
int anv_stopper_push(anv_stopper_t *s, const char *bytes, size_t n, anv_gen_text_fn fn, void *ctx);
/* Passes on whatever is still pending (the stream ended without a stop string). Returns fn's result. */
int anv_stopper_flush(anv_stopper_t *s, anv_gen_text_fn fn, void *ctx);

/* ---- log-probabilities ---- */
#define ANV_GEN_MAX_TOP 20

/* A token's log-probability under the model (the log-softmax of its raw logits: before penalties,
 * min-p and temperature) and the n_top most likely tokens at its position, most likely first. */
typedef struct {
    uint32_t token;
    float logprob; /* NAN for the first prompt token: nothing predicts it */
    int n_top;
    uint32_t top[ANV_GEN_MAX_TOP];
    float top_logprob[ANV_GEN_MAX_TOP];
} anv_token_logprob_t;

/* What anv_generate records when given one: every prompt token (when `prompt` is set), then every
 * generated token but a final end-of-text, each with `top` (0 to ANV_GEN_MAX_TOP) alternatives. */
typedef struct {
    int prompt, top;
    anv_token_logprob_t *items;
    size_t n, cap;
} anv_gen_logprobs_t;
void anv_gen_logprobs_free(anv_gen_logprobs_t *lp);

/* ---- generation ---- */
typedef struct anv_generator anv_generator_t;

int anv_generator_create(anv_model_t *m, const anv_tokenizer_t *tok, anv_generator_t **out);
void anv_generator_free(anv_generator_t *g);
/* Bytes one generator allocates (its KV cache for the whole block_size and its scratch). */
size_t anv_generator_bytes(const anv_model_t *m);

/* Prompt ids as `anvil sample` feeds them: the end-of-text token (when the tokenizer has one, as
 * every training document starts after one), then the encoded text. Appends to out. */
int anv_generate_prompt(const anv_tokenizer_t *tok, const char *text, size_t len, anv_tokens_t *out);

/* Applies steps 1-3 above to logits (vocab) in place. `seen` (vocab) flags ids of the prompt and
 * completion, `counts` (vocab) counts ids of the completion. */
void anv_generate_adjust_logits(float *logits, int vocab, const anv_gen_config_t *cfg, const uint8_t *seen,
                                const int32_t *counts);

/* Generates from prompt ids (1..block_size of them, see anv_generate_prompt), recording
 * log-probabilities in lp unless it is NULL (the prompt's then take logits rows of their own: 64 x
 * vocab floats, allocated once). Fails on a bad configuration, an empty or too long prompt, or an id
 * outside the model's vocabulary. */
int anv_generate(anv_generator_t *g, const uint32_t *prompt, size_t n_prompt, const anv_gen_config_t *cfg,
                 anv_gen_text_fn fn, void *ctx, anv_gen_result_t *res, anv_gen_logprobs_t *lp);

#endif

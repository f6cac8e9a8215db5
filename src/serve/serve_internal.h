/* Internals of `anvil serve`: request parsing (request.c), response JSON (response.c), the queue of
 * worker slots (pool.c); http.c ties them to libmicrohttpd. */
#ifndef ANVIL_SERVE_INTERNAL_H
#define ANVIL_SERVE_INTERNAL_H

#include "anvil/generate.h"
#include "anvil/serve.h"

#include <pthread.h>

/* An OpenAI-style error: {"error": {"message", "type", "param", "code"}} with an HTTP status. */
typedef struct {
    int status;
    const char *type; /* "invalid_request_error", "authentication_error", "server_error" */
    const char *code; /* NULL -> null */
    char param[64];   /* "" -> null */
    char message[512];
} anv_srv_error_t;

/* Fills err and returns -1. */
int anv_srv_fail(anv_srv_error_t *err, int status, const char *type, const char *code, const char *param,
                 const char *fmt, ...) ANV_PRINTF(6, 7);

/* Limits the parser enforces (from anv_serve_opts_t and the model). */
typedef struct {
    const anv_tokenizer_t *tok;
    int block_size;
    int max_tokens_limit;
    const anv_chat_template_t *chat; /* NULL: the text format of serve.h */
} anv_srv_limits_t;

#define ANV_SRV_MAX_STOP_LEN 256

/* One parsed /v1/completions or /v1/chat/completions request. */
typedef struct {
    int chat, stream, echo, include_usage;
    int logprobs;          /* completions: alternatives per token (0 to ANV_GEN_MAX_TOP); -1: not asked */
    int prompt_skip;       /* leading prompt ids not in prompt_text (the end-of-text token before text) */
    anv_tokens_t prompt;   /* ids fed to the model (end-of-text token first) */
    anv_buf_t prompt_text; /* the text of the prompt, for echo */
    anv_gen_config_t gen;  /* gen.stop points into stop_text */
    char stop_text[ANV_GEN_MAX_STOP][ANV_SRV_MAX_STOP_LEN + 1];
} anv_srv_request_t;

/* Parses a request body; on failure fills err (status 400) and returns -1. Unknown fields are ignored,
 * null counts as absent. The request must be freed with anv_srv_request_free either way. */
int anv_srv_parse(const char *body, size_t len, int chat, const anv_srv_limits_t *lim, anv_srv_request_t *req,
                  anv_srv_error_t *err);
void anv_srv_request_free(anv_srv_request_t *req);

/* ---- response JSON (appended to out) ---- */
typedef struct {
    char id[48];
    long long created;
    const char *model;
} anv_srv_meta_t;

void anv_srv_meta_init(anv_srv_meta_t *m, int chat, const char *model);
const char *anv_srv_finish_name(anv_gen_finish_t f);
int anv_srv_error_json(anv_buf_t *out, const anv_srv_error_t *err);
/* The whole response of a finished request; lp holds its log-probabilities when req->logprobs >= 0
 * (the tokens' text comes from tok). */
int anv_srv_response_json(anv_buf_t *out, const anv_srv_meta_t *m, const anv_srv_request_t *req, const char *text,
                          size_t len, const anv_gen_result_t *res, const anv_gen_logprobs_t *lp,
                          const anv_tokenizer_t *tok);
/* Server-sent events: one chunk with text (finish NULL) or the final chunk (finish set, text empty);
 * each appended as "data: {...}\n\n". The first chat chunk carries the assistant role (role = 1). */
int anv_srv_chunk_sse(anv_buf_t *out, const anv_srv_meta_t *m, const anv_srv_request_t *req, int role, const char *text,
                      size_t len, const char *finish);
/* The usage-only chunk of stream_options.include_usage. */
int anv_srv_usage_sse(anv_buf_t *out, const anv_srv_meta_t *m, const anv_srv_request_t *req,
                      const anv_gen_result_t *res);
int anv_srv_models_json(anv_buf_t *out, const char *model, long long created, int list);

/* ---- the queue of worker slots ---- */
typedef struct anv_srv_job anv_srv_job_t;
struct anv_srv_job {
    anv_srv_request_t *req;
    /* Guarded by the pool's mutex: */
    anv_buf_t text; /* generated text not yet taken by the connection */
    int queued, running, done, cancel;
    int started; /* chat: the reply's leading whitespace is behind us */
    int failed;  /* done with an error: */
    anv_srv_error_t error;
    anv_gen_result_t res;
    anv_gen_logprobs_t logprobs; /* recorded when req->logprobs >= 0 */
    pthread_cond_t cond;         /* signalled on new text and on done */
    anv_srv_job_t *next;
};

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t work;
    anv_srv_job_t *head, *tail;
    int n_queued, n_running, closing;
    int n_slots, n_started;
    pthread_t *threads;
    struct anv_srv_slot *slots;
} anv_srv_pool_t;

/* Creates one generator per slot (threads_per_slot compute threads each) and starts the workers. */
int anv_srv_pool_start(anv_srv_pool_t *p, anv_model_t *m, const anv_tokenizer_t *tok, int n_slots,
                       int threads_per_slot);
/* Cancels what is queued or running, joins the workers, frees the slots. */
void anv_srv_pool_stop(anv_srv_pool_t *p);

int anv_srv_job_init(anv_srv_job_t *j, anv_srv_request_t *req);
void anv_srv_job_free(anv_srv_job_t *j);
void anv_srv_pool_submit(anv_srv_pool_t *p, anv_srv_job_t *j);
/* With the pool's mutex held: a queued job is removed and finished with `err`, a running one is told
 * to stop at its next token. */
void anv_srv_pool_cancel_locked(anv_srv_pool_t *p, anv_srv_job_t *j, const anv_srv_error_t *err);
/* Cancels every queued and running job with err (shutdown). */
void anv_srv_pool_cancel_all(anv_srv_pool_t *p, const anv_srv_error_t *err);
int anv_srv_pool_busy(anv_srv_pool_t *p); /* queued + running jobs */

#endif

/* `anvil serve`: an OpenAI-compatible HTTP API over a trained model (HTTP by libmicrohttpd).
 *
 * Endpoints: POST /v1/completions, POST /v1/chat/completions (both with `stream` as server-sent
 * events ending in `data: [DONE]`), GET /v1/models, GET /health. Errors are OpenAI-style JSON
 * {"error": {"message", "type", "param", "code"}} with a 4xx/5xx status; unknown request fields are
 * ignored.
 *
 * Log-probabilities (what evaluation harnesses such as lm-evaluation-harness's local-completions send):
 * /v1/completions with `logprobs: N` (0 to 20 alternatives) returns choices[0].logprobs with `tokens`,
 * `token_logprobs`, `top_logprobs` ({token: logprob}) and `text_offset` as OpenAI's legacy API does,
 * for the prompt too with `echo: true` (then `max_tokens: 0` scores without generating). Values are
 * the model's log-softmax before penalties and temperature. A prompt of token ids is taken as is, so
 * its first token has none (null); a text prompt follows the end-of-text token, so all of its tokens
 * have one. A token that is not whole UTF-8 characters is written "bytes:\xNN...". Not with `stream`.
 *
 * Concurrency: `slots` worker threads, each with its own generator (KV cache and scratch) and
 * `threads_per_slot` compute threads, take requests from one FIFO queue; the model's weights are
 * shared read-only. Each connection has its own thread: at most max_connections in all and
 * max_per_address from one client address; a client over either limit gets 503 with Retry-After. A
 * request must arrive whole (headers and body) within request_timeout_s however slowly it trickles,
 * and a connection idle for `timeout_s` is closed. A request whose client disconnects is cancelled at
 * its next token.
 *
 * Chat: with a chat template (chat, e.g. the one the run was fine-tuned with, anvil/sft.h) the messages
 * are rendered as in training, followed by what opens the assistant's reply, and generation stops at
 * what closes it. Without one (base models have no chat format of their own): each message becomes a line
 * "System: <content>\n", "User: <content>\n" or "Assistant: <content>\n" ("developer" counts as
 * system), then "Assistant:" is appended; generation stops at "\nUser:" and "\nSystem:" besides the
 * request's own stop strings, and the reply's leading whitespace is removed. */
#ifndef ANVIL_SERVE_H
#define ANVIL_SERVE_H

#include "anvil/model.h"
#include "anvil/sft.h"
#include "anvil/tokenizer.h"

#include <signal.h>

typedef struct {
    anv_model_t *model; /* shared, read-only while serving */
    const anv_tokenizer_t *tok;
    const char *model_name;          /* reported by /v1/models and in responses */
    const anv_chat_template_t *chat; /* /v1/chat/completions renders with it; NULL: the text format above */
    const char *host;                /* listen address (IPv4 or IPv6 literal) */
    int port;                        /* 0: any free port (see bound_port) */
    const char *api_key;             /* NULL: no authentication */
    int slots;                       /* requests generated at once */
    int threads_per_slot;
    int max_tokens_limit; /* larger max_tokens is refused (400) */
    int max_connections;
    int max_per_address;                   /* connections from one client address */
    int timeout_s;                         /* idle connection timeout */
    double request_timeout_s;              /* a request's headers and body must arrive within it */
    size_t max_body;                       /* larger request bodies get 413 */
    double drain_s;                        /* on stop: seconds to let in-flight requests finish before cancelling */
    volatile sig_atomic_t *stop;           /* set asynchronously (signal): drain and return */
    void (*on_ready)(int port, void *ctx); /* called once listening */
    void *ctx;
} anv_serve_opts_t;

/* 1 when built with an HTTP library. */
int anv_serve_available(void);
/* Serves until *o->stop is set, then stops accepting, finishes (or after drain_s cancels) the requests
 * in flight and returns 0. Fails (-1) when the address cannot be bound or without an HTTP library. */
int anv_serve(const anv_serve_opts_t *o);

#endif

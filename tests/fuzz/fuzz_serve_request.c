/* libFuzzer target: `anvil serve`'s request parser (completions when the first byte is even, chat
 * otherwise; chat messages in the text format, or with the chatml template when bit 1 is set) must accept or refuse any
 * body with a 4xx error and never crash; what it accepts must respect the limits and render as response and stream
 * JSON. */
#include "serve/serve_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static anv_tokenizer_t *tok;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (!tok && anv_tokenizer_create_bytes(&tok) != 0) abort();
    anv_srv_limits_t lim = {tok, 64, 256, data[0] & 2 ? anv_chat_template_builtin("chatml") : NULL};
    anv_srv_request_t req;
    anv_srv_error_t err;
    anv_buf_t out = {0};
    if (anv_srv_parse((const char *)data + 1, size - 1, data[0] & 1, &lim, &req, &err) == 0) {
        if (req.prompt.len < 1 || req.prompt.len > 64 || req.gen.max_tokens > 256 || req.gen.n_stop > ANV_GEN_MAX_STOP)
            abort();
        anv_srv_meta_t meta;
        anv_srv_meta_init(&meta, req.chat, "fuzz");
        anv_gen_result_t res = {(int)req.prompt.len, 3, ANV_GEN_STOP};
        /* log-probabilities as generation records them: the prompt's (echo), then "abc"'s */
        anv_gen_logprobs_t lp = {0};
        size_t n = (req.echo ? req.prompt.len : 0) + 3;
        anv_token_logprob_t *items = calloc(n, sizeof *items);
        if (!items) abort();
        for (size_t i = 0; i < n; i++) {
            items[i].token = i + 3 < n ? req.prompt.ids[i] : (uint32_t) "abc"[i + 3 - n];
            items[i].logprob = i == 0 && req.echo ? NAN : -1.5f;
            items[i].n_top = req.logprobs > 0 && !(i == 0 && req.echo) ? 1 : 0;
            items[i].top[0] = items[i].token;
            items[i].top_logprob[0] = -1.5f;
        }
        lp.items = items, lp.n = n;
        if (anv_srv_response_json(&out, &meta, &req, "abc", 3, &res, &lp, tok) != 0 ||
            anv_srv_chunk_sse(&out, &meta, &req, 1, "", 0, NULL) != 0 ||
            anv_srv_usage_sse(&out, &meta, &req, &res) != 0)
            abort();
        free(items);
    } else if (err.status < 400 || err.status > 599 || !err.message[0] || !err.type) {
        abort();
    } else {
        anv_srv_error_json(&out, &err);
    }
    anv_buf_free(&out);
    anv_srv_request_free(&req);
    return 0;
}

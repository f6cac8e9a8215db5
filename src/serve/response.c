/* Response bodies in OpenAI's formats: completions, chat completions, their stream chunks, models,
 * errors. */
#include "serve/serve_internal.h"

#include <math.h>
#include <string.h>
#include <time.h>

void anv_srv_meta_init(anv_srv_meta_t *m, int chat, const char *model) {
    static _Atomic uint64_t counter;
    uint64_t t = (uint64_t)(anv_now() * 1e9), n = ++counter;
    snprintf(m->id, sizeof m->id, "%s-%016llx%08llx", chat ? "chatcmpl" : "cmpl",
             (unsigned long long)anv_hash64(&t, sizeof t, n), (unsigned long long)(n & 0xffffffffu));
    m->created = (long long)time(NULL);
    m->model = model;
}

const char *anv_srv_finish_name(anv_gen_finish_t f) { return f == ANV_GEN_LENGTH ? "length" : "stop"; }

int anv_srv_error_json(anv_buf_t *out, const anv_srv_error_t *err) {
    int rc = anv_buf_puts(out, "{\"error\":{\"message\":");
    rc |= anv_buf_json_string(out, err->message, strlen(err->message));
    rc |= anv_buf_printf(out, ",\"type\":\"%s\",\"param\":", err->type);
    rc |= err->param[0] ? anv_buf_json_string(out, err->param, strlen(err->param)) : anv_buf_puts(out, "null");
    rc |= err->code ? anv_buf_printf(out, ",\"code\":\"%s\"}}", err->code) : anv_buf_puts(out, ",\"code\":null}}");
    return rc ? -1 : 0;
}

static int head(anv_buf_t *out, const anv_srv_meta_t *m, const char *object) {
    int rc =
        anv_buf_printf(out, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":", m->id, object, m->created);
    rc |= anv_buf_json_string(out, m->model, strlen(m->model));
    return rc ? -1 : 0;
}

static int usage(anv_buf_t *out, const anv_gen_result_t *res) {
    return anv_buf_printf(out, "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}",
                          res->prompt_tokens, res->completion_tokens, res->prompt_tokens + res->completion_tokens);
}

/* A token's text as a JSON string; a token whose bytes are not whole UTF-8 characters is written as
 * OpenAI writes it, "bytes:\\xNN..." (so that such tokens stay apart as top_logprobs keys). */
static int token_string(anv_buf_t *out, const anv_tokenizer_t *tok, uint32_t id, anv_buf_t *scratch) {
    scratch->len = 0;
    if (anv_tokenizer_decode(tok, &id, 1, scratch) != 0) return -1;
    if (anv_utf8_valid(scratch->data, scratch->len))
        return anv_buf_json_string(out, scratch->data ? scratch->data : "", scratch->len);
    int rc = anv_buf_puts(out, "\"bytes:");
    for (size_t i = 0; i < scratch->len; i++) rc |= anv_buf_printf(out, "\\\\x%02x", (unsigned char)scratch->data[i]);
    return rc | anv_buf_puts(out, "\"");
}

/* OpenAI's legacy completions logprobs object: tokens, token_logprobs (null for the first prompt token),
 * top_logprobs ({token: logprob}, null where token_logprobs is) and text_offset, for the echoed prompt's
 * tokens (echo) and the completion's. */
static int logprobs_json(anv_buf_t *out, const anv_srv_request_t *req, const anv_gen_logprobs_t *lp,
                         const anv_tokenizer_t *tok) {
    size_t first = req->echo ? (size_t)req->prompt_skip : 0;
    if (first > lp->n) first = lp->n;
    const anv_token_logprob_t *t = lp->items + first;
    size_t n = lp->n - first, offset = req->echo ? 0 : req->prompt_text.len;
    anv_buf_t s = {0};
    int rc = anv_buf_puts(out, "\"logprobs\":{\"tokens\":[");
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = anv_buf_puts(out, i ? "," : "") | token_string(out, tok, t[i].token, &s);
    rc |= anv_buf_puts(out, "],\"token_logprobs\":[");
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = isnan(t[i].logprob) ? anv_buf_puts(out, i ? ",null" : "null")
                                 : anv_buf_printf(out, "%s%.9g", i ? "," : "", t[i].logprob);
    rc |= anv_buf_puts(out, "],\"top_logprobs\":[");
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = anv_buf_puts(out, i ? "," : "");
        if (isnan(t[i].logprob)) {
            rc |= anv_buf_puts(out, "null");
            continue;
        }
        rc |= anv_buf_puts(out, "{");
        for (int k = 0; k < t[i].n_top && rc == 0; k++)
            rc = anv_buf_puts(out, k ? "," : "") | token_string(out, tok, t[i].top[k], &s) |
                 anv_buf_printf(out, ":%.9g", t[i].top_logprob[k]);
        rc |= anv_buf_puts(out, "}");
    }
    rc |= anv_buf_puts(out, "],\"text_offset\":[");
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = anv_buf_printf(out, "%s%zu", i ? "," : "", offset);
        s.len = 0;
        rc |= anv_tokenizer_decode(tok, &t[i].token, 1, &s);
        offset += s.len;
    }
    rc |= anv_buf_puts(out, "]},");
    anv_buf_free(&s);
    return rc ? -1 : 0;
}

int anv_srv_response_json(anv_buf_t *out, const anv_srv_meta_t *m, const anv_srv_request_t *req, const char *text,
                          size_t len, const anv_gen_result_t *res, const anv_gen_logprobs_t *lp,
                          const anv_tokenizer_t *tok) {
    int rc = head(out, m, req->chat ? "chat.completion" : "text_completion");
    if (req->chat) {
        rc |= anv_buf_puts(out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
        rc |= anv_buf_json_string(out, text, len);
        rc |= anv_buf_puts(out, "},");
    } else {
        rc |= anv_buf_puts(out, ",\"choices\":[{\"text\":");
        anv_buf_t all = {0};
        if (req->echo) { /* the prompt, then the completion */
            rc |= anv_buf_append(&all, req->prompt_text.data ? req->prompt_text.data : "", req->prompt_text.len);
            rc |= anv_buf_append(&all, text, len);
            rc |= anv_buf_json_string(out, all.data ? all.data : "", all.len);
        } else {
            rc |= anv_buf_json_string(out, text, len);
        }
        anv_buf_free(&all);
        rc |= anv_buf_puts(out, ",\"index\":0,");
    }
    rc |= req->logprobs >= 0 ? logprobs_json(out, req, lp, tok) : anv_buf_puts(out, "\"logprobs\":null,");
    rc |= anv_buf_printf(out, "\"finish_reason\":\"%s\"}],", anv_srv_finish_name(res->finish));
    rc |= usage(out, res);
    rc |= anv_buf_puts(out, "}");
    return rc ? -1 : 0;
}

int anv_srv_chunk_sse(anv_buf_t *out, const anv_srv_meta_t *m, const anv_srv_request_t *req, int role, const char *text,
                      size_t len, const char *finish) {
    int rc = anv_buf_puts(out, "data: ");
    rc |= head(out, m, req->chat ? "chat.completion.chunk" : "text_completion");
    if (req->chat) {
        rc |= anv_buf_puts(out, ",\"choices\":[{\"index\":0,\"delta\":{");
        if (role) rc |= anv_buf_puts(out, "\"role\":\"assistant\",\"content\":\"\"");
        if (len) {
            rc |= anv_buf_puts(out, "\"content\":");
            rc |= anv_buf_json_string(out, text, len);
        }
        rc |= anv_buf_puts(out, "},");
    } else {
        rc |= anv_buf_puts(out, ",\"choices\":[{\"text\":");
        rc |= anv_buf_json_string(out, text, len);
        rc |= anv_buf_puts(out, ",\"index\":0,");
    }
    rc |= finish ? anv_buf_printf(out, "\"logprobs\":null,\"finish_reason\":\"%s\"}]}\n\n", finish)
                 : anv_buf_puts(out, "\"logprobs\":null,\"finish_reason\":null}]}\n\n");
    return rc ? -1 : 0;
}

int anv_srv_usage_sse(anv_buf_t *out, const anv_srv_meta_t *m, const anv_srv_request_t *req,
                      const anv_gen_result_t *res) {
    int rc = anv_buf_puts(out, "data: ");
    rc |= head(out, m, req->chat ? "chat.completion.chunk" : "text_completion");
    rc |= anv_buf_puts(out, ",\"choices\":[],");
    rc |= usage(out, res);
    rc |= anv_buf_puts(out, "}\n\n");
    return rc ? -1 : 0;
}

int anv_srv_models_json(anv_buf_t *out, const char *model, long long created, int list) {
    int rc = list ? anv_buf_puts(out, "{\"object\":\"list\",\"data\":[") : 0;
    rc |= anv_buf_puts(out, "{\"id\":");
    rc |= anv_buf_json_string(out, model, strlen(model));
    rc |= anv_buf_printf(out, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"anvil\"}", created);
    rc |= list ? anv_buf_puts(out, "]}") : 0;
    return rc ? -1 : 0;
}

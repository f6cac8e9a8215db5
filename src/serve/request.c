/* Parsing and validation of OpenAI completion and chat requests into generation settings. */
#include "serve/serve_internal.h"

#include "anvil/json.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

int anv_srv_fail(anv_srv_error_t *err, int status, const char *type, const char *code, const char *param,
                 const char *fmt, ...) {
    err->status = status;
    err->type = type;
    err->code = code;
    snprintf(err->param, sizeof err->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

#define BAD(param, ...) anv_srv_fail(err, 400, "invalid_request_error", NULL, param, __VA_ARGS__)

/* Member `key`, NULL when absent or null. */
static const anv_json_t *field(const anv_json_t *obj, const char *key) {
    const anv_json_t *v = anv_json_get(obj, key);
    return v && v->type != ANV_JSON_NULL ? v : NULL;
}

static int get_number(const anv_json_t *obj, const char *key, double lo, double hi, double *out, anv_srv_error_t *err) {
    const anv_json_t *v = field(obj, key);
    if (!v) return 0;
    if (v->type != ANV_JSON_NUMBER) return BAD(key, "'%s' must be a number", key);
    if (!(v->number >= lo && v->number <= hi))
        return BAD(key, "'%s' must be between %g and %g, got %g", key, lo, hi, v->number);
    *out = v->number;
    return 0;
}

static int get_int(const anv_json_t *obj, const char *key, double lo, double hi, long long *out, anv_srv_error_t *err) {
    const anv_json_t *v = field(obj, key);
    if (!v) return 0;
    if (v->type != ANV_JSON_NUMBER || v->number != floor(v->number)) return BAD(key, "'%s' must be an integer", key);
    if (!(v->number >= lo && v->number <= hi))
        return BAD(key, "'%s' must be between %.0f and %.0f, got %.17g", key, lo, hi, v->number);
    *out = (long long)v->number;
    return 0;
}

static int get_bool(const anv_json_t *obj, const char *key, int *out, anv_srv_error_t *err) {
    const anv_json_t *v = field(obj, key);
    if (!v) return 0;
    if (v->type != ANV_JSON_BOOL) return BAD(key, "'%s' must be a boolean", key);
    *out = v->boolean;
    return 0;
}

static int add_stop(anv_srv_request_t *req, const char *s, size_t len, anv_srv_error_t *err) {
    if (len == 0) return BAD("stop", "stop strings must not be empty");
    if (len > ANV_SRV_MAX_STOP_LEN || memchr(s, 0, len))
        return BAD("stop", "a stop string must be at most %d bytes without NUL", ANV_SRV_MAX_STOP_LEN);
    if (req->gen.n_stop == ANV_GEN_MAX_STOP) return BAD("stop", "too many stop strings (at most 4)");
    char *dst = req->stop_text[req->gen.n_stop];
    memcpy(dst, s, len);
    dst[len] = 0;
    req->gen.stop[req->gen.n_stop++] = dst;
    return 0;
}

static int parse_stop(const anv_json_t *obj, anv_srv_request_t *req, anv_srv_error_t *err) {
    const anv_json_t *v = field(obj, "stop");
    if (!v) return 0;
    if (v->type == ANV_JSON_STRING) return add_stop(req, v->str, v->len, err);
    if (v->type != ANV_JSON_ARRAY) return BAD("stop", "'stop' must be a string or an array of strings");
    if (v->len > 4) return BAD("stop", "'stop' holds at most 4 strings, got %zu", v->len);
    for (size_t i = 0; i < v->len; i++) {
        if (v->items[i].type != ANV_JSON_STRING) return BAD("stop", "'stop' must be a string or an array of strings");
        if (add_stop(req, v->items[i].str, v->items[i].len, err) != 0) return -1;
    }
    return 0;
}

/* Sampling and length settings shared by both endpoints. */
static int parse_settings(const anv_json_t *o, const anv_srv_limits_t *lim, anv_srv_request_t *req,
                          anv_srv_error_t *err) {
    anv_gen_config_t *g = &req->gen;
    double temperature = 1, top_p = 1, min_p = 0, rep = 1, freq = 0, pres = 0;
    long long top_k = 0, n = 1, seed = -1, max_tokens = req->chat ? lim->max_tokens_limit : 16;
    int has_seed = field(o, "seed") != NULL;
    const char *max_key = req->chat && field(o, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if (get_number(o, "temperature", 0, 2, &temperature, err) || get_number(o, "top_p", 0, 1, &top_p, err) ||
        get_int(o, "top_k", 0, 1e9, &top_k, err) || get_number(o, "min_p", 0, 1, &min_p, err) ||
        get_number(o, "repetition_penalty", 1e-3, 1e3, &rep, err) ||
        get_number(o, "frequency_penalty", -2, 2, &freq, err) || get_number(o, "presence_penalty", -2, 2, &pres, err) ||
        get_int(o, "n", -1e18, 1e18, &n, err) || get_int(o, "seed", -9.2e18, 9.2e18, &seed, err) ||
        get_int(o, max_key, -1e18, 1e18, &max_tokens, err) || get_bool(o, "stream", &req->stream, err) ||
        parse_stop(o, req, err))
        return -1;
    if (n != 1) return BAD("n", "only n = 1 is supported, got %lld", n);
    if (top_p == 0) return BAD("top_p", "'top_p' must be greater than 0");
    if (max_tokens < 0) return BAD(max_key, "'%s' must be >= 0, got %lld", max_key, max_tokens);
    if (max_tokens > lim->max_tokens_limit)
        return BAD(max_key, "'%s' is %lld, more than this server's limit of %d", max_key, max_tokens,
                   lim->max_tokens_limit);
    const anv_json_t *so = field(o, "stream_options");
    if (so && so->type != ANV_JSON_OBJECT) return BAD("stream_options", "'stream_options' must be an object");
    if (so && get_bool(so, "include_usage", &req->include_usage, err) != 0) return -1;
    if (!has_seed) { /* unseeded requests differ from each other */
        static _Atomic uint64_t counter;
        uint64_t t = (uint64_t)(anv_now() * 1e9);
        seed = (long long)anv_hash64(&t, sizeof t, ++counter);
    }
    g->sampler.temperature = (float)temperature;
    g->sampler.top_p = (float)top_p;
    g->sampler.top_k = (int)top_k;
    g->sampler.seed = (uint64_t)seed;
    g->min_p = (float)min_p;
    g->repetition_penalty = (float)rep;
    g->frequency_penalty = (float)freq;
    g->presence_penalty = (float)pres;
    g->max_tokens = (int)max_tokens;
    return 0;
}

/* Completion prompt: a string, an array of one string, an array of token ids, or [[ids]]. */
static int parse_prompt(const anv_json_t *o, const anv_srv_limits_t *lim, anv_srv_request_t *req,
                        anv_srv_error_t *err) {
    const anv_json_t *v = field(o, "prompt");
    if (!v) return BAD("prompt", "'prompt' is required");
    if (v->type == ANV_JSON_ARRAY && v->len == 1 && v->items[0].type != ANV_JSON_NUMBER) v = &v->items[0];
    if (v->type == ANV_JSON_STRING) return anv_buf_append(&req->prompt_text, v->str, v->len);
    if (v->type != ANV_JSON_ARRAY) return BAD("prompt", "'prompt' must be a string or an array of token ids");
    size_t vocab = anv_tokenizer_vocab_size(lim->tok);
    for (size_t i = 0; i < v->len; i++) {
        const anv_json_t *t = &v->items[i];
        if (t->type != ANV_JSON_NUMBER || t->number != floor(t->number) || t->number < 0 || t->number >= (double)vocab)
            return BAD("prompt",
                       "'prompt' must be a string or one array of token ids below %zu (one prompt per request)", vocab);
        if (anv_tokens_push(&req->prompt, (uint32_t)t->number) != 0) return -1;
    }
    return 0;
}

/* "logprobs": N alternatives per token for /v1/completions, as OpenAI's legacy API (null: none). */
static int parse_logprobs(const anv_json_t *o, anv_srv_request_t *req, anv_srv_error_t *err) {
    long long n = -1;
    if (get_int(o, "logprobs", 0, ANV_GEN_MAX_TOP, &n, err) != 0) return -1;
    if (n >= 0 && req->stream) return BAD("logprobs", "'logprobs' is not served with 'stream'");
    req->logprobs = (int)n;
    return 0;
}

/* Chat messages: with the run's chat template (lim->chat) rendered into token ids, ending with what
 * opens the assistant's reply and stopping at what closes it; without one, the text format documented
 * in serve.h. */
static int parse_messages(const anv_json_t *o, const anv_srv_limits_t *lim, anv_srv_request_t *req,
                          anv_srv_error_t *err) {
    const anv_json_t *v = field(o, "messages");
    if (!v) return BAD("messages", "'messages' is required");
    if (v->type != ANV_JSON_ARRAY || v->len == 0) return BAD("messages", "'messages' must be a non-empty array");
    anv_buf_t *b = &req->prompt_text, texts = {0};
    size_t n = v->len, *offs = anv_calloc(2 * n * sizeof *offs, "chat messages"), *lens = offs + n;
    const char **roles = anv_calloc(2 * n * sizeof *roles, "chat messages"), **ptrs = roles + n;
    int rc = offs && roles ? 0 : -1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const anv_json_t *m = &v->items[i], *role = anv_json_get(m, "role"), *content = field(m, "content");
        if (m->type != ANV_JSON_OBJECT || !role || role->type != ANV_JSON_STRING) {
            rc = BAD("messages", "messages[%zu] must be an object with a string 'role'", i);
            break;
        }
        roles[i] = !strcmp(role->str, "system") || !strcmp(role->str, "developer") ? "system"
                   : !strcmp(role->str, "user")                                    ? "user"
                   : !strcmp(role->str, "assistant")                               ? "assistant"
                                                                                   : NULL;
        if (!roles[i]) {
            rc = BAD("messages", "messages[%zu]: unsupported role '%s'", i, role->str);
            break;
        }
        offs[i] = texts.len;
        if (content && content->type == ANV_JSON_STRING) {
            rc = anv_buf_append(&texts, content->str, content->len);
        } else if (content && content->type == ANV_JSON_ARRAY) { /* content parts: text only */
            for (size_t k = 0; k < content->len && rc == 0; k++) {
                const anv_json_t *part = &content->items[k], *type = anv_json_get(part, "type"),
                                 *text = anv_json_get(part, "text");
                if (!type || type->type != ANV_JSON_STRING || strcmp(type->str, "text") || !text ||
                    text->type != ANV_JSON_STRING)
                    rc = BAD("messages", "messages[%zu].content[%zu]: only text parts are supported", i, k);
                else
                    rc = anv_buf_append(&texts, text->str, text->len);
            }
        } else if (content || strcmp(roles[i], "assistant")) {
            rc = BAD("messages", "messages[%zu].content must be a string or an array of text parts", i);
        }
        lens[i] = texts.len - offs[i];
    }
    for (size_t i = 0; i < n && rc == 0; i++) ptrs[i] = texts.data ? texts.data + offs[i] : "";
    if (rc == 0 && lim->chat) {
        rc = anv_chat_render_prompt(lim->chat, lim->tok, roles, ptrs, lens, n, &req->prompt);
        size_t stop_len = 0;
        const char *stop = rc == 0 ? anv_chat_template_stop(lim->chat, lim->tok, &stop_len) : NULL;
        if (rc == 0 && req->gen.n_stop + 1 > ANV_GEN_MAX_STOP) rc = BAD("stop", "too many stop strings");
        if (rc == 0) rc = add_stop(req, stop, stop_len, err);
    } else if (rc == 0) {
        static const char *const labels[] = {"System", "User", "Assistant"};
        for (size_t i = 0; i < n && rc == 0; i++) {
            const char *label = labels[roles[i][0] == 's' ? 0 : roles[i][0] == 'u' ? 1 : 2];
            rc = anv_buf_printf(b, "%s: %.*s\n", label, (int)lens[i], ptrs[i]);
        }
        if (rc == 0) rc = anv_buf_puts(b, "Assistant:");
        if (rc == 0 && req->gen.n_stop + 2 > ANV_GEN_MAX_STOP) rc = BAD("stop", "too many stop strings");
        if (rc == 0) rc = add_stop(req, "\nUser:", 6, err) != 0 || add_stop(req, "\nSystem:", 8, err) != 0 ? -1 : 0;
    }
    anv_free(offs);
    anv_free(roles);
    anv_buf_free(&texts);
    return rc;
}

static int parse_object(const anv_json_t *o, const anv_srv_limits_t *lim, anv_srv_request_t *req,
                        anv_srv_error_t *err) {
    if (o->type != ANV_JSON_OBJECT) return BAD(NULL, "the request body must be a JSON object");
    if (parse_settings(o, lim, req, err) != 0) return -1;
    if (req->chat) {
        const anv_json_t *lp = field(o, "logprobs");
        if (lp && lp->type == ANV_JSON_BOOL && lp->boolean)
            return BAD("logprobs", "log-probabilities are served on /v1/completions");
        if (parse_messages(o, lim, req, err) != 0) return -1;
    } else if (get_bool(o, "echo", &req->echo, err) != 0 || parse_prompt(o, lim, req, err) != 0 ||
               parse_logprobs(o, req, err) != 0) {
        return -1;
    }
    if (req->prompt.len) { /* token ids: their text is the echo */
        if (anv_tokenizer_decode(lim->tok, req->prompt.ids, req->prompt.len, &req->prompt_text) != 0) return -1;
    } else if (anv_generate_prompt(lim->tok, req->prompt_text.data ? req->prompt_text.data : "", req->prompt_text.len,
                                   &req->prompt) != 0) {
        return -1;
    } else {
        req->prompt_skip = anv_tokenizer_eot(lim->tok) >= 0;
    }
    if (req->prompt.len == 0) return BAD(req->chat ? "messages" : "prompt", "the prompt is empty");
    if (req->prompt.len > (size_t)lim->block_size)
        return anv_srv_fail(err, 400, "invalid_request_error", "context_length_exceeded",
                            req->chat ? "messages" : "prompt",
                            "the prompt is %zu tokens long, more than this model's context of %d tokens",
                            req->prompt.len, lim->block_size);
    return 0;
}

int anv_srv_parse(const char *body, size_t len, int chat, const anv_srv_limits_t *lim, anv_srv_request_t *req,
                  anv_srv_error_t *err) {
    memset(req, 0, sizeof *req);
    memset(err, 0, sizeof *err);
    req->chat = chat;
    req->logprobs = -1;
    req->gen = anv_gen_config_default();
    anv_json_doc_t *doc;
    if (anv_json_parse(body, len, "request body", &doc) != 0) return BAD(NULL, "%s", anv_last_error());
    int rc = parse_object(anv_json_root(doc), lim, req, err);
    if (rc != 0 && err->status == 0) /* out of memory or a tokenizer failure */
        anv_srv_fail(err, 500, "server_error", NULL, NULL, "%s", anv_last_error());
    anv_json_free(doc);
    return rc;
}

void anv_srv_request_free(anv_srv_request_t *req) {
    anv_tokens_free(&req->prompt);
    anv_buf_free(&req->prompt_text);
}

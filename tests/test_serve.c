/* `anvil serve` without HTTP: request parsing (defaults, the chat template, stop strings, limits, errors
 * with their parameter) and the exact JSON of responses, stream chunks and errors. */
#include "check.h"
#include "serve/serve_internal.h"

#include <string.h>

static anv_tokenizer_t *tok;
static const anv_srv_limits_t *lim;

static int parse(const char *body, int chat, anv_srv_request_t *req, anv_srv_error_t *err) {
    return anv_srv_parse(body, strlen(body), chat, lim, req, err);
}

/* Parses a bad body: status 400 (or `status`) naming `param`. */
static void refused(const char *body, int chat, int status, const char *param) {
    anv_srv_request_t req;
    anv_srv_error_t err;
    int rc = parse(body, chat, &req, &err);
    printf("refused %-60.60s -> %d %s: %s\n", body, err.status, err.param, err.message);
    CHECK(rc != 0 && err.status == status && !strcmp(err.param, param) && err.message[0],
          "%s: rc %d status %d param '%s'", body, rc, err.status, err.param);
    anv_srv_request_free(&req);
}

static void test_completion(void) {
    anv_srv_request_t req;
    anv_srv_error_t err;
    CHECK(parse("{\"prompt\": \"hi\", \"unknown\": {\"a\": [1]}, \"top_p\": null}", 0, &req, &err) == 0, "%s",
          err.message);
    printf("defaults: max_tokens %d, temperature %g, top_p %g, top_k %d, stream %d, prompt ids %zu\n",
           req.gen.max_tokens, req.gen.sampler.temperature, req.gen.sampler.top_p, req.gen.sampler.top_k, req.stream,
           req.prompt.len);
    CHECK(req.gen.max_tokens == 16 && req.gen.sampler.temperature == 1 && req.gen.sampler.top_p == 1 &&
              req.gen.n_stop == 0 && !req.stream && !req.echo,
          "OpenAI's defaults; unknown fields and nulls ignored");
    CHECK(req.prompt.len == 3 && req.prompt.ids[0] == 256 && req.prompt.ids[1] == 'h' && req.prompt.ids[2] == 'i',
          "prompt ids: end-of-text, then the text");
    anv_srv_request_free(&req);

    CHECK(
        parse(
            "{\"prompt\": [\"ab\"], \"max_tokens\": 0, \"temperature\": 0, \"stop\": \"\\n\", \"seed\": -3, "
            "\"min_p\": 0.1, \"repetition_penalty\": 1.3, \"frequency_penalty\": -2, \"presence_penalty\": 2, "
            "\"top_k\": 7, \"stream\": true, \"echo\": true, \"n\": 1, \"stream_options\": {\"include_usage\": true}}",
            0, &req, &err) == 0,
        "%s", err.message);
    CHECK(req.gen.max_tokens == 0 && req.gen.sampler.temperature == 0 && req.gen.n_stop == 1 &&
              !strcmp(req.gen.stop[0], "\n") && req.gen.sampler.seed == (uint64_t)-3 && req.gen.min_p == 0.1f &&
              req.gen.repetition_penalty == 1.3f && req.gen.frequency_penalty == -2 && req.gen.presence_penalty == 2 &&
              req.gen.sampler.top_k == 7 && req.stream && req.echo && req.include_usage && req.prompt.len == 3,
          "every setting read");
    anv_srv_request_free(&req);

    CHECK(parse("{\"prompt\": [1, 2, 3]}", 0, &req, &err) == 0 && req.prompt.len == 3 && req.prompt.ids[0] == 1 &&
              req.prompt_text.len == 3 && !memcmp(req.prompt_text.data, "\1\2\3", 3),
          "token-id prompt fed as is, decoded for echo");
    anv_srv_request_free(&req);

    /* Unseeded requests get different seeds. */
    anv_srv_request_t a, b;
    parse("{\"prompt\": \"x\"}", 0, &a, &err);
    parse("{\"prompt\": \"x\"}", 0, &b, &err);
    CHECK(a.gen.sampler.seed != b.gen.sampler.seed, "unseeded requests differ");
    anv_srv_request_free(&a);
    anv_srv_request_free(&b);
}

static void test_chat(void) {
    anv_srv_request_t req;
    anv_srv_error_t err;
    CHECK(parse("{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": "
                "[{\"type\": \"text\", \"text\": \"Hi\"}, {\"type\": \"text\", \"text\": \"!\"}]}, {\"role\": "
                "\"assistant\", \"content\": \"Hello.\"}, {\"role\": \"developer\", \"content\": \"x\"}], "
                "\"stop\": [\"END\"], \"max_completion_tokens\": 9}",
                1, &req, &err) == 0,
          "%s", err.message);
    const char *want = "System: Be brief.\nUser: Hi!\nAssistant: Hello.\nSystem: x\nAssistant:";
    printf("chat template: \"%s\"\n", req.prompt_text.data);
    CHECK(!strcmp(req.prompt_text.data, want), "the documented chat template");
    CHECK(req.gen.n_stop == 3 && !strcmp(req.gen.stop[0], "END") && !strcmp(req.gen.stop[1], "\nUser:") &&
              !strcmp(req.gen.stop[2], "\nSystem:"),
          "the request's stop strings, then the template's");
    CHECK(req.gen.max_tokens == 9 && req.prompt.len == 1 + strlen(want), "max_completion_tokens; bytes as ids");
    anv_srv_request_free(&req);
    CHECK(parse("{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}]}", 1, &req, &err) == 0 &&
              req.gen.max_tokens == lim->max_tokens_limit,
          "chat without max_tokens: the server's limit");
    anv_srv_request_free(&req);
}

static void test_refused(void) {
    refused("{\"prompt\": \"a\"", 0, 400, "");
    refused("[]", 0, 400, "");
    refused("{}", 0, 400, "prompt");
    refused("{\"prompt\": true}", 0, 400, "prompt");
    refused("{\"prompt\": [\"a\", \"b\"]}", 0, 400, "prompt");
    refused("{\"prompt\": [1.5]}", 0, 400, "prompt");
    refused("{\"prompt\": [257]}", 0, 400, "prompt");
    refused("{\"prompt\": \"a\", \"max_tokens\": 101}", 0, 400, "max_tokens");
    refused("{\"prompt\": \"a\", \"max_tokens\": -1}", 0, 400, "max_tokens");
    refused("{\"prompt\": \"a\", \"temperature\": 2.5}", 0, 400, "temperature");
    refused("{\"prompt\": \"a\", \"top_p\": 0}", 0, 400, "top_p");
    refused("{\"prompt\": \"a\", \"top_k\": -1}", 0, 400, "top_k");
    refused("{\"prompt\": \"a\", \"min_p\": \"x\"}", 0, 400, "min_p");
    refused("{\"prompt\": \"a\", \"repetition_penalty\": 0}", 0, 400, "repetition_penalty");
    refused("{\"prompt\": \"a\", \"n\": 3}", 0, 400, "n");
    refused("{\"prompt\": \"a\", \"stop\": \"\"}", 0, 400, "stop");
    refused("{\"prompt\": \"a\", \"stop\": [\"1\", \"2\", \"3\", \"4\", \"5\"]}", 0, 400, "stop");
    refused("{\"prompt\": \"a\", \"stream\": 1}", 0, 400, "stream");
    refused("{\"prompt\": \"a\", \"stream_options\": 1}", 0, 400, "stream_options");
    char lng[200];
    snprintf(lng, sizeof lng, "{\"prompt\": \"%0100d\"}", 0); /* 1 + 100 tokens > 100 */
    refused(lng, 0, 400, "prompt");
    refused("{\"messages\": {}}", 1, 400, "messages");
    refused("{\"messages\": [{\"content\": \"a\"}]}", 1, 400, "messages");
    refused("{\"messages\": [{\"role\": \"tool\", \"content\": \"a\"}]}", 1, 400, "messages");
    refused("{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}", 1, 400, "messages");
    refused("{\"messages\": [{\"role\": \"user\"}]}", 1, 400, "messages");
}

static void test_json(void) {
    anv_srv_request_t req;
    anv_srv_error_t err;
    parse("{\"prompt\": \"P\", \"echo\": true}", 0, &req, &err);
    anv_srv_meta_t meta = {"cmpl-1", 1700000000, "m\"odel"};
    anv_gen_result_t res = {2, 1, ANV_GEN_LENGTH};
    anv_buf_t b = {0};
    anv_srv_response_json(&b, &meta, &req, "x\n", 2, &res, NULL, NULL);
    const char *want =
        "{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1700000000,\"model\":\"m\\\"odel\","
        "\"choices\":[{\"text\":\"Px\\n\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"length\"}],"
        "\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1,\"total_tokens\":3}}";
    printf("completion JSON: %s\n", b.data);
    CHECK(!strcmp(b.data, want), "completion response (with echo)");
    b.len = 0;
    anv_srv_chunk_sse(&b, &meta, &req, 0, "y", 1, NULL);
    CHECK(!strcmp(b.data, "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1700000000,\"model\":"
                          "\"m\\\"odel\",\"choices\":[{\"text\":\"y\",\"index\":0,\"logprobs\":null,\"finish_reason\":"
                          "null}]}\n\n"),
          "completion chunk: %s", b.data);
    anv_srv_request_free(&req);

    parse("{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}]}", 1, &req, &err);
    anv_srv_meta_t cm = {"chatcmpl-1", 5, "m"};
    b.len = 0;
    anv_srv_chunk_sse(&b, &cm, &req, 1, "", 0, NULL);
    anv_srv_chunk_sse(&b, &cm, &req, 0, "", 0, "stop");
    anv_srv_usage_sse(&b, &cm, &req, &res);
    const char *chunks =
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\",\"choices\":"
        "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}"
        "\n\n"
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\",\"choices\":"
        "[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n"
        "data: "
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\",\"choices\":[],"
        "\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1,\"total_tokens\":3}}\n\n";
    CHECK(!strcmp(b.data, chunks), "chat chunks: role, finish, usage: %s", b.data);
    anv_srv_request_free(&req);

    b.len = 0;
    anv_srv_fail(&err, 400, "invalid_request_error", NULL, "n", "only n = %d", 1);
    anv_srv_error_json(&b, &err);
    CHECK(!strcmp(b.data, "{\"error\":{\"message\":\"only n = 1\",\"type\":\"invalid_request_error\",\"param\":\"n\","
                          "\"code\":null}}"),
          "error JSON: %s", b.data);
    b.len = 0;
    anv_srv_models_json(&b, "tiny", 7, 1);
    CHECK(!strcmp(b.data, "{\"object\":\"list\",\"data\":[{\"id\":\"tiny\",\"object\":\"model\",\"created\":7,"
                          "\"owned_by\":\"anvil\"}]}"),
          "models JSON: %s", b.data);
    anv_buf_free(&b);

    anv_srv_meta_t m1, m2;
    anv_srv_meta_init(&m1, 1, "m");
    anv_srv_meta_init(&m2, 0, "m");
    CHECK(!strncmp(m1.id, "chatcmpl-", 9) && !strncmp(m2.id, "cmpl-", 5) && strcmp(m1.id + 9, m2.id + 5), "ids: %s, %s",
          m1.id, m2.id);
}

int main(void) {
    if (anv_tokenizer_create_bytes(&tok) != 0) return 1;
    anv_srv_limits_t l = {tok, 100, 100, NULL};
    lim = &l;
    test_completion();
    test_chat();
    test_refused();
    test_json();
    anv_tokenizer_free(tok);
    return check_done("test_serve");
}

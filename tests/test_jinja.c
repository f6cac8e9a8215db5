/* The chat-template engine against Hugging Face's own (@huggingface/jinja): tests/golden/jinja/expected.json,
 * written by tools/llama_check/jinja_golden.mjs, holds what that engine renders for every template there
 * (written in the styles of real model templates: ChatML, header-style with bos and trim, alternation
 * checks with raise_exception, role renaming, trim_blocks/lstrip_blocks layouts, and the expression
 * subset) with each conversation, with and without the generation prompt; anvil must render the same
 * bytes, and fail where it raised. Then templates anvil must refuse, naming the line. */
#include "anvil/jinja.h"
#include "anvil/json.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

static char *read_golden(const char *name, size_t *len) {
    char path[1024], *data;
    snprintf(path, sizeof path, "%s/tests/golden/jinja/%s", ANVIL_SOURCE_DIR, name);
    if (anv_read_file(path, &data, len) != 0) {
        fprintf(stderr, "%s\n", anv_last_error());
        exit(1);
    }
    return data;
}

/* The messages of conversation k. */
static size_t messages_of(const anv_json_t *conv, anv_jinja_message_t *m, size_t max) {
    size_t n = 0;
    for (size_t i = 0; i < conv->len && n < max; i++, n++) {
        m[n].role = anv_json_get(&conv->items[i], "role")->str;
        const anv_json_t *c = anv_json_get(&conv->items[i], "content");
        m[n].content = c->str;
        m[n].content_len = c->len;
    }
    return n;
}

static void test_against_huggingface(void) {
    size_t len;
    char *text = read_golden("expected.json", &len);
    char *convs_text = read_golden("conversations.json", &len);
    anv_json_doc_t *doc, *convs;
    CHECK(anv_json_parse(text, strlen(text), "expected.json", &doc) == 0, "%s", anv_last_error());
    CHECK(anv_json_parse(convs_text, strlen(convs_text), "conversations.json", &convs) == 0, "%s", anv_last_error());
    const anv_json_t *cases = anv_json_root(doc), *conversations = anv_json_root(convs);
    int same = 0, raised = 0;
    for (size_t k = 0; k < cases->len; k++) {
        const anv_json_t *c = &cases->items[k];
        const char *name = anv_json_get(c, "template")->str;
        size_t tlen;
        char *src = read_golden(name, &tlen);
        anv_jinja_t *t;
        CHECK(anv_jinja_parse(src, tlen, name, &t) == 0, "%s", anv_last_error());
        anv_jinja_message_t m[16];
        const anv_json_t *conv = &conversations->items[(size_t)anv_json_get(c, "conversation")->number];
        anv_jinja_chat_t chat = {m, messages_of(conv, m, 16), anv_json_get(c, "add_generation_prompt")->boolean, "<s>",
                                 "</s>"};
        anv_buf_t out = {0};
        int rc = t ? anv_jinja_render(t, &chat, &out) : -1;
        const anv_json_t *want = anv_json_get(c, "output");
        if (!want) {
            CHECK(rc != 0, "%s, conversation %zu: Hugging Face's engine raised, anvil rendered '%.*s'", name,
                  (size_t)anv_json_get(c, "conversation")->number, (int)out.len, out.data);
            if (rc != 0) printf("  %-18s raises as Hugging Face's does: %s\n", name, anv_last_error());
            raised += rc != 0;
        } else {
            int ok = rc == 0 && out.len == want->len && !memcmp(out.data, want->str, out.len);
            CHECK(ok, "%s, conversation %zu, generation prompt %d: anvil '%.*s' (%s), Hugging Face '%s'", name,
                  (size_t)anv_json_get(c, "conversation")->number, chat.add_generation_prompt, (int)out.len,
                  out.data ? out.data : "", rc ? anv_last_error() : "ok", want->str);
            same += ok;
        }
        anv_buf_free(&out);
        anv_jinja_free(t);
        anv_free(src);
    }
    printf("%zu renderings: %d byte-identical to Hugging Face's engine, %d raising as it does\n", cases->len, same,
           raised);
    anv_json_free(doc);
    anv_json_free(convs);
    anv_free(text);
    anv_free(convs_text);
}

static void expect_refused(const char *src, const char *needle) {
    anv_jinja_t *t = NULL;
    int rc = anv_jinja_parse(src, strlen(src), "bad.jinja", &t);
    anv_jinja_message_t m = {"user", "hi", 2};
    anv_jinja_chat_t chat = {&m, 1, 1, "<s>", "</s>"};
    anv_buf_t out = {0};
    if (rc == 0) rc = anv_jinja_render(t, &chat, &out);
    CHECK(rc != 0 && strstr(anv_last_error(), needle), "'%s': want an error with '%s', got %s", src, needle,
          rc ? anv_last_error() : "success");
    if (rc != 0) printf("  refused: %s\n", anv_last_error());
    anv_buf_free(&out);
    anv_jinja_free(t);
}

static void test_refused(void) {
    expect_refused("{% for m in messages %}{{ m.content }}", "no {% endfor %}");
    expect_refused("ok\n{% macro f() %}{% endmacro %}", "bad.jinja:2: 'macro' is not supported");
    expect_refused("{{ messages | tojson }}", "the filter 'tojson' is not supported");
    expect_refused("\n\n{{ raise_exception('no ' + messages[0].role) }}", "bad.jinja:3: the template raised: no user");
    expect_refused("{{ 'a' + 1 }}", "an operation on a string and an integer");
    expect_refused("{{ messages[5] }}", "index out of range");
    expect_refused("{{ nothing.here }}", "an undefined value has no 'here'");
    expect_refused("{{ 'unclosed }}", "a string is not closed");
    expect_refused("{{ 1.5 }}", "floating-point");
    expect_refused("{% if x %}a{% else %}b", "no {% endif %}");
    expect_refused("{{ x @ y }}", "unexpected character '@'");
    char deep[4096] = "{{ ";
    for (int i = 0; i < 1000; i++) strcat(deep, "(");
    expect_refused(deep, "nested too deeply");
    memset(deep, 0, sizeof deep);
    for (int i = 0; i < 300; i++) strcat(deep, "{% if x %}");
    expect_refused(deep, "nested too deeply");
}

int main(void) {
    test_against_huggingface();
    test_refused();
    return check_done("test_jinja");
}

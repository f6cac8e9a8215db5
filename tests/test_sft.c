/* Fine-tuning examples: what each chat template renders and which tokens it trains (checked by
 * decoding them, with a byte-level tokenizer that has the templates' markers as special tokens), the
 * errors for bad lines, truncation, and the rows the loader makes of a prepared directory. */
#include "anvil/loader.h"
#include "anvil/sft.h"
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static anv_tokenizer_t *tok;
static char dir[256];

/* The decoded text of every token (all = 1) or of the trained ones only. */
static void decoded(const anv_sft_example_t *e, int all, anv_buf_t *out) {
    out->len = 0;
    for (size_t i = 0; i < e->len; i++)
        if (all || e->trained[i]) anv_tokenizer_decode(tok, &e->ids[i], 1, out);
    anv_buf_append(out, "", 1);
}

static void expect(const char *chat, int on_prompt, const char *json, const char *all, const char *trained) {
    anv_sft_opts_t o = {tok, anv_chat_template_builtin(chat), 1000, on_prompt};
    anv_sft_example_t e = {0};
    anv_buf_t b = {0};
    int rc = anv_sft_render(&o, json, strlen(json), "t.jsonl:1", &e);
    CHECK(rc == 0, "%s: %s", chat, anv_last_error());
    decoded(&e, 1, &b);
    CHECK(rc == 0 && !strcmp(b.data, all), "%s renders '%s', want '%s'", chat, b.data, all);
    decoded(&e, 0, &b);
    CHECK(rc == 0 && !strcmp(b.data, trained), "%s trains on '%s', want '%s'", chat, b.data, trained);
    printf("%-7s%s trains on '%s'\n", chat, on_prompt ? " (all)" : "", b.data);
    anv_buf_free(&b);
    anv_sft_example_free(&e);
}

static void test_templates(void) {
    const char *conv = "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", "
                       "\"content\": \"Hi?\"}, {\"role\": \"assistant\", \"content\": \"Hello.\"}, {\"role\": "
                       "\"user\", \"content\": \" More \"}, {\"role\": \"assistant\", \"content\": \"Bye.\"}]}";
    expect(
        "chatml", 0, conv,
        "<|endoftext|><|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n"
        "Hello.<|im_end|>\n<|im_start|>user\n More <|im_end|>\n<|im_start|>assistant\nBye.<|im_end|>\n",
        "Hello.<|im_end|>Bye.<|im_end|>");
    expect("llama3", 0, conv,
           "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nHi?<|eot_id|><|start_header_id|>assistant<|end_header_id|>"
           "\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMore<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\nBye.<|eot_id|>",
           "Hello.<|eot_id|>Bye.<|eot_id|>");
    expect("plain", 0, conv, "<|endoftext|>Be brief.Hi?Hello.<|endoftext|> More Bye.<|endoftext|>",
           "Hello.<|endoftext|>Bye.<|endoftext|>");
    const char *pc = "{\"prompt\": \"2+2=\", \"completion\": \"4\"}";
    expect("plain", 0, pc, "<|endoftext|>2+2=4<|endoftext|>", "4<|endoftext|>");
    expect("plain", 1, pc, "<|endoftext|>2+2=4<|endoftext|>", "<|endoftext|>2+2=4<|endoftext|>");
    expect("chatml", 0, pc, "<|endoftext|><|im_start|>user\n2+2=<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n",
           "4<|im_end|>");

    /* markers: one special token each in the template, plain text inside a message */
    anv_sft_opts_t o = {tok, anv_chat_template_builtin("chatml"), 1000, 0};
    anv_sft_example_t e = {0};
    const char *inj = "{\"prompt\": \"<|im_end|>\", \"completion\": \"ok\"}";
    CHECK(anv_sft_render(&o, inj, strlen(inj), "t", &e) == 0, "%s", anv_last_error());
    uint32_t end = anv_tokenizer_special(tok, 2);
    int specials = 0;
    for (size_t i = 0; i < e.len; i++) specials += e.ids[i] == end;
    CHECK(specials == 2, "<|im_end|> is a special token twice (after each turn), text in the prompt: %d", specials);
    anv_sft_example_free(&e);
    CHECK(!anv_chat_template_builtin("jinja") && strstr(anv_last_error(), "chatml"), "unknown template");

    /* a served conversation: the turns, then what opens the reply; it stops at what closes one */
    const char *roles[] = {"system", "user"}, *texts[] = {"S", "Q"};
    size_t lens[] = {1, 1};
    anv_tokens_t p = {0};
    anv_buf_t b = {0};
    CHECK(anv_chat_render_prompt(o.chat, tok, roles, texts, lens, 2, &p) == 0, "%s", anv_last_error());
    anv_tokenizer_decode(tok, p.ids, p.len, &b);
    anv_buf_append(&b, "", 1);
    CHECK(!strcmp(b.data, "<|endoftext|><|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n"
                          "<|im_start|>assistant\n"),
          "prompt: '%s'", b.data);
    size_t n1, n2;
    const char *s1 = anv_chat_template_stop(o.chat, tok, &n1),
               *s2 = anv_chat_template_stop(anv_chat_template_builtin("plain"), tok, &n2);
    CHECK(n1 == 10 && !memcmp(s1, "<|im_end|>", 10) && n2 == 13 && !memcmp(s2, "<|endoftext|>", 13), "stop markers");
    const char *bad[] = {"robot"};
    p.len = 0;
    CHECK(anv_chat_render_prompt(o.chat, tok, bad, texts, lens, 1, &p) != 0 && strstr(anv_last_error(), "robot"),
          "unknown role in a served conversation");
    anv_tokens_free(&p);
    anv_buf_free(&b);
}

static void expect_error(const char *json, const char *needle) {
    anv_sft_opts_t o = {tok, anv_chat_template_builtin("chatml"), 1000, 0};
    anv_sft_example_t e = {0};
    int rc = anv_sft_render(&o, json, strlen(json), "data.jsonl:7", &e);
    CHECK(rc != 0 && strstr(anv_last_error(), needle) && strstr(anv_last_error(), "data.jsonl:7"),
          "'%s': got '%s', want '%s'", json, rc ? anv_last_error() : "success", needle);
    anv_sft_example_free(&e);
}

static void test_errors(void) {
    expect_error("{\"messages\": [{\"role\": \"bot\", \"content\": \"x\"}]}", "unknown role \"bot\"");
    expect_error("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}", "without an assistant turn");
    expect_error("{\"messages\": [{\"role\": \"assistant\", \"content\": \"\"}]}", "empty assistant turn");
    expect_error("{\"messages\": [{\"role\": \"user\"}]}", "no \"content\"");
    expect_error("{\"messages\": {}}", "not an array");
    expect_error("{\"prompt\": \"a\", \"completion\": \"\"}", "empty completion");
    expect_error("{\"prompt\": \"a\", \"completion\": 3}", "not a string");
    expect_error("{\"text\": \"a\"}", "neither \"messages\"");
    expect_error("[1]", "not an object");
    expect_error("{\"prompt\": ", "data.jsonl:7");
}

static void put_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) fputs(text, f), fclose(f);
}

static void put(const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) fputs(text, f), fclose(f);
}

/* A template file (Jinja) renders and marks an example as a built-in template does when it is that
 * template's Jinja form: the same token ids; the same trained tokens but the whitespace that ends a reply
 * (a file's replies are found by rendering, and their trailing whitespace is left untrained). */
static void expect_file_like_builtin(const char *chat, const char *json) {
    const anv_chat_template_t *builtin = anv_chat_template_builtin(chat), *file = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/%s.jinja", dir, chat);
    put_text(path, anv_chat_template_jinja(builtin));
    CHECK(anv_chat_template_open(path, tok, &file) == 0, "%s", anv_last_error());
    if (!file) return;
    anv_sft_example_t a = {0}, b = {0};
    anv_sft_opts_t ob = {tok, builtin, 1000, 0}, of = {tok, file, 1000, 0};
    CHECK(anv_sft_render(&ob, json, strlen(json), "t", &a) == 0 &&
              anv_sft_render(&of, json, strlen(json), "t", &b) == 0,
          "%s", anv_last_error());
    int same_ids = a.len == b.len && !memcmp(a.ids, b.ids, a.len * sizeof *a.ids), same_flags = same_ids;
    for (size_t i = 0; same_ids && i < a.len; i++) {
        size_t n;
        const char *t = anv_tokenizer_token_bytes(tok, a.ids[i], &n);
        int trailing_space = n == 1 && strchr(" \n", t[0]) && a.trained[i] && (i + 1 == a.len || !a.trained[i + 1]);
        same_flags &= a.trained[i] == b.trained[i] || (trailing_space && !b.trained[i]);
    }
    size_t stop_b, stop_f;
    const char *sb = anv_chat_template_stop(builtin, tok, &stop_b), *sf = anv_chat_template_stop(file, tok, &stop_f);
    printf("%s as a file: %zu tokens, ids %s, trained tokens %s, stop '%.*s'\n", chat, b.len,
           same_ids ? "equal" : "DIFFER", same_flags ? "equal" : "DIFFER", (int)stop_f, sf);
    CHECK(same_ids && same_flags, "%s as a template file renders or marks otherwise", chat);
    CHECK(stop_b == stop_f && !memcmp(sb, sf, stop_b), "%s as a file: stop '%.*s'", chat, (int)stop_f, sf);
    /* a served conversation's prompt: the same tokens */
    const char *roles[] = {"system", "user"}, *texts[] = {"S", "Q?"};
    size_t lens[] = {1, 2};
    anv_tokens_t pa = {0}, pb = {0};
    CHECK(anv_chat_render_prompt(builtin, tok, roles, texts, lens, 2, &pa) == 0 &&
              anv_chat_render_prompt(file, tok, roles, texts, lens, 2, &pb) == 0 && pa.len == pb.len &&
              !memcmp(pa.ids, pb.ids, pa.len * sizeof *pa.ids),
          "%s as a file: another prompt", chat);
    anv_tokens_free(&pa), anv_tokens_free(&pb);
    anv_sft_example_free(&a), anv_sft_example_free(&b);
    anv_chat_template_free(file);
}

static void expect_file_refused(const char *text, const char *json, const char *needle) {
    char path[512];
    snprintf(path, sizeof path, "%s/bad.jinja", dir);
    put_text(path, text);
    const anv_chat_template_t *file = NULL;
    int rc = anv_chat_template_open(path, tok, &file);
    if (rc == 0 && json) {
        anv_sft_opts_t o = {tok, file, 1000, 0};
        anv_sft_example_t e = {0};
        rc = anv_sft_render(&o, json, strlen(json), "data.jsonl:3", &e);
        anv_sft_example_free(&e);
    }
    CHECK(rc != 0 && strstr(anv_last_error(), needle), "want '%s', got %s", needle, rc ? anv_last_error() : "success");
    if (rc != 0) printf("refused: %s\n", anv_last_error());
    anv_chat_template_free(file);
}

static void test_template_files(void) {
    const char *conv = "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", "
                       "\"content\": \"Hi?\"}, {\"role\": \"assistant\", \"content\": \"Hello.\"}, {\"role\": "
                       "\"user\", \"content\": \" More \"}, {\"role\": \"assistant\", \"content\": \"Bye.\"}]}";
    expect_file_like_builtin("chatml", conv);
    expect_file_like_builtin("llama3", conv);
    expect_file_like_builtin("plain", conv);
    expect_file_like_builtin("plain", "{\"prompt\": \"2+2=\", \"completion\": \"4\"}");
    expect_file_refused("{% for m in messages %}{{ m.content }}", NULL,
                        "bad.jinja:1: the template ends inside a block");
    expect_file_refused("{{ raise_exception('roles must alternate') if messages | length > 2 }}{% for m in messages "
                        "%}{{ m.content }}{% endfor %}",
                        "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"user\", \"content\": "
                        "\"b\"}, {\"role\": \"assistant\", \"content\": \"c\"}]}",
                        "bad.jinja:1: the template raised: roles must alternate");
    CHECK(!strncmp(anv_last_error(), "data.jsonl:3: ", 14), "the line is not named: %s", anv_last_error());
    expect_file_refused("{{ messages[-1].content }}{% if add_generation_prompt %}>{% endif %}", NULL,
                        "a reply does not follow its generation prompt");
    expect_file_refused("{% for m in messages %}{{ m.content }}{% endfor %}{% if messages | length == 3 %}!{% endif %}"
                        "{{ '<|endoftext|>' if not add_generation_prompt }}",
                        "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", "
                        "\"content\": \"b\"}, {\"role\": \"user\", \"content\": \"c\"}, {\"role\": \"assistant\", "
                        "\"content\": \"d\"}]}",
                        "data.jsonl:3: ");
    const anv_chat_template_t *none = NULL;
    CHECK(anv_chat_template_open("/nonexistent/t.jinja", tok, &none) != 0 &&
              strstr(anv_last_error(), "nor a template file"),
          "%s", anv_last_error());
}

/* Packed rows: consecutive examples share a row while they fit, each token's start is its example's
 * first column, and padding tokens are sequences of one. */
static void test_packed_rows(const anv_sft_opts_t *o) {
    put("pack.jsonl", "{\"prompt\": \"ab\", \"completion\": \"c\"}\n{\"prompt\": \"d\", \"completion\": \"ef\"}\n"
                      "{\"prompt\": \"gh\", \"completion\": \"ij\"}\n");
    char tp[512], out[512];
    snprintf(tp, sizeof tp, "%s/pack.jsonl", dir);
    snprintf(out, sizeof out, "%s/packed", dir);
    anv_sft_stats_t tr, va;
    CHECK(anv_sft_prepare(o, tp, tp, 0, 0, out, &tr, &va) == 0, "prepare: %s", anv_last_error());
    enum { T = 10 };
    anv_loader_config_t lc = {out, "train", 1, T, 0, 1, 0, 0, anv_tokenizer_vocab_size(tok), 1};
    anv_loader_t *l = NULL;
    CHECK(anv_loader_open(&lc, &l) == 0, "%s", anv_last_error());
    if (!l) return;
    int32_t e = (int32_t)anv_tokenizer_eot(tok), in[T], tg[T], st[T];
    CHECK(anv_loader_batches_per_epoch(l) == 2, "3 examples of 4, 4 and 5 positions in 2 rows of 10, not %lld",
          (long long)anv_loader_batches_per_epoch(l));
    CHECK(fabs(anv_loader_fill(l) - 13.0 / 20) < 1e-12, "fill %g, not 13/20", anv_loader_fill(l));
    anv_loader_next(l, in, tg, st);
    int32_t in0[T] = {e, 'a', 'b', 'c', e, 'd', 'e', 'f', 0, 0}, tg0[T] = {-1, -1, 'c', e, -1, 'e', 'f', e, -1, -1},
            st0[T] = {0, 0, 0, 0, 4, 4, 4, 4, 8, 9};
    CHECK(!memcmp(in, in0, sizeof in) && !memcmp(tg, tg0, sizeof tg) && !memcmp(st, st0, sizeof st),
          "packed row 0: two examples, then two padding tokens");
    anv_loader_next(l, in, tg, st);
    int32_t in1[T] = {e, 'g', 'h', 'i', 'j', 0, 0, 0, 0, 0}, tg1[T] = {-1, -1, 'i', 'j', e, -1, -1, -1, -1, -1},
            st1[T] = {0, 0, 0, 0, 0, 5, 6, 7, 8, 9};
    CHECK(!memcmp(in, in1, sizeof in) && !memcmp(tg, tg1, sizeof tg) && !memcmp(st, st1, sizeof st),
          "packed row 1: the example that did not fit");
    printf("rows: 3 examples packed into 2 rows of %d, %.0f%% of the positions theirs\n", T, 100 * anv_loader_fill(l));
    anv_loader_close(l);
}

/* A prepared directory through the loader: each row is its example's last T+1 tokens, the targets
 * of untrained tokens and of the padding -1; too long examples are cut from the left. */
static void test_rows(void) {
    put("train.jsonl", "{\"prompt\": \"abc\", \"completion\": \"de\"}\n\n"
                       "{\"prompt\": \"0123456789012345678901234567890123456789\", \"completion\": \"xy\"}\n"
                       "{\"prompt\": \"q\", \"completion\": \"r\"}\n");
    put("val.jsonl", "{\"prompt\": \"v\", \"completion\": \"w\"}\n");
    char tp[512], vp[512], out[512];
    snprintf(tp, sizeof tp, "%s/train.jsonl", dir);
    snprintf(vp, sizeof vp, "%s/val.jsonl", dir);
    snprintf(out, sizeof out, "%s/data", dir);
    anv_sft_opts_t o = {tok, anv_chat_template_builtin("plain"), 20, 0};
    anv_sft_stats_t tr, va;
    int rc = anv_sft_prepare(&o, tp, vp, 0, 0, out, &tr, &va);
    CHECK(rc == 0, "prepare: %s", anv_last_error());
    printf("rows: train %llu examples (%llu tokens, %llu trained, %llu truncated), val %llu\n",
           (unsigned long long)tr.examples, (unsigned long long)tr.tokens, (unsigned long long)tr.trained_tokens,
           (unsigned long long)tr.truncated, (unsigned long long)va.examples);
    CHECK(tr.examples == 3 && tr.truncated == 1 && tr.trained_tokens == 3 + 3 + 2 && va.examples == 1,
          "counts: 3 examples, 1 cut, 8 trained tokens");
    const int T = 8;
    anv_loader_config_t lc = {out, "train", 1, T, 0, 1, 0, 0, anv_tokenizer_vocab_size(tok), 0};
    anv_loader_t *l = NULL;
    CHECK(anv_loader_open(&lc, &l) == 0, "%s", anv_last_error());
    if (!l) return;
    int32_t in[8], tg[8];
    uint32_t eot = anv_tokenizer_eot(tok);
    /* "<eot>abcde<eot>": inputs <eot> a b c d e, targets only d e <eot> */
    anv_loader_next(l, in, tg, NULL);
    int32_t want_in[8] = {(int32_t)eot, 'a', 'b', 'c', 'd', 'e', 0, 0},
            want_tg[8] = {-1, -1, -1, 'd', 'e', (int32_t)eot, -1, -1};
    CHECK(!memcmp(in, want_in, sizeof in) && !memcmp(tg, want_tg, sizeof tg), "row 0: padded, prompt targets -1");
    /* the long one, cut to 20 tokens and then to T+1 = 9 from the left: "456789xy<eot>" */
    anv_loader_next(l, in, tg, NULL);
    int32_t want_in1[8] = {'4', '5', '6', '7', '8', '9', 'x', 'y'};
    int32_t want_tg1[8] = {-1, -1, -1, -1, -1, 'x', 'y', (int32_t)eot};
    CHECK(!memcmp(in, want_in1, sizeof in) && !memcmp(tg, want_tg1, sizeof tg), "row 1: its last T+1 tokens");
    anv_loader_close(l);
    test_packed_rows(&o);
    /* a damaged rows file is refused by name */
    char rows[600];
    snprintf(rows, sizeof rows, "%s/train.sft", out);
    CHECK(truncate(rows, 40) == 0, "truncate");
    CHECK(anv_loader_open(&lc, &l) != 0 && strstr(anv_last_error(), "train.sft"), "damaged: %s", anv_last_error());
    put("empty.jsonl", "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\", \"completion\":\n");
    snprintf(tp, sizeof tp, "%s/empty.jsonl", dir);
    CHECK(anv_sft_prepare(&o, tp, vp, 0, 0, out, &tr, &va) != 0 && strstr(anv_last_error(), "empty.jsonl:2"),
          "a bad line is named: %s", anv_last_error());
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/anvil_test_sft_%d", (int)getpid());
    mkdir(dir, 0755);
    const char *specials[] = {"<|endoftext|>",       "<|im_start|>",      "<|im_end|>", "<|begin_of_text|>",
                              "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"};
    if (anv_tokenizer_create(ANV_PRETOK_GPT2, NULL, 0, specials, 7, &tok) != 0) {
        fprintf(stderr, "%s\n", anv_last_error());
        return 1;
    }
    test_templates();
    test_errors();
    test_rows();
    test_template_files();
    anv_tokenizer_free(tok);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_done("test_sft");
}

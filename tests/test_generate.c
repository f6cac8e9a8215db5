/* Generation control (generate.h): stop strings (also split across tokens and UTF-8 characters), max
 * tokens, repetition / frequency penalties, min-p, seeds, the sliding window, greedy decoding against
 * the argmax of full-forward logits, generators on several threads at once, bad settings. The model is
 * a small randomly initialised GPT-2 over the byte-level tokenizer, so token id = byte value. */
#include "anvil/generate.h"
#include "check.h"

#include <pthread.h>
#include <string.h>

/* ---- text sink ---- */
typedef struct {
    anv_buf_t text;
    int calls, cancel_after; /* cancel_after > 0: return 1 on that call */
    char pieces[8][32];      /* first pieces passed on, for the stopper tests */
} sink_t;

static int collect(void *ctx, const char *text, size_t len) {
    sink_t *s = ctx;
    if (s->calls < 8) snprintf(s->pieces[s->calls], sizeof s->pieces[0], "%.*s", (int)len, text);
    s->calls++;
    if (anv_buf_append(&s->text, text, len) != 0) return -1;
    return s->cancel_after > 0 && s->calls >= s->cancel_after;
}

static const char *text_of(sink_t *s) { return s->text.data ? s->text.data : ""; }

static void test_stopper(void) {
    const char *stops[] = {"\nUser:"};
    anv_stopper_t st;
    sink_t s = {0};
    anv_stopper_init(&st, stops, 1);
    anv_stopper_push(&st, "Hel", 3, collect, &s);
    anv_stopper_push(&st, "lo\nU", 4, collect, &s); /* "\nU" may start the stop string: held back */
    anv_stopper_push(&st, "ser: hi", 7, collect, &s);
    printf("stopper: pieces '%s' '%s' '%s' -> '%s', stopped %d\n", s.pieces[0], s.pieces[1], s.pieces[2], text_of(&s),
           st.stopped);
    CHECK(!strcmp(s.pieces[0], "Hel") && !strcmp(s.pieces[1], "lo") && !strcmp(s.pieces[2], ""),
          "the start of the stop string is held back");
    CHECK(!strcmp(text_of(&s), "Hello") && st.stopped, "stop string split over three pushes");
    anv_stopper_free(&st);
    anv_buf_free(&s.text);

    /* A held-back tail that turns out not to be a stop string is released. */
    memset(&s, 0, sizeof s);
    anv_stopper_init(&st, stops, 1);
    anv_stopper_push(&st, "a\nU", 3, collect, &s);
    anv_stopper_push(&st, "nit", 3, collect, &s);
    anv_stopper_flush(&st, collect, &s);
    CHECK(!strcmp(text_of(&s), "a\nUnit") && !st.stopped, "false start released: '%s'", text_of(&s));
    anv_stopper_free(&st);
    anv_buf_free(&s.text);

    /* Earliest match among several stop strings; half a UTF-8 character waits for the rest. */
    const char *two[] = {"cd", "bc"};
    memset(&s, 0, sizeof s);
    anv_stopper_init(&st, two, 2);
    anv_stopper_push(&st, "\xc3", 1, collect, &s);
    CHECK(s.text.len == 0, "half of 'é' is held back");
    anv_stopper_push(&st,
                     "\xa9"
                     "abcd",
                     5, collect, &s);
    CHECK(!strcmp(text_of(&s), "\xc3\xa9"
                               "a") &&
              st.stopped,
          "earliest of two stop strings: '%s'", text_of(&s));
    anv_stopper_free(&st);
    anv_buf_free(&s.text);
}

static void test_adjust(void) {
    anv_gen_config_t c = anv_gen_config_default();
    float l[4] = {2, -1, 3, 1};
    uint8_t seen[4] = {1, 1, 0, 0};
    int32_t counts[4] = {0, 2, 0, 1};
    c.repetition_penalty = 2;
    anv_generate_adjust_logits(l, 4, &c, seen, counts);
    printf("repetition penalty 2: {2, -1, 3, 1} -> {%g, %g, %g, %g}\n", l[0], l[1], l[2], l[3]);
    CHECK(l[0] == 1 && l[1] == -2 && l[2] == 3 && l[3] == 1, "seen logits divided (> 0) or multiplied (< 0)");
    float f[4] = {2, -1, 3, 1};
    c.repetition_penalty = 1;
    c.frequency_penalty = 0.5f;
    c.presence_penalty = 0.25f;
    anv_generate_adjust_logits(f, 4, &c, seen, counts);
    printf("frequency 0.5 + presence 0.25, counts {0, 2, 0, 1}: -> {%g, %g, %g, %g}\n", f[0], f[1], f[2], f[3]);
    CHECK(f[0] == 2 && f[1] == -2.25f && f[2] == 3 && f[3] == 0.25f, "OpenAI frequency/presence penalties");

    /* min-p 0.1 at temperature 1: probabilities relative to the top {1, 0.5, 0.05, 0.2}: id 2 goes. */
    anv_gen_config_t m = anv_gen_config_default();
    m.min_p = 0.1f;
    m.sampler.temperature = 1;
    m.sampler.seed = 5;
    const float base[4] = {0, logf(0.5f), logf(0.05f), logf(0.2f)};
    float x[4];
    memcpy(x, base, sizeof x);
    uint8_t none[4] = {0};
    int32_t zero[4] = {0};
    anv_generate_adjust_logits(x, 4, &m, none, zero);
    CHECK(isinf(x[2]) && x[2] < 0 && x[0] == base[0] && x[1] == base[1] && x[3] == base[3], "min-p removes id 2 only");
    anv_sampler_t s;
    anv_sampler_init(&s, &m.sampler, 4);
    int hist[4] = {0}, N = 40000;
    for (int i = 0; i < N; i++) hist[anv_sampler_next(&s, x)]++;
    anv_sampler_free(&s);
    double want0 = 1 / 1.7, got0 = hist[0] / (double)N;
    printf("min-p 0.1 sampling over %d draws: counts {%d, %d, %d, %d}, p(id 0) %.4f vs %.4f\n", N, hist[0], hist[1],
           hist[2], hist[3], got0, want0);
    CHECK(hist[2] == 0 && fabs(got0 - want0) < 0.01, "min-p: removed id never drawn, the rest renormalised");
    /* At temperature 2 the same min-p keeps id 2 (0.05^(1/2) = 0.22 of the top). */
    memcpy(x, base, sizeof x);
    m.sampler.temperature = 2;
    anv_generate_adjust_logits(x, 4, &m, none, zero);
    CHECK(x[2] == base[2], "min-p is measured after temperature");
}

/* ---- model-based tests ---- */
static anv_model_t *model;
static anv_tokenizer_t *tok;

static int generate_text(anv_generator_t *g, const char *prompt, const anv_gen_config_t *c, sink_t *s,
                         anv_gen_result_t *r) {
    anv_tokens_t ids = {0};
    int rc = anv_generate_prompt(tok, prompt, strlen(prompt), &ids);
    if (rc == 0) rc = anv_generate(g, ids.ids, ids.len, c, collect, s, r, NULL);
    anv_tokens_free(&ids);
    return rc;
}

/* Each greedy token is the argmax of the full (uncached) forward's last row over prompt + tokens so far. */
static void test_greedy_vs_forward(anv_generator_t *g) {
    anv_gen_config_t c = anv_gen_config_default();
    c.max_tokens = 20;
    sink_t s = {0};
    anv_gen_result_t r;
    CHECK(generate_text(g, "ab", &c, &s, &r) == 0, "generate: %s", anv_last_error());
    CHECK(r.completion_tokens == 20 && s.text.len == 20 && r.finish == ANV_GEN_LENGTH,
          "max_tokens 20: %d tokens, %zu bytes, finish %d", r.completion_tokens, s.text.len, (int)r.finish);
    int V = anv_model_config(model)->vocab_size, n = 3 + (int)s.text.len;
    int32_t seq[64] = {256, 'a', 'b'};
    for (size_t i = 0; i < s.text.len; i++) seq[3 + i] = (unsigned char)s.text.data[i];
    float *logits = anv_alloc((size_t)n * V * sizeof(float), "logits");
    anv_model_logits(model, seq, 1, n, logits);
    int agree = 0;
    double worst = 0;
    for (int t = 2; t < n - 1; t++) {
        const float *row = logits + (size_t)t * V;
        int best = 0;
        for (int v = 1; v < V; v++)
            if (row[v] > row[best]) best = v;
        double gap = row[best] - row[seq[t + 1]]; /* 0 when the same; a near-tie may flip */
        agree += best == seq[t + 1];
        worst = gap > worst ? gap : worst;
    }
    printf("greedy vs full-forward argmax: %d/%d tokens equal, largest logit gap %.2e\n", agree, n - 3, worst);
    CHECK(worst < 1e-4, "every greedy token is the full-forward argmax (gap %g)", worst);
    anv_free(logits);
    anv_buf_free(&s.text);

    c.max_tokens = 0;
    memset(&s, 0, sizeof s);
    CHECK(generate_text(g, "ab", &c, &s, &r) == 0 && r.completion_tokens == 0 && s.text.len == 0 &&
              r.finish == ANV_GEN_LENGTH,
          "max_tokens 0 generates nothing");
    anv_buf_free(&s.text);
}

static void test_stop_in_generation(anv_generator_t *g) {
    anv_gen_config_t c = anv_gen_config_default();
    c.max_tokens = 24;
    sink_t full = {0}, cut = {0};
    anv_gen_result_t r;
    generate_text(g, "xy", &c, &full, &r);
    char stop[4];
    memcpy(stop, full.text.data + 6, 3); /* three tokens */
    stop[3] = 0;
    size_t at = (size_t)(strstr(full.text.data, stop) - full.text.data);
    c.stop[0] = stop;
    c.n_stop = 1;
    generate_text(g, "xy", &c, &cut, &r);
    printf("stop string of 3 tokens at byte %zu: %zu bytes out, %d tokens, finish %d\n", at, cut.text.len,
           r.completion_tokens, (int)r.finish);
    CHECK(cut.text.len == at && !memcmp(cut.text.data ? cut.text.data : "", full.text.data, at),
          "text cut at the stop string");
    CHECK(r.finish == ANV_GEN_STOP && r.completion_tokens == (int)at + 3,
          "finish stop after the stop string's last token");
    anv_buf_free(&full.text);
    anv_buf_free(&cut.text);

    /* The callback can cancel. */
    sink_t s = {0};
    s.cancel_after = 5;
    c.n_stop = 0;
    generate_text(g, "xy", &c, &s, &r);
    CHECK(r.finish == ANV_GEN_CANCELLED && r.completion_tokens == 5, "cancelled after 5 tokens (%d)",
          r.completion_tokens);
    anv_buf_free(&s.text);
}

static int repeats(const sink_t *s) { /* tokens that appeared before in the text */
    int seen[256] = {0}, n = 0;
    for (size_t i = 0; i < s->text.len; i++) n += seen[(unsigned char)s->text.data[i]]++ > 0;
    return n;
}

static void test_penalties_and_seeds(anv_generator_t *g) {
    anv_gen_config_t c = anv_gen_config_default();
    c.max_tokens = 40;
    sink_t plain = {0}, rep = {0}, freq = {0};
    anv_gen_result_t r;
    generate_text(g, "q", &c, &plain, &r);
    c.repetition_penalty = 5;
    generate_text(g, "q", &c, &rep, &r);
    c.repetition_penalty = 1;
    c.frequency_penalty = 100;
    generate_text(g, "q", &c, &freq, &r);
    printf("repeated tokens in 40 greedy tokens: plain %d, repetition_penalty 5: %d, frequency_penalty 100: %d\n",
           repeats(&plain), repeats(&rep), repeats(&freq));
    CHECK(repeats(&rep) < repeats(&plain), "repetition penalty reduces repeats");
    CHECK(repeats(&freq) == 0 && freq.text.len == 40, "a large frequency penalty forbids any repeat");
    anv_buf_free(&plain.text);
    anv_buf_free(&rep.text);
    anv_buf_free(&freq.text);

    anv_gen_config_t t = anv_gen_config_default();
    t.max_tokens = 30;
    t.sampler.temperature = 1;
    t.sampler.top_k = 50;
    t.min_p = 0.05f;
    sink_t a = {0}, b = {0}, d = {0};
    t.sampler.seed = 11;
    generate_text(g, "s", &t, &a, &r);
    generate_text(g, "s", &t, &b, &r);
    t.sampler.seed = 12;
    generate_text(g, "s", &t, &d, &r);
    int same = a.text.len == b.text.len && !memcmp(a.text.data, b.text.data, a.text.len);
    int differ = a.text.len != d.text.len || memcmp(a.text.data, d.text.data, a.text.len);
    printf("seeded sampling: seed 11 twice identical %d, seed 12 differs %d\n", same, differ);
    CHECK(same && differ, "seeds reproduce and distinguish");
    anv_buf_free(&a.text);
    anv_buf_free(&b.text);
    anv_buf_free(&d.text);

    /* Longer than block_size (32): the window slides. */
    sink_t lng = {0};
    c = anv_gen_config_default();
    c.max_tokens = 100;
    CHECK(generate_text(g, "w", &c, &lng, &r) == 0 && r.completion_tokens == 100, "100 tokens past a 32-token block");
    anv_buf_free(&lng.text);
}

/* Generators on four threads at once give what they give alone. */
typedef struct {
    anv_generator_t *g;
    char prompt[8];
    sink_t out;
} job_t;

static void *run_job(void *arg) {
    job_t *j = arg;
    anv_gen_config_t c = anv_gen_config_default();
    c.max_tokens = 30;
    anv_gen_result_t r;
    generate_text(j->g, j->prompt, &c, &j->out, &r);
    return NULL;
}

static void test_threads(void) {
    job_t jobs[4], alone[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        snprintf(jobs[i].prompt, sizeof jobs[i].prompt, "p%d", i);
        anv_generator_create(model, tok, &jobs[i].g);
        alone[i] = jobs[i];
        run_job(&alone[i]);
    }
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, run_job, &jobs[i]);
    int same = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        same += jobs[i].out.text.len == alone[i].out.text.len &&
                !memcmp(jobs[i].out.text.data, alone[i].out.text.data, alone[i].out.text.len);
        anv_generator_free(jobs[i].g);
        anv_buf_free(&jobs[i].out.text);
        anv_buf_free(&alone[i].out.text);
    }
    printf("4 generators on 4 threads over one model: %d/4 equal to their runs alone\n", same);
    CHECK(same == 4, "concurrent generators are independent");
}

static void test_bad_settings(anv_generator_t *g) {
    anv_gen_result_t r;
    sink_t s = {0};
    uint32_t ids[40] = {256, 1, 2};
    anv_gen_config_t c = anv_gen_config_default();
    c.max_tokens = -1;
    CHECK(anv_generate(g, ids, 3, &c, collect, &s, &r, NULL) != 0 && strstr(anv_last_error(), "max_tokens"),
          "max_tokens -1");
    c = anv_gen_config_default();
    c.min_p = 2;
    CHECK(anv_generate(g, ids, 3, &c, collect, &s, &r, NULL) != 0 && strstr(anv_last_error(), "min_p"), "min_p 2");
    c = anv_gen_config_default();
    c.repetition_penalty = 0;
    CHECK(anv_generate(g, ids, 3, &c, collect, &s, &r, NULL) != 0, "repetition_penalty 0");
    c = anv_gen_config_default();
    c.stop[0] = "";
    c.n_stop = 1;
    CHECK(anv_generate(g, ids, 3, &c, collect, &s, &r, NULL) != 0 && strstr(anv_last_error(), "empty"),
          "empty stop string");
    c = anv_gen_config_default();
    c.sampler.top_p = 0;
    CHECK(anv_generate(g, ids, 3, &c, collect, &s, &r, NULL) != 0, "top_p 0");
    CHECK(anv_generate(g, ids, 40, &c, collect, &s, &r, NULL) != 0 && strstr(anv_last_error(), "context"),
          "prompt longer than the block: %s", anv_last_error());
    ids[1] = 999;
    c = anv_gen_config_default();
    CHECK(anv_generate(g, ids, 3, &c, collect, &s, &r, NULL) != 0 && strstr(anv_last_error(), "vocabulary"),
          "token outside the vocabulary: %s", anv_last_error());
    CHECK(anv_generate(g, ids, 0, &c, collect, &s, &r, NULL) != 0, "empty prompt");
    CHECK(s.calls == 0, "no text from failed calls");
    printf("bad settings: all refused (last: %s)\n", anv_last_error());
}

/* Recorded log-probabilities: the prompt's against the full forward's log-softmax, the first none, the
 * greedy tokens their own top alternative, alternatives in falling order. */
static void test_logprobs(anv_generator_t *g) {
    anv_gen_config_t c = anv_gen_config_default();
    c.max_tokens = 5;
    const char *prompt = "abracadabra, said the cat";
    anv_tokens_t ids = {0};
    anv_generate_prompt(tok, prompt, strlen(prompt), &ids);
    anv_gen_logprobs_t lp = {.prompt = 1, .top = 3};
    sink_t s = {0};
    anv_gen_result_t r;
    CHECK(anv_generate(g, ids.ids, ids.len, &c, collect, &s, &r, &lp) == 0, "%s", anv_last_error());
    CHECK(lp.n == ids.len + 5 && isnan(lp.items[0].logprob) && lp.items[0].n_top == 0, "%zu recorded", lp.n);
    int V = anv_model_config(model)->vocab_size, n = (int)ids.len;
    float *logits = anv_alloc((size_t)n * V * sizeof(float), "logits");
    anv_model_logits(model, (const int32_t *)ids.ids, 1, n, logits);
    double worst = 0;
    for (int t = 1; t < n && (size_t)t < lp.n; t++) {
        const float *row = logits + (size_t)(t - 1) * V;
        double z = 0;
        for (int v = 0; v < V; v++) z += exp((double)row[v]);
        double d = fabs((double)row[ids.ids[t]] - log(z) - lp.items[t].logprob);
        worst = d > worst ? d : worst;
    }
    printf("prompt log-probabilities against the full forward: max |diff| %.3g\n", worst);
    CHECK(worst < 1e-4, "prompt log-probabilities (%g)", worst);
    int ordered = 1, greedy = 1;
    for (size_t i = 1; i < lp.n; i++) {
        const anv_token_logprob_t *t = &lp.items[i];
        ordered &= t->n_top == 3 && t->top_logprob[0] >= t->top_logprob[1] && t->top_logprob[1] >= t->top_logprob[2];
        if (i >= ids.len) greedy &= t->top[0] == t->token && t->top_logprob[0] == t->logprob;
    }
    CHECK(ordered && greedy, "alternatives in order (%d), greedy tokens on top (%d)", ordered, greedy);
    lp.top = ANV_GEN_MAX_TOP + 1;
    CHECK(anv_generate(g, ids.ids, ids.len, &c, collect, &s, &r, &lp) != 0, "too many alternatives refused");
    anv_gen_logprobs_free(&lp);
    anv_free(logits);
    anv_tokens_free(&ids);
    anv_buf_free(&s.text);
}

int main(void) {
    anv_threads_set(1);
    test_stopper();
    test_adjust();
    anv_config_t cfg = anv_config_gpt2(2, 2, 32, 257, 32);
    anv_generator_t *g = NULL;
    if (anv_tokenizer_create_bytes(&tok) != 0 || anv_model_create(&cfg, &model) != 0) {
        fprintf(stderr, "setup: %s\n", anv_last_error());
        return 1;
    }
    anv_model_init(model, 3);
    /* Larger weights than GPT-2's init spread the logits, so greedy choices are clear. */
    float *p = anv_model_params(model);
    for (size_t i = 0; i < anv_model_n_params(model); i++) p[i] *= 8;
    CHECK(anv_generator_create(model, tok, &g) == 0, "generator: %s", anv_last_error());
    test_greedy_vs_forward(g);
    test_logprobs(g);
    test_stop_in_generation(g);
    test_penalties_and_seeds(g);
    test_threads();
    test_bad_settings(g);
    anv_generator_free(g);
    anv_model_free(model);
    anv_tokenizer_free(tok);
    return check_done("test_generate");
}

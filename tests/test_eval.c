/* Evaluation tasks (src/eval): the task readers on tests/golden/eval's files (lm-evaluation-harness's
 * HellaSwag context and preprocessing, llama.cpp's text format, LAMBADA's last word), the KV-cached
 * continuation scores against full-sequence logits (anv_model_logits, no cache) with context
 * truncation, text windows that score each token once, and the parallel driver against one scorer. */
#include "anvil/eval.h"
#include "anvil/hf_export.h"
#include "anvil/trainer.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

#define GOLDEN ANVIL_SOURCE_DIR "/tests/golden/eval/"

static void test_readers(void) {
    anv_examples_t ex;
    CHECK(anv_examples_load(ANV_TASK_HELLASWAG, GOLDEN "hellaswag.jsonl", 0, 0, &ex) == 0, "%s", anv_last_error());
    CHECK(ex.n == 4, "%zu HellaSwag examples", ex.n);
    if (ex.n == 4) {
        const anv_example_t *e = &ex.items[0];
        CHECK(strcmp(e->context, "Sailing: A man stands on the deck of a small boat. He pulls the rope") == 0,
              "context '%s'", e->context);
        CHECK(e->n_continuations == 4 && e->answer == 0, "%d endings, answer %d", e->n_continuations, e->answer);
        CHECK(strcmp(e->continuations[1], " and eats a chair.") == 0, "'%s'", e->continuations[1]);
        CHECK(strcmp(e->continuations[2], "  quickly. The sail rises.") == 0, "'%s'", e->continuations[2]);
        CHECK(strcmp(e->continuations[3], " then sleeps on the oars.") == 0, "'%s'", e->continuations[3]);
        CHECK(strcmp(ex.items[2].context, "Running a marathon: How to train. Start slowly. Run three times a week") ==
                  0,
              "context '%s'", ex.items[2].context);
        CHECK(strcmp(ex.items[3].context, "The children ran to the beach and") == 0 && ex.items[3].line == 4,
              "plain ctx '%s' at line %llu", ex.items[3].context, (unsigned long long)ex.items[3].line);
    }
    anv_examples_free(&ex);
    CHECK(anv_examples_load(ANV_TASK_HELLASWAG, GOLDEN "hellaswag.txt", 0, 0, &ex) == 0, "%s", anv_last_error());
    CHECK(ex.n == 3 && ex.items[2].line == 13 && ex.items[0].answer == 1 && ex.items[2].answer == 2,
          "text format: %zu examples", ex.n);
    anv_examples_free(&ex);
    CHECK(anv_examples_load(ANV_TASK_LAMBADA, GOLDEN "lambada.jsonl", 2, 0, &ex) == 0, "%s", anv_last_error());
    CHECK(ex.n == 2 && strcmp(ex.items[1].continuations[0], " bed") == 0 &&
              strcmp(ex.items[1].context, "She counted the coins twice, then put them back in the tin box under the") ==
                  0,
          "lambada --limit 2: %zu, '%s'", ex.n, ex.n == 2 ? ex.items[1].continuations[0] : "");
    anv_examples_free(&ex);
}

/* log p(continuation) from full-sequence logits: the tokens context[keep] + continuation. */
static double full_logprob(anv_model_t *m, const anv_tokens_t *ctx, size_t keep, const anv_tokens_t *cont) {
    int V = anv_model_config(m)->vocab_size, T = (int)(keep + cont->len - 1);
    int32_t *ids = malloc((size_t)T * sizeof *ids);
    float *logits = malloc((size_t)T * (size_t)V * sizeof *logits);
    for (size_t i = 0; i < keep; i++) ids[i] = (int32_t)ctx->ids[ctx->len - keep + i];
    for (size_t i = 0; i + 1 < cont->len; i++) ids[keep + i] = (int32_t)cont->ids[i];
    double sum = 0;
    if (anv_model_logits(m, ids, 1, T, logits) == 0)
        for (size_t i = 0; i < cont->len; i++) {
            const float *row = logits + (keep - 1 + i) * (size_t)V;
            double z = 0;
            for (int v = 0; v < V; v++) z += exp((double)row[v]);
            sum += (double)row[cont->ids[i]] - log(z);
        }
    free(logits);
    free(ids);
    return sum;
}

static void test_scores(anv_model_t *m, const anv_tokenizer_t *tok) {
    anv_examples_t ex;
    if (anv_examples_load(ANV_TASK_MC, GOLDEN "mc.jsonl", 0, 0, &ex) != 0) {
        CHECK(0, "%s", anv_last_error());
        return;
    }
    anv_scorer_t *s;
    CHECK(anv_scorer_create(m, tok, &s) == 0, "%s", anv_last_error());
    size_t total = 0;
    for (size_t i = 0; i < ex.n; i++) total += (size_t)ex.items[i].n_continuations;
    anv_choice_score_t *par = calloc(total, sizeof *par), one[8];
    anv_context_use_t *ctx_use = calloc(ex.n, sizeof *ctx_use);
    int truncated = 0;
    CHECK(anv_score_examples(m, tok, &ex, par, ctx_use, NULL, NULL) == 0, "%s", anv_last_error());
    /* The driver scores each example on one thread; so does the scorer here, since a BLAS may split a
     * product differently on more threads (OpenBLAS's Haswell sgemm does) and round it differently. */
    int threads = anv_threads_count();
    anv_threads_set(1);
    double worst = 0;
    const anv_choice_score_t *p = par;
    for (size_t i = 0; i < ex.n; p += ex.items[i++].n_continuations) {
        const anv_example_t *e = &ex.items[i];
        anv_context_use_t use;
        CHECK(anv_score_example(s, e, one, &use) == 0, "%s", anv_last_error());
        for (int c = 0; c < e->n_continuations; c++)
            CHECK(use.tokens == ctx_use[i].tokens && use.cut == ctx_use[i].cut && one[c].logprob == p[c].logprob &&
                      one[c].tokens == p[c].tokens && one[c].bytes == p[c].bytes && one[c].greedy == p[c].greedy,
                  "example %zu choice %d: the parallel driver differs from one scorer (%.9g, %.9g)", i, c,
                  one[c].logprob, p[c].logprob);
        anv_tokens_t ctx = {0}, cont = {0};
        anv_tokens_push(&ctx, (uint32_t)anv_tokenizer_eot(tok));
        anv_tokenizer_encode(tok, e->context, strlen(e->context), &ctx);
        truncated += (size_t)use.tokens < ctx.len;
        CHECK((size_t)(use.tokens + use.cut) == ctx.len, "kept + cut = the context's tokens");
        for (int c = 0; c < e->n_continuations; c++) {
            cont.len = 0;
            anv_tokenizer_encode(tok, e->continuations[c], strlen(e->continuations[c]), &cont);
            double d = fabs(full_logprob(m, &ctx, (size_t)use.tokens, &cont) - one[c].logprob);
            worst = d > worst ? d : worst;
            CHECK((size_t)one[c].tokens == cont.len && one[c].bytes == strlen(e->continuations[c]), "counts");
        }
        anv_tokens_free(&ctx);
        anv_tokens_free(&cont);
    }
    anv_threads_set(threads);
    printf(
        "continuations: KV-cached against full-sequence log-probabilities, max |diff| %.3g over %zu examples (%d with "
        "a truncated context)\n",
        worst, ex.n, truncated);
    CHECK(worst < 1e-4, "max diff %g", worst);
    CHECK(truncated >= 1, "no example exercised the truncation");
    anv_choice_score_t pick[3] = {{-10, 2, 10, 0}, {-9, 9, 3, 0}, {-9, 3, 30, 0}};
    CHECK(anv_choice_best(pick, 3, ANV_BY_SUM) == 1 && anv_choice_best(pick, 3, ANV_BY_BYTES) == 2 &&
              anv_choice_best(pick, 3, ANV_BY_TOKENS) == 1,
          "choice rules (first of equal sums)");
    CHECK(fabs(anv_mean_stderr(1, 2) - 0.5) < 1e-12 && anv_mean_stderr(1, 1) == 0, "stderr");
    free(ctx_use);
    free(par);
    anv_scorer_free(s);
    anv_examples_free(&ex);
}

static void test_windows(void) {
    const int n_docs = 4;
    const size_t lens[] = {1, 2, 65, 300};
    anv_text_window_t *w = NULL;
    size_t count = 0, cap = 0;
    for (int d = 0; d < n_docs; d++)
        CHECK(anv_text_windows((size_t)d, lens[d], 64, 24, &w, &count, &cap) == 0, "windows");
    for (int d = 0; d < n_docs; d++) {
        size_t next = 1;
        for (size_t i = 0; i < count; i++) {
            if (w[i].doc != (size_t)d) continue;
            CHECK(w[i].first == next && w[i].end > w[i].first && w[i].end - 1 - w[i].start <= 64 &&
                      w[i].first > w[i].start,
                  "doc %d window [%zu, %zu) from %zu", d, w[i].first, w[i].end, w[i].start);
            next = w[i].end;
        }
        CHECK(next == (lens[d] > 1 ? lens[d] : 1), "doc %d: targets scored up to %zu of %zu", d, next, lens[d]);
    }
    CHECK(anv_text_windows(0, 10, 64, 65, &w, &count, &cap) != 0, "a stride beyond the block is refused");
    free(w);
}

int main(void) {
    test_readers();
    char run[] = "/tmp/anvil_test_eval_XXXXXX";
    CHECK(mkdtemp(run) != NULL, "mkdtemp");
    char dir[64];
    snprintf(dir, sizeof dir, "%s/run", run);
    anv_model_t *m = NULL;
    anv_tokenizer_t *tok = NULL;
    CHECK(anv_hf_import(GOLDEN "llama", dir) == 0 && anv_run_load(dir, &m, &tok) == 0, "%s", anv_last_error());
    if (m) test_scores(m, tok);
    test_windows();
    anv_tokenizer_free(tok);
    anv_model_free(m);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", run);
    CHECK(system(cmd) == 0, "cleanup");
    return check_done("test_eval");
}

/* anvil eval --task: scores a run on a task file, prints the task's line, writes one JSON object per
 * example (--out) and RUN/eval/TASK.json for the dashboard. */
#include "cli.h"

#include "anvil/corpus.h"
#include "anvil/eval.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct {
    double value, stderr_; /* stderr_ < 0: none */
    const char *name;
} metric_t;

/* The task's line on stdout and RUN/eval/TASK.json. */
static int report(const char *run, anv_task_t task, const char *data, const metric_t *mt, int n_metrics,
                  const char *counts, double seconds) {
    printf("%s:", anv_task_name(task));
    for (int i = 0; i < n_metrics; i++) {
        printf("%s %s %.4f", i ? " |" : "", mt[i].name, mt[i].value);
        if (mt[i].stderr_ >= 0) printf(" ± %.4f", mt[i].stderr_);
    }
    printf(" | %s, %.2f s\n", counts, seconds);
    fflush(stdout);
    char dir[4200], path[4300];
    anv_buf_t b = {0};
    time_t now = time(NULL);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    int rc = anv_buf_printf(&b, "{\"task\": \"%s\", \"data\": ", anv_task_name(task)) |
             anv_buf_json_string(&b, data, strlen(data)) |
             anv_buf_printf(&b, ", \"time\": \"%s\", \"metrics\": {", stamp);
    for (int i = 0; i < n_metrics; i++) {
        rc |= anv_buf_printf(&b, "%s\"%s\": %.9g", i ? ", " : "", mt[i].name, mt[i].value);
        if (mt[i].stderr_ >= 0) rc |= anv_buf_printf(&b, ", \"%s_stderr\": %.9g", mt[i].name, mt[i].stderr_);
    }
    rc |= anv_buf_printf(&b, "}, \"counts\": \"%s\", \"seconds\": %.3f}\n", counts, seconds);
    if (rc == 0 && (anv_path_join(dir, sizeof dir, run, "eval") != 0 || anv_mkdir_p(dir) != 0 ||
                    snprintf(path, sizeof path, "%s/%s.json", dir, anv_task_name(task)) >= (int)sizeof path ||
                    anv_write_file_atomic(path, b.data, b.len) != 0))
        rc = -1;
    anv_buf_free(&b);
    return rc;
}

/* --out: the lines in b, atomically. */
static int write_out(const char *out, const anv_buf_t *b) {
    return out ? anv_write_file_atomic(out, b->data, b->len) : 0;
}

static int eval_examples(const char *run, anv_model_t *m, const anv_tokenizer_t *tok, anv_task_t task, const char *data,
                         size_t limit, int skip_bad, const char *out, cli_progress_t *progress) {
    anv_examples_t ex;
    if (anv_examples_load(task, data, limit, skip_bad, &ex) != 0) return -1;
    size_t total = 0;
    for (size_t i = 0; i < ex.n; i++) total += (size_t)ex.items[i].n_continuations;
    anv_choice_score_t *scores = anv_alloc(total * sizeof *scores, "scores");
    anv_context_use_t *ctx = anv_alloc(ex.n * sizeof *ctx, "scores");
    anv_buf_t lines = {0};
    double t0 = anv_now();
    int rc = scores && ctx && anv_score_examples(m, tok, &ex, scores, ctx, cli_progress, progress) == 0
                 ? 0
                 : anv_error_prefix("%s", data);
    cli_progress_end(progress);
    double right[3] = {0}, logprob_sum = 0;
    size_t cut = 0;
    const anv_choice_score_t *sc = scores;
    for (size_t i = 0; rc == 0 && i < ex.n; sc += ex.items[i++].n_continuations) {
        const anv_example_t *e = &ex.items[i];
        int pred[3];
        for (int r = 0; r < 3; r++) {
            pred[r] = anv_choice_best(sc, e->n_continuations, (anv_choice_rule_t)r);
            right[r] += task == ANV_TASK_LAMBADA ? sc[0].greedy : pred[r] == e->answer;
        }
        logprob_sum += sc[0].logprob;
        cut += ctx[i].cut > 0;
        if (!out) continue;
        rc |= anv_buf_printf(
            &lines, "{\"line\": %llu, \"context_tokens\": %d, \"context_cut\": %d, \"answer\": %d, \"logprobs\": [",
            (unsigned long long)e->line, ctx[i].tokens, ctx[i].cut, e->answer);
        for (int c = 0; c < e->n_continuations; c++)
            rc |= anv_buf_printf(&lines, "%s%.9g", c ? ", " : "", sc[c].logprob);
        rc |= anv_buf_puts(&lines, "], \"tokens\": [");
        for (int c = 0; c < e->n_continuations; c++) rc |= anv_buf_printf(&lines, "%s%d", c ? ", " : "", sc[c].tokens);
        rc |= anv_buf_puts(&lines, "], \"bytes\": [");
        for (int c = 0; c < e->n_continuations; c++) rc |= anv_buf_printf(&lines, "%s%zu", c ? ", " : "", sc[c].bytes);
        rc |= anv_buf_puts(&lines, "], \"greedy\": [");
        for (int c = 0; c < e->n_continuations; c++)
            rc |= anv_buf_printf(&lines, "%s%s", c ? ", " : "", sc[c].greedy ? "true" : "false");
        rc |= anv_buf_printf(&lines, "], \"pred\": %d, \"pred_norm\": %d, \"pred_token_mean\": %d}\n", pred[0], pred[1],
                             pred[2]);
    }
    if (rc == 0) rc = write_out(out, &lines);
    if (rc == 0) {
        double n = (double)ex.n;
        char counts[160];
        int at = snprintf(counts, sizeof counts, "%zu examples", ex.n);
        if (ex.skipped) at += snprintf(counts + at, sizeof counts - (size_t)at, ", %zu malformed skipped", ex.skipped);
        if (cut) snprintf(counts + at, sizeof counts - (size_t)at, ", %zu contexts cut to fit the block", cut);
        if (task == ANV_TASK_LAMBADA) {
            /* the perplexity of the last word: exp of its mean negative log-probability */
            metric_t mt[] = {{right[0] / n, anv_mean_stderr(right[0], n), "acc"},
                             {exp(-logprob_sum / n), -1, "perplexity"}};
            rc = report(run, task, data, mt, 2, counts, anv_now() - t0);
        } else {
            metric_t mt[] = {{right[0] / n, anv_mean_stderr(right[0], n), "acc"},
                             {right[1] / n, anv_mean_stderr(right[1], n), "acc_norm"},
                             {right[2] / n, anv_mean_stderr(right[2], n), "acc_token_mean"}};
            rc = report(run, task, data, mt, 3, counts, anv_now() - t0);
        }
    }
    anv_buf_free(&lines);
    anv_free(ctx);
    anv_free(scores);
    anv_examples_free(&ex);
    return rc;
}

/* The documents of a text corpus as token sequences ([end-of-text] + text), with their lines and bytes. */
typedef struct {
    anv_tokens_t *tokens;
    uint64_t *line, *bytes;
    size_t n, cap;
} docs_t;

static void docs_free(docs_t *d) {
    for (size_t i = 0; i < d->n; i++) anv_tokens_free(&d->tokens[i]);
    anv_free(d->tokens);
    anv_free(d->line);
    anv_free(d->bytes);
}

static int docs_grow(docs_t *d) {
    size_t cap = d->cap ? 2 * d->cap : 64;
    anv_tokens_t *t = anv_realloc(d->tokens, cap * sizeof *t, "documents");
    if (!t) return -1;
    d->tokens = t;
    uint64_t *l = anv_realloc(d->line, cap * sizeof *l, "documents");
    if (!l) return -1;
    d->line = l;
    uint64_t *b = anv_realloc(d->bytes, cap * sizeof *b, "documents");
    if (!b) return -1;
    d->bytes = b, d->cap = cap;
    return 0;
}

static int docs_read(const char *data, const anv_tokenizer_t *tok, size_t limit, docs_t *d) {
    anv_corpus_t *c;
    const char *inputs[] = {data};
    anv_corpus_opts_t o = {.inputs = inputs, .n_inputs = 1};
    if (anv_corpus_open(&o, &c) != 0) return -1;
    anv_doc_t doc;
    int64_t eot = anv_tokenizer_eot(tok);
    int rc = 0, r = 0;
    while (rc == 0 && (!limit || d->n < limit) && (r = anv_corpus_next(c, &doc)) == 1) {
        if (d->n == d->cap && docs_grow(d) != 0) {
            rc = -1;
            break;
        }
        anv_tokens_t *t = &d->tokens[d->n];
        memset(t, 0, sizeof *t);
        d->line[d->n] = doc.line, d->bytes[d->n] = doc.len;
        d->n++;
        if ((eot >= 0 && anv_tokens_push(t, (uint32_t)eot) != 0) ||
            anv_tokenizer_encode(tok, doc.text, doc.len, t) != 0)
            rc = -1;
    }
    if (r < 0) rc = -1;
    anv_corpus_close(c);
    if (rc == 0 && d->n == 0) rc = anv_error("%s: no documents", data);
    return rc;
}

static int eval_text(const char *run, anv_model_t *m, const anv_tokenizer_t *tok, const char *data, size_t limit,
                     int stride, const char *out, cli_progress_t *progress) {
    const anv_config_t *cfg = anv_model_config(m);
    docs_t d = {0};
    anv_text_window_t *w = NULL;
    const uint32_t **ids = NULL;
    size_t nw = 0, cap = 0;
    double *nll = NULL, t0 = anv_now();
    anv_buf_t lines = {0};
    if (!stride) stride = cfg->block_size / 2 > 0 ? cfg->block_size / 2 : 1;
    int rc = docs_read(data, tok, limit, &d);
    if (rc == 0 &&
        (!(ids = anv_alloc(d.n * sizeof *ids, "documents")) || !(nll = anv_calloc(d.n * sizeof *nll, "nll"))))
        rc = -1;
    for (size_t i = 0; rc == 0 && i < d.n; i++) {
        ids[i] = d.tokens[i].ids;
        rc = anv_text_windows(i, d.tokens[i].len, cfg->block_size, stride, &w, &nw, &cap);
    }
    if (rc == 0 && anv_score_windows(m, tok, ids, w, nw, cli_progress, progress) != 0)
        rc = anv_error_prefix("%s", data);
    cli_progress_end(progress);
    double sum = 0, tokens = 0, bytes = 0;
    for (size_t i = 0; rc == 0 && i < nw; i++) nll[w[i].doc] += w[i].nll;
    for (size_t i = 0; rc == 0 && i < d.n; i++) {
        size_t scored = d.tokens[i].len ? d.tokens[i].len - 1 : 0;
        sum += nll[i], tokens += (double)scored, bytes += (double)d.bytes[i];
        if (out)
            rc = anv_buf_printf(&lines, "{\"line\": %llu, \"tokens\": %zu, \"bytes\": %llu, \"nll\": %.9g}\n",
                                (unsigned long long)d.line[i], scored, (unsigned long long)d.bytes[i], nll[i]);
    }
    if (rc == 0 && tokens == 0) rc = anv_error("%s: no token to predict", data);
    if (rc == 0) rc = write_out(out, &lines);
    if (rc == 0) {
        char counts[160];
        snprintf(counts, sizeof counts, "%.0f tokens, %.0f bytes, %zu documents, stride %d", tokens, bytes, d.n,
                 stride);
        metric_t mt[] = {{sum / tokens, -1, "loss"},
                         {exp(sum / tokens), -1, "perplexity"},
                         {sum / log(2.0) / bytes, -1, "bits_per_byte"}};
        rc = report(run, ANV_TASK_TEXT, data, mt, 3, counts, anv_now() - t0);
    }
    anv_buf_free(&lines);
    anv_free(nll);
    anv_free(ids);
    anv_free(w);
    docs_free(&d);
    return rc;
}

int cli_eval_task(const char *run, anv_model_t *m, const anv_tokenizer_t *tok, const char *task_name, const char *data,
                  long long limit, int stride, int skip_bad, const char *out) {
    anv_task_t task;
    if (anv_task_parse(task_name, &task) != 0) return -1;
    if (!data) return anv_error("--task %s needs --data FILE", task_name);
    if (limit < 0 || stride < 0) return anv_error("--limit and --stride must be >= 0");
    if (stride && task != ANV_TASK_TEXT) return anv_error("--stride is for --task text");
    cli_progress_t progress;
    cli_progress_init(&progress);
    if (task == ANV_TASK_TEXT) return eval_text(run, m, tok, data, (size_t)limit, stride, out, &progress);
    return eval_examples(run, m, tok, task, data, (size_t)limit, skip_bad, out, &progress);
}

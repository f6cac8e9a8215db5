/* Evaluation tasks: multiple choice (HellaSwag, generic), LAMBADA and the perplexity of text, scored by
 * the log-probabilities a model gives to continuations of a context.
 *
 * Task files:
 *   hellaswag  HellaSwag's JSONL: "ctx", "endings" and "label"; where "activity_label", "ctx_a" and
 *              "ctx_b" are present the context is built as lm-evaluation-harness builds it
 *              (activity_label + ": " + ctx_a + " " + capitalised ctx_b, then its preprocessing of
 *              context and endings; case mapping is ASCII). A file that is not JSON is llama.cpp's
 *              text format: 6 lines per example (context, index of the right ending, 4 endings).
 *   mc         JSONL {"context": str, "choices": [str, ...], "answer": index}.
 *   lambada    JSONL {"text": str}: the context is the text before its last space, the one
 *              continuation the space and the last word.
 *   text       .txt/.jsonl (field "text")/.gz documents: loss, perplexity, bits per byte.
 * Files may be gzip-compressed. Every choice is scored as " " + choice after the context; the context
 * starts with the end-of-text token, as every training document does. */
#ifndef ANVIL_EVAL_H
#define ANVIL_EVAL_H

#include "anvil/model.h"
#include "anvil/tokenizer.h"

typedef enum { ANV_TASK_HELLASWAG, ANV_TASK_MC, ANV_TASK_LAMBADA, ANV_TASK_TEXT } anv_task_t;
int anv_task_parse(const char *name, anv_task_t *out); /* -1 with an error naming the known tasks */
const char *anv_task_name(anv_task_t task);

/* A context and the continuations scored after it (each with its leading space). */
typedef struct {
    char *context;
    char **continuations;
    int n_continuations;
    int answer;    /* index of the right continuation (LAMBADA: 0, its only one) */
    uint64_t line; /* 1-based line of the example in its file (text format: its first line) */
} anv_example_t;

typedef struct {
    anv_example_t *items;
    size_t n;
    size_t skipped; /* malformed examples left out (skip_bad) */
} anv_examples_t;

/* Reads up to limit examples (0: all) of a choice task or LAMBADA from path; errors name the file and
 * line. With skip_bad a malformed example is counted, shown (the first few) and left out instead. */
int anv_examples_load(anv_task_t task, const char *path, size_t limit, int skip_bad, anv_examples_t *out);
void anv_examples_free(anv_examples_t *e);

/* One continuation's score. */
typedef struct {
    double logprob; /* sum of its tokens' log-probabilities */
    int tokens;
    size_t bytes;
    int greedy; /* 1 when every token is the most likely one (first on ties) */
} anv_choice_score_t;

/* A model and tokenizer with a KV cache and logits rows of its own: one per thread, sharing the model. */
typedef struct anv_scorer anv_scorer_t;
int anv_scorer_create(anv_model_t *m, const anv_tokenizer_t *tok, anv_scorer_t **out);
void anv_scorer_free(anv_scorer_t *s);

/* Scores every continuation of ex (scores: ex->n_continuations of them). The context's tokens are
 * decoded once and each continuation after them; when context and the longest continuation exceed the
 * block, the context loses its oldest tokens (as lm-evaluation-harness truncates): *context says how
 * many it kept and how many it lost. */
typedef struct {
    int tokens, cut;
} anv_context_use_t;
int anv_score_example(anv_scorer_t *s, const anv_example_t *ex, anv_choice_score_t *scores, anv_context_use_t *context);

/* Text: the tokens of one document ([end-of-text] + its text) are predicted in windows of at most
 * block_size positions, each starting stride after the previous one; every token after the first is
 * scored once, with the longest context its window gives. A window is one unit of parallel work. */
typedef struct {
    size_t doc;        /* index of the document */
    size_t start;      /* first input position */
    size_t first, end; /* scored target positions [first, end) */
    double nll;        /* result: sum of -log p over the scored targets */
} anv_text_window_t;
/* Appends the windows of a document of n tokens; returns their count or -1. */
int anv_text_windows(size_t doc, size_t n, int block_size, int stride, anv_text_window_t **windows, size_t *count,
                     size_t *cap);
int anv_score_window(anv_scorer_t *s, const uint32_t *tokens, anv_text_window_t *w);

/* Every example (scores: n_continuations per example, in order; context: one per example) or
 * every window, in parallel on the CPU's threads with a scorer each (one thread on other devices).
 * progress (may be NULL) is called from one thread, phase "examples" or "windows". */
int anv_score_examples(anv_model_t *m, const anv_tokenizer_t *tok, const anv_examples_t *ex, anv_choice_score_t *scores,
                       anv_context_use_t *context, anv_progress_fn progress, void *progress_ctx);
int anv_score_windows(anv_model_t *m, const anv_tokenizer_t *tok, const uint32_t *const *doc_tokens,
                      anv_text_window_t *windows, size_t n, anv_progress_fn progress, void *progress_ctx);

/* Predictions among n scores: the highest sum, sum per byte (acc_norm) and mean per token. */
typedef enum { ANV_BY_SUM, ANV_BY_BYTES, ANV_BY_TOKENS } anv_choice_rule_t;
int anv_choice_best(const anv_choice_score_t *scores, int n, anv_choice_rule_t rule);
/* Standard error of a mean of k successes in n trials (sample standard deviation / sqrt(n)). */
double anv_mean_stderr(double k, double n);

#endif

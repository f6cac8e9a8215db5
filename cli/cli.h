/* Shared pieces of the anvil command line: the subcommand entry points and a small option parser. */
#ifndef ANVIL_CLI_H
#define ANVIL_CLI_H

#include "anvil/model.h"
#include "anvil/plan.h"
#include "anvil/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

/* Each subcommand gets argv after its name (argv[0] is the subcommand) and returns the exit code. */
int cmd_train(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_scale(int argc, char **argv);
int cmd_dashboard(int argc, char **argv);
int cmd_tokenizer_train(int argc, char **argv); /* `anvil tokenizer train`, dispatched by cmd_tokenizer */
int cmd_scale_run(int argc, char **argv);       /* `anvil scale run`, dispatched by cmd_scale */

/* Fits a law to runs (anvil scale fit), on what their tokens were worth when they repeated `unique`
 * tokens (> 0), prints it with bootstrap intervals and residuals, and writes it as FIT.json to out
 * (unless NULL); errors name source. */
int cli_fit_report(const char *source, const anv_point_t *runs, int n, double unique, int resamples, uint64_t seed,
                   const char *out, anv_fit_t *fit);

/* anvil eval --task: scores the run's model on a task file (see anvil/eval.h). */
int cli_eval_task(const char *run, anv_model_t *m, const anv_tokenizer_t *tok, const char *task, const char *data,
                  long long limit, int stride, int skip_bad, const char *out);

/* From an anvil data directory's meta.json: training and validation tokens and the vocabulary size. */
int cli_data_meta(const char *dir, double *train_tokens, double *val_tokens, int *vocab);
/* Says on f when `who` reads its data more than 1.5 times as often as the runs near its size did (`most`
 * epochs, of lo to hi parameters; most 0: none near): what repeated tokens are worth there is extrapolated. */
void cli_note_epochs(FILE *f, const char *who, double epochs, const char *runs, double most, double lo, double hi);
/* --weights f32 (NULL: the same) or q8: quantizes m's matrices to int8 for inference and prints their size
 * and the logits' error against f32 on a probe. */
int cli_weights(anv_model_t *m, const char *weights);

typedef enum { OPT_STRING, OPT_INT, OPT_LONG, OPT_DOUBLE, OPT_FLAG, OPT_STRINGS, OPT_WORDS } opt_type_t;

typedef struct {
    const char *name; /* "--steps" */
    opt_type_t type;
    void *dst;        /* const char **, int *, long long *, double *, int * (flag), or string_list_t * */
    const char *help; /* one line for --help */
} opt_t;

/* The bounds of a numeric option: a given value outside min..max is refused, naming the option. */
typedef struct {
    const char *name;
    double min, max;
} opt_range_t;
/* --threads takes 0 (all cores) up to 4 threads per core: more only costs memory and contention. */
int cli_max_threads(void);

/* OPT_STRINGS collects every following argument up to the next one starting with "--"; OPT_WORDS
 * too, but it may have none (a flag with optional values): `given` says it was on the command line. */
typedef struct {
    const char **items;
    int count, given;
} string_list_t;

/* Parses argv[1..] against opts; prints usage on --help (returns 1) and a one-line error on bad
 * input (returns -1). `seen` (optional, length n_opts) is set to 1 for each option given. */
int cli_parse(int argc, char **argv, const opt_t *opts, int n_opts, const char *usage, int *seen);
/* cli_parse with bounds: each option named in ranges (n_ranges of them) must lie within its range. */
int cli_parse_bounded(int argc, char **argv, const opt_t *opts, int n_opts, const opt_range_t *ranges, int n_ranges,
                      const char *usage, int *seen);
void cli_usage(const char *usage, const opt_t *opts, int n_opts);
/* Installs handler for SIGINT and SIGTERM (and SIGUSR1 when usr1), reset after the first delivery so
 * that a second signal stops at once. */
void cli_catch_stop_signals(void (*handler)(int), int usr1);
/* Prints "anvil: <last error>" to stderr and returns 1. */
int cli_fail(void);

/* Progress of a long phase on stderr: one rewritten line on a terminal, a plain line every few
 * seconds otherwise. Matches anv_progress_fn; byte phases show MB and MB/s, the others (merges,
 * examples, windows) their count; with an ETA while the total is known. */
typedef struct {
    double start, phase_start, last, last_event;
    char phase[32];
    int tty, open_line;
} cli_progress_t;
void cli_progress_init(cli_progress_t *p);
void cli_progress(void *ctx, const char *phase, uint64_t done, uint64_t total);
void cli_progress_end(cli_progress_t *p); /* ends the line of a terminal */
/* "gpt2" / "cl100k" -> ANV_PRETOK_* (as int, so this header needs no tokenizer.h); -1 with an error. */
int cli_parse_pattern(const char *name, int *pattern);

#endif

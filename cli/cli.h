/* Shared pieces of the anvil command line: the subcommand entry points and a small option parser. */
#ifndef ANVIL_CLI_H
#define ANVIL_CLI_H

#include <stddef.h>

/* Each subcommand gets argv after its name (argv[0] is the subcommand) and returns the exit code. */
int cmd_train(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);

typedef enum { OPT_STRING, OPT_INT, OPT_LONG, OPT_DOUBLE, OPT_FLAG, OPT_STRINGS } opt_type_t;

typedef struct {
    const char *name; /* "--steps" */
    opt_type_t type;
    void *dst;        /* const char **, int *, long long *, double *, int * (flag), or string_list_t * */
    const char *help; /* one line for --help */
} opt_t;

/* OPT_STRINGS collects every following argument up to the next one starting with "--". */
typedef struct {
    const char **items;
    int count;
} string_list_t;

/* Parses argv[1..] against opts; prints usage on --help (returns 1) and a one-line error on bad
 * input (returns -1). `seen` (optional, length n_opts) is set to 1 for each option given. */
int cli_parse(int argc, char **argv, const opt_t *opts, int n_opts, const char *usage, int *seen);
void cli_usage(const char *usage, const opt_t *opts, int n_opts);
/* Prints "anvil: <last error>" to stderr and returns 1. */
int cli_fail(void);

#endif

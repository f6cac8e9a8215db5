/* A small, strict option parser shared by the subcommands. */
#include "cli.h"

#include "anvil/base.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_usage(const char *usage, const opt_t *opts, int n_opts) {
    fprintf(stderr, "usage: %s\n", usage);
    for (int i = 0; i < n_opts; i++) fprintf(stderr, "  %-24s %s\n", opts[i].name, opts[i].help);
}

void cli_catch_stop_signals(void (*handler)(int), int usr1) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = (int)SA_RESETHAND; /* a second signal stops at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (usr1) sigaction(SIGUSR1, &sa, NULL);
}

int cli_fail(void) {
    fprintf(stderr, "anvil: %s\n", anv_last_error());
    return 1;
}

static int parse_number(const char *name, const char *s, opt_type_t type, void *dst) {
    char *end;
    errno = 0;
    if (type == OPT_DOUBLE) {
        double v = strtod(s, &end);
        if (end == s || *end || errno) return anv_error("%s: expected a number, got '%s'", name, s);
        *(double *)dst = v;
        return 0;
    }
    /* Integers accept plain digits and an optional exponent form like 1e6 (exact values only). */
    double v = strtod(s, &end);
    if (end == s || *end || errno || v != (double)(long long)v)
        return anv_error("%s: expected an integer, got '%s'", name, s);
    if (type == OPT_INT) {
        if (v < -2147483648.0 || v > 2147483647.0) return anv_error("%s: %s is out of range", name, s);
        *(int *)dst = (int)v;
    } else {
        *(long long *)dst = (long long)v;
    }
    return 0;
}

int cli_parse(int argc, char **argv, const opt_t *opts, int n_opts, const char *usage, int *seen) {
    if (seen) memset(seen, 0, (size_t)n_opts * sizeof *seen);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            cli_usage(usage, opts, n_opts);
            return 1;
        }
        int k = 0;
        while (k < n_opts && strcmp(opts[k].name, arg) != 0) k++;
        if (k == n_opts) {
            anv_error("unknown option '%s' (see --help)", arg);
            return -1;
        }
        if (seen) seen[k] = 1;
        const opt_t *o = &opts[k];
        if (o->type == OPT_FLAG) {
            *(int *)o->dst = 1;
            continue;
        }
        if (o->type == OPT_STRINGS) {
            string_list_t *list = o->dst;
            int start = i + 1, n = 0;
            while (start + n < argc && strncmp(argv[start + n], "--", 2) != 0) n++;
            if (n == 0) return anv_error("%s needs at least one value", o->name);
            const char **items = anv_realloc(list->items, (size_t)(list->count + n) * sizeof *items, "arguments");
            if (!items) return -1;
            for (int j = 0; j < n; j++) items[list->count + j] = argv[start + j];
            list->items = items;
            list->count += n;
            i += n;
            continue;
        }
        if (i + 1 >= argc) return anv_error("%s needs a value", o->name);
        const char *val = argv[++i];
        if (o->type == OPT_STRING) *(const char **)o->dst = val;
        else if (parse_number(o->name, val, o->type, o->dst) != 0) return -1;
    }
    return 0;
}

/* A small, strict option parser shared by the subcommands. */
#include "cli.h"

#include "anvil/base.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int cli_max_threads(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return 4 * (int)(cores > 0 ? cores : 1);
}

static int parse_number(const opt_t *o, const opt_range_t *range, const char *s) {
    const char *name = o->name;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno) return anv_error("%s: expected a number, got '%s'", name, s);
    if (range && !(v >= range->min && v <= range->max))
        return anv_error("%s %s: out of range (from %.17g to %.17g)", name, s, range->min, range->max);
    void *dst = o->dst;
    opt_type_t type = o->type;
    if (type == OPT_DOUBLE) {
        *(double *)dst = v;
        return 0;
    }
    /* Integers accept plain digits and an optional exponent form like 1e6 (exact values only). */
    if (!(v >= -9.2e18 && v <= 9.2e18) || v != (double)(long long)v)
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
    return cli_parse_bounded(argc, argv, opts, n_opts, NULL, 0, usage, seen);
}

static const opt_range_t *range_of(const char *name, const opt_range_t *ranges, int n_ranges) {
    for (int i = 0; i < n_ranges; i++)
        if (!strcmp(ranges[i].name, name)) return &ranges[i];
    return NULL;
}

int cli_parse_bounded(int argc, char **argv, const opt_t *opts, int n_opts, const opt_range_t *ranges, int n_ranges,
                      const char *usage, int *seen) {
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
        if (o->type == OPT_STRINGS || o->type == OPT_WORDS) {
            string_list_t *list = o->dst;
            int start = i + 1, n = 0;
            while (start + n < argc && strncmp(argv[start + n], "--", 2) != 0) n++;
            list->given = 1;
            if (n == 0 && o->type == OPT_WORDS) continue;
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
        if (o->type == OPT_STRING)
            *(const char **)o->dst = val;
        else if (parse_number(o, range_of(o->name, ranges, n_ranges), val) != 0)
            return -1;
    }
    return 0;
}

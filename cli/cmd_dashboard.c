/* anvil dashboard: a local web page of the runs under a folder (see anvil/dashboard.h). */
#include "cli.h"

#include "anvil/dashboard.h"

#include <signal.h>
#include <stdio.h>

static const char usage[] = "anvil dashboard --runs DIR [--port 8090] [--host 127.0.0.1] [--api-key KEY]";

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static void on_ready(int port, void *ctx) {
    const anv_dashboard_opts_t *o = ctx;
    fprintf(stderr, "dashboard of %s on http://%s:%d/%s\n", o->runs_dir, o->host, port, o->api_key ? "?key=..." : "");
    fflush(stderr);
}

int cmd_dashboard(int argc, char **argv) {
    const char *runs = NULL, *host = "127.0.0.1", *key = NULL;
    int port = 8090;
    const opt_t opts[] = {
        {"--runs", OPT_STRING, &runs, "folder of run directories (searched three levels deep)"},
        {"--port", OPT_INT, &port, "port (default 8090; 0: any free one)"},
        {"--host", OPT_STRING, &host, "IPv4 address to listen on (default 127.0.0.1: this machine only)"},
        {"--api-key", OPT_STRING, &key, "require this key (Authorization: Bearer, or ?key= in the page's address)"},
    };
    const opt_range_t ranges[] = {{"--port", 0, 65535}};
    int rc = cli_parse_bounded(argc, argv, opts, 4, ranges, 1, usage, NULL);
    if (rc != 0) return rc > 0 ? 0 : cli_fail();
    if (!runs) return anv_error("dashboard needs --runs DIR"), cli_fail();
    cli_catch_stop_signals(on_signal, 0);
    anv_dashboard_opts_t o = {runs, host, port, key, &stop_flag, on_ready, NULL};
    o.ctx = &o;
    return anv_dashboard(&o) == 0 ? 0 : cli_fail();
}

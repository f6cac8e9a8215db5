/* `anvil dashboard`: a local web page of the runs under a folder, for watching and comparing them while
 * they train (HTTP by libmicrohttpd; the page needs nothing from outside the machine).
 *
 * A run is a directory holding config.json, at most three levels below runs_dir; its name is its path
 * relative to runs_dir. Endpoints (GET):
 *   /                          the page (HTML, CSS and JavaScript in one document)
 *   /api/runs                  {"runs": [{"name", "config", "state", "eval": [...]}]}: config.json and
 *                              state.json (null until the first checkpoint) as they are, and the
 *                              results `anvil eval --task` saved in RUN/eval
 *   /api/log?run=NAME&from=N   {"next", "reset", "lines": [...]}: the whole lines of RUN/log.jsonl from
 *                              byte N on ("reset": the log was rewritten, as on resume: read from 0)
 * With an api_key every request needs "Authorization: Bearer KEY" or "?key=KEY" (the page passes on
 * the key it was opened with). */
#ifndef ANVIL_DASHBOARD_H
#define ANVIL_DASHBOARD_H

#include "anvil/base.h"

#include <signal.h>

typedef struct {
    const char *runs_dir;
    const char *host; /* IPv4 listen address */
    int port;         /* 0: any free port */
    const char *api_key;
    volatile sig_atomic_t *stop;           /* set asynchronously (signal): return */
    void (*on_ready)(int port, void *ctx); /* called once listening */
    void *ctx;
} anv_dashboard_opts_t;

/* Serves until *stop; -1 with an error when it cannot start (or was built without libmicrohttpd). */
int anv_dashboard(const anv_dashboard_opts_t *o);

extern const char anv_dashboard_page[]; /* the page served at / */

#endif

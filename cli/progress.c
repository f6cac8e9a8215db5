/* Progress lines on stderr for long phases (counting, merges, encoding). */
#include "cli.h"

#include "anvil/base.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

void cli_progress_init(cli_progress_t *p) {
    memset(p, 0, sizeof *p);
    p->start = p->phase_start = p->last = p->last_event = anv_now();
    p->tty = isatty(fileno(stderr));
}

void cli_progress(void *ctx, const char *phase, uint64_t done, uint64_t total) {
    cli_progress_t *p = ctx;
    double now = anv_now();
    int new_phase = strcmp(p->phase, phase) != 0;
    if (new_phase) { /* the phase began when the previous one last reported */
        cli_progress_end(p);
        snprintf(p->phase, sizeof p->phase, "%s", phase);
        p->phase_start = p->last_event;
    }
    p->last_event = now;
    int finished = total && done >= total;
    if (!new_phase && !finished && now - p->last < (p->tty ? 0.2 : 5.0)) return;
    p->last = now;
    double secs = now - p->phase_start > 1e-6 ? now - p->phase_start : 1e-6;
    /* phases that count things rather than bytes */
    int bytes = strcmp(phase, "merges") != 0 && strcmp(phase, "examples") != 0 && strcmp(phase, "windows") != 0;
    char eta[32] = "";
    if (total && done && done < total)
        snprintf(eta, sizeof eta, "  ETA %.0f s", (double)(total - done) * (now - p->phase_start) / (double)done);
    char line[200];
    if (bytes)
        snprintf(line, sizeof line, "%-9s %8.1f / %.1f MB  %6.1f MB/s  %5.1f s%s", phase, done / 1e6, total / 1e6,
                 done / 1e6 / secs, now - p->start, eta);
    else
        snprintf(line, sizeof line, "%-9s %8llu / %llu  %6.1f %s/s  %5.1f s%s", phase, (unsigned long long)done,
                 (unsigned long long)total, done / secs, phase, now - p->start, eta);
    if (p->tty) {
        char bar[23] = "[....................]";
        int full = total ? (int)(20.0 * (done < total ? done : total) / total) : 0;
        memset(bar + 1, '#', (size_t)full);
        fprintf(stderr, "\r%s %s\033[K", total ? bar : "", line);
        p->open_line = 1;
    } else {
        fprintf(stderr, "%s\n", line);
    }
}

void cli_progress_end(cli_progress_t *p) {
    if (p->open_line) fputc('\n', stderr);
    p->open_line = 0;
}

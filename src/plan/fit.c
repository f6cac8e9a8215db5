/* Fitting L(N, D) = E + A / N^alpha + B / D^beta to measured runs as Hoffmann et al. 2022 (Approach 3):
 * in x = (a, b, e, alpha, beta) with A = e^a, B = e^b, E = e^e, minimise the sum over runs of
 * Huber_delta(LSE(a - alpha log N, b - beta log D, e) - log L), delta = 1e-3, by L-BFGS from a grid of
 * starts. Runs that repeated their data are fitted on what their tokens and parameters were worth
 * (repeat.c): D' with log R_D* a sixth variable, N' beyond the law's own U_N. */
#include "anvil/base.h"
#include "anvil/plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HUBER_DELTA 1e-3
#define N_LAW 5  /* a, b, e, alpha, beta */
#define N_VARS 6 /* and log R_D* where it is fitted */

typedef struct {
    int n;
    const double *log_n, *log_l; /* (n) each */
    const double *log_d;         /* (n): of what the tokens were worth, or as read where R_D* is fitted */
    const double *repeats;       /* (n): R_D = D / U_D - 1 where R_D* is fitted, else NULL */
    const int *rows;             /* (n) indices into the logs: a bootstrap resample */
    double excess_decay;         /* R_N* for runs that repeated their data; 0: parameters at face value */
    double log_unique;           /* and log U_D, which sets U_N */
} fit_data_t;

/* The variables of the fit: the law's, and log R_D* where it is fitted. */
static int n_vars(const fit_data_t *fd) { return fd->repeats ? N_VARS : N_LAW; }

/* Huber loss and its derivative. */
static double huber(double r, double *dr) {
    if (fabs(r) <= HUBER_DELTA) {
        *dr = r;
        return 0.5 * r * r;
    }
    *dr = r > 0 ? HUBER_DELTA : -HUBER_DELTA;
    return HUBER_DELTA * (fabs(r) - 0.5 * HUBER_DELTA);
}

/* log N' of a run of log N = log_n under the law x, and d log N' / d(a, b, alpha, beta) in d[4]. U_N is
 * where the law's optimum reads U_D tokens: there alpha A N^-alpha = beta B D^-beta, so
 * log U_N = (log(alpha / beta) + a - b + beta log U_D) / alpha. */
static double log_worth_params(const fit_data_t *fd, const double *x, double log_n, double d[4]) {
    double a = x[0], b = x[1], alpha = x[3], beta = x[4];
    d[0] = d[1] = d[2] = d[3] = 0;
    if (fd->excess_decay <= 0 || alpha <= 0 || beta <= 0) return log_n;
    double log_u = (log(alpha / beta) + a - b + beta * fd->log_unique) / alpha;
    if (!(log_n > log_u)) return log_n;
    double decay = fd->excess_decay, excess = exp(log_n - log_u) - 1.0; /* R_N */
    double worth = anv_repeat_worth(excess, decay);                     /* N' / U_N */
    /* d log N' / d log U_N: 1 - (N / U_N) e^(-R_N / R_N*) / (N' / U_N) */
    double s = 1.0 - exp(log_n - log_u - excess / decay) / worth;
    d[0] = s / alpha;
    d[1] = -s / alpha;
    d[2] = s * (1.0 / alpha - log_u) / alpha;
    d[3] = s * (fd->log_unique - 1.0 / beta) / alpha;
    return log_u + log(worth);
}

/* log D' of run i where R_D* = e^x[5] is fitted, and d log D' / d log R_D* in *d. */
static double log_worth_tokens(const fit_data_t *fd, const double *x, int i, double *d) {
    *d = 0;
    if (!fd->repeats || fd->repeats[i] <= 0) return fd->log_d[i];
    double decay = exp(x[5]), repeats = fd->repeats[i], spent = -expm1(-repeats / decay); /* 1 - e^(-R_D/R_D*) */
    double worth = 1.0 + decay * spent;                                                   /* D' / U_D */
    *d = (decay * spent - repeats * (1.0 - spent)) / worth;
    return fd->log_unique + log(worth);
}

static double objective(void *ctx, const double *x, double *grad) {
    const fit_data_t *fd = ctx;
    double a = x[0], b = x[1], e = x[2], alpha = x[3], beta = x[4], total = 0;
    memset(grad, 0, (size_t)n_vars(fd) * sizeof *grad);
    for (int k = 0; k < fd->n; k++) {
        int i = fd->rows[k];
        double dn[4], dd, log_n = log_worth_params(fd, x, fd->log_n[i], dn), log_d = log_worth_tokens(fd, x, i, &dd);
        double t[3] = {a - alpha * log_n, b - beta * log_d, e};
        double top = fmax(t[0], fmax(t[1], t[2]));
        double w[3], sum = 0;
        for (int j = 0; j < 3; j++) sum += w[j] = exp(t[j] - top);
        double dr, r = top + log(sum) - fd->log_l[i]; /* log L^ - log L */
        total += huber(r, &dr);
        for (int j = 0; j < 3; j++) w[j] *= dr / sum; /* d(huber)/d t_j: the softmax weight times dr */
        grad[0] += w[0] * (1.0 - alpha * dn[0]);
        grad[1] += w[1] - w[0] * alpha * dn[1];
        grad[2] += w[2];
        grad[3] -= w[0] * (log_n + alpha * dn[2]);
        grad[4] -= w[1] * log_d + w[0] * alpha * dn[3];
        if (fd->repeats) grad[5] -= w[1] * beta * dd;
    }
    return total;
}

static const anv_lbfgs_opts_t fit_opts = {.max_iterations = 300, .history = 10, .grad_tol = 1e-10, .rel_tol = 1e-12};

/* Minimises from start (n_vars); keeps the result in best/best_f when it is lower. */
static int fit_from(fit_data_t *fd, const double *start, double *best, double *best_f) {
    double x[N_VARS], v;
    memcpy(x, start, (size_t)n_vars(fd) * sizeof *x);
    if (anv_lbfgs(objective, fd, x, n_vars(fd), &fit_opts, &v) < 0) return -1;
    if (isfinite(v) && v < *best_f) {
        *best_f = v;
        memcpy(best, x, (size_t)n_vars(fd) * sizeof *x);
    }
    return 0;
}

static anv_law_t law_of(const double *x) {
    return (anv_law_t){.E = exp(x[2]), .A = exp(x[0]), .B = exp(x[1]), .alpha = x[3], .beta = x[4]};
}

/* The logs of the runs and the identity row list: one allocation, freed by the caller. For runs that
 * repeated the unique tokens of `repeated` (NULL: none), the parameters at their worth with its R_N*, and
 * the tokens at theirs with its R_D* or, with fit_decay, with R_D* fitted. */
static double *fit_data_init(const anv_point_t *runs, int n, const anv_law_t *repeated, int fit_decay, fit_data_t *fd) {
    double *mem = anv_alloc((size_t)n * (4 * sizeof(double) + sizeof(int)), "fit data");
    if (!mem) return NULL;
    double *log_n = mem, *log_d = mem + n, *log_l = mem + 2 * n, *repeats = mem + 3 * n;
    int *rows = (int *)(mem + 4 * n);
    double unique = repeated ? repeated->unique_tokens : 0;
    for (int i = 0; i < n; i++) {
        log_n[i] = log(runs[i].params);
        log_d[i] =
            log(repeated && !fit_decay ? anv_law_effective_tokens(repeated, runs[i].tokens, unique) : runs[i].tokens);
        log_l[i] = log(runs[i].loss);
        repeats[i] = repeated ? runs[i].tokens / unique - 1.0 : 0;
        rows[i] = i;
    }
    double excess = !repeated ? 0 : repeated->excess_decay > 0 ? repeated->excess_decay : ANV_EXCESS_DECAY;
    *fd = (fit_data_t){.n = n,
                       .log_n = log_n,
                       .log_l = log_l,
                       .log_d = log_d,
                       .repeats = repeated && fit_decay ? repeats : NULL,
                       .rows = rows,
                       .excess_decay = isinf(excess) ? 0 : excess,
                       .log_unique = repeated ? log(unique) : 0};
    return mem;
}

/* R_D* starts from a repeat worth little (3) through Muennighoff et al.'s (15) to one worth almost a
 * fresh token over the epochs of a ladder (75). */
static const double decay_starts[3] = {3.0, 15.0, 75.0};

/* The best fit from the grid of starts; out->law's repeat_decay is the fitted R_D* where it is fitted. */
static int fit_grid(fit_data_t *fd, anv_fit_t *out) {
    double best[N_VARS] = {0}, best_f = INFINITY;
    int starts = 0, rc = 0, decays = fd->repeats ? (int)(sizeof decay_starts / sizeof *decay_starts) : 1;
    for (int ia = 0; ia <= 5 && rc == 0; ia++)
        for (int ib = 0; ib <= 5 && rc == 0; ib++)
            for (int ie = 0; ie <= 4 && rc == 0; ie++)
                for (int ial = 0; ial <= 4 && rc == 0; ial++)
                    for (int ibe = 0; ibe <= 4 && rc == 0; ibe++)
                        for (int id = 0; id < decays && rc == 0; id++, starts++) {
                            double start[N_VARS] = {5.0 * ia,  5.0 * ib,  -1.0 + 0.5 * ie,
                                                    0.5 * ial, 0.5 * ibe, log(decay_starts[id])};
                            rc = fit_from(fd, start, best, &best_f);
                        }
    if (rc != 0) return -1;
    if (!isfinite(best_f)) return anv_error("the fit did not converge from any start");
    *out = (anv_fit_t){law_of(best), best_f, starts};
    if (fd->repeats) out->law.repeat_decay = exp(best[5]);
    return 0;
}

int anv_law_fit(const anv_point_t *points, int n, anv_fit_t *out) {
    if (n < N_LAW) return anv_error("%d points cannot determine a law of %d parameters (need at least 5)", n, N_LAW);
    fit_data_t fd;
    double *mem = fit_data_init(points, n, NULL, 0, &fd);
    if (!mem) return -1;
    int rc = fit_grid(&fd, out);
    anv_free(mem);
    return rc;
}

int anv_law_fit_repeated(const anv_point_t *runs, int n, double unique, anv_fit_t *out) {
    if (n < N_VARS) return anv_error("%d runs cannot determine a law of %d parameters (need at least 6)", n, N_VARS);
    const anv_law_t repeated = {.unique_tokens = unique, .excess_decay = ANV_EXCESS_DECAY};
    fit_data_t fd;
    double *mem = fit_data_init(runs, n, &repeated, 1, &fd);
    if (!mem) return -1;
    int rc = fit_grid(&fd, out);
    anv_free(mem);
    if (rc != 0) return -1;
    out->law.unique_tokens = unique;
    out->law.excess_decay = repeated.excess_decay;
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The 2.5% and 97.5% percentiles of v (n, sorted in place). */
static void interval(double *v, int n, double *lo, double *hi) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *lo = v[(int)floor(0.025 * (n - 1))];
    *hi = v[(int)ceil(0.975 * (n - 1))];
}

int anv_law_bootstrap(const anv_point_t *runs, int n, const anv_law_t *best, int resamples, double flops, uint64_t seed,
                      anv_fit_ci_t *out) {
    if (n < N_LAW || resamples < 2) return anv_error("a bootstrap needs at least 5 points and 2 resamples");
    fit_data_t fd;
    double *mem = fit_data_init(runs, n, best->unique_tokens > 0 ? best : NULL, 0, &fd);
    double *draws = anv_alloc((size_t)resamples * 6 * sizeof(double), "bootstrap fits"); /* (6, resamples) */
    if (!mem || !draws) {
        anv_free(mem);
        anv_free(draws);
        return -1;
    }
    int *rows = (int *)fd.rows;
    anv_rng_t rng;
    anv_rng_seed(&rng, seed);
    double center[N_VARS] = {log(best->A), log(best->B), log(best->E), best->alpha, best->beta};
    int rc = 0;
    for (int r = 0; r < resamples && rc == 0; r++) {
        for (int k = 0; k < n; k++) rows[k] = (int)(anv_rng_u64(&rng) % (uint64_t)n);
        /* The full fit's optimum, two neighbours in the directions the grid steps along, and the optimum
         * with e at -1, 0 and 1: where few runs leave E undetermined (a fit at E near 0, say), a
         * resample's optimum can lie far from the full fit's along it. */
        double x[N_VARS], x_f = INFINITY;
        memcpy(x, center, sizeof x);
        for (int s = -1; s <= 1 && rc == 0; s++) {
            double start[N_VARS] = {center[0] + 2.0 * s, center[1] + 2.0 * s, center[2], center[3] + 0.1 * s,
                                    center[4] + 0.1 * s};
            double start_e[N_VARS] = {center[0], center[1], (double)s, center[3], center[4]};
            rc = fit_from(&fd, start, x, &x_f);
            if (rc == 0) rc = fit_from(&fd, start_e, x, &x_f);
        }
        if (rc == 0 && !isfinite(x_f)) rc = anv_error("a bootstrap fit did not converge");
        if (rc != 0) break;
        anv_law_t law = law_of(x);
        anv_optimum_t opt;
        anv_law_optimum_for_flops(&law, flops, &opt);
        double v[6] = {law.E, law.A, law.B, law.alpha, law.beta, opt.params};
        for (int j = 0; j < 6; j++) draws[j * resamples + r] = v[j];
    }
    if (rc == 0) {
        for (int j = 0; j < N_LAW; j++) interval(draws + j * resamples, resamples, &out->lo[j], &out->hi[j]);
        interval(draws + N_LAW * resamples, resamples, &out->n_opt_lo, &out->n_opt_hi);
    }
    anv_free(draws);
    anv_free(mem);
    return rc;
}

int anv_fit_json(const anv_fit_t *fit, const anv_fit_ci_t *ci, const anv_point_t *runs, int n, anv_buf_t *out) {
    const anv_law_t *law = &fit->law;
    const char *names[5] = {"E", "A", "B", "alpha", "beta"};
    int rc = anv_buf_printf(out, "{\n  \"E\": %.17g,\n  \"A\": %.17g,\n  \"B\": %.17g,\n  \"alpha\": %.17g,\n", law->E,
                            law->A, law->B, law->alpha);
    rc |= anv_buf_printf(out, "  \"beta\": %.17g,\n", law->beta);
    if (law->unique_tokens > 0)
        rc |=
            anv_buf_printf(out, "  \"unique_tokens\": %.17g,\n  \"repeat_decay\": %.17g,\n  \"excess_decay\": %.17g,\n",
                           law->unique_tokens, law->repeat_decay > 0 ? law->repeat_decay : ANV_REPEAT_DECAY,
                           law->excess_decay > 0 ? law->excess_decay : ANV_EXCESS_DECAY);
    rc |= anv_buf_printf(out, "  \"objective\": %.17g,\n  \"points\": %d,\n  \"ci95\": {", fit->objective, n);
    for (int j = 0; j < 5; j++)
        rc |= anv_buf_printf(out, "%s\"%s\": [%.17g, %.17g]", j ? ", " : "", names[j], ci->lo[j], ci->hi[j]);
    rc |= anv_buf_printf(out, "},\n  \"runs\": [");
    for (int i = 0; i < n; i++)
        rc |= anv_buf_printf(out, "%s\n    [%.17g, %.17g, %.17g]", i ? "," : "", runs[i].params, runs[i].tokens,
                             runs[i].loss);
    return rc | anv_buf_printf(out, "\n  ]\n}\n");
}

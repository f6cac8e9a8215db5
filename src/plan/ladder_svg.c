/* The plots of a ladder and the law fitted to it:
 *   isoflop.svg     loss against parameters at each compute level: the measured runs, the law's
 *                   curve along the level, its minimum, and the frontier of minima across budgets;
 *   prediction.svg  the law's loss against each run's measured loss, with the diagonal. */
#include "anvil/chart.h"
#include "anvil/plan.h"

#include <math.h>
#include <stdio.h>

#define MAX_LEVELS 8
#define CURVE_POINTS 64

static const char *const palette[MAX_LEVELS] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                                "#9467bd", "#8c564b", "#e377c2", "#17becf"};

typedef struct {
    double n[MAX_LEVELS][64], loss[MAX_LEVELS][64], predicted[MAX_LEVELS][64];
    int count[MAX_LEVELS];
    double curve_n[MAX_LEVELS][CURVE_POINTS], curve_loss[MAX_LEVELS][CURVE_POINTS];
    double min_n[MAX_LEVELS], min_loss[MAX_LEVELS];
    double frontier_n[CURVE_POINTS], frontier_loss[CURVE_POINTS];
    char label[MAX_LEVELS][48];
} plot_data_t;

int anv_ladder_plots(const char *dir, const anv_ladder_run_t *runs, const double *loss, int n, const anv_law_t *law) {
    int levels = 0;
    for (int i = 0; i < n; i++) levels = runs[i].level + 1 > levels ? runs[i].level + 1 : levels;
    if (levels > MAX_LEVELS) return anv_error("%s: the plots show at most %d compute levels", dir, MAX_LEVELS);
    plot_data_t *d = anv_calloc(sizeof *d, "ladder plots");
    if (!d) return -1;
    double unique = law->unique_tokens; /* a law fitted to repeated runs: tokens at what they were worth */
    double c_lo = INFINITY, c_hi = 0, loss_lo = INFINITY, loss_hi = 0;
    for (int i = 0; i < n; i++) {
        int l = runs[i].level, k = d->count[l];
        if (k == 64) continue;
        d->n[l][k] = runs[i].params;
        d->loss[l][k] = loss[i];
        d->predicted[l][k] = anv_law_loss_repeated(law, runs[i].params, runs[i].flops / (6.0 * runs[i].params), unique);
        d->count[l]++;
        c_lo = fmin(c_lo, runs[i].flops), c_hi = fmax(c_hi, runs[i].flops);
        loss_lo = fmin(loss_lo, fmin(loss[i], d->predicted[l][k]));
        loss_hi = fmax(loss_hi, fmax(loss[i], d->predicted[l][k]));
    }
    anv_chart_series_t iso[3 * MAX_LEVELS + 1], pred[MAX_LEVELS + 1];
    int n_iso = 0, n_pred = 0;
    for (int l = 0; l < levels; l++) {
        if (d->count[l] == 0) continue;
        double flops = 0, lo = INFINITY, hi = 0;
        for (int i = 0; i < n; i++)
            if (runs[i].level == l) flops = runs[i].flops, lo = fmin(lo, runs[i].params), hi = fmax(hi, runs[i].params);
        lo /= 1.5, hi *= 1.5;
        for (int k = 0; k < CURVE_POINTS; k++) {
            double p = lo * pow(hi / lo, k / (CURVE_POINTS - 1.0));
            d->curve_n[l][k] = p;
            d->curve_loss[l][k] = anv_law_loss_repeated(law, p, flops / (6.0 * p), unique);
        }
        anv_optimum_t opt;
        anv_law_optimum_repeated(law, flops, unique, &opt);
        d->min_n[l] = opt.params, d->min_loss[l] = opt.loss;
        snprintf(d->label[l], sizeof d->label[l], "C = %.3g FLOPs", flops);
        const char *color = palette[l];
        iso[n_iso++] =
            (anv_chart_series_t){d->n[l], d->loss[l], (size_t)d->count[l], d->label[l], color, ANV_CHART_POINTS};
        iso[n_iso++] =
            (anv_chart_series_t){d->curve_n[l], d->curve_loss[l], CURVE_POINTS, NULL, color, ANV_CHART_DASHED};
        pred[n_pred++] = (anv_chart_series_t){d->loss[l],  d->predicted[l], (size_t)d->count[l],
                                              d->label[l], color,           ANV_CHART_POINTS};
    }
    for (int k = 0; k < CURVE_POINTS; k++) { /* the frontier from half the smallest to twice the largest budget */
        anv_optimum_t opt;
        anv_law_optimum_repeated(law, c_lo / 2 * pow(4 * c_hi / c_lo, k / (CURVE_POINTS - 1.0)), unique, &opt);
        d->frontier_n[k] = opt.params, d->frontier_loss[k] = opt.loss;
    }
    iso[n_iso++] =
        (anv_chart_series_t){d->frontier_n, d->frontier_loss, CURVE_POINTS, "fitted frontier", "#444", ANV_CHART_LINE};
    iso[n_iso++] =
        (anv_chart_series_t){d->min_n, d->min_loss, (size_t)levels, "law's minimum", "#000", ANV_CHART_POINTS};
    double diagonal[2] = {loss_lo, loss_hi};
    pred[n_pred++] = (anv_chart_series_t){diagonal, diagonal, 2, "predicted = measured", "#888", ANV_CHART_DASHED};

    char path[4200];
    const anv_chart_t iso_chart = {"IsoFLOP ladder: validation loss against model size",
                                   "parameters",
                                   "validation loss (nats per token)",
                                   1,
                                   0,
                                   1};
    const anv_chart_t pred_chart = {
        "Fitted law against measured runs", "measured validation loss", "the law's loss", 0, 0, 0};
    int rc = anv_path_join(path, sizeof path, dir, "isoflop.svg");
    if (rc == 0) rc = anv_chart_write(path, &iso_chart, iso, n_iso);
    if (rc == 0) rc = anv_path_join(path, sizeof path, dir, "prediction.svg");
    if (rc == 0) rc = anv_chart_write(path, &pred_chart, pred, n_pred);
    anv_free(d);
    return rc;
}

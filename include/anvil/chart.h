/* Self-contained SVG charts: series of (x, y) points drawn as lines or markers on linear or log10
 * axes, with ticks, axis labels and a legend. Used for loss curves and scaling-law plots. */
#ifndef ANVIL_CHART_H
#define ANVIL_CHART_H

#include "anvil/base.h"

typedef enum { ANV_CHART_LINE, ANV_CHART_POINTS, ANV_CHART_DASHED } anv_chart_style_t;

typedef struct {
    const double *x, *y; /* n points; non-finite ones (and non-positive ones on a log axis) are skipped */
    size_t n;
    const char *label; /* in the legend; NULL: not listed */
    const char *color; /* an SVG colour, e.g. "#1f77b4" */
    anv_chart_style_t style;
} anv_chart_series_t;

typedef struct {
    const char *title, *x_label, *y_label;
    int log_x, log_y;
    int count_x; /* x tick labels as counts: 1.5k, 2M, 3B */
} anv_chart_t;

/* Appends an SVG document of the chart to out. */
int anv_chart_svg(const anv_chart_t *c, const anv_chart_series_t *series, int n, anv_buf_t *out);
/* The same, written atomically to path. */
int anv_chart_write(const char *path, const anv_chart_t *c, const anv_chart_series_t *series, int n);

#endif

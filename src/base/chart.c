/* SVG charts: axes fitted to the data (1-2-5 ticks on linear axes, decades or 1-2-5 multiples on log
 * axes), then each series as a polyline or markers, then the legend. */
#include "anvil/chart.h"

#include <math.h>

#define W 800
#define H 480
#define ML 70 /* margins: left, right, top, bottom */
#define MR 20
#define MT 40
#define MB 60
#define MAX_LINE_POINTS 2000 /* longer lines are thinned evenly */
#define MAX_TICKS 24

typedef struct {
    int log;
    double lo, hi; /* in axis units: log10 of the value on a log axis */
    double ticks[MAX_TICKS];
    int n_ticks;
} axis_t;

static int usable(int log_axis, double v) { return isfinite(v) && (!log_axis || v > 0); }
static double to_axis(const axis_t *a, double v) { return a->log ? log10(v) : v; }

/* A 1-2-5 step giving about `want` intervals over range. */
static double tick_step(double range, int want) {
    double raw = range / want, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return mag * (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10);
}

static void fit_axis(axis_t *a, int log_axis, double min, double max) {
    a->log = log_axis;
    a->n_ticks = 0;
    if (!(min <= max)) min = log_axis ? 1 : 0, max = log_axis ? 10 : 1;
    if (!log_axis) {
        double step = tick_step(max - min > 0 ? max - min : fabs(max) > 0 ? fabs(max) : 1, 6);
        a->lo = floor(min / step) * step;
        a->hi = ceil(max / step) * step;
        if (a->hi <= a->lo) a->hi = a->lo + step;
        for (double v = a->lo; v <= a->hi + step / 2 && a->n_ticks < MAX_TICKS; v += step)
            a->ticks[a->n_ticks++] = fabs(v) < step / 1e6 ? 0.0 : v;
        return;
    }
    double lo = log10(min), hi = log10(max);
    if (hi - lo >= 2) { /* whole decades */
        a->lo = floor(lo);
        a->hi = ceil(hi);
        int every = (int)ceil((a->hi - a->lo) / 8);
        for (double e = a->lo; e <= a->hi && a->n_ticks < MAX_TICKS; e += every) a->ticks[a->n_ticks++] = e;
        return;
    }
    double pad = hi - lo > 0 ? 0.05 * (hi - lo) : 0.05; /* 1, 2 and 5 times powers of ten inside */
    a->lo = lo - pad;
    a->hi = hi + pad;
    const double mult[3] = {1, 2, 5};
    for (double e = floor(a->lo); e <= a->hi; e++)
        for (int k = 0; k < 3; k++) {
            double t = e + log10(mult[k]);
            if (t >= a->lo && t <= a->hi && a->n_ticks < MAX_TICKS) a->ticks[a->n_ticks++] = t;
        }
    if (a->n_ticks < 2) { /* a narrow range: linear steps of the value */
        a->n_ticks = 0;
        double step = tick_step(max - min > 0 ? max - min : max, 4);
        for (double v = ceil(pow(10, a->lo) / step) * step; v <= pow(10, a->hi) && a->n_ticks < MAX_TICKS; v += step)
            a->ticks[a->n_ticks++] = log10(v);
    }
}

static void format_value(char *buf, size_t n, double v, int count) {
    const double scale[4] = {1e12, 1e9, 1e6, 1e3};
    const char *suffix[4] = {"T", "B", "M", "k"};
    if (count)
        for (int i = 0; i < 4; i++)
            if (fabs(v) >= scale[i]) {
                snprintf(buf, n, "%.3g%s", v / scale[i], suffix[i]);
                return;
            }
    snprintf(buf, n, "%.4g", v);
}

int anv_chart_svg(const anv_chart_t *c, const anv_chart_series_t *series, int n, anv_buf_t *b) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int s = 0; s < n; s++)
        for (size_t i = 0; i < series[s].n; i++) {
            double x = series[s].x[i], y = series[s].y[i];
            if (!usable(c->log_x, x) || !usable(c->log_y, y)) continue;
            x0 = fmin(x0, x), x1 = fmax(x1, x), y0 = fmin(y0, y), y1 = fmax(y1, y);
        }
    axis_t ax, ay;
    fit_axis(&ax, c->log_x, x0, x1);
    fit_axis(&ay, c->log_y, y0, y1);
    const double pw = W - ML - MR, ph = H - MT - MB;
#define PX(v) (ML + ((v)-ax.lo) / (ax.hi - ax.lo) * pw)
#define PY(v) (MT + (ay.hi - (v)) / (ay.hi - ay.lo) * ph)
    int rc = anv_buf_printf(b,
                            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
                            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
                            "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">%s</text>\n",
                            W, H, W, H, W / 2, c->title);
    char label[32];
    for (int i = 0; i < ax.n_ticks; i++) {
        double t = ax.ticks[i];
        format_value(label, sizeof label, ax.log ? pow(10, t) : t, c->count_x);
        rc |= anv_buf_printf(b,
                             "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e5e5e5\"/>"
                             "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                             PX(t), MT, PX(t), H - MB, PX(t), H - MB + 18, label);
    }
    for (int i = 0; i < ay.n_ticks; i++) {
        double t = ay.ticks[i];
        format_value(label, sizeof label, ay.log ? pow(10, t) : t, 0);
        rc |= anv_buf_printf(b,
                             "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
                             "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                             ML, PY(t), W - MR, PY(t), ML - 6, PY(t) + 4, label);
    }
    rc |= anv_buf_printf(b,
                         "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"black\"/>\n"
                         "<text x=\"%.0f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n"
                         "<text transform=\"translate(18 %.0f) rotate(-90)\" text-anchor=\"middle\">%s</text>\n",
                         ML, MT, pw, ph, ML + pw / 2, H - 14, c->x_label, MT + ph / 2, c->y_label);
    for (int s = 0; s < n; s++) {
        const anv_chart_series_t *se = &series[s];
        if (se->style == ANV_CHART_POINTS) {
            for (size_t i = 0; i < se->n; i++)
                if (usable(c->log_x, se->x[i]) && usable(c->log_y, se->y[i]))
                    rc |= anv_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n",
                                         PX(to_axis(&ax, se->x[i])), PY(to_axis(&ay, se->y[i])), se->color);
            continue;
        }
        size_t stride = (se->n + MAX_LINE_POINTS - 1) / MAX_LINE_POINTS;
        rc |= anv_buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"%s points=\"", se->color,
                             se->style == ANV_CHART_DASHED ? " stroke-dasharray=\"6 4\"" : "");
        for (size_t i = 0; i < se->n; i += stride ? stride : 1)
            if (usable(c->log_x, se->x[i]) && usable(c->log_y, se->y[i]))
                rc |= anv_buf_printf(b, "%.1f,%.1f ", PX(to_axis(&ax, se->x[i])), PY(to_axis(&ay, se->y[i])));
        rc |= anv_buf_puts(b, "\"/>\n");
    }
#undef PX
#undef PY
    int row = 0;
    for (int s = 0; s < n; s++) {
        if (!series[s].label) continue;
        int y = MT + 16 + 18 * row++, x = W - MR - 190;
        if (series[s].style == ANV_CHART_POINTS)
            rc |= anv_buf_printf(b, "<circle cx=\"%d\" cy=\"%d\" r=\"4\" fill=\"%s\"/>", x + 10, y, series[s].color);
        else
            rc |= anv_buf_printf(
                b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"%s/>", x, y, x + 20,
                y, series[s].color, series[s].style == ANV_CHART_DASHED ? " stroke-dasharray=\"6 4\"" : "");
        rc |= anv_buf_printf(b, "<text x=\"%d\" y=\"%d\">%s</text>\n", x + 26, y + 4, series[s].label);
    }
    rc |= anv_buf_puts(b, "</svg>\n");
    return rc;
}

int anv_chart_write(const char *path, const anv_chart_t *c, const anv_chart_series_t *series, int n) {
    anv_buf_t b = {0};
    int rc = anv_chart_svg(c, series, n, &b);
    if (rc == 0) rc = anv_write_file_atomic(path, b.data, b.len);
    anv_buf_free(&b);
    return rc;
}

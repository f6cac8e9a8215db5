/* loss.svg: train loss (line) and validation loss (points) against tokens, a self-contained SVG. */
#include "anvil/json.h"
#include "anvil/trainer.h"

#include <math.h>
#include <string.h>

#define W 800
#define H 480
#define ML 70 /* margins: left, right, top, bottom */
#define MR 20
#define MT 40
#define MB 60
#define MAX_POINTS 2000 /* train points drawn; longer logs are thinned evenly */

typedef struct {
    double *x, *y;
    size_t n, cap;
} series_t;

static int push(series_t *s, double x, double y) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        double *nx = anv_realloc(s->x, cap * sizeof *nx, "plot points");
        if (!nx) return -1;
        s->x = nx;
        double *ny = anv_realloc(s->y, cap * sizeof *ny, "plot points");
        if (!ny) return -1;
        s->y = ny;
        s->cap = cap;
    }
    s->x[s->n] = x;
    s->y[s->n++] = y;
    return 0;
}

static int read_log(const char *path, series_t *train, series_t *val) {
    char *text;
    size_t len;
    if (anv_read_file(path, &text, &len) != 0) return -1;
    int rc = 0;
    for (size_t at = 0; rc == 0 && at < len;) {
        char *nl = memchr(text + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
        anv_json_doc_t *doc;
        if (n && anv_json_parse(text + at, n, path, &doc) == 0) {
            const anv_json_t *root = anv_json_root(doc), *tok = anv_json_get(root, "tokens"),
                             *loss = anv_json_get(root, "loss"), *vl = anv_json_get(root, "val_loss");
            if (tok && tok->type == ANV_JSON_NUMBER) {
                if (loss && loss->type == ANV_JSON_NUMBER && isfinite(loss->number))
                    rc = push(train, tok->number, loss->number);
                if (vl && vl->type == ANV_JSON_NUMBER && isfinite(vl->number)) rc = push(val, tok->number, vl->number);
            }
            anv_json_free(doc);
        }
        at += n + 1;
    }
    anv_free(text);
    return rc;
}

/* A 1-2-5 tick step giving about `want` intervals over range. */
static double tick_step(double range, int want) {
    double raw = range / want, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return mag * (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10);
}

static void format_tokens(char *buf, size_t n, double v) {
    if (v >= 1e9)
        snprintf(buf, n, "%gB", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, n, "%gM", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, n, "%gk", v / 1e3);
    else
        snprintf(buf, n, "%g", v);
}

static int plot(anv_buf_t *b, const series_t *train, const series_t *val) {
    double x1 = 1, y0 = INFINITY, y1 = -INFINITY;
    const series_t *all[2] = {train, val};
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < all[s]->n; i++) {
            x1 = fmax(x1, all[s]->x[i]);
            y0 = fmin(y0, all[s]->y[i]);
            y1 = fmax(y1, all[s]->y[i]);
        }
    if (!(y0 <= y1)) y0 = 0, y1 = 1;
    double xs = tick_step(x1, 6), ys = tick_step(y1 - y0 > 0 ? y1 - y0 : 1, 6);
    x1 = ceil(x1 / xs) * xs;
    y0 = floor(y0 / ys) * ys;
    y1 = ceil(y1 / ys) * ys;
    if (y1 <= y0) y1 = y0 + ys;
    const double pw = W - ML - MR, ph = H - MT - MB;
#define PX(v) (ML + (v) / x1 * pw)
#define PY(v) (MT + (y1 - (v)) / (y1 - y0) * ph)
    int rc = anv_buf_printf(b,
                            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
                            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
                            "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">Training loss</text>\n",
                            W, H, W, H, W / 2);
    char label[32];
    for (double v = 0; v <= x1 + xs / 2; v += xs) {
        format_tokens(label, sizeof label, v);
        rc |= anv_buf_printf(b,
                             "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e5e5e5\"/>"
                             "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                             PX(v), MT, PX(v), H - MB, PX(v), H - MB + 18, label);
    }
    for (double v = y0; v <= y1 + ys / 2; v += ys)
        rc |= anv_buf_printf(b,
                             "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
                             "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                             ML, PY(v), W - MR, PY(v), ML - 6, PY(v) + 4, fabs(v) < ys / 1e6 ? 0.0 : v);
    rc |= anv_buf_printf(b,
                         "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"black\"/>\n"
                         "<text x=\"%.0f\" y=\"%d\" text-anchor=\"middle\">tokens</text>\n"
                         "<text transform=\"translate(18 %.0f) rotate(-90)\" text-anchor=\"middle\">"
                         "loss (nats per token)</text>\n",
                         ML, MT, pw, ph, ML + pw / 2, H - 14, MT + ph / 2);
    if (train->n) {
        size_t stride = (train->n + MAX_POINTS - 1) / MAX_POINTS;
        rc |= anv_buf_puts(b, "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"");
        for (size_t i = 0; i < train->n; i += stride)
            rc |= anv_buf_printf(b, "%.1f,%.1f ", PX(train->x[i]), PY(train->y[i]));
        rc |= anv_buf_puts(b, "\"/>\n");
    }
    for (size_t i = 0; i < val->n; i++)
        rc |= anv_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#d62728\"/>\n", PX(val->x[i]),
                             PY(val->y[i]));
    rc |= anv_buf_printf(
        b,
        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#1f77b4\" stroke-width=\"2\"/>"
        "<text x=\"%d\" y=\"%d\">train</text>\n"
        "<circle cx=\"%d\" cy=\"%d\" r=\"4\" fill=\"#d62728\"/><text x=\"%d\" y=\"%d\">validation</text>\n"
        "</svg>\n",
        W - MR - 170, MT + 16, W - MR - 150, MT + 16, W - MR - 144, MT + 20, W - MR - 80, MT + 16, W - MR - 72,
        MT + 20);
#undef PX
#undef PY
    return rc;
}

int anv_loss_svg_write(const char *log_path, const char *svg_path) {
    series_t train = {0}, val = {0};
    anv_buf_t b = {0};
    int rc = read_log(log_path, &train, &val);
    if (rc == 0) rc = plot(&b, &train, &val);
    if (rc == 0) rc = anv_write_file_atomic(svg_path, b.data, b.len);
    anv_free(train.x);
    anv_free(train.y);
    anv_free(val.x);
    anv_free(val.y);
    anv_buf_free(&b);
    return rc;
}

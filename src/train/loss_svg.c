/* loss.svg: train loss (line) and validation loss (points) against tokens, a self-contained SVG. */
#include "anvil/chart.h"
#include "anvil/json.h"
#include "anvil/trainer.h"

#include <math.h>
#include <string.h>

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

int anv_loss_svg_write(const char *log_path, const char *svg_path) {
    series_t train = {0}, val = {0};
    int rc = read_log(log_path, &train, &val);
    const anv_chart_t chart = {"Training loss", "tokens", "loss (nats per token)", 0, 0, 1};
    const anv_chart_series_t series[2] = {{train.x, train.y, train.n, "train", "#1f77b4", ANV_CHART_LINE},
                                          {val.x, val.y, val.n, "validation", "#d62728", ANV_CHART_POINTS}};
    if (rc == 0) rc = anv_chart_write(svg_path, &chart, series, 2);
    anv_free(train.x);
    anv_free(train.y);
    anv_free(val.x);
    anv_free(val.y);
    return rc;
}

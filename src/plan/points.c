/* Measured runs for a fit: a CSV "params,tokens,loss" with one run per line, or the runs a FIT.json keeps. */
#include "anvil/base.h"
#include "anvil/json.h"
#include "anvil/plan.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The line [p, end) without surrounding blanks (and a trailing \r) as [*p, *end). */
static void trim(const char **p, const char **end) {
    while (*p < *end && isspace((unsigned char)**p)) (*p)++;
    while (*end > *p && isspace((unsigned char)(*end)[-1])) (*end)--;
}

static const char *const column_names[3] = {"params", "tokens", "loss"};

/* Parses "N,D,L" into v[3], each a positive finite number. */
static int parse_row(const char *p, const char *end, const char *path, int line, double v[3]) {
    for (int k = 0; k < 3; k++) {
        const char *field_end = p;
        while (field_end < end && *field_end != ',') field_end++;
        if (k < 2 && field_end == end)
            return anv_error("%s: line %d: expected 3 values (params,tokens,loss), got %d", path, line, k + 1);
        const char *a = p, *b = field_end;
        trim(&a, &b);
        if (a == b) return anv_error("%s: line %d: %s is missing", path, line, column_names[k]);
        char buf[64], *stop;
        size_t len = (size_t)(b - a);
        if (len >= sizeof buf) return anv_error("%s: line %d: %s is not a number", path, line, column_names[k]);
        memcpy(buf, a, len);
        buf[len] = 0;
        errno = 0;
        v[k] = strtod(buf, &stop);
        if (*stop || errno || !isfinite(v[k]))
            return anv_error("%s: line %d: %s '%s' is not a number", path, line, column_names[k], buf);
        if (!(v[k] > 0)) return anv_error("%s: line %d: %s %s must be positive", path, line, column_names[k], buf);
        p = field_end + 1;
        if (k == 2 && field_end != end)
            return anv_error("%s: line %d: expected 3 values (params,tokens,loss), got more", path, line);
    }
    return 0;
}

int anv_points_load(const char *path, anv_point_t **points, int *n) {
    char *text;
    size_t len;
    if (anv_read_file(path, &text, &len) != 0) return -1;
    anv_point_t *rows = NULL;
    int count = 0, capacity = 0, line = 0, header = 0, rc = 0;
    for (const char *p = text; rc == 0 && p < text + len;) {
        const char *end = memchr(p, '\n', (size_t)(text + len - p)), *next;
        if (!end) end = text + len;
        next = end + 1;
        line++;
        const char *a = p, *b = end;
        trim(&a, &b);
        p = next;
        if (a == b) continue;
        if (!header) {
            header = 1;
            if ((size_t)(b - a) != strlen("params,tokens,loss") || strncmp(a, "params,tokens,loss", (size_t)(b - a)))
                rc = anv_error("%s: line %d: expected the header 'params,tokens,loss'", path, line);
            continue;
        }
        double v[3];
        if ((rc = parse_row(a, b, path, line, v)) != 0) break;
        if (count == capacity) {
            capacity = capacity ? 2 * capacity : 64;
            anv_point_t *grown = anv_realloc(rows, (size_t)capacity * sizeof *rows, "fit points");
            if (!grown) {
                rc = -1;
                break;
            }
            rows = grown;
        }
        rows[count++] = (anv_point_t){v[0], v[1], v[2]};
    }
    anv_free(text);
    if (rc == 0 && !header) rc = anv_error("%s: empty (expected the header 'params,tokens,loss' and runs)", path);
    if (rc != 0) {
        anv_free(rows);
        return -1;
    }
    *points = rows;
    *n = count;
    return 0;
}

int anv_fit_runs_load(const char *path, anv_point_t **runs, int *n) {
    *runs = NULL;
    *n = 0;
    anv_json_doc_t *doc;
    if (anv_json_parse_file(path, &doc) != 0) return -1;
    const anv_json_t *list = anv_json_get(anv_json_root(doc), "runs");
    int rc = 0;
    if (list && list->type != ANV_JSON_ARRAY)
        rc = anv_error("%s: \"runs\" must be an array of [params, tokens, loss]", path);
    if (rc == 0 && list && list->len > 0 && !(*runs = anv_alloc(list->len * sizeof **runs, "fitted runs"))) rc = -1;
    for (size_t i = 0; rc == 0 && list && i < list->len; i++) {
        const anv_json_t *r = &list->items[i];
        double v[3];
        for (int k = 0; k < 3 && rc == 0; k++) {
            v[k] = r->type == ANV_JSON_ARRAY && r->len == 3 && r->items[k].type == ANV_JSON_NUMBER ? r->items[k].number
                                                                                                   : NAN;
            if (!(isfinite(v[k]) && v[k] > 0))
                rc = anv_error("%s: runs[%zu]: expected [params, tokens, loss], each a positive number", path, i);
        }
        if (rc == 0) (*runs)[(*n)++] = (anv_point_t){v[0], v[1], v[2]};
    }
    anv_json_free(doc);
    if (rc != 0) {
        anv_free(*runs);
        *runs = NULL;
        *n = 0;
    }
    return rc;
}

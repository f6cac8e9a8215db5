/* L-BFGS (Nocedal & Wright, "Numerical Optimization", algorithms 7.4 and 7.5) with a line search for
 * the strong Wolfe conditions (their algorithms 3.5 and 3.6, zooming by bisection safeguarded
 * quadratic interpolation). */
#include "anvil/base.h"
#include "anvil/plan.h"

#include <math.h>
#include <string.h>

#define WOLFE_C1 1e-4 /* sufficient decrease */
#define WOLFE_C2 0.9  /* curvature, the usual choice for quasi-Newton directions */
#define LINE_SEARCH_TRIES 30

static double dot(const double *a, const double *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* The objective along x + t d: writes the point into xt and its gradient into g; *slope = g . d. */
typedef struct {
    anv_objective_fn f;
    void *ctx;
    const double *x, *d;
    double *xt, *g;
    int n;
} line_t;

static double line_eval(line_t *l, double t, double *slope) {
    for (int i = 0; i < l->n; i++) l->xt[i] = l->x[i] + t * l->d[i];
    double v = l->f(l->ctx, l->xt, l->g);
    *slope = dot(l->g, l->d, l->n);
    return v;
}

/* A step between lo and hi: the minimiser of the quadratic through (lo, f_lo) with slope s_lo and
 * (hi, f_hi), kept in the middle 80% of the interval (else its midpoint). */
static double interpolate(double lo, double f_lo, double s_lo, double hi, double f_hi) {
    double h = hi - lo, denom = 2.0 * (f_hi - f_lo - s_lo * h);
    double t = denom != 0 ? lo - s_lo * h * h / denom : lo + 0.5 * h;
    double a = fmin(lo, hi), b = fmax(lo, hi), margin = 0.1 * (b - a);
    return (t > a + margin && t < b - margin && isfinite(t)) ? t : lo + 0.5 * h;
}

/* Algorithm 3.6: the interval (lo, hi) holds a step satisfying the strong Wolfe conditions. */
static double zoom(line_t *l, double f0, double s0, double lo, double f_lo, double s_lo, double hi, double f_hi,
                   double *ft) {
    double t = lo;
    for (int k = 0; k < LINE_SEARCH_TRIES; k++) {
        t = interpolate(lo, f_lo, s_lo, hi, f_hi);
        double s, v = line_eval(l, t, &s);
        if (v > f0 + WOLFE_C1 * t * s0 || v >= f_lo) {
            hi = t, f_hi = v;
        } else {
            if (fabs(s) <= -WOLFE_C2 * s0) return *ft = v, t;
            if (s * (hi - lo) >= 0) hi = lo, f_hi = f_lo;
            lo = t, f_lo = v, s_lo = s;
        }
    }
    /* No Wolfe step found: settle for the best point seen (0 when nothing decreased). */
    double s;
    *ft = lo > 0 ? line_eval(l, lo, &s) : f0;
    return lo;
}

/* Algorithm 3.5: a step along d from x (objective f0, slope s0 < 0), 0 when none decreases f. */
static double line_search(line_t *l, double f0, double s0, double t1, double *ft) {
    double prev = 0, f_prev = f0, s_prev = s0, t = t1;
    for (int k = 0; k < LINE_SEARCH_TRIES; k++) {
        double s, v = line_eval(l, t, &s);
        if (!isfinite(v) || v > f0 + WOLFE_C1 * t * s0 || (k > 0 && v >= f_prev)) {
            if (!isfinite(v)) v = INFINITY;
            return zoom(l, f0, s0, prev, f_prev, s_prev, t, v, ft);
        }
        if (fabs(s) <= -WOLFE_C2 * s0) return *ft = v, t;
        if (s >= 0) return zoom(l, f0, s0, t, v, s, prev, f_prev, ft);
        prev = t, f_prev = v, s_prev = s;
        t *= 2.0;
    }
    double s;
    *ft = line_eval(l, prev, &s); /* the last step that still decreased f */
    return prev;
}

int anv_lbfgs(anv_objective_fn f, void *ctx, double *x, int n, const anv_lbfgs_opts_t *opts, double *fx) {
    int m = opts->history;
    /* g, d, xt, gt: n each; s, y: m n each (the correction pairs, a ring); rho, alpha: m each. */
    double *mem = anv_alloc((size_t)(4 * n + 2 * m * n + 2 * m) * sizeof(double), "L-BFGS state");
    if (!mem) return -1;
    double *g = mem, *d = g + n, *xt = d + n, *gt = xt + n, *s = gt + n, *y = s + m * n, *rho = y + m * n,
           *alpha = rho + m;
    double v = f(ctx, x, g);
    int stored = 0, newest = -1, iter = 0;
    for (; iter < opts->max_iterations; iter++) {
        double gmax = 0;
        for (int i = 0; i < n; i++) gmax = fmax(gmax, fabs(g[i]));
        if (!(gmax > opts->grad_tol)) break;
        /* Two-loop recursion: d = -H g with H the inverse Hessian the pairs imply. */
        for (int i = 0; i < n; i++) d[i] = -g[i];
        for (int k = 0; k < stored; k++) {
            int j = (newest - k + m) % m;
            alpha[j] = rho[j] * dot(s + j * n, d, n);
            for (int i = 0; i < n; i++) d[i] -= alpha[j] * y[j * n + i];
        }
        if (stored > 0) {
            double scale = dot(s + newest * n, y + newest * n, n) / dot(y + newest * n, y + newest * n, n);
            for (int i = 0; i < n; i++) d[i] *= scale;
        }
        for (int k = stored - 1; k >= 0; k--) {
            int j = (newest - k + m) % m;
            double beta = rho[j] * dot(y + j * n, d, n);
            for (int i = 0; i < n; i++) d[i] += (alpha[j] - beta) * s[j * n + i];
        }
        double slope = dot(g, d, n);
        if (!(slope < 0)) { /* not a descent direction: restart from steepest descent */
            for (int i = 0; i < n; i++) d[i] = -g[i];
            slope = dot(g, d, n);
            stored = 0;
        }
        double first = stored > 0 ? 1.0 : fmin(1.0, 1.0 / sqrt(-slope));
        line_t line = {f, ctx, x, d, xt, gt, n};
        double vt, t = line_search(&line, v, slope, first, &vt);
        if (!(t > 0)) break;
        newest = (newest + 1) % m;
        double *sn = s + newest * n, *yn = y + newest * n;
        for (int i = 0; i < n; i++) {
            sn[i] = xt[i] - x[i];
            yn[i] = gt[i] - g[i];
        }
        double sy = dot(sn, yn, n);
        if (sy > 1e-300) {
            rho[newest] = 1.0 / sy;
            if (stored < m) stored++;
        } else {
            newest = (newest - 1 + m) % m; /* no curvature information: drop the pair */
            if (stored == m) stored--;     /* and the oldest pair it overwrote */
        }
        double improvement = v - vt;
        memcpy(x, xt, (size_t)n * sizeof *x);
        memcpy(g, gt, (size_t)n * sizeof *g);
        v = vt;
        if (improvement <= opts->rel_tol * fmax(fabs(v), 1e-300)) {
            iter++;
            break;
        }
    }
    anv_free(mem);
    *fx = v;
    return iter;
}

/* One-dimensional minimisation for the planner: a scan, then golden-section search. */
#include "anvil/plan.h"

#include <math.h>

double anv_scan_min(anv_scalar_fn f, void *ctx, double lo, double hi, int points, int steps) {
    const double step = (hi - lo) / (points - 1), ratio = 0.5 * (sqrt(5.0) - 1.0);
    double best = lo, best_value = f(ctx, lo);
    for (int k = 1; k < points; k++) {
        double x = lo + k * step, value = f(ctx, x);
        if (value < best_value) best = x, best_value = value;
    }
    /* each narrowing keeps one interior point, and its value, as an interior point of the next */
    double a = fmax(best - step, lo), b = fmin(best + step, hi);
    double x = b - ratio * (b - a), y = a + ratio * (b - a), fx = f(ctx, x), fy = f(ctx, y);
    for (int k = 0; k < steps; k++) {
        int last = k + 1 == steps;
        if (fx < fy) {
            b = y, y = x, fy = fx;
            x = b - ratio * (b - a);
            if (!last) fx = f(ctx, x);
        } else {
            a = x, x = y, fx = fy;
            y = a + ratio * (b - a);
            if (!last) fy = f(ctx, y);
        }
    }
    return 0.5 * (a + b);
}

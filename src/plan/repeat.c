/* Repeated data: the data-constrained scaling law of Muennighoff et al. 2023, "Scaling Data-Constrained
 * Language Models" (arXiv:2305.16264), eq. 5: D' = U_D + U_D R_D* (1 - exp(-R_D / R_D*)), where U_D is
 * the number of unique tokens, R_D = D / U_D - 1 the repetitions beyond the first epoch, and R_D* = 15.4
 * the fitted decay constant (their fit also gives R_N* = 5.3 for excess parameters, not used here). */
#include "anvil/plan.h"

#include <math.h>

#define REPEAT_DECAY 15.4 /* R_D*: after about 15 repetitions, more epochs add almost nothing */

double anv_effective_tokens(double tokens, double unique) {
    if (tokens <= unique) return tokens;
    double repeats = tokens / unique - 1.0;
    return unique + unique * REPEAT_DECAY * (1.0 - exp(-repeats / REPEAT_DECAY));
}

void anv_law_optimum_repeated(const anv_law_t *law, double flops, double unique, anv_optimum_t *out) {
    anv_law_optimum_for_flops(law, flops, out);
    if (out->tokens <= unique) return;
    /* Fewer effective tokens favour more parameters: golden-section search over log N from the
     * unconstrained optimum up to 10^4 times it (the loss along C = 6 N D has one minimum). */
    const double ratio = 0.5 * (sqrt(5.0) - 1.0), lo0 = log(out->params);
    double lo = lo0, hi = lo0 + log(1e4);
    for (int k = 0; k < 100; k++) {
        double a = hi - ratio * (hi - lo), b = lo + ratio * (hi - lo);
        double na = exp(a), nb = exp(b);
        double la = anv_law_loss(law, na, anv_effective_tokens(flops / (6.0 * na), unique));
        double lb = anv_law_loss(law, nb, anv_effective_tokens(flops / (6.0 * nb), unique));
        if (la < lb)
            hi = b;
        else
            lo = a;
    }
    out->params = exp(0.5 * (lo + hi));
    out->tokens = flops / (6.0 * out->params);
    out->loss = anv_law_loss(law, out->params, anv_effective_tokens(out->tokens, unique));
}

/* Repeated data: the data-constrained scaling law of Muennighoff et al. 2023, "Scaling Data-Constrained
 * Language Models" (arXiv:2305.16264), eq. 5. With U_D unique tokens, D tokens trained on are worth
 *   D' = U_D + U_D R_D* (1 - exp(-R_D / R_D*)),  R_D = D / U_D - 1 (repetitions beyond the first epoch),
 * and N parameters are worth
 *   N' = U_N + U_N R_N* (1 - exp(-R_N / R_N*)),  U_N = min(N, the compute-optimal N for U_D tokens),
 *                                                R_N = N / U_N - 1 (parameters beyond what U_D supports),
 * with their fitted R_D* = 15.3878 and R_N* = 5.3097; the loss is the law's at (N', D'). A law fitted
 * to runs that repeated their data (anvil scale run) has its own R_D*, fitted with it, and U_N is its
 * own compute-optimal size. */
#include "anvil/plan.h"

#include <math.h>

#define SCAN_POINTS 200

double anv_repeat_worth(double excess, double decay) { return 1.0 + decay * -expm1(-excess / decay); }

double anv_effective_tokens(double tokens, double unique, double repeat_decay) {
    if (unique <= 0 || tokens <= unique) return tokens;
    return unique * anv_repeat_worth(tokens / unique - 1.0, repeat_decay);
}

double anv_law_effective_tokens(const anv_law_t *law, double tokens, double unique) {
    return anv_effective_tokens(tokens, unique, law->repeat_decay > 0 ? law->repeat_decay : ANV_REPEAT_DECAY);
}

double anv_effective_params(const anv_law_t *law, double params, double unique) {
    double decay = law->excess_decay > 0 ? law->excess_decay : ANV_EXCESS_DECAY;
    if (unique <= 0 || isinf(decay)) return params;
    anv_optimum_t supported;
    anv_law_optimum_for_tokens(law, unique, &supported);
    if (params <= supported.params) return params;
    return supported.params * anv_repeat_worth(params / supported.params - 1.0, decay);
}

double anv_law_loss_repeated(const anv_law_t *law, double params, double tokens, double unique) {
    return anv_law_loss(law, anv_effective_params(law, params, unique), anv_law_effective_tokens(law, tokens, unique));
}

double anv_epochs_measured(const anv_point_t *runs, int n, double unique, double params, double *lo, double *hi) {
    double most = 0;
    *lo = *hi = 0;
    for (int i = 0; i < n; i++) {
        if (runs[i].params < params / 2 || runs[i].params > params * 2) continue;
        most = fmax(most, runs[i].tokens / unique);
        *lo = *lo > 0 ? fmin(*lo, runs[i].params) : runs[i].params;
        *hi = fmax(*hi, runs[i].params);
    }
    return most;
}

typedef struct {
    const anv_law_t *law;
    double flops, unique;
} along_t;

/* The loss at N = e^log_n along C = 6 N D. */
static double loss_along(void *ctx, double log_n) {
    const along_t *a = ctx;
    double params = exp(log_n);
    return anv_law_loss_repeated(a->law, params, a->flops / (6.0 * params), a->unique);
}

void anv_law_optimum_repeated(const anv_law_t *law, double flops, double unique, anv_optimum_t *out) {
    anv_law_optimum_for_flops(law, flops, out);
    if (unique <= 0 || out->tokens <= unique) return;
    /* log N over 10^-4 to 10^4 times the unconstrained optimum */
    along_t along = {law, flops, unique};
    const double span = log(1e4), center = log(out->params);
    out->params = exp(anv_scan_min(loss_along, &along, center - span, center + span, SCAN_POINTS + 1, 100));
    out->tokens = flops / (6.0 * out->params);
    out->loss = anv_law_loss_repeated(law, out->params, out->tokens, unique);
}

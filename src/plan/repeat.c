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

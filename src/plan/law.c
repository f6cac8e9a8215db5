/* The parametric loss law L(N, D) = E + A / N^alpha + B / D^beta and its compute-optimal allocation. */
#include "anvil/json.h"
#include "anvil/plan.h"

#include <math.h>
#include <string.h>

const char *const anv_law_builtin_names = "hoffmann, epoch";

int anv_law_builtin(const char *name, anv_law_t *law) {
    if (!strcmp(name, "hoffmann")) {
        /* Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models", eq. 10. */
        *law = (anv_law_t){.E = 1.69, .A = 406.4, .B = 410.7, .alpha = 0.34, .beta = 0.28};
        return 0;
    }
    if (!strcmp(name, "epoch")) {
        /* Besiroglu et al. 2024, "Chinchilla Scaling: A replication attempt", the refitted Approach 3. */
        *law = (anv_law_t){.E = 1.8172, .A = 482.01, .B = 2085.43, .alpha = 0.3478, .beta = 0.3658};
        return 0;
    }
    return anv_error("unknown law '%s' (one of: %s)", name, anv_law_builtin_names);
}

int anv_law_load(const char *path, anv_law_t *law) {
    anv_json_doc_t *doc;
    if (anv_json_parse_file(path, &doc) != 0) return -1;
    const anv_json_t *root = anv_json_root(doc);
    const char *keys[5] = {"E", "A", "B", "alpha", "beta"};
    double *dst[5] = {&law->E, &law->A, &law->B, &law->alpha, &law->beta};
    int rc = 0;
    for (int i = 0; i < 5 && rc == 0; i++) {
        rc = anv_json_get_double(root, keys[i], path, dst[i]);
        if (rc == 0 && !(isfinite(*dst[i]) && (i == 0 ? *dst[i] >= 0 : *dst[i] > 0)))
            rc = anv_error("%s: %s must be a %s finite number, got %g", path, keys[i],
                           i == 0 ? "non-negative" : "positive", *dst[i]);
    }
    const char *optional[3] = {"unique_tokens", "repeat_decay", "excess_decay"};
    double *optional_dst[3] = {&law->unique_tokens, &law->repeat_decay, &law->excess_decay};
    for (int i = 0; i < 3; i++) {
        *optional_dst[i] = 0;
        if (rc == 0 && anv_json_get(root, optional[i])) {
            rc = anv_json_get_double(root, optional[i], path, optional_dst[i]);
            if (rc == 0 && !(isfinite(*optional_dst[i]) && *optional_dst[i] > 0))
                rc = anv_error("%s: %s must be a positive finite number, got %g", path, optional[i], *optional_dst[i]);
        }
    }
    if (law->unique_tokens > 0 && law->excess_decay == 0) law->excess_decay = INFINITY; /* fitted with N' = N */
    anv_json_free(doc);
    return rc;
}

double anv_law_loss(const anv_law_t *law, double params, double tokens) {
    return law->E + law->A / pow(params, law->alpha) + law->B / pow(tokens, law->beta);
}

/* G = (alpha A / (beta B))^(1/(alpha+beta)): N_opt = G (C/6)^(beta/(alpha+beta)). */
static double law_g(const anv_law_t *law) {
    return pow(law->alpha * law->A / (law->beta * law->B), 1.0 / (law->alpha + law->beta));
}

void anv_law_optimum_for_flops(const anv_law_t *law, double flops, anv_optimum_t *out) {
    double half_products = flops / 6.0; /* N D */
    out->flops = flops;
    out->params = law_g(law) * pow(half_products, law->beta / (law->alpha + law->beta));
    out->tokens = half_products / out->params;
    out->loss = anv_law_loss(law, out->params, out->tokens);
}

void anv_law_optimum_for_tokens(const anv_law_t *law, double tokens, anv_optimum_t *out) {
    /* D_opt = (C/6)^(alpha/(alpha+beta)) / G, so C/6 = (G D)^((alpha+beta)/alpha). */
    double half_products = pow(law_g(law) * tokens, (law->alpha + law->beta) / law->alpha);
    anv_law_optimum_for_flops(law, 6.0 * half_products, out);
    out->tokens = tokens;
}

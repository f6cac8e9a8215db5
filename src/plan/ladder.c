/* IsoFLOP ladders (Hoffmann et al. 2022, Approach 2's design, fitted by Approach 3): at each of a few
 * compute levels, models of several sizes around a prior law's optimum, each trained on the tokens
 * that spend exactly that level's compute, C = 6 N D. */
#include "anvil/plan.h"

#include <math.h>

#define MAX_SHAPES 5

int anv_ladder_design(const anv_ladder_spec_t *spec, const anv_law_t *prior, double c0, anv_ladder_run_t *out,
                      int max) {
    int count = 0;
    for (int level = 0; level < spec->levels; level++) {
        double flops = c0 * pow(spec->level_ratio, level);
        anv_optimum_t opt;
        anv_law_optimum_for_flops(prior, flops, &opt);
        /* Where the prior's smallest sizes have no shape, the sizes start at the smallest shape. */
        anv_config_t smallest = anv_plan_smallest(spec->arch, spec->vocab, spec->seq);
        double least = (double)anv_config_num_params(&smallest);
        double lowest = fmax(opt.params * pow(spec->size_step, -0.5 * (spec->sizes - 1)), least);
        int first = count;
        for (int j = 0; j < spec->sizes && count < max; j++) {
            double target = lowest * pow(spec->size_step, j);
            anv_config_t shapes[MAX_SHAPES];
            int n = anv_plan_usual_shapes(spec->arch, target, spec->vocab, spec->seq, shapes, MAX_SHAPES);
            if (n == 0) continue;
            anv_config_t cfg = shapes[anv_plan_best(shapes, n, target)];
            double params = (double)anv_config_num_params(&cfg);
            long long steps = llround(flops / (6.0 * params) / (double)spec->batch_tokens);
            if (steps < spec->min_steps) continue;
            int duplicate = 0;
            for (int k = first; k < count; k++) duplicate |= out[k].params == params;
            if (duplicate) continue;
            out[count++] = (anv_ladder_run_t){cfg, level, flops, params, steps};
        }
    }
    return count;
}

int anv_ladder_shape_near(const anv_ladder_spec_t *spec, const anv_ladder_run_t *runs, int n, double params,
                          anv_config_t *cfg) {
    const anv_ladder_run_t *nearest = NULL;
    for (int i = 0; i < n; i++) {
        double gap = fabs(log(runs[i].params / params));
        if (gap <= log(ANV_SHAPE_SLACK) && (!nearest || gap < fabs(log(nearest->params / params)))) nearest = &runs[i];
    }
    if (nearest) {
        *cfg = nearest->cfg;
        return 0;
    }
    anv_config_t shapes[MAX_SHAPES];
    int k = anv_plan_usual_shapes(spec->arch, params, spec->vocab, spec->seq, shapes, MAX_SHAPES);
    if (k == 0) return anv_error("no %s model shape near %.4g parameters", anv_arch_name(spec->arch), params);
    *cfg = shapes[anv_plan_best(shapes, k, params)];
    return 0;
}

double anv_ladder_flops(const anv_ladder_run_t *runs, int n, long long batch_tokens) {
    double sum = 0;
    for (int i = 0; i < n; i++) sum += 6.0 * runs[i].params * (double)runs[i].steps * (double)batch_tokens;
    return sum;
}

/* Compute-optimal planning: the closed-form optimum against a brute-force search, its inverse for a
 * token count, repeated data, model shapes, and the Approach 3 fit recovering known laws from a noisy
 * IsoFLOP ladder (with and without outliers) with bootstrap intervals that contain the truth. */
#include "anvil/plan.h"
#include "check.h"

#include <math.h>
#include <stdlib.h>

static double rel(double got, double want) { return fabs(got - want) / fabs(want); }

/* The minimum of L(N, C / 6N) over log N on a fine grid. */
static double brute_force_n_opt(const anv_law_t *law, double flops) {
    double best_n = 0, best_l = INFINITY;
    for (double log_n = log(1e4); log_n < log(1e14); log_n += 1e-5) {
        double n = exp(log_n), l = anv_law_loss(law, n, flops / (6.0 * n));
        if (l < best_l) best_l = l, best_n = n;
    }
    return best_n;
}

static void test_closed_form(const char *name, const anv_law_t *law) {
    const double budgets[3] = {1e15, 1e18, 1e22};
    for (int i = 0; i < 3; i++) {
        anv_optimum_t opt, back;
        anv_law_optimum_for_flops(law, budgets[i], &opt);
        double brute = brute_force_n_opt(law, budgets[i]);
        printf("  %-10s C %.0e: N_opt %.6g, brute force %.6g (rel err %.1e)\n", name, budgets[i], opt.params, brute,
               rel(opt.params, brute));
        CHECK(rel(opt.params, brute) < 1e-4, "%s: N_opt %g against %g", name, opt.params, brute);
        CHECK(rel(6.0 * opt.params * opt.tokens, budgets[i]) < 1e-12, "%s: 6 N D is not C", name);
        anv_law_optimum_for_tokens(law, opt.tokens, &back);
        CHECK(rel(back.flops, budgets[i]) < 1e-9 && rel(back.params, opt.params) < 1e-9,
              "%s: the optimum for D_opt(%g) is at C %g", name, budgets[i], back.flops);
    }
}

static void test_repeated_data(void) {
    CHECK(anv_effective_tokens(5e9, 1e10, ANV_REPEAT_DECAY) == 5e9, "unique data is not discounted");
    double four = anv_effective_tokens(4e10, 1e10, ANV_REPEAT_DECAY),
           many = anv_effective_tokens(1e13, 1e10, ANV_REPEAT_DECAY);
    printf("  repeated data: 4 epochs of 1e10 count as %.4g, 1000 epochs as %.4g (limit %.4g)\n", four, many,
           1e10 * 16.4);
    CHECK(four > 3.7e10 && four < 4e10, "4 epochs are worth almost 4: %g", four);
    CHECK(rel(anv_effective_tokens(4e10, 1e10, 1e15), 4e10) < 1e-9, "an R_D* of 1e15 loses no worth: %.17g",
          anv_effective_tokens(4e10, 1e10, 1e15));
    anv_law_t law;
    anv_law_builtin("epoch", &law);
    anv_optimum_t free_data, scarce, supported;
    anv_law_optimum_for_flops(&law, 1e21, &free_data);
    double unique = free_data.tokens / 10;
    anv_law_optimum_for_tokens(&law, unique, &supported);
    CHECK(anv_effective_params(&law, supported.params, unique) == supported.params,
          "parameters the unique data supports are not discounted");
    double excess = anv_effective_params(&law, 1e3 * supported.params, unique);
    CHECK(excess < supported.params * 6.31 && excess > supported.params * 6.30,
          "many excess parameters approach U_N (1 + R_N*): %g", excess / supported.params);
    anv_law_optimum_repeated(&law, 1e21, unique, &scarce);
    printf("  1e21 FLOPs with a tenth of D_opt unique: N %.4g (unconstrained %.4g, supported %.4g), %.2f epochs, "
           "loss %.4f (%.4f)\n",
           scarce.params, free_data.params, supported.params, scarce.tokens / unique, scarce.loss, free_data.loss);
    CHECK(scarce.tokens > unique && scarce.loss > free_data.loss, "scarce data: more than an epoch, a higher loss");
    CHECK(rel(6 * scarce.params * scarce.tokens, 1e21) < 1e-12, "the repeated-data optimum does not spend C");
    for (double f = 0.9; f <= 1.11; f += 0.01) {
        double l = anv_law_loss_repeated(&law, scarce.params * f, 1e21 / (6 * scarce.params * f), unique);
        CHECK(l >= scarce.loss - 1e-12, "N x %.2f has a lower loss than the repeated-data optimum", f);
    }
    CHECK(many <= 1e10 * 16.4 && many > 1e10 * 16.3, "many epochs approach U (1 + R*): %g", many);
    anv_law_t fitted = law;
    fitted.unique_tokens = unique;
    CHECK(anv_effective_params(&fitted, 1e3 * supported.params, unique) == excess,
          "a law fitted to repeated runs discounts excess parameters beyond its own U_N");
    fitted.excess_decay = INFINITY;
    CHECK(anv_effective_params(&fitted, 1e3 * supported.params, unique) == 1e3 * supported.params,
          "a law fitted with N' = N (an earlier anvil's) keeps its parameters at face value");
    CHECK(anv_effective_tokens(4e10, 0, ANV_REPEAT_DECAY) == 4e10 &&
              anv_law_loss_repeated(&law, 1e9, 4e10, 0) == anv_law_loss(&law, 1e9, 4e10),
          "no unique-token limit: nothing discounted");
}

static void test_shapes(void) {
    for (int arch = 0; arch < 2; arch++) {
        anv_config_t shapes[4];
        int n = anv_plan_shapes((anv_arch_t)arch, 1.2e8, 50257, 1024, shapes, 4);
        CHECK(n >= 2, "only %d shapes near 1.2e8", n);
        for (int i = 0; i < n; i++) {
            double p = (double)anv_config_num_params(&shapes[i]);
            CHECK(p > 1.2e8 / 1.25 && p < 1.2e8 * 1.25, "shape %d has %g parameters", i, p);
            CHECK(anv_config_validate(&shapes[i], "shape") == 0, "shape %d is invalid: %s", i, anv_last_error());
            CHECK(i == 0 || p >= (double)anv_config_num_params(&shapes[i - 1]), "shapes not sorted");
        }
    }
    anv_config_t none[4];
    CHECK(anv_plan_shapes(ANV_ARCH_GPT2, 1e4, 50257, 1024, none, 4) == 0, "a shape of 1e4 parameters");
}

/* An IsoFLOP ladder: 5 budgets from 1e17 to 1e21 FLOPs, 6 sizes around each optimum (1/9.9x to 9.9x),
 * losses from the law with multiplicative noise uniform in +-0.3% (n = 30). */
static int ladder(const anv_law_t *law, uint64_t seed, anv_point_t *points) {
    anv_rng_t rng;
    anv_rng_seed(&rng, seed);
    int n = 0;
    for (int c = 0; c < 5; c++) {
        double flops = 1e17 * pow(10.0, c);
        anv_optimum_t opt;
        anv_law_optimum_for_flops(law, flops, &opt);
        for (int s = 0; s < 6; s++) {
            double params = opt.params * pow(2.5, s - 2.5), tokens = flops / (6.0 * params);
            points[n++] =
                (anv_point_t){params, tokens,
                              anv_law_loss(law, params, tokens) * (1.0 + 0.003 * (2.0 * anv_rng_uniform(&rng) - 1.0))};
        }
    }
    return n;
}

static void check_recovered(const char *what, const anv_law_t *fit, const anv_law_t *truth) {
    anv_optimum_t got, want;
    anv_law_optimum_for_flops(fit, 1e21, &got);
    anv_law_optimum_for_flops(truth, 1e21, &want);
    printf("  %-24s E %.4f (%+.2f%%) alpha %.4f (%+.2f%%) beta %.4f (%+.2f%%) A %.4g B %.4g, N_opt(1e21) %+.2f%%\n",
           what, fit->E, 100 * (fit->E / truth->E - 1), fit->alpha, 100 * (fit->alpha / truth->alpha - 1), fit->beta,
           100 * (fit->beta / truth->beta - 1), fit->A, fit->B, 100 * (got.params / want.params - 1));
    CHECK(rel(fit->E, truth->E) < 0.01, "%s: E %g, want %g", what, fit->E, truth->E);
    CHECK(rel(fit->alpha, truth->alpha) < 0.01, "%s: alpha %g, want %g", what, fit->alpha, truth->alpha);
    CHECK(rel(fit->beta, truth->beta) < 0.01, "%s: beta %g, want %g", what, fit->beta, truth->beta);
    CHECK(rel(got.params, want.params) < 0.02, "%s: N_opt %g, want %g", what, got.params, want.params);
}

/* The fit's objective at a law: sum of Huber(log L^ - log L), delta 1e-3. */
static double huber_objective(const anv_law_t *law, const anv_point_t *points, int n) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        double r = fabs(log(anv_law_loss(law, points[i].params, points[i].tokens)) - log(points[i].loss));
        total += r <= 1e-3 ? 0.5 * r * r : 1e-3 * (r - 0.5e-3);
    }
    return total;
}

static void test_fit(const char *name, const anv_law_t *truth, uint64_t seed, int bootstrap) {
    anv_point_t points[30];
    int n = ladder(truth, seed, points);
    anv_fit_t fit;
    CHECK(anv_law_fit(points, n, &fit) == 0, "%s: fit failed: %s", name, anv_last_error());
    check_recovered(name, &fit.law, truth);
    double at_truth = huber_objective(truth, points, n), at_fit = huber_objective(&fit.law, points, n);
    printf("    objective %.6g at the fit (reported %.6g), %.6g at the truth\n", at_fit, fit.objective, at_truth);
    CHECK(at_fit <= at_truth && rel(at_fit, fit.objective) < 1e-6, "%s: the fit missed the minimum", name);

    /* Two runs 20% off (a diverged run, a logging mistake) barely move a Huber fit. */
    points[7].loss *= 1.2;
    points[22].loss /= 1.2;
    anv_fit_t robust;
    CHECK(anv_law_fit(points, n, &robust) == 0, "%s: fit with outliers failed", name);
    check_recovered("  with 2 outliers", &robust.law, truth);

    if (!bootstrap) return;
    anv_fit_ci_t ci;
    CHECK(anv_law_bootstrap(points, n, &robust.law, 100, 1e21, 7, &ci) == 0, "bootstrap failed: %s", anv_last_error());
    const double want[5] = {truth->E, truth->A, truth->B, truth->alpha, truth->beta};
    const char *names[5] = {"E", "A", "B", "alpha", "beta"};
    for (int j = 0; j < 5; j++) {
        printf("    95%% interval of %-5s [%.4g, %.4g], truth %.4g\n", names[j], ci.lo[j], ci.hi[j], want[j]);
        CHECK(ci.lo[j] <= want[j] && want[j] <= ci.hi[j], "%s: the interval misses %s", name, names[j]);
    }
    anv_optimum_t opt;
    anv_law_optimum_for_flops(truth, 1e21, &opt);
    printf("    95%% interval of N_opt(1e21) [%.4g, %.4g], truth %.4g\n", ci.n_opt_lo, ci.n_opt_hi, opt.params);
    CHECK(ci.n_opt_lo <= opt.params && opt.params <= ci.n_opt_hi, "%s: the interval misses N_opt", name);
}

/* A ladder that repeats 3.4e5 unique tokens (the demo corpus) 3 to 30 times, every model beyond U_N:
 * 3 levels x 5 sizes drawn from the data-constrained law with R_D* 9 and Muennighoff's R_N*, with
 * multiplicative noise uniform in +-noise. */
static void repeated_ladder(const anv_law_t *truth, double noise, anv_point_t *runs) {
    anv_rng_t rng;
    anv_rng_seed(&rng, 5);
    for (int i = 0; i < 15; i++) {
        double params = 1.5e5 * pow(2.0, i % 5), tokens = 9.5e11 * pow(3.0, i / 5) / (6.0 * params);
        runs[i] = (anv_point_t){params, tokens,
                                anv_law_loss_repeated(truth, params, tokens, truth->unique_tokens) *
                                    (1.0 + noise * (2.0 * anv_rng_uniform(&rng) - 1.0))};
    }
}

/* Fitted on what the tokens and parameters of such runs were worth, the law comes back exactly from
 * exact losses, and one that took the parameters at face value does not. From losses with the noise of
 * a real ladder (+-0.3%) the law's constants are not determined (every run is beyond U_N), but what the
 * ladder measured is: the loss and the optimum at 4x its largest compute, within 1% and 2%. */
static void test_fit_repeated(void) {
    const double unique = 3.4e5, check_flops = 4 * 9.5e11 * 9;
    anv_law_t truth = {.E = 2.4,
                       .A = 60,
                       .B = 45,
                       .alpha = 0.33,
                       .beta = 0.25,
                       .unique_tokens = unique,
                       .repeat_decay = 9,
                       .excess_decay = ANV_EXCESS_DECAY};
    anv_point_t runs[15];
    anv_optimum_t supported, got, want;
    anv_law_optimum_for_tokens(&truth, unique, &supported);
    anv_law_optimum_repeated(&truth, check_flops, unique, &want);
    for (int noisy = 0; noisy <= 1; noisy++) {
        repeated_ladder(&truth, noisy ? 0.003 : 0, runs);
        CHECK(supported.params < runs[0].params, "U_N %g is not below the smallest model", supported.params);
        anv_fit_t fit;
        CHECK(anv_law_fit_repeated(runs, 15, unique, &fit) == 0, "repeated fit failed: %s", anv_last_error());
        CHECK(fit.law.unique_tokens == unique && fit.law.excess_decay == ANV_EXCESS_DECAY, "the fit keeps U and R_N*");
        anv_law_optimum_repeated(&fit.law, check_flops, unique, &got);
        double loss = anv_law_loss_repeated(&fit.law, want.params, want.tokens, unique);
        printf("  repeated data, U_N %.4g, noise %s: R_D* %.3g (truth 9), at 4x: N_opt %+.2f%%, loss %+.3f%%\n",
               supported.params, noisy ? "0.3%" : "none", fit.law.repeat_decay, 100 * (got.params / want.params - 1),
               100 * (loss / want.loss - 1));
        CHECK(rel(got.params, want.params) < 0.02, "repeated N_opt %g, want %g", got.params, want.params);
        CHECK(rel(loss, want.loss) < 0.01, "the loss at 4x: %g, want %g", loss, want.loss);
        if (noisy) { /* what the runs leave undetermined, the bootstrap intervals leave open */
            anv_fit_ci_t ci;
            CHECK(anv_law_bootstrap(runs, 15, &fit.law, 100, check_flops, 3, &ci) == 0, "bootstrap failed: %s",
                  anv_last_error());
            printf("    95%% intervals: E [%.4g, %.4g], alpha [%.4g, %.4g], beta [%.4g, %.4g]\n", ci.lo[0], ci.hi[0],
                   ci.lo[3], ci.hi[3], ci.lo[4], ci.hi[4]);
            CHECK(ci.lo[0] <= truth.E && truth.E <= ci.hi[0] && ci.lo[3] <= truth.alpha && truth.alpha <= ci.hi[3] &&
                      ci.lo[4] <= truth.beta && truth.beta <= ci.hi[4],
                  "an interval of E, alpha or beta misses the truth");
            continue;
        }
        CHECK(rel(fit.law.repeat_decay, 9) < 1e-3, "R_D* %g, want 9", fit.law.repeat_decay);
        check_recovered("  at their worth", &fit.law, &truth);
    }
}

/* The demo corpus's ladder (Zen 4, 13 runs, all beyond U_N = 7.9e4) leaves E undetermined: its best
 * fit puts E near 0, fits nearly as good put it at 2 to 2.8, and the bootstrap interval spans them. */
static void test_bootstrap_undetermined(void) {
    const anv_point_t runs[13] = {
        {147936, 1073152, 5.58622237}, {320448, 495104, 5.81129064},  {629376, 252416, 5.8093007},
        {147936, 3218944, 5.28887081}, {320448, 1485824, 5.28594591}, {629376, 756736, 5.39968967},
        {1135744, 419328, 5.54431375}, {2145984, 221696, 5.86203744}, {147936, 9657344, 5.14648918},
        {320448, 4457984, 5.01142059}, {629376, 2269696, 4.99534812}, {1135744, 1257984, 5.12313678},
        {2145984, 665600, 5.33406583}};
    const anv_law_t best = {.E = 0.00030600159162406595,
                            .A = 23.672416211548331,
                            .B = 16.901781480519517,
                            .alpha = 0.21240932127602016,
                            .beta = 0.11003504172887621,
                            .unique_tokens = 340170,
                            .repeat_decay = 9.0446615617498249,
                            .excess_decay = ANV_EXCESS_DECAY};
    anv_fit_ci_t ci;
    CHECK(anv_law_bootstrap(runs, 13, &best, 100, 1e21, 1, &ci) == 0, "bootstrap failed: %s", anv_last_error());
    printf("  the demo corpus's ladder: E %.3g, 95%% interval [%.3g, %.3g]\n", best.E, ci.lo[0], ci.hi[0]);
    CHECK(ci.lo[0] < 0.01 && ci.hi[0] > 2.0, "E's interval [%g, %g] does not span 0 to 2", ci.lo[0], ci.hi[0]);
}

/* Each level spends its compute: 6 N D within one step of C; sizes grow by about size_step. */
static void test_ladder(const anv_law_t *prior) {
    const anv_ladder_spec_t spec = {ANV_ARCH_LLAMA, 32000, 1024, 1 << 19, 3, 5, 3.0, 2.0, 10};
    anv_ladder_run_t runs[32];
    int n = anv_ladder_design(&spec, prior, 1e19, runs, 32);
    CHECK(n == 15, "a ladder of 3 x 5 runs has %d", n);
    for (int i = 0; i < n; i++) {
        const anv_ladder_run_t *r = &runs[i];
        double step_flops = 6.0 * r->params * (double)spec.batch_tokens;
        CHECK(r->level == i / 5 && rel(r->flops, 1e19 * pow(3.0, r->level)) < 1e-12, "run %d: level %d", i, r->level);
        CHECK(fabs(6.0 * r->params * (double)(r->steps * spec.batch_tokens) - r->flops) <= step_flops,
              "run %d does not spend its level's compute", i);
        CHECK(r->params == (double)anv_config_num_params(&r->cfg), "run %d: params", i);
        if (i % 5) {
            double ratio = r->params / runs[i - 1].params;
            CHECK(ratio > 1.5 && ratio < 2.7, "run %d: sizes %g apart", i, ratio);
        }
    }
    anv_optimum_t opt;
    anv_law_optimum_for_flops(prior, 3e19, &opt);
    CHECK(runs[7].params > opt.params / 1.5 && runs[7].params < opt.params * 1.5, "level 2 is not centred on N_opt");
    CHECK(rel(anv_ladder_flops(runs, n, spec.batch_tokens), 5 * 13e19) < 0.05, "the ladder's total compute");
    /* A level too small for the prior's smaller sizes starts at the smallest model. */
    const anv_ladder_spec_t tiny = {ANV_ARCH_GPT2, 4096, 256, 2048, 3, 5, 3.0, 2.0, 10};
    anv_config_t least = anv_plan_smallest(ANV_ARCH_GPT2, 4096, 256);
    n = anv_ladder_design(&tiny, prior, 1e12, runs, 32);
    CHECK(n >= 3 && runs[0].params == (double)anv_config_num_params(&least), "a tiny ladder starts at %g",
          runs[0].params);
    CHECK(anv_ladder_design(&tiny, prior, 1e6, runs, 32) == 0, "runs shorter than min_steps are left out");
    /* Models of 30k to 1M parameters (the demo corpus at vocabulary 512): every one of the usual
     * proportions, though 4 layers x 32 wide is the nearest in size to 70k. */
    const anv_ladder_spec_t small = {ANV_ARCH_GPT2, 512, 128, 512, 3, 5, 3.0, 2.0, 300};
    n = anv_ladder_design(&small, prior, 1e12, runs, 32);
    CHECK(n >= 12, "a ladder of small models has %d runs", n);
    for (int i = 0; i < n; i++) {
        double aspect = (double)runs[i].cfg.n_embd / runs[i].cfg.n_layer;
        CHECK(aspect >= 16 && aspect <= 160, "run %d: %d layers x %d wide", i, runs[i].cfg.n_layer, runs[i].cfg.n_embd);
    }
    anv_config_t shapes[5];
    int k = anv_plan_usual_shapes(ANV_ARCH_GPT2, 7e4, 512, 128, shapes, 5);
    CHECK(k == 1 && shapes[0].n_embd / shapes[0].n_layer >= 16, "70k: %d usual shapes", k);
    k = anv_plan_usual_shapes(ANV_ARCH_GPT2, 2.64e5, 512, 128, shapes, 5);
    int best = anv_plan_best(shapes, k, 2.64e5), nearest = anv_plan_nearest(shapes, k, 2.64e5);
    CHECK(k >= 2 && shapes[best].n_layer == 2 && shapes[best].n_embd == 96 && shapes[nearest].n_embd == 128,
          "264k: best %d x %d, nearest %d x %d", shapes[best].n_layer, shapes[best].n_embd, shapes[nearest].n_layer,
          shapes[nearest].n_embd);
}

/* A check near N_opt trains the ladder's own shape: at 994,552 parameters (the demo corpus, vocabulary
 * 4096, seq 128) the usual shape is 2 layers x 128, the ladder's is 3 x 128; far from every ladder run,
 * the usual shape. */
static void test_shape_near_ladder(void) {
    const anv_ladder_spec_t spec = {ANV_ARCH_GPT2, 4096, 128, 512, 3, 5, 3.0, 2.0, 300};
    anv_ladder_run_t runs[3] = {{.cfg = anv_config_gpt2(2, 3, 96, 4096, 128)},
                                {.cfg = anv_config_gpt2(3, 2, 128, 4096, 128)},
                                {.cfg = anv_config_gpt2(3, 3, 192, 4096, 128)}};
    for (int i = 0; i < 3; i++) runs[i].params = (double)anv_config_num_params(&runs[i].cfg);
    anv_config_t shapes[5], cfg;
    int k = anv_plan_usual_shapes(ANV_ARCH_GPT2, 994552, 4096, 128, shapes, 5);
    const anv_config_t *usual = &shapes[anv_plan_best(shapes, k, 994552)];
    CHECK(k > 0 && usual->n_layer == 2 && usual->n_embd == 128, "the usual shape near 994552: %d x %d", usual->n_layer,
          usual->n_embd);
    CHECK(anv_ladder_shape_near(&spec, runs, 3, 994552, &cfg) == 0 && cfg.n_layer == 3 && cfg.n_embd == 128,
          "near the ladder's 1135744: %d x %d", cfg.n_layer, cfg.n_embd);
    k = anv_plan_usual_shapes(ANV_ARCH_GPT2, 4e6, 4096, 128, shapes, 5);
    usual = &shapes[anv_plan_best(shapes, k, 4e6)];
    CHECK(anv_ladder_shape_near(&spec, runs, 3, 4e6, &cfg) == 0 && cfg.n_layer == usual->n_layer &&
              cfg.n_embd == usual->n_embd,
          "far from the ladder: %d x %d, not the usual %d x %d", cfg.n_layer, cfg.n_embd, usual->n_layer,
          usual->n_embd);
}

int main(void) {
    anv_law_t hoffmann, epoch, other = {.E = 2.1, .A = 900.0, .B = 1500.0, .alpha = 0.42, .beta = 0.31};
    CHECK(anv_law_builtin("hoffmann", &hoffmann) == 0 && anv_law_builtin("epoch", &epoch) == 0, "built-in laws");
    CHECK(anv_law_builtin("kaplan", &other) == -1, "an unknown law is refused");
    test_closed_form("hoffmann", &hoffmann);
    test_closed_form("epoch", &epoch);
    test_repeated_data();
    test_shapes();
    test_ladder(&epoch);
    test_shape_near_ladder();
    test_fit("hoffmann", &hoffmann, 11, 0);
    test_fit("epoch", &epoch, 12, 1);
    test_fit("E 2.1 a .42 b .31", &other, 13, 0);
    test_fit_repeated();
    test_bootstrap_undetermined();
    return check_done("test_plan");
}

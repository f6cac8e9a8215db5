/* anvil scale fit (and the report that anvil scale run shares): a loss law L(N, D) = E + A / N^alpha + B / D^beta
 * fitted to measured runs (Hoffmann et al. 2022, Approach 3), its residuals and bootstrap 95% intervals, written as
 * FIT.json for anvil plan --fit. */
#include "cli.h"

#include "anvil/plan.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "anvil scale fit --points FILE.csv [--unique-tokens U] [--out FIT.json] [--resamples R] [--seed S]";

#define CI_FLOPS 1e21 /* the budget whose N_opt interval is reported */

int cli_fit_report(const char *source, const anv_point_t *runs, int n, double unique, int resamples, uint64_t seed,
                   const char *out, anv_fit_t *fit) {
    int need = unique > 0 ? 6 : 5;
    if (n < need)
        return anv_error("%s: %d runs cannot determine the %d parameters E, A, B, alpha, beta%s (need at least %d)",
                         source, n, need, unique > 0 ? ", R_D*" : "", need);
    int rc = unique > 0 ? anv_law_fit_repeated(runs, n, unique, fit) : anv_law_fit(runs, n, fit);
    const anv_law_t *law = &fit->law;
    anv_fit_ci_t ci; /* the bootstrap keeps the fitted R_D* and R_N* */
    if (rc != 0 || anv_law_bootstrap(runs, n, law, resamples, CI_FLOPS, seed, &ci) != 0) return -1;
    anv_optimum_t opt;
    anv_law_optimum_for_flops(law, CI_FLOPS, &opt);
    printf("fit of %d runs from %d starts (Huber objective %.6g):\n", n, fit->starts, fit->objective);
    if (unique > 0) {
        anv_optimum_t supported;
        anv_law_optimum_for_tokens(law, unique, &supported);
        printf(
            "  D: what the tokens of each run are worth, %.0f unique tokens repeated (Muennighoff et al. 2023), "
            "with R_D* %.4g fitted too (theirs: %.4g)\n  N: what the parameters of each run are worth beyond U_N %.4g, "
            "the law's compute-optimal size for the unique tokens, with their R_N* %.4g\n",
            unique, law->repeat_decay, ANV_REPEAT_DECAY, supported.params, law->excess_decay);
    }
    printf("  L(N, D) = %.4f + %.6g / N^%.4f + %.6g / D^%.4f\n", law->E, law->A, law->alpha, law->B, law->beta);
    const char *names[5] = {"E", "A", "B", "alpha", "beta"};
    const double values[5] = {law->E, law->A, law->B, law->alpha, law->beta};
    printf("bootstrap 95%% intervals (%d resamples of the runs):\n", resamples);
    for (int j = 0; j < 5; j++) printf("  %-6s %12.6g  [%.6g, %.6g]\n", names[j], values[j], ci.lo[j], ci.hi[j]);
    printf("  N_opt at %.0e FLOPs %.4g  [%.4g, %.4g]\n", CI_FLOPS, opt.params, ci.n_opt_lo, ci.n_opt_hi);
    printf("residuals (log of the fitted over the measured loss):\n  %5s %14s %14s %16s %16s %9s %9s %9s\n", "run",
           "params", "worth", "tokens", "worth", "loss", "fitted", "residual");
    for (int i = 0; i < n; i++) {
        double fitted = anv_law_loss_repeated(law, runs[i].params, runs[i].tokens, unique);
        printf("  %5d %14.0f %14.0f %16.0f %16.0f %9.4f %9.4f %+9.5f\n", i + 1, runs[i].params,
               anv_effective_params(law, runs[i].params, unique), runs[i].tokens,
               anv_law_effective_tokens(law, runs[i].tokens, unique), runs[i].loss, fitted, log(fitted / runs[i].loss));
    }
    if (!out) return 0;
    anv_buf_t json = {0};
    rc = anv_fit_json(fit, &ci, runs, n, &json);
    if (rc == 0) rc = anv_write_file_atomic(out, json.data, json.len);
    anv_buf_free(&json);
    if (rc == 0) printf("wrote %s\n", out);
    return rc;
}

static int scale_fit(int argc, char **argv) {
    const char *points_path = NULL, *out = NULL;
    double unique = 0;
    int resamples = 200;
    long long seed = 1;
    const opt_t opts[] = {
        {"--points", OPT_STRING, &points_path, "CSV with the header params,tokens,loss and one run per line"},
        {"--unique-tokens", OPT_DOUBLE, &unique,
         "the runs repeated a data set of U unique tokens: fit to what their tokens were worth (Muennighoff et al. "
         "2023)"},
        {"--out", OPT_STRING, &out, "write the fit as JSON (E, A, B, alpha, beta, ...)"},
        {"--resamples", OPT_INT, &resamples, "bootstrap resamples for the 95% intervals (default 200)"},
        {"--seed", OPT_LONG, &seed, "seed of the bootstrap (default 1)"},
    };
    const opt_range_t ranges[] = {{"--resamples", 2, 1e6}, {"--seed", 0, 9e18}, {"--unique-tokens", 1, 1e18}};
    int rc = cli_parse_bounded(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), ranges,
                               (int)(sizeof ranges / sizeof ranges[0]), usage, NULL);
    if (rc != 0) return rc > 0 ? 0 : cli_fail();
    if (!points_path) return anv_error("scale fit needs --points FILE.csv (see --help)"), cli_fail();
    anv_point_t *points;
    int n;
    if (anv_points_load(points_path, &points, &n) != 0) return cli_fail();
    anv_fit_t fit;
    rc = cli_fit_report(points_path, points, n, unique, resamples, (uint64_t)seed, out, &fit);
    anv_free(points);
    return rc == 0 ? 0 : cli_fail();
}

int cmd_scale(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "fit")) return scale_fit(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "run")) return cmd_scale_run(argc - 1, argv + 1);
    fprintf(stderr, "usage: anvil scale fit|run [options]   (--help for their options)\n"
                    "  fit      fit L(N, D) = E + A/N^alpha + B/D^beta to runs (params,tokens,loss)\n"
                    "  run      an IsoFLOP ladder of training runs on your data within a budget, then its fit\n");
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return argc < 2 ? 2 : 0;
    fprintf(stderr, "anvil: unknown scale subcommand '%s'\n", argv[1]);
    return 2;
}

/* anvil scale fit: a loss law L(N, D) = E + A / N^alpha + B / D^beta fitted to measured runs (Hoffmann
 * et al. 2022, Approach 3), its residuals and bootstrap 95% intervals, written as FIT.json for
 * anvil plan --fit. */
#include "cli.h"

#include "anvil/plan.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char usage[] = "anvil scale fit --points FILE.csv [--out FIT.json] [--resamples R] [--seed S]";

#define CI_FLOPS 1e21 /* the budget whose N_opt interval is reported */

static int scale_fit(int argc, char **argv) {
    const char *points_path = NULL, *out = NULL;
    int resamples = 200;
    long long seed = 1;
    const opt_t opts[] = {
        {"--points", OPT_STRING, &points_path, "CSV with the header params,tokens,loss and one run per line"},
        {"--out", OPT_STRING, &out, "write the fit as JSON (E, A, B, alpha, beta, ...)"},
        {"--resamples", OPT_INT, &resamples, "bootstrap resamples for the 95% intervals (default 200)"},
        {"--seed", OPT_LONG, &seed, "seed of the bootstrap (default 1)"},
    };
    const opt_range_t ranges[] = {{"--resamples", 2, 1e6}, {"--seed", 0, 9e18}};
    int rc = cli_parse_bounded(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), ranges,
                               (int)(sizeof ranges / sizeof ranges[0]), usage, NULL);
    if (rc != 0) return rc > 0 ? 0 : cli_fail();
    if (!points_path) return anv_error("scale fit needs --points FILE.csv (see --help)"), cli_fail();
    anv_point_t *points;
    int n;
    if (anv_points_load(points_path, &points, &n) != 0) return cli_fail();
    anv_fit_t fit;
    anv_fit_ci_t ci;
    rc = -1;
    if (n < 5) {
        anv_error("%s: %d runs cannot determine the 5 parameters E, A, B, alpha, beta (need at least 5)", points_path,
                  n);
        goto done;
    }
    if (anv_law_fit(points, n, &fit) != 0 ||
        anv_law_bootstrap(points, n, &fit.law, resamples, CI_FLOPS, (uint64_t)seed, &ci) != 0)
        goto done;
    const anv_law_t *law = &fit.law;
    anv_optimum_t opt;
    anv_law_optimum_for_flops(law, CI_FLOPS, &opt);
    printf("fit of %d runs from %d starts (Huber objective %.6g):\n", n, fit.starts, fit.objective);
    printf("  L(N, D) = %.4f + %.6g / N^%.4f + %.6g / D^%.4f\n", law->E, law->A, law->alpha, law->B, law->beta);
    const char *names[5] = {"E", "A", "B", "alpha", "beta"};
    const double values[5] = {law->E, law->A, law->B, law->alpha, law->beta};
    printf("bootstrap 95%% intervals (%d resamples of the runs):\n", resamples);
    for (int j = 0; j < 5; j++) printf("  %-6s %12.6g  [%.6g, %.6g]\n", names[j], values[j], ci.lo[j], ci.hi[j]);
    printf("  N_opt at %.0e FLOPs %.4g  [%.4g, %.4g]\n", CI_FLOPS, opt.params, ci.n_opt_lo, ci.n_opt_hi);
    printf("residuals (log of the fitted over the measured loss):\n  %5s %14s %16s %9s %9s %9s\n", "line", "params",
           "tokens", "loss", "fitted", "residual");
    for (int i = 0; i < n; i++) {
        double fitted = anv_law_loss(law, points[i].params, points[i].tokens);
        printf("  %5d %14.0f %16.0f %9.4f %9.4f %+9.5f\n", i + 1, points[i].params, points[i].tokens, points[i].loss,
               fitted, log(fitted / points[i].loss));
    }
    rc = 0;
    if (out) {
        anv_buf_t json = {0};
        rc |= anv_buf_printf(&json, "{\n  \"E\": %.17g,\n  \"A\": %.17g,\n  \"B\": %.17g,\n  \"alpha\": %.17g,\n",
                             law->E, law->A, law->B, law->alpha);
        rc |= anv_buf_printf(&json, "  \"beta\": %.17g,\n  \"objective\": %.17g,\n  \"points\": %d,\n", law->beta,
                             fit.objective, n);
        rc |= anv_buf_printf(&json, "  \"ci95\": {");
        for (int j = 0; j < 5; j++)
            rc |= anv_buf_printf(&json, "%s\"%s\": [%.17g, %.17g]", j ? ", " : "", names[j], ci.lo[j], ci.hi[j]);
        rc |= anv_buf_printf(&json, "}\n}\n");
        if (rc == 0) rc = anv_write_file_atomic(out, json.data, json.len);
        anv_buf_free(&json);
        if (rc == 0) printf("wrote %s\n", out);
    }
done:
    anv_free(points);
    return rc == 0 ? 0 : cli_fail();
}

int cmd_scale(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "fit")) return scale_fit(argc - 1, argv + 1);
    fprintf(stderr, "usage: anvil scale fit [options]   (--help for its options)\n"
                    "  fit      fit L(N, D) = E + A/N^alpha + B/D^beta to runs (params,tokens,loss)\n");
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return argc < 2 ? 2 : 0;
    fprintf(stderr, "anvil: unknown scale subcommand '%s'\n", argv[1]);
    return 2;
}

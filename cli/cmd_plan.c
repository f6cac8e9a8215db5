/* anvil plan: the compute-optimal model for a budget of FLOPs or tokens, or the one that reaches the lowest
 * loss in a number of hours on this machine (each size at the speed timed here), under a loss law (built-in
 * or fitted), as concrete shapes with their anvil train command lines. */
#include "cli.h"

#include "anvil/json.h"
#include "anvil/kernels.h"
#include "anvil/plan.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "anvil plan (--flops C | --hours H | --tokens D) [--law hoffmann|epoch | --fit FIT.json] [--arch gpt2|llama]\n"
    "           [--data DIR] [--vocab V] [--seq T] [--batch B] [--batch-tokens N] [--mfu F] [--threads N]\n"
    "           [--device cpu|cuda] [--peak GFLOPS] [--out CONFIG.json]";

#define MAX_SHAPES 5
#define ASSUMED_MFU 0.3
#define MAX_TIMING_SECONDS 30.0 /* larger shapes are not timed: their speed is the largest timed one's */
#define SATURATED 0.001         /* the share of loss a doubling of the budget must save to be planned */

typedef struct {
    anv_arch_t arch;
    int vocab, seq, batch;
    long long batch_tokens;
    double peak;       /* GFLOP/s of the matmuls at the precision used */
    double mfu;        /* the assumed share of the peak, without a time budget */
    double seconds;    /* > 0: a time budget, each size at its own speed: */
    anv_speed_t speed; /* measured here */
} machine_t;

int cli_data_meta(const char *dir, double *train_tokens, double *val_tokens, int *vocab) {
    char path[4096];
    anv_json_doc_t *doc;
    if (anv_path_join(path, sizeof path, dir, "meta.json") != 0 || anv_json_parse_file(path, &doc) != 0) return -1;
    const anv_json_t *root = anv_json_root(doc), *train = anv_json_get(root, "train"), *val = anv_json_get(root, "val");
    long long n = 0, v = 0, vs = 0;
    int rc = train ? anv_json_get_int(train, "tokens", path, &n) : anv_error("%s: no \"train\" object", path);
    if (rc == 0) rc = val ? anv_json_get_int(val, "tokens", path, &v) : anv_error("%s: no \"val\" object", path);
    if (rc == 0) rc = anv_json_get_int(root, "vocab_size", path, &vs);
    anv_json_free(doc);
    if (rc == 0 && n <= 0) rc = anv_error("%s: train.tokens is %lld: no training data", path, n);
    if (rc == 0 && (vs < 2 || vs > 1 << 24)) rc = anv_error("%s: vocab_size %lld is out of range", path, vs);
    *train_tokens = (double)n;
    *val_tokens = (double)v;
    *vocab = (int)vs;
    return rc;
}

void cli_note_epochs(FILE *f, const char *who, double epochs, const char *runs, double most, double lo, double hi) {
    if (epochs <= 1.5 * fmax(most, 1.0)) return;
    if (most > 0)
        fprintf(f,
                "note: %s reads its data %.1f times, %s of %.0f to %.0f parameters at most %.1f: what repeated tokens "
                "are worth at its size is extrapolated\n",
                who, epochs, runs, lo, hi, most);
    else
        fprintf(f,
                "note: %s reads its data %.1f times, and none of %s is within a factor of 2 of its size: what "
                "repeated tokens are worth at its size is extrapolated\n",
                who, epochs, runs);
}

/* Says so when the plan repeats its data far more often than the runs of the fitted law did near its size. */
static void note_epochs_beyond_fit(const char *fit, const anv_point_t *runs, int n, const anv_law_t *law, double unique,
                                   const anv_optimum_t *opt) {
    char whose[4200];
    snprintf(whose, sizeof whose, "the runs of %s", fit);
    double lo, hi, most = anv_epochs_measured(runs, n, law->unique_tokens, opt->params, &lo, &hi);
    cli_note_epochs(stdout, "N_opt", opt->tokens / unique, whose, most, lo, hi);
}

static double tokens_per_s(const machine_t *mc, const anv_config_t *c) {
    if (mc->seconds > 0) return anv_speed_tokens_per_s(&mc->speed, c, mc->seq);
    return mc->peak * 1e9 * mc->mfu / anv_model_flops_per_token(c, mc->seq);
}

/* The tokens a shape trains on: what it reads in the time budget at its own speed, the given count, or
 * the budget's FLOPs over 6 N. */
static double row_tokens(const machine_t *mc, const anv_optimum_t *opt, const anv_config_t *c, int fixed_tokens) {
    if (mc->seconds > 0) return mc->seconds * tokens_per_s(mc, c);
    return fixed_tokens ? opt->tokens : opt->flops / (6.0 * (double)anv_config_num_params(c));
}

/* The least budget, at most `budget`, past which each doubling lowers loss(budget) by less than SATURATED:
 * once the unique tokens are repeated so often that more epochs add almost nothing (Muennighoff et al.
 * 2023), the rest of a budget is not worth its time. Bisection in log space: the gain of a doubling
 * shrinks as the budget grows. */
static double saturated_budget(double budget, double (*loss)(void *, double), void *ctx) {
#define GAIN(x) (1.0 - loss(ctx, 2.0 * exp(x)) / loss(ctx, exp(x)))
    double lo = log(budget) - log(1e12), hi = log(budget);
    if (GAIN(hi) >= SATURATED) return budget;
    if (GAIN(lo) < SATURATED) return exp(lo);
    for (int k = 0; k < 60; k++) {
        double mid = 0.5 * (lo + hi);
        if (GAIN(mid) < SATURATED)
            hi = mid;
        else
            lo = mid;
    }
#undef GAIN
    return exp(hi);
}

typedef struct {
    const anv_law_t *law;
    double unique;
    const machine_t *mc;
} saturation_t;

static double loss_of_flops(void *ctx, double flops) {
    const saturation_t *s = ctx;
    anv_optimum_t opt;
    anv_law_optimum_repeated(s->law, flops, s->unique, &opt);
    return opt.loss;
}

static double loss_of_seconds(void *ctx, double seconds) {
    const saturation_t *s = ctx;
    anv_optimum_t opt;
    anv_config_t shape;
    const machine_t *mc = s->mc;
    return anv_plan_for_seconds(s->law, &mc->speed, mc->arch, mc->vocab, mc->seq, seconds, s->unique, &opt, &shape) == 0
               ? opt.loss
               : HUGE_VAL;
}

/* Times a training step of the shape nearest params (unless one of that size is timed, or it would
 * take too long once another size is timed). */
static int time_near(machine_t *mc, double params) {
    anv_config_t shapes[MAX_SHAPES];
    int n = anv_plan_shapes(mc->arch, params, mc->vocab, mc->seq, shapes, MAX_SHAPES);
    anv_config_t c = n ? shapes[anv_plan_nearest(shapes, n, params)] : anv_plan_smallest(mc->arch, mc->vocab, mc->seq);
    double size = (double)anv_config_num_params(&c), seconds;
    for (int i = 0; i < mc->speed.n; i++)
        if (mc->speed.params[i] == size) return 0;
    double predicted = anv_model_flops_per_token(&c, mc->seq) * mc->batch * mc->seq / (mc->peak * 1e9 * ASSUMED_MFU);
    if (mc->speed.n > 0 && predicted > MAX_TIMING_SECONDS) return 0;
    if (anv_speed_add(&mc->speed, &c, mc->batch, mc->seq, &seconds) != 0) return -1;
    fprintf(stderr, "  timed %s %d layers x %d wide (%.0f parameters): %.3f s per micro-batch, %.1f%% MFU\n",
            anv_arch_name(mc->arch), c.n_layer, c.n_embd, size, seconds, 100.0 * anv_speed_mfu(&mc->speed, size));
    return 0;
}

/* The precision train's --precision auto would take, measured on the shape nearest the budget's optimum
 * (for a time budget, the FLOPs it would hold at the assumed MFU of the best peak; or a token count). */
static int choose_precision(const machine_t *mc, const anv_law_t *law, double flops, double tokens, double unique,
                            anv_precision_t *prec) {
    anv_optimum_t guess;
    if (tokens > 0)
        anv_law_optimum_for_tokens(law, tokens, &guess);
    else if (unique > 0)
        anv_law_optimum_repeated(law, flops, unique, &guess);
    else
        anv_law_optimum_for_flops(law, flops, &guess);
    anv_config_t c;
    anv_precision_timing_t pt;
    if (anv_plan_precision(mc->arch, guess.params, mc->vocab, mc->batch, mc->seq, &c, &pt) != 0) return -1;
    *prec = pt.faster;
    printf("precision: %s, as train's --precision auto takes it: a step's matrix products of %.4g parameters take "
           "%.3g s in bf16 against %.3g s in fp32 here (%s)\n",
           anv_precision_name(pt.faster), (double)anv_config_num_params(&c), pt.seconds[ANV_PRECISION_BF16],
           pt.seconds[ANV_PRECISION_FP32], pt.injected ? "given by ANVIL_TEST_MATMUL_SECONDS" : "measured");
    return 0;
}

/* Hours: every size trains on what it reads in that time at its own speed here (small models use the
 * machine far worse than large ones). Shapes are timed around the compute-optimal size at an assumed
 * MFU, then near the answer until it lies within a factor of 2 of a timed size. */
static int time_optimum(machine_t *mc, const anv_law_t *law, double hours, double unique, anv_optimum_t *opt) {
    mc->seconds = hours * 3600.0;
    mc->speed = (anv_speed_t){.peak = mc->peak * 1e9};
    anv_optimum_t guess;
    double guess_flops = mc->seconds * mc->speed.peak * ASSUMED_MFU;
    if (unique > 0)
        anv_law_optimum_repeated(law, guess_flops, unique, &guess);
    else
        anv_law_optimum_for_flops(law, guess_flops, &guess);
    const double spread[3] = {1.0, 1.0 / 8, 8.0};
    for (int i = 0; i < 3; i++)
        if (time_near(mc, guess.params * spread[i]) != 0) return -1;
    for (int round = 0;; round++) {
        anv_config_t shape;
        saturation_t sat = {law, unique, mc};
        mc->seconds = unique > 0 ? saturated_budget(hours * 3600.0, loss_of_seconds, &sat) : hours * 3600.0;
        if (anv_plan_for_seconds(law, &mc->speed, mc->arch, mc->vocab, mc->seq, mc->seconds, unique, opt, &shape) != 0)
            return -1;
        int near = 0;
        for (int i = 0; i < mc->speed.n; i++) near |= fabs(log(opt->params / mc->speed.params[i])) < log(2.0);
        if (near || round == 3) break;
        int timed = mc->speed.n;
        if (time_near(mc, opt->params) != 0) return -1;
        if (mc->speed.n == timed) break; /* too large to time */
    }
    printf(
        "throughput: the lowest loss in %.4g hours comes from %.4g parameters at %.1f%% MFU reached (%.0f tokens/s); "
        "MFU timed from %.1f%% (%.4g parameters) to %.1f%% (%.4g)\n",
        mc->seconds / 3600.0, opt->params, 100.0 * anv_speed_mfu(&mc->speed, opt->params), opt->tokens / mc->seconds,
        100.0 * mc->speed.mfu[0], mc->speed.params[0], 100.0 * mc->speed.mfu[mc->speed.n - 1],
        mc->speed.params[mc->speed.n - 1]);
    return 0;
}

static void print_shapes(const machine_t *mc, const anv_law_t *law, const anv_optimum_t *opt, double unique,
                         const anv_config_t *shapes, int n, const char *data, const char *out, int fixed_tokens) {
    int best = anv_plan_nearest(shapes, n, opt->params);
    double ram = (double)anv_device_memory_bytes();
    printf("\nshapes near N_opt (%s, vocabulary %d, seq %d, %lld tokens per step, micro-batch %d; hours at %s of "
           "%.1f GFLOP/s; memory against %.1f GiB of %s memory):\n",
           anv_arch_name(mc->arch), mc->vocab, mc->seq, mc->batch_tokens, mc->batch,
           mc->seconds > 0 ? "the MFU measured for each size" : "an assumed MFU", mc->peak, ram / (1 << 30),
           strcmp(anv_device(), "cpu") ? anv_device() : "host");
    printf("  %-3s %7s %6s %6s %9s %6s %14s %14s %10s %10s %10s %4s %7s\n", "row", "n_layer", "n_embd", "n_head",
           "n_kv_head", "n_ff", "params", "tokens", "steps", "hours", "memory", "fits", "loss");
    for (int i = 0; i < n; i++) {
        const anv_config_t *c = &shapes[i];
        double params = (double)anv_config_num_params(c);
        double tokens = row_tokens(mc, opt, c, fixed_tokens);
        long long steps = (long long)ceil(tokens / (double)mc->batch_tokens);
        double hours = tokens / tokens_per_s(mc, c) / 3600.0;
        anv_memory_budget_t mb;
        anv_model_memory_budget(c, mc->batch, mc->seq, &mb);
        printf("  %-3d %7d %6d %6d %9d %6d %14.0f %14.0f %10lld %10.3g %8.1f GiB %4s %7.4f\n", i + 1, c->n_layer,
               c->n_embd, c->n_head, c->n_kv_head, c->n_ff, params, tokens, steps, hours, (double)mb.total / (1 << 30),
               ram > 0 && (double)mb.total < ram ? "yes" : "no",
               unique > 0 ? anv_law_loss_repeated(law, params, tokens, unique) : anv_law_loss(law, params, tokens));
    }
    printf("\ncommands (the config of each row: n_layer, n_embd, n_head, n_kv_head, n_ff above):\n");
    for (int i = 0; i < n; i++) {
        double tokens = row_tokens(mc, opt, &shapes[i], fixed_tokens);
        printf("  row %d%s: anvil train --data %s --out RUN --config %s --batch %d --seq %d --total-batch-tokens %lld "
               "--steps %lld%s\n",
               i + 1, i == best ? " (recommended)" : "", data ? data : "DATA", i == best && out ? out : "CONFIG.json",
               mc->batch, mc->seq, mc->batch_tokens, (long long)ceil(tokens / (double)mc->batch_tokens),
               unique > 0 && tokens > unique ? " --keep-best" : "");
    }
    anv_buf_t json = {0};
    if (anv_config_json(&shapes[best], NULL, &json) == 0)
        printf("\nconfig of row %d (the recommended one%s):\n%.*s", best + 1, out ? ", written to --out" : "",
               (int)json.len, json.data);
    anv_buf_free(&json);
    printf("steps %lld\n",
           (long long)ceil(row_tokens(mc, opt, &shapes[best], fixed_tokens) / (double)mc->batch_tokens));
}

int cmd_plan(int argc, char **argv) {
    double flops = 0, hours = 0, tokens = 0, mfu = ASSUMED_MFU, peak = 0;
    const char *law_name = "epoch", *fit = NULL, *arch_name = "gpt2", *data = NULL, *out = NULL, *device = NULL;
    int threads = 0, seq = 1024, vocab = 50257, batch = 4;
    long long batch_tokens = 524288;
    enum { O_FLOPS, O_HOURS, O_TOKENS, O_LAW, O_FIT, O_MFU, O_VOCAB };
    const opt_t opts[] = {
        [O_FLOPS] = {"--flops", OPT_DOUBLE, &flops, "training compute in FLOPs (6 N D)"},
        [O_HOURS] = {"--hours", OPT_DOUBLE, &hours, "wall time on this machine (throughput measured)"},
        [O_TOKENS] = {"--tokens", OPT_DOUBLE, &tokens, "training tokens: the model they are compute-optimal for"},
        [O_LAW] = {"--law", OPT_STRING, &law_name,
                   "hoffmann (Hoffmann et al. 2022) or epoch (Besiroglu et al. 2024, default)"},
        [O_FIT] = {"--fit", OPT_STRING, &fit, "a law fitted by anvil scale fit (FIT.json) instead of --law"},
        [O_MFU] = {"--mfu", OPT_DOUBLE, &mfu, "assumed share of the peak for the hours column (default 0.3)"},
        [O_VOCAB] = {"--vocab", OPT_INT, &vocab, "vocabulary size (default: the data's, or 50257)"},
        {"--arch", OPT_STRING, &arch_name, "gpt2 (default) or llama"},
        {"--data", OPT_STRING, &data, "data directory: its vocabulary; repeated epochs when it holds fewer tokens"},
        {"--seq", OPT_INT, &seq, "tokens per sequence (default 1024)"},
        {"--batch", OPT_INT, &batch, "rows per micro-batch (default 4)"},
        {"--batch-tokens", OPT_LONG, &batch_tokens, "tokens per optimizer step (default 524288)"},
        {"--threads", OPT_INT, &threads, "threads for timing (default: all cores)"},
        {"--device", OPT_STRING, &device, "cpu (default) or cuda: the device timed, measured and planned for"},
        {"--peak", OPT_DOUBLE, &peak, "the device's peak GFLOP/s at the precision used (default on the CPU: measured)"},
        {"--out", OPT_STRING, &out, "write the recommended config JSON here"},
    };
    const opt_range_t ranges[] = {
        {"--flops", 1, 1e30},    {"--hours", 1e-6, 1e7},      {"--tokens", 1, 1e16},
        {"--mfu", 1e-4, 1},      {"--vocab", 2, 1 << 24},     {"--seq", 1, 1 << 20},
        {"--batch", 1, 1 << 20}, {"--batch-tokens", 1, 1e12}, {"--threads", 0, cli_max_threads()},
        {"--peak", 1e-3, 1e12},
    };
    int seen[sizeof opts / sizeof opts[0]];
    int rc = cli_parse_bounded(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), ranges,
                               (int)(sizeof ranges / sizeof ranges[0]), usage, seen);
    if (rc != 0) return rc > 0 ? 0 : cli_fail();
    if (seen[O_FLOPS] + seen[O_HOURS] + seen[O_TOKENS] != 1)
        return anv_error("plan: give one of --flops, --hours or --tokens (see --help)"), cli_fail();
    if (seen[O_FIT] && seen[O_LAW]) return anv_error("plan: give --law or --fit, not both"), cli_fail();
    machine_t mc = {.vocab = vocab, .seq = seq, .batch = batch, .mfu = mfu};
    if (!strcmp(arch_name, "gpt2"))
        mc.arch = ANV_ARCH_GPT2;
    else if (!strcmp(arch_name, "llama"))
        mc.arch = ANV_ARCH_LLAMA;
    else
        return anv_error("--arch %s: expected gpt2 or llama", arch_name), cli_fail();
    long long row_tokens = (long long)batch * seq; /* a step is a whole number of micro-batches */
    mc.batch_tokens = (batch_tokens + row_tokens - 1) / row_tokens * row_tokens;

    anv_law_t law;
    anv_point_t *fit_runs = NULL; /* read before anything is timed, so that a bad file costs no measurement */
    int n_fit_runs = 0;
    if (fit ? anv_law_load(fit, &law) != 0 || anv_fit_runs_load(fit, &fit_runs, &n_fit_runs) != 0
            : anv_law_builtin(law_name, &law) != 0)
        return cli_fail();
    double unique = 0, val_tokens;
    int data_vocab;
    if (data && cli_data_meta(data, &unique, &val_tokens, &data_vocab) != 0) goto fail;
    if (data && !seen[O_VOCAB]) mc.vocab = data_vocab;

    anv_threads_set(threads);
    if (device && anv_device_set(device) != 0) goto fail;
    int on_cpu = !strcmp(anv_device(), "cpu");
    if (!on_cpu && !(peak > 0)) {
        anv_error("plan --device %s: give --peak, the device's peak GFLOP/s at the precision it trains in (hours and "
                  "MFU are reckoned against it)",
                  anv_device());
        goto fail;
    }
    int bits = 0;
    double fma = on_cpu ? anv_cpu_fma_peak(0.2, &bits) : 0, bf16 = on_cpu ? anv_cpu_bf16_peak(0.2) : 0;
    double best_peak = peak > 0 ? peak : fma > bf16 ? fma : bf16;
    anv_precision_t prec;
    if (choose_precision(&mc, &law, seen[O_HOURS] ? hours * 3600.0 * best_peak * 1e9 * ASSUMED_MFU : flops,
                         seen[O_TOKENS] ? tokens : 0, unique, &prec) != 0)
        goto fail;
    anv_matmul_precision_set(prec);
    mc.peak = peak > 0 ? peak : anv_cpu_precision_peak(prec, fma, bf16);
    printf("law: %s: L(N, D) = %.6g + %.6g / N^%.6g + %.6g / D^%.6g\n", fit ? fit : law_name, law.E, law.A, law.alpha,
           law.B, law.beta);
    if (on_cpu)
        printf("machine: %d threads, %s peak %.1f GFLOP/s (%s)\n", anv_threads_count(), anv_precision_name(prec),
               mc.peak, peak > 0 ? "given by --peak" : "measured");
    else
        printf("device: %s, %s peak %.1f GFLOP/s (given by --peak)\n", anv_device(), anv_precision_name(prec), mc.peak);

    anv_optimum_t opt;
    if (seen[O_HOURS]) {
        if (time_optimum(&mc, &law, hours, unique, &opt) != 0) goto fail;
    } else if (seen[O_TOKENS]) {
        anv_law_optimum_for_tokens(&law, tokens, &opt);
        if (unique > 0) opt.loss = anv_law_loss_repeated(&law, opt.params, tokens, unique);
    } else if (unique > 0) {
        saturation_t sat = {&law, unique, &mc};
        anv_law_optimum_repeated(&law, saturated_budget(flops, loss_of_flops, &sat), unique, &opt);
    } else {
        anv_law_optimum_for_flops(&law, flops, &opt);
    }
    printf("budget: %.4g FLOPs: N_opt %.4g parameters, D_opt %.4g tokens (%.1f per parameter), predicted loss %.4f\n",
           opt.flops, opt.params, opt.tokens, opt.tokens / opt.params, opt.loss);
    printf("N_opt %.0f\nD_opt %.0f\n", opt.params, opt.tokens);
    if (unique > 0 && opt.tokens > unique) {
        anv_optimum_t free_data;
        anv_law_optimum_for_flops(&law, opt.flops, &free_data);
        printf("data: %s holds %.0f unique tokens: %.2f epochs, worth %.4g unique tokens, and %.4g parameters worth "
               "%.4g (Muennighoff et al. 2023); with unlimited data N_opt would be %.4g. A model that reads its data "
               "many times can overfit before its last step: the commands keep the one of the lowest validation "
               "loss (--keep-best)\n",
               data, unique, opt.tokens / unique, anv_law_effective_tokens(&law, opt.tokens, unique), opt.params,
               anv_effective_params(&law, opt.params, unique), free_data.params);
    } else if (unique > 0)
        printf("data: %s holds %.0f unique tokens: no epoch is repeated\n", data, unique);
    if (n_fit_runs > 0 && unique > 0 && law.unique_tokens > 0)
        note_epochs_beyond_fit(fit, fit_runs, n_fit_runs, &law, unique, &opt);
    if (seen[O_HOURS] ? mc.seconds < hours * 3600.0 : seen[O_FLOPS] && opt.flops < flops)
        printf("saturated: past %.4g %s a doubling of compute lowers the predicted loss by less than %g%%: the unique "
               "tokens are spent, so the plan is for that part of the %g %s; more unique tokens, not more compute, "
               "would lower the loss\n",
               seen[O_HOURS] ? mc.seconds / 3600.0 : opt.flops, seen[O_HOURS] ? "hours" : "FLOPs", 100.0 * SATURATED,
               seen[O_HOURS] ? hours : flops, seen[O_HOURS] ? "hours" : "FLOPs");
    if (opt.loss > log((double)mc.vocab))
        printf("note: the predicted loss is above ln %d = %.4f, a uniform guess over the vocabulary: the law does not "
               "hold here (%s)\n",
               mc.vocab, log((double)mc.vocab),
               !fit ? "it was fitted on other data, tokenizers and scales; fit one to this data with anvil scale run"
               : data && law.unique_tokens <= 0
                   ? "a fitted law holds near its ladder's sizes and data; with --data it is also discounted for "
                     "repetition, which its runs, fitted on the tokens they read, already measured"
                   : "a fitted law holds near its ladder's sizes and data");

    anv_config_t shapes[MAX_SHAPES];
    int n = anv_plan_shapes(mc.arch, opt.params, mc.vocab, mc.seq, shapes, MAX_SHAPES);
    if (n == 0) {
        anv_config_t small = anv_plan_smallest(mc.arch, mc.vocab, mc.seq);
        double least = (double)anv_config_num_params(&small);
        if (opt.params < least)
            anv_error("plan: budget too small: N_opt %.4g parameters is below the smallest %s model (%.4g with "
                      "vocabulary %d)",
                      opt.params, anv_arch_name(mc.arch), least, mc.vocab);
        else
            anv_error("plan: no %s shape within 25%% of N_opt %.4g parameters", anv_arch_name(mc.arch), opt.params);
        goto fail;
    }
    print_shapes(&mc, &law, &opt, unique, shapes, n, data, out, seen[O_TOKENS]);
    if (out) {
        anv_buf_t json = {0};
        rc = anv_config_json(&shapes[anv_plan_nearest(shapes, n, opt.params)], NULL, &json) == 0
                 ? anv_write_file_atomic(out, json.data, json.len)
                 : -1;
        anv_buf_free(&json);
        if (rc != 0) goto fail;
    }
    anv_free(fit_runs);
    return 0;
fail:
    anv_free(fit_runs);
    return cli_fail();
}

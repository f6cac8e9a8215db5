/* anvil bench train: how fast and how lean a training step is on this machine. Measures the fp32 FMA
 * peak first (about 0.2 s on every thread), then times whole training steps (zero_grad, forward,
 * backward, gradient clipping, AdamW) of a preset on random tokens, and reports the median step as
 * tokens/s, GFLOP/s (anv_model_flops_per_token) and % of the measured peak, with the peak resident
 * memory against the computed budget (parameters + gradients + AdamW state + activations). */
#include "cli.h"

#include "anvil/kernels.h"
#include "anvil/model.h"
#include "anvil/optim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static const char usage[] =
    "anvil bench train --preset NAME [--batch B] [--seq T] [--precision auto|fp32|bf16] [--device cpu|cuda]\n"
    "                  [--threads N] [--steps S] [--warmup W] [--profile P]";

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

/* Times warmup + steps training steps; fills times[steps] with the timed ones. */
static int time_steps(anv_model_t *m, anv_adamw_t *opt, const int32_t *tokens, int B, int T, int warmup, int steps,
                      double *times) {
    anv_adamw_config_t oc = {0.9f, 0.95f, 1e-8f, 0.1f};
    for (int s = 0; s < warmup + steps; s++) {
        float loss;
        double t0 = anv_now();
        anv_model_zero_grad(m);
        if (anv_model_forward(m, tokens, tokens + 1, NULL, B, T, &loss) != 0 || anv_model_backward(m, 1.0f) != 0)
            return -1;
        anv_clip_grad_norm(anv_model_grads(m), anv_model_n_params(m), 1.0f);
        anv_adamw_step(opt, m, &oc, 1e-4f);
        anv_device_sync(); /* a GPU runs the step asynchronously */
        double dt = anv_now() - t0;
        if (s >= warmup) times[s - warmup] = dt;
        fprintf(stderr, "  step %d%s: %.3f s, loss %.4f\n", s, s < warmup ? " (warm-up)" : "", dt, loss);
    }
    return 0;
}

/* P more steps with the kernel profiler on: each kernel's time per step, against the steps' wall time. */
static int profile_steps(anv_model_t *m, anv_adamw_t *opt, const int32_t *tokens, int B, int T, int P) {
    double *times = anv_alloc((size_t)P * sizeof *times, "profile times");
    if (!times) return -1;
    anv_profile_entry_t e[64];
    anv_profile_start();
    int rc = time_steps(m, opt, tokens, B, T, 0, P, times);
    int n = anv_profile_stop(e, 64);
    if (rc == 0) {
        double wall = 0, kernels = 0;
        for (int i = 0; i < P; i++) wall += times[i];
        printf("profile of %d more step%s on %s (%.3f s per step; a kernel's time includes what it waits for):\n", P,
               P == 1 ? "" : "s", anv_device(), wall / P);
        printf("  %-28s %10s %10s %8s\n", "kernel", "calls/step", "ms/step", "share");
        for (int i = 0; i < n; i++) {
            kernels += e[i].seconds;
            printf("  %-28s %10.1f %10.3f %7.1f%%\n", e[i].name, (double)e[i].calls / P, 1e3 * e[i].seconds / P,
                   100.0 * e[i].seconds / wall);
        }
        printf("  %-28s %10s %10.3f %7.1f%%\n", "outside the kernels", "", 1e3 * (wall - kernels) / P,
               100.0 * (wall - kernels) / wall);
    }
    anv_free(times);
    return rc;
}

/* One matrix product on every thread, so that the thread pool and the BLAS library's work buffers exist
 * before the resident memory the model adds is measured. */
static void warm_up_libraries(void) {
    enum { S = 256 };
    float *a = anv_calloc(3 * S * S * sizeof(float), "warm-up");
    if (!a) return;
    anv_matmul_forward(a + 2 * S * S, a, a + S * S, NULL, S, S, S);
    anv_free(a);
}

static int bench_train(int argc, char **argv) {
    const char *preset = NULL, *precision = "auto", *device = NULL;
    int B = 8, T = 256, threads = 0, steps = 5, warmup = 2, profile = 0;
    double peak = 0;
    const opt_t opts[] = {
        {"--preset", OPT_STRING, &preset,
         "model preset: tiny, small, gpt2-124m, gpt2-350m, llama-tiny, llama-small, smollm2-135m, llama3.2-1b"},
        {"--batch", OPT_INT, &B, "sequences per step (default 8)"},
        {"--seq", OPT_INT, &T, "tokens per sequence (default 256)"},
        {"--threads", OPT_INT, &threads, "threads (default: all cores)"},
        {"--steps", OPT_INT, &steps, "timed steps, the median is reported (default 5)"},
        {"--warmup", OPT_INT, &warmup, "untimed steps first (default 2)"},
        {"--precision", OPT_STRING, &precision,
         "matrix products in auto (default: the faster of fp32 and bf16 for this model, measured), fp32 or bf16"},
        {"--device", OPT_STRING, &device, "cpu (default) or cuda"},
        {"--peak", OPT_DOUBLE, &peak,
         "the device's peak GFLOP/s for the MFU (default on the CPU: measured fp32 FMA peak)"},
        {"--profile", OPT_INT, &profile, "then P more steps with each kernel's time per step (default 0)"},
    };
    const opt_range_t ranges[] = {
        {"--batch", 1, 1 << 20}, {"--seq", 1, 1 << 24}, {"--threads", 0, cli_max_threads()},
        {"--steps", 1, 1e6},     {"--warmup", 0, 1e6},  {"--peak", 0, 1e12},
        {"--profile", 0, 1e6},
    };
    int rc = cli_parse_bounded(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), ranges,
                               (int)(sizeof ranges / sizeof ranges[0]), usage, NULL);
    if (rc != 0) return rc > 0 ? 0 : cli_fail();
    if (!preset) {
        anv_error("bench train needs --preset (see --help)");
        return cli_fail();
    }
    anv_config_t cfg;
    if (anv_config_preset(preset, &cfg) != 0) return cli_fail();
    if (B < 1 || T < 1 || T > cfg.block_size || steps < 1 || warmup < 0 || threads < 0 || profile < 0) {
        anv_error("bench train: need --batch >= 1, 1 <= --seq <= %d, --steps >= 1, --warmup, --threads, --profile >= 0",
                  cfg.block_size);
        return cli_fail();
    }
    int option;
    if (anv_precision_option(precision, &option) != 0 || (device && anv_device_set(device) != 0)) return cli_fail();
    anv_threads_set(threads);
    anv_precision_t prec = (anv_precision_t)option;
    if (option == ANV_PRECISION_AUTO) {
        anv_precision_timing_t pt;
        if (anv_precision_measure(&cfg, B, T, &pt) != 0) return cli_fail();
        prec = pt.faster;
        printf("precision auto: %s (a step's matrix products %.3g s in bf16, %.3g s in fp32, %s)\n",
               anv_precision_name(prec), pt.seconds[ANV_PRECISION_BF16], pt.seconds[ANV_PRECISION_FP32],
               pt.injected ? "given by ANVIL_TEST_MATMUL_SECONDS" : "measured");
    }
    anv_matmul_precision_set(prec);

    int on_cpu = !strcmp(anv_device(), "cpu");
    double best = peak;
    if (on_cpu) {
        int bits = 0;
        double measured = anv_cpu_fma_peak(0.2, &bits), bf16 = anv_cpu_bf16_peak(0.2);
        printf("machine: %d threads, measured fp32 FMA peak %.1f GFLOP/s (", anv_threads_count(), measured);
        if (bits)
            printf("%d-bit vectors)", bits);
        else
            printf("the portable copy's plain loop)");
        printf("; bf16 products on %s", anv_cpu_bf16_products());
        if (bf16 > 0) printf(", peak %.1f GFLOP/s", bf16);
        printf("\n");
        if (!(peak > 0)) {
            peak = anv_cpu_precision_peak(prec, measured, bf16);
            best = measured > bf16 ? measured : bf16;
        }
    } else {
        printf("device: %s; peak for the MFU %s\n", anv_device(), peak > 0 ? "from --peak" : "not given (--peak)");
    }
    struct rusage ru;
    if (on_cpu) warm_up_libraries();
    getrusage(RUSAGE_SELF, &ru);
    double rss_start = (double)ru.ru_maxrss * 1024.0; /* the program and its libraries, before the model */
    anv_memory_budget_t mb;
    anv_model_memory_budget(&cfg, B, T, &mb);
    printf("model: %s, %zu parameters; activation memory per token %.1f KiB\n", preset, anv_config_num_params(&cfg),
           mb.activations_per_token / 1024.0);
    fflush(stdout);

    anv_model_t *m = NULL;
    anv_adamw_t opt = {0};
    int32_t *tokens = NULL;
    double *times = NULL;
    rc = -1;
    size_t n_tok = (size_t)B * T + 1;
    if (anv_model_create(&cfg, &m) != 0 || anv_adamw_init(&opt, anv_model_n_params(m)) != 0) goto done;
    if (!(tokens = anv_alloc(n_tok * sizeof *tokens, "bench tokens")) ||
        !(times = anv_alloc((size_t)steps * sizeof *times, "bench times")))
        goto done;
    anv_model_init(m, 1);
    anv_rng_t rng;
    anv_rng_seed(&rng, 2);
    for (size_t i = 0; i < n_tok; i++) tokens[i] = (int32_t)(anv_rng_u64(&rng) % (uint64_t)cfg.vocab_size);
    if (time_steps(m, &opt, tokens, B, T, warmup, steps, times) != 0) goto done;

    qsort(times, steps, sizeof *times, cmp_double);
    double med = times[steps / 2], tok_s = (double)B * T / med;
    double gflops = tok_s * anv_model_flops_per_token(&cfg, T) / 1e9;
    getrusage(RUSAGE_SELF, &ru);
    double rss = (double)ru.ru_maxrss * 1024.0;
    /* a measured peak below what a step reached fell short (a busy machine): the step's rate is the peak */
    if (gflops > peak && peak > 0)
        printf("the step ran above the measured peak of %.1f GFLOP/s: that is its peak\n", peak);
    peak = gflops > peak && peak > 0 ? gflops : peak;
    best = gflops > best && best > 0 ? gflops : best;
    printf("train step B=%d T=%d %s: %.3f s (median of %d after %d warm-up), %.1f tokens/s, %.1f GFLOP/s, "
           "%.1f%% of peak (%.1f), %.1f%% of the best peak (%.1f)\n",
           B, T, anv_precision_name(prec), med, steps, warmup, tok_s, gflops, peak > 0 ? 100.0 * gflops / peak : 0.0,
           peak, best > 0 ? 100.0 * gflops / best : 0.0, best);
    printf("memory budget: %.1f MiB = parameters %.1f + gradients %.1f + AdamW state %.1f + activations %.1f "
           "(%.1f KiB/token)\n",
           mib((double)mb.total), mib((double)mb.params), mib((double)mb.grads), mib((double)mb.optimizer),
           mib((double)mb.activations), mb.activations_per_token / 1024.0);
    /* What training adds to the process: the program, its libraries and their buffers were resident
     * before the model existed and do not grow with it. */
    double train_rss = rss - rss_start;
    printf("peak RSS: %.1f MiB = %.1f MiB before the model (program, libraries) + %.1f MiB for training = %.3f x "
           "budget%s\n",
           mib(rss), mib(rss_start), mib(train_rss), train_rss / (double)mb.total,
           train_rss <= 1.1 * (double)mb.total ? "" : ", over budget + 10%");
    if (profile > 0 && profile_steps(m, &opt, tokens, B, T, profile) != 0) goto done;
    rc = 0;
done:
    anv_free(times);
    anv_free(tokens);
    anv_adamw_free(&opt);
    anv_model_free(m);
    return rc == 0 ? 0 : cli_fail();
}

int cmd_bench(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "train")) return bench_train(argc - 1, argv + 1);
    fprintf(stderr, "usage: anvil bench train [options]   (--help for its options)\n"
                    "  train    time whole training steps: tokens/s, GFLOP/s, %% of peak, memory vs budget\n");
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return argc < 2 ? 2 : 0;
    fprintf(stderr, "anvil: unknown bench subcommand '%s'\n", argv[1]);
    return 2;
}

/* Times whole training steps (zero_grad, forward, backward, clip, AdamW) of a preset model.
 * Usage: bench_model [--preset gpt2-124m] [--batch 4] [--seq 64] [--threads 2] [--steps 5] [--warmup 2]
 * Prints the median step time of the timed steps, tokens/s and GFLOP/s (anv_model_flops_per_token). */
#include "anvil/model.h"
#include "anvil/optim.h"

#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *preset = "gpt2-124m";
    int B = 4, T = 64, threads = 2, steps = 5, warmup = 2;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) goto usage;
        if (!strcmp(a, "--preset")) preset = v;
        else if (!strcmp(a, "--batch")) B = atoi(v);
        else if (!strcmp(a, "--seq")) T = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--warmup")) warmup = atoi(v);
        else goto usage;
    }
    if (B < 1 || T < 1 || steps < 1 || warmup < 0) goto usage;
    anv_threads_set(threads);
    anv_config_t cfg;
    anv_model_t *m;
    anv_adamw_t opt;
    if (anv_config_preset(preset, &cfg) || anv_model_create(&cfg, &m) || anv_adamw_init(&opt, anv_model_n_params(m))) {
        fprintf(stderr, "bench_model: %s\n", anv_last_error());
        return 1;
    }
    anv_model_init_gpt2(m, 1);
    int32_t *tokens = malloc(sizeof(int32_t) * ((size_t)B * T + 1));
    anv_rng_t rng;
    anv_rng_seed(&rng, 2);
    for (size_t i = 0; i <= (size_t)B * T; i++) tokens[i] = (int32_t)(anv_rng_u64(&rng) % cfg.vocab_size);
    anv_adamw_config_t oc = {0.9f, 0.95f, 1e-8f, 0.1f};
    double *times = malloc(sizeof(double) * steps);
    float loss = 0;
    for (int s = 0; s < warmup + steps; s++) {
        double t0 = anv_now();
        anv_model_zero_grad(m);
        if (anv_model_forward(m, tokens, tokens + 1, B, T, &loss) || anv_model_backward(m, 1.0f)) {
            fprintf(stderr, "bench_model: %s\n", anv_last_error());
            return 1;
        }
        anv_clip_grad_norm(anv_model_grads(m), anv_model_n_params(m), 1.0f);
        anv_adamw_step(&opt, m, &oc, 1e-4f);
        double dt = anv_now() - t0;
        if (s >= warmup) times[s - warmup] = dt;
        fprintf(stderr, "  step %d: %.3f s, loss %.4f\n", s, dt, loss);
    }
    qsort(times, steps, sizeof(double), cmp_double);
    double med = times[steps / 2], tok = (double)B * T / med;
    double gflops = tok * anv_model_flops_per_token(&cfg, T) / 1e9;
    printf("anvil %s B=%d T=%d threads=%d: %.3f s/step (median of %d), %.1f tokens/s, %.1f GFLOP/s\n", preset, B, T,
           anv_threads_count(), med, steps, tok, gflops);
    free(times);
    free(tokens);
    anv_adamw_free(&opt);
    anv_model_free(m);
    return 0;
usage:
    fprintf(stderr,
            "usage: bench_model [--preset NAME] [--batch B] [--seq T] [--threads N] [--steps N] [--warmup N]\n");
    return 2;
}

/* anvil scale run: the user's own scaling study on this machine. An IsoFLOP ladder sized to a budget of
 * hours (timed here) or FLOPs, each run an ordinary run directory trained with one recipe; then the
 * Approach 3 fit of their lowest validation losses (below), its plots, an optional check run at a multiple of the
 * largest budget, and a plan for a target budget from the fitted law. The same command continues a
 * ladder stopped at any point (Ctrl-C, kill -9, power loss):
 *   LADDER/ladder.json        the design (data, recipe, runs), written once before the first run
 *   LADDER/configs/NAME.json  each run's model
 *   LADDER/runs/NAME/         anvil train's run directories, each resumable on its own
 *   LADDER/points.csv         params,tokens,loss of the finished runs (what anvil scale fit reads)
 *   LADDER/fit.json, isoflop.svg, prediction.svg, check.json */
#include "cli.h"

#include "anvil/json.h"
#include "anvil/kernels.h"
#include "anvil/run_dir.h"
#include "anvil/trainer.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "anvil scale run --data DIR (--budget-hours H | --budget-flops C) --out LADDER [--arch gpt2|llama]\n"
    "                [--levels L] [--sizes S] [--level-ratio R] [--size-step F] [--seq T] [--batch B]\n"
    "                [--batch-tokens N] [--lr LR] [--min-steps N] [--law epoch|hoffmann] [--precision auto|fp32|bf16]\n"
    "                [--check K] [--target-hours H | --target-flops C] [--threads N]\n"
    "Run the same command again to continue a ladder that stopped; its design is kept.";

#define MAX_RUNS 128
#define EVAL_TOKENS 262144 /* validation tokens per run at most: the same ones for every run */
#define MIN_PER_LEVEL 3
/* A run is evaluated at most MAX_EVALS times, evenly, the last at its end, and its point is its lowest
 * validation loss: a model that reads its data many times can start to overfit before its last step, and
 * the law, which only falls with more tokens, describes what the compute spent can reach. The
 * evaluations cost at most EVAL_SHARE of the run's compute (a forward pass is a third of a step's). */
#define MAX_EVALS 20
#define EVAL_SHARE 0.1

typedef struct {
    char data[4096];
    anv_ladder_spec_t spec;
    int batch; /* rows per micro-batch */
    double lr;
    anv_precision_t precision;
    int eval_batches;
    anv_ladder_run_t runs[MAX_RUNS];
    int n;
} ladder_t;

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static void run_name(const ladder_t *L, int i, char *buf, size_t size) {
    int first = i;
    while (first > 0 && L->runs[first - 1].level == L->runs[i].level) first--;
    snprintf(buf, size, "c%d-n%d", L->runs[i].level, i - first);
}

static int ladder_path(const char *dir, const char *sub, const char *name, const char *ext, char *buf, size_t size) {
    int n = sub ? snprintf(buf, size, "%s/%s/%s%s", dir, sub, name, ext) : snprintf(buf, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size) return anv_error("%s: path too long", dir);
    return 0;
}

/* ---- the design ---- */

/* The tokens read by the ladder's longest run. */
static double longest_run_tokens(const ladder_t *L) {
    double most = 0;
    for (int i = 0; i < L->n; i++) most = fmax(most, (double)(L->runs[i].steps * L->spec.batch_tokens));
    return most;
}

static double eval_tokens(const ladder_t *L) { return (double)L->eval_batches * L->batch * L->spec.seq; }

/* How many times a run of `steps` steps is evaluated. */
static int run_evals(const ladder_t *L, long long steps) {
    double affordable = EVAL_SHARE * 3.0 * (double)(steps * L->spec.batch_tokens) / eval_tokens(L);
    int n = affordable < MAX_EVALS ? (int)affordable : MAX_EVALS;
    if (n > steps) n = (int)steps;
    return n > 1 ? n : 1;
}

static double ladder_seconds(const ladder_t *L, const anv_speed_t *s) {
    double sum = 0;
    for (int i = 0; i < L->n; i++) {
        const anv_ladder_run_t *r = &L->runs[i];
        double train = (double)(r->steps * L->spec.batch_tokens), eval = run_evals(L, r->steps) * eval_tokens(L);
        sum += (train + eval / 3.0) / anv_speed_tokens_per_s(s, &r->cfg, L->spec.seq);
    }
    return sum;
}

/* The ladder whose cost (FLOPs, or seconds with speed) is nearest the budget: bisection on the
 * smallest level's compute. */
static void design_for_budget(ladder_t *L, const anv_law_t *prior, double budget, const anv_speed_t *speed) {
    double lo = log(1e6), hi = log(speed ? budget * speed->peak : budget);
    for (int k = 0; k < 60; k++) {
        double mid = 0.5 * (lo + hi);
        L->n = anv_ladder_design(&L->spec, prior, exp(mid), L->runs, MAX_RUNS);
        double cost = speed ? ladder_seconds(L, speed) : anv_ladder_flops(L->runs, L->n, L->spec.batch_tokens);
        if (cost > budget)
            hi = mid;
        else
            lo = mid;
    }
    L->n = anv_ladder_design(&L->spec, prior, exp(lo), L->runs, MAX_RUNS);
}

static int time_run(anv_speed_t *s, const ladder_t *L, const anv_config_t *cfg) {
    double seconds, params = (double)anv_config_num_params(cfg);
    for (int i = 0; i < s->n; i++)
        if (s->params[i] == params) return 0;
    if (anv_speed_add(s, cfg, L->batch, L->spec.seq, &seconds) != 0) return -1;
    fprintf(stderr, "  timed %d layers x %d wide (%.0f parameters): %.3f s per micro-batch, %.1f%% MFU\n", cfg->n_layer,
            cfg->n_embd, params, seconds, 100.0 * anv_speed_mfu(s, params));
    return 0;
}

/* Hours: the speed model is timed at the smallest and largest models of the ladder it sizes, until
 * the ladder's extremes are timed sizes. */
static int design_for_hours(ladder_t *L, const anv_law_t *prior, double hours, double peak) {
    anv_speed_t s = {.peak = peak};
    for (int round = 0; round < 4; round++) {
        design_for_budget(L, prior, hours * 3600.0, &s);
        if (L->n == 0) return 0;
        int timed = s.n;
        const anv_ladder_run_t *small = &L->runs[0], *large = &L->runs[0];
        for (int i = 1; i < L->n; i++) {
            if (L->runs[i].params < small->params) small = &L->runs[i];
            if (L->runs[i].params > large->params) large = &L->runs[i];
        }
        if (s.n + 2 > ANV_SPEED_POINTS) break;
        if (time_run(&s, L, &small->cfg) != 0 || time_run(&s, L, &large->cfg) != 0) return -1;
        if (s.n == timed) break;
    }
    design_for_budget(L, prior, hours * 3600.0, &s);
    fprintf(stderr, "  predicted: %.2f hours of training steps and evaluations\n", ladder_seconds(L, &s) / 3600.0);
    return 0;
}

static int check_design(const ladder_t *L) {
    int per_level[64] = {0};
    for (int i = 0; i < L->n; i++) per_level[L->runs[i].level]++;
    for (int l = 0; l < L->spec.levels; l++)
        if (per_level[l] < MIN_PER_LEVEL)
            return anv_error("scale run: budget too small for %d compute levels of %d or more models (level %d has %d "
                             "runs of at least %lld steps); raise the budget or lower --min-steps, --batch-tokens or "
                             "--levels",
                             L->spec.levels, MIN_PER_LEVEL, l + 1, per_level[l], L->spec.min_steps);
    return 0;
}

/* ---- ladder.json ---- */

static int save_ladder(const ladder_t *L, const char *dir) {
    char path[4200], name[64];
    anv_buf_t b = {0};
    if (ladder_path(dir, NULL, "configs", NULL, path, sizeof path) != 0 || anv_mkdir_p(path) != 0) return -1;
    for (int i = 0; i < L->n; i++) {
        run_name(L, i, name, sizeof name);
        if (ladder_path(dir, "configs", name, ".json", path, sizeof path) != 0 ||
            anv_config_save(&L->runs[i].cfg, path) != 0)
            return -1;
    }
    int rc = anv_buf_puts(&b, "{\n  \"data\": ");
    rc |= anv_buf_json_string(&b, L->data, strlen(L->data));
    rc |= anv_buf_printf(&b,
                         ",\n  \"arch\": \"%s\",\n  \"vocab\": %d,\n  \"seq\": %d,\n  \"batch\": %d,\n"
                         "  \"batch_tokens\": %lld,\n  \"lr\": %.17g,\n  \"precision\": \"%s\",\n"
                         "  \"eval_batches\": %d,\n  \"levels\": %d,\n  \"sizes\": %d,\n  \"level_ratio\": %.17g,\n"
                         "  \"size_step\": %.17g,\n  \"min_steps\": %lld,\n  \"runs\": [\n",
                         anv_arch_name(L->spec.arch), L->spec.vocab, L->spec.seq, L->batch, L->spec.batch_tokens, L->lr,
                         anv_precision_name(L->precision), L->eval_batches, L->spec.levels, L->spec.sizes,
                         L->spec.level_ratio, L->spec.size_step, L->spec.min_steps);
    for (int i = 0; i < L->n; i++) {
        run_name(L, i, name, sizeof name);
        rc |= anv_buf_printf(
            &b, "    {\"name\": \"%s\", \"level\": %d, \"flops\": %.17g, \"params\": %.17g, \"steps\": %lld}%s\n", name,
            L->runs[i].level, L->runs[i].flops, L->runs[i].params, L->runs[i].steps, i + 1 < L->n ? "," : "");
    }
    rc |= anv_buf_puts(&b, "  ]\n}\n");
    if (rc == 0) rc = ladder_path(dir, NULL, "ladder.json", NULL, path, sizeof path);
    if (rc == 0) rc = anv_write_file_atomic(path, b.data, b.len);
    anv_buf_free(&b);
    return rc;
}

static int load_ladder(ladder_t *L, const char *dir) {
    char path[4200], cfg_path[4200];
    anv_json_doc_t *doc;
    if (ladder_path(dir, NULL, "ladder.json", NULL, path, sizeof path) != 0 || anv_json_parse_file(path, &doc) != 0)
        return -1;
    const anv_json_t *root = anv_json_root(doc), *runs = anv_json_get(root, "runs");
    const char *data, *arch, *precision;
    long long vocab, seq, batch, batch_tokens, eval_batches, levels, sizes, min_steps;
    int rc = anv_json_get_string(root, "data", path, &data) | anv_json_get_string(root, "arch", path, &arch) |
             anv_json_get_string(root, "precision", path, &precision) | anv_json_get_int(root, "vocab", path, &vocab) |
             anv_json_get_int(root, "seq", path, &seq) | anv_json_get_int(root, "batch", path, &batch) |
             anv_json_get_int(root, "batch_tokens", path, &batch_tokens) |
             anv_json_get_int(root, "eval_batches", path, &eval_batches) |
             anv_json_get_int(root, "levels", path, &levels) | anv_json_get_int(root, "sizes", path, &sizes) |
             anv_json_get_int(root, "min_steps", path, &min_steps) | anv_json_get_double(root, "lr", path, &L->lr) |
             anv_json_get_double(root, "level_ratio", path, &L->spec.level_ratio) |
             anv_json_get_double(root, "size_step", path, &L->spec.size_step);
    if (rc == 0 && (!runs || runs->type != ANV_JSON_ARRAY || runs->len > MAX_RUNS || levels < 1 || levels > 8))
        rc = anv_error("%s: \"runs\" must be an array of at most %d runs over 1 to 8 levels", path, MAX_RUNS);
    if (rc == 0 && strlen(data) >= sizeof L->data) rc = anv_error("%s: data path too long", path);
    if (rc == 0 && anv_precision_parse(precision, &L->precision) != 0) rc = -1;
    if (rc == 0) {
        snprintf(L->data, sizeof L->data, "%s", data);
        L->spec = (anv_ladder_spec_t){!strcmp(arch, "llama") ? ANV_ARCH_LLAMA : ANV_ARCH_GPT2,
                                      (int)vocab,
                                      (int)seq,
                                      batch_tokens,
                                      (int)levels,
                                      (int)sizes,
                                      L->spec.level_ratio,
                                      L->spec.size_step,
                                      min_steps};
        L->batch = (int)batch;
        L->eval_batches = (int)eval_batches;
        L->n = (int)runs->len;
    }
    for (int i = 0; rc == 0 && i < L->n; i++) {
        const anv_json_t *r = &runs->items[i];
        const char *name;
        long long level, steps;
        anv_ladder_run_t *run = &L->runs[i];
        rc = anv_json_get_string(r, "name", path, &name) | anv_json_get_int(r, "level", path, &level) |
             anv_json_get_int(r, "steps", path, &steps) | anv_json_get_double(r, "flops", path, &run->flops);
        if (rc == 0 && (level < 0 || level >= levels || steps < 1))
            rc = anv_error("%s: run %d: level or steps out of range", path, i + 1);
        run->level = (int)level;
        run->steps = steps;
        if (rc == 0)
            rc = ladder_path(dir, "configs", name, ".json", cfg_path, sizeof cfg_path) != 0 ||
                         anv_config_load(cfg_path, &run->cfg) != 0 || anv_config_validate(&run->cfg, cfg_path) != 0
                     ? -1
                     : 0;
        run->params = (double)anv_config_num_params(&run->cfg);
    }
    anv_json_free(doc);
    return rc;
}

/* ---- training ---- */

typedef struct {
    const char *name;
    long long every;
} progress_t;

static void on_step(const anv_step_report_t *r, void *ctx) {
    const progress_t *p = ctx;
    if (r->step % p->every == 0 || r->step == r->steps)
        fprintf(stderr, "  %s step %lld/%lld loss %.4f, %.0f tok/s, ETA %.0f s\n", p->name, r->step, r->steps,
                (double)r->loss, r->tokens_per_s, r->eta_s);
}

/* Trains (or continues, or finds finished) the run `name` of `steps` steps from config; *best: its evaluation
 * of the lowest validation loss, *last (may be NULL) its final one. Returns 1 when stopped by a signal. */
static int train_run(const ladder_t *L, const char *dir, const char *name, long long steps, anv_eval_report_t *best,
                     anv_eval_report_t *last) {
    char run_dir[4200], config[4200], state_path[4300];
    if (ladder_path(dir, "runs", name, "", run_dir, sizeof run_dir) != 0 ||
        ladder_path(dir, "configs", name, ".json", config, sizeof config) != 0 ||
        anv_path_join(state_path, sizeof state_path, run_dir, "state.json") != 0)
        return -1;
    int evals = run_evals(L, steps);
    anv_hparams_t hp = {
        .B = L->batch,
        .T = L->spec.seq,
        .total_batch_tokens = L->spec.batch_tokens,
        .steps = steps,
        .sched = {.kind = ANV_SCHEDULE_COSINE, .max_lr = (float)L->lr, .min_lr = -1, .warmup = -1, .decay_steps = -1},
        .adamw = {0.9f, 0.95f, 1e-8f, 0.1f},
        .clip = 1.0f,
        .eval_every = (int)((steps + evals - 1) / evals),
        .eval_batches = L->eval_batches,
        .save_every = (int)(steps / 4 > 0 ? steps / 4 : 1),
        .shuffle = 1,
        .seed = 1337,
        .threads = anv_threads_count(),
        .precision = (int)L->precision};
    int resume = anv_path_exists(state_path);
    anv_eval_report_t final;
    if (!last) last = &final;
    if (resume) {
        anv_train_state_t st;
        if (anv_state_load(state_path, &st) != 0) return -1;
        if (st.step >= steps) {
            int found = anv_runlog_evals(run_dir, last, best, NULL);
            if (found < 0) return -1;
            if (!found || last->step != steps)
                return anv_error("%s: finished, but log.jsonl has no evaluation at its last step %lld", run_dir, steps);
            return 0;
        }
        hp = st.hp;
        hp.threads = anv_threads_count();
    }
    progress_t progress = {name, steps / 5 > 0 ? steps / 5 : 1};
    anv_train_opts_t o = {.run_dir = run_dir,
                          .data_dir = resume ? NULL : L->data,
                          .config_path = resume ? NULL : config,
                          .hp = hp,
                          .resume = resume,
                          .stop = &stop_flag,
                          .on_step = on_step,
                          .ctx = &progress};
    long long done;
    int rc = anv_train(&o, &done);
    if (rc != 0) return rc;
    int found = anv_runlog_evals(run_dir, last, best, NULL);
    if (found <= 0 || last->step != steps)
        return found < 0 ? -1 : anv_error("%s: log.jsonl has no evaluation at step %lld", run_dir, steps);
    return 0;
}

static int write_points(const ladder_t *L, const char *dir, const double *loss) {
    char path[4200];
    anv_buf_t b = {0};
    int rc = anv_buf_puts(&b, "params,tokens,loss\n");
    for (int i = 0; i < L->n; i++)
        if (isfinite(loss[i]))
            rc |= anv_buf_printf(&b, "%.0f,%lld,%.9g\n", L->runs[i].params, L->runs[i].steps * L->spec.batch_tokens,
                                 loss[i]);
    if (rc == 0) rc = ladder_path(dir, NULL, "points.csv", NULL, path, sizeof path);
    if (rc == 0) rc = anv_write_file_atomic(path, b.data, b.len);
    anv_buf_free(&b);
    return rc;
}

/* A run at `multiple` times the largest level's compute, at the fitted law's N_opt for the ladder's
 * data (repeated as often as the law says pays): the law's prediction against the measured loss, into
 * check.json. points: the ladder's runs as fitted. */
static int check_run(const ladder_t *L, const anv_point_t *points, const char *dir, const anv_law_t *law,
                     double multiple) {
    double top = 0;
    for (int i = 0; i < L->n; i++) top = fmax(top, L->runs[i].flops);
    double flops = multiple * top;
    anv_optimum_t opt;
    anv_law_optimum_repeated(law, flops, law->unique_tokens, &opt);
    char name[64], config[4200], path[4200];
    snprintf(name, sizeof name, "check-%gx", multiple);
    if (ladder_path(dir, "configs", name, ".json", config, sizeof config) != 0) return -1;
    anv_config_t cfg;
    if (anv_path_exists(config)) {
        if (anv_config_load(config, &cfg) != 0) return -1;
    } else if (anv_ladder_shape_near(&L->spec, L->runs, L->n, opt.params, &cfg) != 0 ||
               anv_config_save(&cfg, config) != 0) {
        return -1;
    }
    double params = (double)anv_config_num_params(&cfg);
    long long steps = llround(flops / (6.0 * params) / (double)L->spec.batch_tokens);
    if (steps < 1) steps = 1;
    double tokens = (double)(steps * L->spec.batch_tokens);
    double predicted = anv_law_loss_repeated(law, params, tokens, law->unique_tokens);
    char shape_of[96] = "a shape no ladder run trained";
    for (int r = 0; r < L->n; r++)
        if (L->runs[r].cfg.n_layer == cfg.n_layer && L->runs[r].cfg.n_embd == cfg.n_embd) {
            char run[32];
            run_name(L, r, run, sizeof run);
            snprintf(shape_of, sizeof shape_of, "the shape of ladder run %s", run);
        }
    fprintf(stderr,
            "check: %s, %.4g FLOPs (%gx the largest level), N_opt %.4g: %d layers x %d wide (%s), %.0f parameters, "
            "%lld steps\n",
            name, flops, multiple, opt.params, cfg.n_layer, cfg.n_embd, shape_of, params, steps);
    if (law->unique_tokens > 0) { /* there the law's worth of repeated tokens (one R_D*) was not measured */
        double lo, hi, most = anv_epochs_measured(points, L->n, law->unique_tokens, params, &lo, &hi);
        cli_note_epochs(stderr, "the check", tokens / law->unique_tokens, "the ladder's runs", most, lo, hi);
    }
    anv_eval_report_t best, last;
    int rc = train_run(L, dir, name, steps, &best, &last);
    if (rc != 0) return rc;
    double measured = best.val_loss, error = measured / predicted - 1.0;
    printf("check at %gx the largest compute (%.4g FLOPs, %.0f parameters, %.0f tokens worth %.0f): predicted %.4f, "
           "measured %.4f (its lowest, at step %lld of %lld; %.4f at the end), error %+.2f%%\n",
           multiple, flops, params, tokens, anv_law_effective_tokens(law, tokens, law->unique_tokens), predicted,
           measured, best.step, steps, last.val_loss, 100.0 * error);
    anv_buf_t b = {0};
    rc = anv_buf_printf(&b,
                        "{\"multiple\": %.17g, \"flops\": %.17g, \"params\": %.17g, \"tokens\": %.17g, "
                        "\"predicted\": %.17g, \"measured\": %.17g, \"measured_step\": %lld, \"final\": %.17g, "
                        "\"error\": %.17g}\n",
                        multiple, flops, params, tokens, predicted, measured, best.step, last.val_loss, error);
    if (rc == 0) rc = ladder_path(dir, NULL, "check.json", NULL, path, sizeof path);
    if (rc == 0) rc = anv_write_file_atomic(path, b.data, b.len);
    anv_buf_free(&b);
    return rc;
}

/* The fitted law's plan for the target budget on the ladder's data: anvil plan --fit --data, run in this
 * process. */
static int target_plan(const ladder_t *L, const char *dir, double hours, double flops) {
    char fit[4200], budget[64], vocab[32], seq[32], batch[32], batch_tokens[32], threads[32];
    if (ladder_path(dir, NULL, "fit.json", NULL, fit, sizeof fit) != 0) return -1;
    snprintf(budget, sizeof budget, "%.6g", hours > 0 ? hours : flops);
    snprintf(vocab, sizeof vocab, "%d", L->spec.vocab);
    snprintf(seq, sizeof seq, "%d", L->spec.seq);
    snprintf(batch, sizeof batch, "%d", L->batch);
    snprintf(batch_tokens, sizeof batch_tokens, "%lld", L->spec.batch_tokens);
    snprintf(threads, sizeof threads, "%d", anv_threads_count());
    char *argv[] = {"plan",
                    "--fit",
                    fit,
                    hours > 0 ? "--hours" : "--flops",
                    budget,
                    "--arch",
                    (char *)anv_arch_name(L->spec.arch),
                    "--vocab",
                    vocab,
                    "--seq",
                    seq,
                    "--batch",
                    batch,
                    "--batch-tokens",
                    batch_tokens,
                    "--data",
                    (char *)L->data};
    printf("\nplan from the fitted law (anvil plan --fit %s %s %s ...):\n", fit, argv[3], budget);
    fflush(stdout);
    return cmd_plan((int)(sizeof argv / sizeof argv[0]), argv);
}

static int run_ladder(ladder_t *L, const char *dir, double check, double target_hours, double target_flops) {
    double loss[MAX_RUNS];
    double total = 0;
    for (int i = 0; i < L->n; i++) loss[i] = NAN, total += L->runs[i].flops;
    for (int i = 0; i < L->n; i++) {
        char name[64];
        run_name(L, i, name, sizeof name);
        const anv_ladder_run_t *r = &L->runs[i];
        fprintf(stderr, "[%d/%d] %s: C %.3g FLOPs, %d layers x %d wide, %.0f parameters, %lld steps (%lld tokens)\n",
                i + 1, L->n, name, r->flops, r->cfg.n_layer, r->cfg.n_embd, r->params, r->steps,
                r->steps * L->spec.batch_tokens);
        anv_eval_report_t best;
        int rc = train_run(L, dir, name, r->steps, &best, NULL);
        if (rc == 0) loss[i] = best.val_loss;
        if (rc == 1) {
            fprintf(stderr, "interrupted: run the same command to continue the ladder from %s\n", name);
            return 130;
        }
        if (rc != 0 || write_points(L, dir, loss) != 0) return cli_fail();
    }
    char points_path[4200], fit_path[4200];
    if (ladder_path(dir, NULL, "points.csv", NULL, points_path, sizeof points_path) != 0 ||
        ladder_path(dir, NULL, "fit.json", NULL, fit_path, sizeof fit_path) != 0)
        return cli_fail();
    anv_point_t points[MAX_RUNS];
    for (int i = 0; i < L->n; i++)
        points[i] = (anv_point_t){L->runs[i].params, (double)(L->runs[i].steps * L->spec.batch_tokens), loss[i]};
    double unique, val_tokens;
    int vocab;
    if (cli_data_meta(L->data, &unique, &val_tokens, &vocab) != 0) return cli_fail();
    printf("ladder: %d runs in %s\n", L->n, dir);
    anv_fit_t fit; /* where runs repeated the data: on what their tokens were worth */
    if (cli_fit_report(points_path, points, L->n, longest_run_tokens(L) > unique ? unique : 0, 200, 1, fit_path,
                       &fit) != 0 ||
        anv_ladder_plots(dir, L->runs, loss, L->n, &fit.law) != 0)
        return cli_fail();
    printf("plots: %s/isoflop.svg, %s/prediction.svg\n", dir, dir);
    if (check > 0) {
        int rc = check_run(L, points, dir, &fit.law, check);
        if (rc == 1) {
            fprintf(stderr, "interrupted: run the same command to continue the check run\n");
            return 130;
        }
        if (rc != 0) return cli_fail();
    }
    fflush(stdout);
    return target_plan(L, dir, target_hours, target_flops > 0 ? target_flops : total);
}

/* A new ladder for a budget of hours (timed here) or FLOPs (0: none given); L holds the recipe as given. */
static int design(ladder_t *L, const char *data, const char *arch, const char *law_name, const char *precision,
                  int hours, double budget) {
    if (!data) return anv_error("scale run needs --data DIR (see --help)");
    if (budget <= 0) return anv_error("scale run: give one of --budget-hours or --budget-flops");
    if (strlen(data) >= sizeof L->data) return anv_error("--data: path too long");
    double train_tokens, val_tokens;
    anv_law_t prior;
    if (strcmp(arch, "gpt2") && strcmp(arch, "llama")) return anv_error("--arch %s: expected gpt2 or llama", arch);
    if (cli_data_meta(data, &train_tokens, &val_tokens, &L->spec.vocab) != 0 || anv_law_builtin(law_name, &prior) != 0)
        return -1;
    snprintf(L->data, sizeof L->data, "%s", data);
    L->spec.arch = !strcmp(arch, "llama") ? ANV_ARCH_LLAMA : ANV_ARCH_GPT2;
    long long row = (long long)L->batch * L->spec.seq;
    L->spec.batch_tokens = L->spec.batch_tokens > 0 ? (L->spec.batch_tokens + row - 1) / row * row : row;
    long long eval_rows = (long long)fmin(val_tokens, EVAL_TOKENS) / L->spec.seq;
    L->eval_batches = (int)(eval_rows / L->batch > 0 ? eval_rows / L->batch : 1);
    double fma = anv_cpu_fma_peak(0.2, NULL), bf16 = anv_cpu_bf16_peak(0.2);
    int option;
    if (anv_precision_option(precision ? precision : "auto", &option) != 0) return -1;
    L->precision = (anv_precision_t)option;
    if (option == ANV_PRECISION_AUTO) { /* as train's: measured, on a shape of the ladder's middle size */
        anv_config_t c;
        anv_precision_timing_t pt;
        if (anv_plan_precision(L->spec.arch, 1e7, L->spec.vocab, L->batch, L->spec.seq, &c, &pt) != 0) return -1;
        L->precision = pt.faster;
        fprintf(stderr,
                "precision auto: %s (a step's matrix products of a 10M-parameter shape: %.3g s in bf16, %.3g s "
                "in fp32, %s)\n",
                anv_precision_name(pt.faster), pt.seconds[ANV_PRECISION_BF16], pt.seconds[ANV_PRECISION_FP32],
                pt.injected ? "given by ANVIL_TEST_MATMUL_SECONDS" : "measured");
    }
    anv_matmul_precision_set(L->precision);
    double peak = anv_cpu_precision_peak(L->precision, fma, bf16) * 1e9;
    fprintf(stderr, "designing the ladder: %s, vocabulary %d, %d threads, %s peak %.1f GFLOP/s\n", arch, L->spec.vocab,
            anv_threads_count(), anv_precision_name(L->precision), peak / 1e9);
    if (hours ? design_for_hours(L, &prior, budget, peak) != 0 : (design_for_budget(L, &prior, budget, NULL), 0))
        return -1;
    if (check_design(L) != 0) return -1;
    double most = longest_run_tokens(L);
    fprintf(stderr, "ladder: %d runs over %d levels, %.4g FLOPs in all (6 N D)\n", L->n, L->spec.levels,
            anv_ladder_flops(L->runs, L->n, L->spec.batch_tokens));
    if (most > train_tokens)
        fprintf(stderr,
                "note: its longest run reads %.1f epochs of the %.0f training tokens in %s; the law is fitted "
                "to what repeated tokens are worth (Muennighoff et al. 2023)\n",
                most / train_tokens, train_tokens, data);
    return 0;
}

int cmd_scale_run(int argc, char **argv) {
    const char *data = NULL, *out = NULL, *arch = "gpt2", *law_name = "epoch", *precision = NULL;
    double budget_hours = 0, budget_flops = 0, lr = 2e-3, level_ratio = 3, size_step = 2, check = 0;
    double target_hours = 0, target_flops = 0;
    int levels = 3, sizes = 5, seq = 256, batch = 8, threads = 0;
    long long batch_tokens = 0, min_steps = 20;
    enum { O_HOURS, O_FLOPS, O_PRECISION };
    const opt_t opts[] = {
        [O_HOURS] = {"--budget-hours", OPT_DOUBLE, &budget_hours, "wall time of the ladder on this machine (timed)"},
        [O_FLOPS] = {"--budget-flops", OPT_DOUBLE, &budget_flops, "or its compute: the sum of 6 N D over its runs"},
        [O_PRECISION] = {"--precision", OPT_STRING, &precision,
                         "auto (default: the faster here, measured as train's), fp32 or bf16"},
        {"--data", OPT_STRING, &data, "data directory from `anvil data prepare`"},
        {"--out", OPT_STRING, &out, "ladder directory (created; the same one continues a stopped ladder)"},
        {"--arch", OPT_STRING, &arch, "gpt2 (default) or llama"},
        {"--levels", OPT_INT, &levels, "compute levels (default 3)"},
        {"--sizes", OPT_INT, &sizes, "model sizes per level (default 5)"},
        {"--level-ratio", OPT_DOUBLE, &level_ratio, "compute of a level over the one before (default 3)"},
        {"--size-step", OPT_DOUBLE, &size_step, "parameters of a size over the one before (default 2)"},
        {"--seq", OPT_INT, &seq, "tokens per row (default 256)"},
        {"--batch", OPT_INT, &batch, "rows per micro-batch (default 8)"},
        {"--batch-tokens", OPT_LONG, &batch_tokens, "tokens per optimizer step (default batch * seq)"},
        {"--lr", OPT_DOUBLE, &lr, "peak learning rate of every run, cosine to a tenth (default 2e-3)"},
        {"--min-steps", OPT_LONG, &min_steps, "leave out runs of fewer steps (default 20)"},
        {"--law", OPT_STRING, &law_name, "prior law that centres each level: epoch (default) or hoffmann"},
        {"--check", OPT_DOUBLE, &check, "then train at K times the largest compute and compare with the fit"},
        {"--target-hours", OPT_DOUBLE, &target_hours, "plan this many hours from the fitted law"},
        {"--target-flops", OPT_DOUBLE, &target_flops, "or this compute (default: the ladder's total)"},
        {"--threads", OPT_INT, &threads, "threads (default: all cores)"},
    };
    const opt_range_t ranges[] = {
        {"--budget-hours", 1e-6, 1e6},
        {"--budget-flops", 1e6, 1e30},
        {"--levels", 2, 8},
        {"--sizes", 3, 16},
        {"--level-ratio", 1.1, 100},
        {"--size-step", 1.1, 10},
        {"--seq", 1, 1 << 20},
        {"--batch", 1, 1 << 20},
        {"--batch-tokens", 1, 1e12},
        {"--lr", 1e-30, 100},
        {"--min-steps", 1, 1e12},
        {"--check", 1, 1000},
        {"--target-hours", 1e-6, 1e7},
        {"--target-flops", 1, 1e30},
        {"--threads", 0, cli_max_threads()},
    };
    int seen[sizeof opts / sizeof opts[0]];
    int rc = cli_parse_bounded(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), ranges,
                               (int)(sizeof ranges / sizeof ranges[0]), usage, seen);
    if (rc != 0) return rc > 0 ? 0 : cli_fail();
    if (!out) return anv_error("scale run needs --out LADDER (see --help)"), cli_fail();
    if (target_hours > 0 && target_flops > 0)
        return anv_error("give --target-hours or --target-flops, not both"), cli_fail();
    anv_threads_set(threads);

    char ladder_json[4200];
    if (ladder_path(out, NULL, "ladder.json", NULL, ladder_json, sizeof ladder_json) != 0) return cli_fail();
    static ladder_t L;
    memset(&L, 0, sizeof L);
    int fresh = !anv_path_exists(ladder_json);
    L.spec = (anv_ladder_spec_t){.seq = seq,
                                 .batch_tokens = batch_tokens,
                                 .levels = levels,
                                 .sizes = sizes,
                                 .level_ratio = level_ratio,
                                 .size_step = size_step,
                                 .min_steps = min_steps};
    L.batch = batch;
    L.lr = lr;
    double budget = seen[O_HOURS] + seen[O_FLOPS] != 1 ? 0 : seen[O_HOURS] ? budget_hours : budget_flops;
    if (fresh && design(&L, data, arch, law_name, precision, seen[O_HOURS], budget) != 0) return cli_fail();
    /* the design is good: only now is the ladder directory made and claimed */
    anv_run_lock_t lock;
    if (anv_run_lock(out, 1, &lock) != 0) return cli_fail();
    if (fresh ? save_ladder(&L, out) != 0 : load_ladder(&L, out) != 0) {
        anv_run_unlock(&lock);
        return cli_fail();
    }
    if (!fresh) fprintf(stderr, "%s: continuing its ladder of %d runs (its design and recipe are kept)\n", out, L.n);
    anv_matmul_precision_set(L.precision);
    cli_catch_stop_signals(on_signal, 0);
    rc = run_ladder(&L, out, check, target_hours, target_flops);
    anv_run_unlock(&lock);
    return rc;
}

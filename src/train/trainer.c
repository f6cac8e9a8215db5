/* The training loop: set up a fresh or resumed run, then step, log, evaluate and checkpoint.
 *
 * Test hooks: the environment variable ANVIL_TEST_NAN_AT_STEP=N poisons the loss of step N with NaN,
 * so tests can check that a diverged run stops, names the step and keeps its last good checkpoint;
 * ANVIL_TEST_STOP_AT_STEP=N stops the run after step N as a signal would, for runs too quick to
 * interrupt at a chosen step from outside.
 *
 * Nothing is allocated per step: batches, gradients and optimizer state are sized before the loop and
 * the model's activations by its first forward; only checkpoints (every --save-every) allocate.
 *
 * With several ranks (trainer.h) each rank runs forward/backward on its rows of every global batch,
 * then the gradients are averaged: all-reduced in buckets (data parallel), or reduce-scattered so that
 * each rank updates only the parameters of its AdamW shard and the parameters are all-gathered
 * (ZeRO-1). The loss, the gradient norm and the stop flag are global, so every rank takes the same
 * decisions at the same step. */
#include "anvil/trainer.h"

#include "anvil/generate.h"
#include "anvil/kernels.h"
#include "anvil/lora_run.h"
#include "anvil/run_dir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const anv_train_opts_t *o;
    anv_hparams_t hp;
    anv_train_state_t st;
    anv_config_t cfg;
    const char *data_dir;
    anv_tokenizer_t *tok;
    anv_model_t *m;
    anv_adamw_t opt;
    anv_loader_t *train, *val;
    int32_t *in, *tg, *starts; /* (B, T) */
    anv_runlog_t log;
    double best_val; /* --keep-best: the validation loss of the model in RUN/best (infinity: none yet) */
    double bytes_per_token;
    long long saved_step; /* last step with a checkpoint on disk (-1: none) */
    long long nan_at;     /* test hooks, 0 = off */
    long long stop_at;
    anv_comm_t *comm; /* NULL for one process */
    int rank, world, zero;
    float *gshard;       /* ZeRO-1: this rank's shard of the averaged gradients (opt.n floats) */
    double *counted;     /* fine-tuning: the trained tokens of each micro-batch of a step (count_targets) */
    int stop;            /* a stop was requested on some rank during the last step */
    double peak_flops;   /* this rank's measured peak FLOP/s of the products its precision runs (0: unknown) */
    double best_flops;   /* this rank's measured peak FLOP/s of any precision (0: unknown) */
    anv_run_lock_t lock; /* rank 0: this process is the run directory's one writer */
    anv_lora_run_t lora; /* a LoRA run's settings and base (lora.lora.rank 0: every weight trains) */
} trainer_t;

/* The peaks MFU divides by, measured on this rank's threads for about `seconds` (unknown, 0, on a GPU):
 * the ceiling of the products the run's precision executes (anv_cpu_precision_peak) and the best of any
 * precision. Measured at the start and again at every evaluation, keeping the highest: a measurement in
 * a stretch when a shared host gives the run less than its cores falls short, and MFU with it would
 * read too high. */
static void measure_peaks(trainer_t *t, double seconds) {
    if (strcmp(anv_device(), "cpu") != 0) return;
    double fma = anv_cpu_fma_peak(seconds, NULL), bf16 = anv_cpu_bf16_peak(seconds);
    anv_precision_t prec = (anv_precision_t)t->hp.precision;
    double peak = 1e9 * anv_cpu_precision_peak(prec, fma, bf16), best = 1e9 * (bf16 > fma ? bf16 : fma);
    int first = t->peak_flops == 0, rose = peak > 1.05 * t->peak_flops;
    t->peak_flops = peak > t->peak_flops ? peak : t->peak_flops;
    t->best_flops = best > t->best_flops ? best : t->best_flops;
    if (t->rank == 0 && !first && rose)
        anv_log(ANV_LOG_INFO,
                "peaks measured again: %.1f GFLOP/s for the products %s runs, above the earlier measurement (the "
                "machine was busier then); MFU is against it from now on",
                t->peak_flops / 1e9, anv_precision_name(prec));
    if (t->rank == 0 && first)
        anv_log(ANV_LOG_INFO,
                "peaks measured for this run's pool: fp32 FMA %.1f GFLOP/s; bf16 products on %s, %.1f GFLOP/s; "
                "MFU is against %.1f (the products %s runs)%s",
                fma, anv_cpu_bf16_products(), bf16 > 0 ? bf16 : fma, t->peak_flops / 1e9, anv_precision_name(prec),
                t->best_flops > t->peak_flops ? " and against the best" : "");
}

/* MFU against a measured peak, which a step can exceed only if the measurement fell short (a busy
 * machine): then the peak rises to what the step reached, said once, and the share is 1. */
static double mfu(const trainer_t *t, double flops, double *peak, const char *which) {
    if (!(*peak > 0)) return 0;
    if (flops > *peak) {
        if (t->rank == 0)
            anv_log(ANV_LOG_INFO,
                    "a step ran at %.1f GFLOP/s, above the measured %s peak of %.1f: the peak is now that", flops / 1e9,
                    which, *peak / 1e9);
        *peak = flops;
    }
    return flops / *peak;
}

/* --precision auto: the precision whose matrix products ran faster on this model's shapes, measured now on
 * rank 0 (after the data has been checked, so that bad input is one line) and taken by every rank. */
static int choose_precision(trainer_t *t) {
    anv_precision_timing_t pt = {0};
    if (t->rank == 0 && anv_precision_measure(&t->cfg, t->hp.B, t->hp.T, &pt) != 0) return -1;
    if (t->comm && anv_comm_broadcast(t->comm, &pt, sizeof pt, 0) != 0) return -1;
    t->hp.precision = (int)pt.faster;
    anv_matmul_precision_set(pt.faster);
    if (t->rank != 0) return 0;
    double fp32 = pt.seconds[ANV_PRECISION_FP32], bf16 = pt.seconds[ANV_PRECISION_BF16];
    anv_log(ANV_LOG_INFO,
            "precision auto: %s; a step's matrix products take %.3g s in bf16 against %.3g s in fp32 here (%.2fx, "
            "%s)",
            anv_precision_name(pt.faster), bf16, fp32, fp32 / bf16,
            pt.injected ? "given by ANVIL_TEST_MATMUL_SECONDS" : "measured on this model's shapes");
    return 0;
}

static int run_path(const trainer_t *t, const char *name, char *buf, size_t size) {
    return anv_path_join(buf, size, t->o->run_dir, name);
}

/* RUN/best (--keep-best): a run directory for inference (sample, serve, eval, export) holding the model of
 * the lowest validation loss so far, its step in the weights file's metadata, and copies of the run's
 * config files, made once (they do not change while a run trains; a fresh start clears best/). */
static const char *const best_files[] = {"config.json", "tokenizer.json", "adapter_config.json", "model.safetensors",
                                         "adapter_model.safetensors"};

static int save_best(trainer_t *t, const anv_eval_report_t *r) {
    char dir[4200], from[4200], to[4300];
    if (run_path(t, "best", dir, sizeof dir) != 0 || anv_mkdir_p(dir) != 0) return -1;
    for (int i = 0; i < 3; i++) {
        if (run_path(t, best_files[i], from, sizeof from) != 0 || anv_path_join(to, sizeof to, dir, best_files[i]) != 0)
            return -1;
        if (anv_path_exists(from) && !anv_path_exists(to) && anv_copy_file_atomic(from, to) != 0) return -1;
    }
    if (anv_path_join(to, sizeof to, dir, anv_model_trainable(t->m)->file) != 0 ||
        anv_checkpoint_save_trained(to, t->m, r->step) != 0)
        return -1;
    t->best_val = r->val_loss;
    return 0;
}

/* A fresh run in a directory an earlier attempt used must not show that attempt's best model. */
static void remove_best(const trainer_t *t) {
    char dir[4200], path[4300];
    if (run_path(t, "best", dir, sizeof dir) != 0 || !anv_is_dir(dir)) return;
    for (size_t i = 0; i < sizeof best_files / sizeof best_files[0]; i++)
        if (anv_path_join(path, sizeof path, dir, best_files[i]) == 0) unlink(path);
    rmdir(dir);
}

/* The model the caller asked for, with its vocabulary fitted to the tokenizer. */
static int requested_config(const trainer_t *t, anv_config_t *cfg) {
    size_t vocab = anv_tokenizer_vocab_size(t->tok);
    if (t->o->config_path) {
        if (anv_config_load(t->o->config_path, cfg) != 0) return -1;
        if ((size_t)cfg->vocab_size < vocab)
            return anv_error("%s: vocab_size %d cannot hold the tokenizer's %zu tokens (%s/tokenizer.json)",
                             t->o->config_path, cfg->vocab_size, vocab, t->data_dir);
        return anv_config_validate(cfg, t->o->config_path);
    }
    const char *preset = t->o->preset ? t->o->preset : "tiny";
    if (anv_config_preset(preset, cfg) != 0) return -1;
    cfg->vocab_size = (int)vocab;
    char source[96];
    snprintf(source, sizeof source, "preset %s", preset);
    return anv_config_validate(cfg, source);
}

/* Loads <dir>/tokenizer.json and records the directory's absolute path in the state. */
static int load_data_tokenizer(trainer_t *t, const char *dir) {
    char path[4200];
    if (!anv_is_dir(dir)) return anv_error("%s: data directory does not exist", dir);
    if (!realpath(dir, path) || strlen(path) >= sizeof t->st.data_dir)
        return anv_error("%s: cannot resolve the data directory's path", dir);
    strcpy(t->st.data_dir, path);
    t->data_dir = t->st.data_dir;
    if (anv_path_join(path, sizeof path, t->data_dir, "tokenizer.json") != 0) return -1;
    if (!anv_path_exists(path))
        return anv_error("%s: missing (make the data directory with `anvil data prepare`)", path);
    return anv_tokenizer_load(path, &t->tok);
}

/* --init-from: the config of another run, whose tokenizer must be the one the data is encoded with. */
static int init_from_config(trainer_t *t, anv_config_t *cfg) {
    char path[4200];
    const char *from = t->o->init_from;
    if (!anv_is_dir(from)) return anv_error("%s: run directory to initialise from does not exist", from);
    if (anv_path_join(path, sizeof path, from, "config.json") != 0 || anv_config_load(path, cfg) != 0 ||
        anv_config_validate(cfg, path) != 0 || anv_path_join(path, sizeof path, from, "tokenizer.json") != 0)
        return -1;
    size_t vocab = anv_tokenizer_vocab_size(t->tok);
    if (!anv_path_exists(path)) {
        if ((size_t)cfg->vocab_size < vocab)
            return anv_error("%s/config.json: vocab_size %d cannot hold the data's %zu tokens (%s/tokenizer.json)",
                             from, cfg->vocab_size, vocab, t->data_dir);
        return 0;
    }
    anv_tokenizer_t *tok;
    if (anv_tokenizer_load(path, &tok) != 0) return -1;
    int same = anv_tokenizer_hash(tok) == anv_tokenizer_hash(t->tok);
    anv_tokenizer_free(tok);
    if (!same)
        return anv_error("%s: not the tokenizer of the data in %s (prepare the data with `anvil data prepare "
                         "--tokenizer %s`)",
                         path, t->data_dir, path);
    return 0;
}

/* LoRA: freezes the base just loaded, adds the adapters and records the base in adapter_config.json. */
static int add_adapters(trainer_t *t) {
    anv_lora_run_t *r = &t->lora;
    if (!realpath(t->o->init_from, r->base))
        return anv_error("%s: cannot resolve the base run's path", t->o->init_from);
    r->base_hash = anv_model_weights_hash(t->m);
    if (anv_model_add_lora(t->m, &r->lora, t->hp.seed) != 0) return -1;
    return anv_lora_run_write(t->o->run_dir, r, t->m);
}

static int setup_fresh(trainer_t *t) {
    char path[4200], src[4200];
    if (run_path(t, "state.json", path, sizeof path) != 0) return -1;
    if (anv_path_exists(path))
        return anv_error("%s: already holds a run; pass --resume to continue it or choose another --out",
                         t->o->run_dir);
    memset(&t->st, 0, sizeof t->st);
    if (load_data_tokenizer(t, t->o->data_dir) != 0 ||
        (t->o->init_from ? init_from_config(t, &t->cfg) : requested_config(t, &t->cfg)) != 0)
        return -1;
    if (t->o->lora) {
        if (!t->o->init_from) return anv_error("LoRA trains adapters on a trained model: name it with --init-from RUN");
        t->lora.lora = *t->o->lora;
        if (anv_lora_config_validate(&t->lora.lora, &t->cfg, "LoRA") != 0) return -1;
    }
    /* the inputs are good: only now is the run directory made and claimed */
    if (anv_run_lock(t->o->run_dir, 1, &t->lock) != 0) return -1;
    if (run_path(t, "config.json", path, sizeof path) != 0 || anv_config_save(&t->cfg, path) != 0) return -1;
    if (anv_path_join(src, sizeof src, t->data_dir, "tokenizer.json") != 0 ||
        run_path(t, "tokenizer.json", path, sizeof path) != 0 || anv_copy_file_atomic(src, path) != 0)
        return -1;
    /* an earlier attempt at a LoRA run here must not make this one look like one */
    if (!t->o->lora && run_path(t, "adapter_config.json", path, sizeof path) == 0) unlink(path);
    remove_best(t);
    if (anv_model_create(&t->cfg, &t->m) != 0) return -1;
    if (t->o->init_from) {
        if (anv_run_load_weights(t->o->init_from, t->m) != 0) return -1;
        anv_log(ANV_LOG_INFO, "initialised from %s", t->o->init_from);
    } else {
        anv_model_init(t->m, t->hp.seed);
    }
    if (t->o->lora && add_adapters(t) != 0) return -1;
    if (anv_adamw_init(&t->opt, anv_model_trainable(t->m)->n_params) != 0) return -1;
    t->saved_step = -1;
    return 0;
}

static int setup_resume(trainer_t *t) {
    char path[4200];
    const char *run = t->o->run_dir;
    if (!anv_is_dir(run)) return anv_error("%s: run directory does not exist (nothing to resume)", run);
    if (anv_run_lock(run, 0, &t->lock) != 0 || anv_checkpoint_recover(run) != 0 ||
        run_path(t, "state.json", path, sizeof path) != 0)
        return -1;
    if (!anv_path_exists(path)) return anv_error("%s: no checkpoint to resume (state.json is missing)", run);
    if (anv_state_load(path, &t->st) != 0) return -1;
    char dir[sizeof t->st.data_dir];
    strcpy(dir, t->o->data_dir ? t->o->data_dir : t->st.data_dir);
    if (load_data_tokenizer(t, dir) != 0) return -1;
    if (anv_tokenizer_hash(t->tok) != t->st.tokenizer_hash)
        return anv_error("%s/tokenizer.json: not the tokenizer this run was trained with (see %s)", t->data_dir, path);
    if (run_path(t, "config.json", path, sizeof path) != 0 || anv_config_load(path, &t->cfg) != 0 ||
        anv_config_validate(&t->cfg, path) != 0)
        return -1;
    if (t->o->preset || t->o->config_path) {
        anv_config_t want;
        if (requested_config(t, &want) != 0) return -1;
        char why[128];
        if (!anv_config_equal(&t->cfg, &want, why, sizeof why))
            return anv_error("%s: the run's model is not the one %s %s asks for (%s)", path,
                             t->o->preset ? "--preset" : "--config", t->o->preset ? t->o->preset : t->o->config_path,
                             why);
    }
    if (anv_model_create(&t->cfg, &t->m) != 0) return -1;
    if (anv_lora_run_is(run) &&
        (anv_lora_run_read(run, &t->lora) != 0 || anv_lora_run_base(run, &t->lora, t->m, t->st.hp.seed) != 0))
        return -1;
    const anv_trainable_t *tr = anv_model_trainable(t->m);
    if (anv_adamw_init(&t->opt, tr->n_params) != 0) return -1;
    long long ms, os;
    if (run_path(t, tr->file, path, sizeof path) != 0 || anv_checkpoint_load_model(path, t->m, &ms) != 0) return -1;
    if (ms != t->st.step) return anv_error("%s: holds step %lld but state.json is at step %lld", path, ms, t->st.step);
    if (run_path(t, "optim.safetensors", path, sizeof path) != 0 ||
        anv_checkpoint_load_optim(path, t->m, &t->opt, &os) != 0)
        return -1;
    if (os != t->st.step) return anv_error("%s: holds step %lld but state.json is at step %lld", path, os, t->st.step);
    t->opt.t = t->st.step;
    t->saved_step = t->st.step;
    if (t->hp.threads != t->st.hp.threads)
        anv_log(ANV_LOG_WARN,
                "resuming with %d threads, the run used %d: training continues correctly but not bitwise "
                "identically to an uninterrupted run",
                t->hp.threads, t->st.hp.threads);
    return 0;
}

/* Several ranks: rank 0 has set up the run (rc0 its result); the others get its model config, state
 * and hyperparameters, open the tokenizer of the same data directory and create the model. */
static int share_setup(trainer_t *t, int rc0) {
    struct {
        int rc;
        anv_config_t cfg;
        anv_hparams_t hp;
        anv_train_state_t st;
        anv_lora_config_t lora; /* rank 0 for none */
    } msg;
    memset(&msg, 0, sizeof msg);
    msg.rc = rc0;
    if (t->rank == 0) {
        msg.cfg = t->cfg;
        msg.hp = t->hp;
        msg.st = t->st;
        msg.lora = t->lora.lora;
    }
    if (anv_comm_broadcast(t->comm, &msg, sizeof msg, 0) != 0) return -1;
    if (msg.rc != 0) return t->rank == 0 ? -1 : anv_error("rank 0 could not set up the run (its error says why)");
    if (t->rank == 0) return 0;
    t->cfg = msg.cfg;
    t->hp = msg.hp;
    t->st = msg.st;
    t->lora.lora = msg.lora;
    t->saved_step = t->o->resume ? t->st.step : -1;
    anv_threads_set(t->hp.threads);
    char dir[sizeof t->st.data_dir];
    strcpy(dir, t->st.data_dir);
    if (load_data_tokenizer(t, dir) != 0 || anv_model_create(&t->cfg, &t->m) != 0) return -1;
    return t->lora.lora.rank ? anv_model_add_lora(t->m, &t->lora.lora, t->hp.seed) : 0;
}

/* Every rank gets rank 0's weights (a LoRA run's frozen base and its adapters); the AdamW state goes whole
 * to every rank (data parallel) or one shard to each (ZeRO-1; rank 0 holds the whole state from setup and
 * then keeps its shard only). */
static int distribute_state(trainer_t *t) {
    const anv_trainable_t *tr = anv_model_trainable(t->m);
    size_t n = tr->n_params, bytes = n * sizeof(float);
    if (t->lora.lora.rank &&
        anv_comm_broadcast(t->comm, anv_model_params(t->m), anv_model_n_params(t->m) * sizeof(float), 0) != 0)
        return -1;
    if (anv_comm_broadcast(t->comm, tr->params, bytes, 0) != 0) return -1;
    if (!t->zero) {
        if (t->rank != 0 && anv_adamw_init(&t->opt, n) != 0) return -1;
        if (t->o->resume && (anv_comm_broadcast(t->comm, t->opt.m, bytes, 0) != 0 ||
                             anv_comm_broadcast(t->comm, t->opt.v, bytes, 0) != 0))
            return -1;
    } else {
        size_t lo, hi;
        anv_adamw_t shard;
        anv_comm_shard(t->comm, n, t->rank, &lo, &hi);
        if (anv_adamw_init_shard(&shard, lo, hi) != 0) return -1;
        int rc = anv_comm_scatter(t->comm, t->opt.m, shard.m, n, 0) == 0 &&
                         anv_comm_scatter(t->comm, t->opt.v, shard.v, n, 0) == 0
                     ? 0
                     : -1;
        anv_adamw_free(&t->opt);
        t->opt = shard;
        t->gshard = rc == 0 ? anv_device_alloc((hi - lo ? hi - lo : 1) * sizeof(float), "gradient shard") : NULL;
        if (!t->gshard) return -1;
    }
    t->opt.t = t->st.step;
    double mb = 2.0 * (double)t->opt.n * sizeof(float) / 1e6;
    if (t->rank == 0)
        anv_log(ANV_LOG_INFO, "data parallel over %d ranks (%s): AdamW state %.2f MB per rank%s (%.2f MB unsharded)",
                t->world, t->zero ? "ZeRO-1" : "all-reduce", mb, t->zero ? ", sharded" : "",
                2.0 * (double)n * sizeof(float) / 1e6);
    return 0;
}

/* Sets up the run on rank 0, then shares it with the other ranks. */
static int setup(trainer_t *t) {
    int rc = 0;
    if (t->hp.precision != ANV_PRECISION_AUTO) anv_matmul_precision_set((anv_precision_t)t->hp.precision);
    if (t->rank == 0) rc = t->o->resume ? setup_resume(t) : setup_fresh(t);
    if (t->world == 1) return rc;
    if (share_setup(t, rc) != 0) return -1;
    if (t->hp.precision != ANV_PRECISION_AUTO) anv_matmul_precision_set((anv_precision_t)t->hp.precision);
    return distribute_state(t);
}

/* Micro-batches per optimizer step on each rank. */
static long long accum_steps(const trainer_t *t) {
    return t->hp.total_batch_tokens / ((long long)t->hp.B * t->hp.T * t->world);
}

/* Times the forward/backward passes of one step (the second of two runs, the first warms up) and
 * leaves the model's gradients and the loader as they were. Optimizer time is small beside them. */
static int time_one_step(trainer_t *t, double *seconds) {
    const anv_hparams_t *h = &t->hp;
    long long accum = accum_steps(t);
    anv_loader_pos_t pos = anv_loader_position(t->train);
    for (int run = 0; run < 2; run++) {
        double t0 = anv_now();
        for (long long k = 0; k < accum; k++) {
            float l;
            anv_loader_next(t->train, t->in, t->tg, t->starts);
            if (anv_model_forward(t->m, t->in, t->tg, t->starts, h->B, h->T, &l) != 0 ||
                anv_model_backward(t->m, 1.0f) != 0)
                return -1;
        }
        *seconds = anv_now() - t0;
    }
    anv_model_zero_grad(t->m);
    return anv_loader_seek(t->train, &pos);
}

/* Fills the hyperparameters left to their defaults (see trainer.h) once the data is known. */
static int resolve_steps(trainer_t *t) {
    anv_hparams_t *h = &t->hp;
    if (t->o->target_tokens > 0) h->steps = (t->o->target_tokens + h->total_batch_tokens - 1) / h->total_batch_tokens;
    if (h->steps <= 0 && t->o->minutes > 0) {
        double secs;
        if (time_one_step(t, &secs) != 0) return -1;
        h->steps = (long long)(t->o->minutes * 60 / secs);
        if (h->steps < 1) h->steps = 1;
        anv_log(ANV_LOG_INFO, "--minutes %g: %lld steps at %.3f s per step", t->o->minutes, h->steps, secs);
    }
    if (h->steps <= 0) {
        long long epoch = anv_loader_batches_per_epoch(t->train) * h->B * h->T * t->world / h->total_batch_tokens;
        h->steps = (epoch > 0 ? epoch : 1) * (t->o->epochs > 0 ? t->o->epochs : 1);
    }
    if (h->sched.warmup < 0) h->sched.warmup = h->steps / 10 < 2000 ? h->steps / 10 : 2000;
    if (h->sched.min_lr < 0) h->sched.min_lr = h->sched.max_lr / 10;
    if (h->sched.decay_steps < 0) h->sched.decay_steps = h->steps / 5;
    h->sched.total = h->steps;
    return 0;
}

/* What the run holds in memory and, for LoRA, how its trained part compares with the whole model's. */
static void log_memory(const trainer_t *t) {
    const double MiB = 1048576.0;
    anv_memory_budget_t mb;
    anv_model_memory_budget(&t->cfg, t->hp.B, t->hp.T, &mb);
    if (!t->lora.lora.rank) {
        anv_log(ANV_LOG_INFO,
                "memory: %.0f MiB (parameters, gradients, AdamW state, activations); activations %.1f KiB per token",
                mb.total / MiB, mb.activations_per_token / 1024.0);
        return;
    }
    const anv_lora_config_t *lc = &t->lora.lora;
    double n = (double)anv_model_trainable(t->m)->n_params, base = (double)anv_config_num_params(&t->cfg);
    double bytes = n * sizeof(float);
    anv_log(
        ANV_LOG_INFO,
        "LoRA r=%d alpha=%g dropout %g on %s: %.0f adapter parameters (%.3f%% of the frozen base's %.0f); checkpoint "
        "%.2f MiB, gradients %.2f MiB, AdamW state %.2f MiB (full fine-tuning: %.2f, %.2f and %.2f MiB)",
        lc->rank, (double)lc->alpha, (double)lc->dropout,
        *lc->targets ? lc->targets : anv_lora_target_names(t->cfg.arch), n, 100 * n / base, base, bytes / MiB,
        bytes / MiB, 2 * bytes / MiB, mb.params / MiB, mb.grads / MiB, mb.optimizer / MiB);
    anv_log(ANV_LOG_INFO, "memory: %.0f MiB (frozen base, adapters, their gradients and AdamW state, activations)",
            (mb.params + mb.activations + 4 * bytes) / MiB);
}

static int open_loaders(trainer_t *t) {
    anv_hparams_t *h = &t->hp;
    if (h->T == 0) h->T = t->cfg.block_size;
    long long rows = (long long)h->B * h->T * t->world; /* tokens of one micro-batch over all ranks */
    if (h->total_batch_tokens == 0) h->total_batch_tokens = rows;
    if (h->T > t->cfg.block_size) {
        if (t->o->resume) /* the run's own seq, not an option the user gave */
            return anv_error("%s/state.json: seq %d exceeds the model's block_size %d (a damaged run?)", t->o->run_dir,
                             h->T, t->cfg.block_size);
        return anv_error("--seq %d exceeds the model's block_size %d", h->T, t->cfg.block_size);
    }
    if (h->total_batch_tokens % rows != 0)
        return anv_error("--total-batch-tokens %lld is not a multiple of --batch %d x --seq %d x %d ranks = %lld",
                         h->total_batch_tokens, h->B, h->T, t->world, rows);
    anv_loader_config_t tc = {t->data_dir,
                              "train",
                              h->B,
                              h->T,
                              t->rank,
                              t->world,
                              h->shuffle,
                              h->seed ^ 0x5DEECE66Dull,
                              (size_t)t->cfg.vocab_size,
                              h->pack};
    /* validation keeps one example per row: the same held-out loss whether the run packs or not */
    anv_loader_config_t vc = {t->data_dir, "val", h->B, h->T, t->rank, t->world, 0, 0, (size_t)t->cfg.vocab_size, 0};
    if (anv_loader_open(&tc, &t->train) != 0 || anv_loader_open(&vc, &t->val) != 0) return -1;
    if (t->hp.precision == ANV_PRECISION_AUTO && choose_precision(t) != 0) return -1;
    measure_peaks(t, 0.1);
    if (t->o->resume && anv_loader_seek(t->train, &t->st.loader) != 0) return -1;
    if (anv_val_bytes_per_token(t->data_dir, t->tok, t->val, &t->bytes_per_token) != 0) return -1;
    size_t n = (size_t)h->B * (size_t)h->T * sizeof(int32_t);
    t->in = anv_alloc(n, "batch inputs");
    t->tg = anv_alloc(n, "batch targets");
    t->starts = anv_alloc(n, "batch sequence starts");
    t->counted = anv_alloc((size_t)(h->total_batch_tokens / rows) * sizeof *t->counted, "target counts");
    if (!t->in || !t->tg || !t->starts || !t->counted) return -1;
    if (t->rank == 0 && anv_loader_masked(t->train))
        anv_log(ANV_LOG_INFO,
                "fine-tuning rows: %lld rows of %d tokens an epoch, %s, %.1f%% of their tokens the examples'",
                (long long)anv_loader_batches_per_epoch(t->train) * h->B * t->world, h->T,
                h->pack ? "several examples packed per row" : "one example per row, padded",
                100.0 * anv_loader_fill(t->train));
    if (t->rank == 0) log_memory(t);
    return resolve_steps(t);
}

/* ZeRO-1: rank 0 gathers the AdamW shards into a whole state (full), so checkpoints do not depend
 * on the number of ranks. Collective. */
static int gather_optim(trainer_t *t, anv_adamw_t *full) {
    size_t n = anv_model_trainable(t->m)->n_params;
    memset(full, 0, sizeof *full);
    if (t->rank == 0 && anv_adamw_init(full, n) != 0) return -1;
    full->t = t->opt.t;
    return anv_comm_gather(t->comm, t->opt.m, full->m, n, 0) == 0 &&
                   anv_comm_gather(t->comm, t->opt.v, full->v, n, 0) == 0
               ? 0
               : -1;
}

/* Collective: every rank calls it, rank 0 writes. */
static int save(trainer_t *t) {
    anv_adamw_t gathered = {0};
    const anv_adamw_t *opt = &t->opt;
    if (t->zero) {
        if (gather_optim(t, &gathered) != 0) {
            anv_adamw_free(&gathered);
            return -1;
        }
        opt = &gathered;
    }
    int rc = 0;
    if (t->rank == 0) {
        t->st.hp = t->hp;
        t->st.loader = anv_loader_position(t->train);
        t->st.tokenizer_hash = anv_tokenizer_hash(t->tok);
        rc = anv_checkpoint_save(t->o->run_dir, t->m, opt, &t->st);
        char svg[4200];
        if (rc == 0 && run_path(t, "loss.svg", svg, sizeof svg) == 0 && anv_loss_svg_write(t->log.path, svg) != 0)
            anv_log(ANV_LOG_WARN, "%s", anv_last_error());
    }
    anv_adamw_free(&gathered);
    if (rc == 0) t->saved_step = t->st.step;
    return rc;
}

static int evaluate(trainer_t *t) {
    measure_peaks(t, 0.02);
    anv_eval_report_t r = {t->st.step, t->st.tokens, 0, 0};
    /* eval_batches batches of B rows in all: with several ranks, each evaluates its share of them (the
     * same sequences one process with B rows reads when the ranks divide eval_batches) */
    int batches = (t->hp.eval_batches + t->world - 1) / t->world;
    double sums[2]; /* loss times weight, weight: fine-tuning ranks weigh by their trained tokens */
    if (anv_evaluate(t->m, t->val, batches, t->hp.B, t->hp.T, t->in, t->tg, &r.val_loss, &sums[1]) != 0) return -1;
    if (t->comm) {
        if (!anv_loader_masked(t->val)) sums[1] = 1;
        sums[0] = r.val_loss * sums[1];
        if (anv_comm_allreduce_f64(t->comm, sums, 2, ANV_REDUCE_SUM) != 0) return -1;
        r.val_loss = sums[1] > 0 ? sums[0] / sums[1] : 0;
    }
    if (t->rank != 0) return 0;
    r.val_bpb = r.val_loss / log(2.0) / t->bytes_per_token;
    if (anv_runlog_eval(&t->log, &r) != 0) return -1;
    if (t->o->on_eval) t->o->on_eval(&r, t->o->ctx);
    if (t->hp.keep_best && r.val_loss < t->best_val && save_best(t, &r) != 0) return -1;
    return 0;
}

static int collect_text(void *ctx, const char *text, size_t len) { return anv_buf_append(ctx, text, len) ? -1 : 0; }

/* A sample of the model as it is now (rank 0): to log.jsonl and on_sample. */
static int sample(trainer_t *t) {
    anv_generator_t *g;
    anv_tokens_t ids = {0};
    anv_buf_t text = {0};
    anv_gen_config_t cfg = anv_gen_config_default();
    cfg.sampler.temperature = 0.8f;
    cfg.sampler.top_k = 40;
    cfg.sampler.seed = 1;
    cfg.max_tokens = t->o->sample_tokens > 0 ? t->o->sample_tokens : 64;
    const char *prompt = t->o->sample_prompt;
    anv_gen_result_t res;
    int block = anv_model_config(t->m)->block_size;
    if (anv_generator_create(t->m, t->tok, &g) != 0) return -1;
    int rc = anv_generate_prompt(t->tok, prompt, strlen(prompt), &ids);
    if (rc == 0 && ids.len > (size_t)block) { /* keep the prompt's end */
        memmove(ids.ids, ids.ids + ids.len - (size_t)block, (size_t)block * sizeof *ids.ids);
        ids.len = (size_t)block;
    }
    if (rc == 0) rc = anv_generate(g, ids.ids, ids.len, &cfg, collect_text, &text, &res, NULL);
    if (rc == 0)
        rc = anv_runlog_sample(&t->log, t->st.step, t->st.tokens, prompt, text.data ? text.data : "", text.len);
    if (rc == 0 && t->o->on_sample) t->o->on_sample(t->st.step, text.data ? text.data : "", t->o->ctx);
    anv_buf_free(&text);
    anv_tokens_free(&ids);
    anv_generator_free(g);
    return rc;
}

static int diverged(const trainer_t *t, long long step, const char *what, double v) {
    if (t->saved_step >= 0)
        return anv_error("step %lld: %s is %g; stopping without saving (the checkpoint of step %lld in %s is kept)",
                         step, what, v, t->saved_step, t->o->run_dir);
    return anv_error("step %lld: %s is %g; stopping (no checkpoint was saved yet)", step, what, v);
}

/* Averages the gradients over the ranks and applies the update; *norm: the global gradient norm. */
static int update(trainer_t *t, float lr, float *norm) {
    const anv_hparams_t *h = &t->hp;
    const anv_trainable_t *tr = anv_model_trainable(t->m);
    float *grads = tr->grads;
    size_t n = tr->n_params;
    if (!t->zero) {
        if (t->comm && anv_comm_allreduce(t->comm, grads, n, ANV_REDUCE_AVG) != 0) return -1;
        *norm = anv_clip_grad_norm(grads, n, h->clip);
        if (isfinite(*norm)) anv_adamw_step(&t->opt, t->m, &h->adamw, lr);
        return 0;
    }
    double sumsq;
    if (anv_comm_reduce_scatter(t->comm, grads, t->gshard, n, ANV_REDUCE_AVG) != 0) return -1;
    sumsq = anv_sumsq(t->gshard, t->opt.n);
    if (anv_comm_allreduce_f64(t->comm, &sumsq, 1, ANV_REDUCE_SUM) != 0) return -1;
    *norm = anv_clip_grads_by(t->gshard, t->opt.n, sumsq, h->clip);
    if (!isfinite(*norm)) return 0;
    anv_adamw_step_shard(&t->opt, t->m, t->gshard, &h->adamw, lr);
    return anv_comm_allgather(t->comm, tr->params, n);
}

/* Model FLOPs per trained token; a frozen base skips its weight gradients, 2 N of the 6 N. */
static double flops_per_token(const trainer_t *t) {
    double f = anv_model_flops_per_token(&t->cfg, t->hp.T);
    return t->lora.lora.rank ? f - 2.0 * (double)anv_config_num_params(&t->cfg) : f;
}

/* The LoRA dropout masks of micro-batch k of a step on this rank: drawn anew for each, the same again
 * when a resumed run repeats the step. */
static uint64_t dropout_seed(const trainer_t *t, long long step, long long k) {
    uint64_t words[4] = {t->hp.seed, (uint64_t)step, (uint64_t)k, (uint64_t)t->rank};
    return anv_hash64(words, sizeof words, 0x4C6F5241ull);
}

/* Fine-tuning rows hold different numbers of trained tokens; every trained token of a step weighs the
 * same however they fall over micro-batches and ranks, so micro-batch k's mean loss counts with its share
 * of the step's targets: counted[k] of them, *total over every rank (one look ahead at the step's
 * batches). 0 for pre-training data, where every micro-batch weighs 1 / accum. */
static int count_targets(trainer_t *t, long long accum, double *counted, double *total) {
    *total = 0;
    if (!anv_loader_masked(t->train)) return 0;
    anv_loader_pos_t pos = anv_loader_position(t->train);
    size_t n = (size_t)t->hp.B * t->hp.T;
    for (long long k = 0; k < accum; k++) {
        anv_loader_next(t->train, t->in, t->tg, NULL);
        counted[k] = 0;
        for (size_t i = 0; i < n; i++) counted[k] += t->tg[i] >= 0;
        *total += counted[k];
    }
    if (t->comm && anv_comm_allreduce_f64(t->comm, total, 1, ANV_REDUCE_SUM) != 0) return -1;
    return anv_loader_seek(t->train, &pos);
}

/* One optimizer step over `accum` micro-batches on every rank. */
static int train_step(trainer_t *t, anv_step_report_t *r) {
    const anv_hparams_t *h = &t->hp;
    long long accum = accum_steps(t);
    long long step = t->st.step + 1;
    double t0 = anv_now(), sum = 0, comm0 = t->comm ? anv_comm_seconds(t->comm) : 0, total;
    if (count_targets(t, accum, t->counted, &total) != 0) return -1;
    anv_model_zero_grad(t->m);
    for (long long k = 0; k < accum; k++) {
        float l;
        /* the ranks average their gradients: world / total makes that a mean over the step's targets */
        double share = total > 0 ? t->counted[k] * t->world / total : 1.0 / (double)accum;
        anv_loader_next(t->train, t->in, t->tg, t->starts);
        anv_model_lora_dropout_seed(t->m, dropout_seed(t, step, k));
        if (anv_model_forward(t->m, t->in, t->tg, t->starts, h->B, h->T, &l) != 0 ||
            anv_model_backward(t->m, (float)share) != 0)
            return -1;
        sum += total > 0 ? l * share : l;
    }
    /* the loss sum and the stop flag of every rank, in one message */
    double global[2] = {sum, t->o->stop && *t->o->stop};
    if (t->comm && anv_comm_allreduce_f64(t->comm, global, 2, ANV_REDUCE_SUM) != 0) return -1;
    t->stop = global[1] > 0 || step == t->stop_at;
    float loss = (float)(global[0] / (double)(total > 0 ? t->world : accum * t->world));
    if (step == t->nan_at) loss = NAN;
    if (!isfinite(loss)) return diverged(t, step, "the loss", loss);
    float norm, lr = anv_schedule_lr(&h->sched, t->st.step);
    if (update(t, lr, &norm) != 0) return -1;
    if (!isfinite(norm)) return diverged(t, step, "the gradient norm", norm);
    t->st.step = step;
    t->st.tokens += h->total_batch_tokens;
    r->step = step;
    r->steps = h->steps;
    r->loss = loss;
    r->lr = lr;
    r->grad_norm = norm;
    r->tokens = t->st.tokens;
    r->step_s = anv_now() - t0;
    r->tokens_per_s = (double)h->total_batch_tokens / r->step_s;
    double flops = flops_per_token(t) * r->tokens_per_s / t->world; /* this rank's */
    r->mfu = mfu(t, flops, &t->peak_flops, anv_precision_name((anv_precision_t)h->precision));
    r->mfu_best = mfu(t, flops, &t->best_flops, "best");
    r->comm_s = t->comm ? anv_comm_seconds(t->comm) - comm0 : 0;
    return 0;
}

static int loop(trainer_t *t) {
    const anv_hparams_t *h = &t->hp;
    double start = anv_now();
    long long first = t->st.step;
    while (t->st.step < h->steps) {
        anv_step_report_t r;
        if (train_step(t, &r) != 0) return -1;
        r.eta_s = (anv_now() - start) / (double)(r.step - first) * (double)(h->steps - r.step);
        if (t->rank == 0 && anv_runlog_step(&t->log, &r) != 0) return -1;
        if (t->rank == 0 && t->o->on_step) t->o->on_step(&r, t->o->ctx);
        int last = r.step == h->steps, stop = t->stop;
        int eval_step = (h->eval_every > 0 && r.step % h->eval_every == 0) || last;
        if (eval_step && evaluate(t) != 0) return -1;
        int every = t->o->sample_every > 0 ? t->o->sample_every : h->eval_every;
        if (t->rank == 0 && t->o->sample_prompt && (last || (every > 0 && r.step % every == 0)) && sample(t) != 0)
            return -1;
        if ((h->save_every > 0 && r.step % h->save_every == 0) || last || stop)
            if (save(t) != 0) return -1;
        if (stop) return 1;
    }
    return 0;
}

static void teardown(trainer_t *t) {
    anv_runlog_close(&t->log);
    anv_loader_close(t->train);
    anv_loader_close(t->val);
    anv_adamw_free(&t->opt);
    anv_model_free(t->m);
    anv_tokenizer_free(t->tok);
    anv_free(t->in);
    anv_free(t->starts);
    anv_free(t->tg);
    anv_free(t->counted);
    anv_device_free(t->gshard);
    anv_run_unlock(&t->lock);
}

int anv_train(const anv_train_opts_t *o, long long *last_step) {
    trainer_t t;
    memset(&t, 0, sizeof t);
    t.o = o;
    t.lock.fd = -1;
    t.hp = o->hp;
    t.world = o->comm ? anv_comm_size(o->comm) : 1;
    t.comm = t.world > 1 ? o->comm : NULL;
    t.rank = t.comm ? anv_comm_rank(t.comm) : 0;
    t.zero = o->zero && t.comm;
    const char *nan_at = getenv("ANVIL_TEST_NAN_AT_STEP");
    const char *stop_at = getenv("ANVIL_TEST_STOP_AT_STEP");
    t.nan_at = nan_at ? atoll(nan_at) : 0;
    t.stop_at = stop_at ? atoll(stop_at) : 0;
    int rc = setup(&t);
    if (rc == 0) rc = open_loaders(&t);
    /* --minutes: every rank timed itself; rank 0's plan holds for all */
    if (rc == 0 && t.comm) rc = anv_comm_broadcast(t.comm, &t.hp, sizeof t.hp, 0);
    if (rc == 0 && t.rank == 0) rc = anv_runlog_open(&t.log, o->run_dir, o->resume ? t.st.step : 0);
    t.best_val = INFINITY; /* on resume, the lowest evaluation the log keeps */
    anv_eval_report_t last, best;
    if (rc == 0 && t.rank == 0 && o->resume && anv_runlog_evals(o->run_dir, &last, &best, NULL) == 1)
        t.best_val = best.val_loss;
    if (rc == 0 && t.rank == 0 && o->resume && t.hp.steps != t.st.hp.steps && t.st.step < t.hp.steps)
        anv_log(ANV_LOG_INFO, "the run now ends at step %lld (was %lld): the learning-rate schedule stretches to it",
                t.hp.steps, t.st.hp.steps);
    if (rc == 0 && t.rank == 0 && o->resume && t.st.step >= t.hp.steps)
        anv_log(ANV_LOG_INFO, "%s: the run already finished its %lld steps (raise --steps to continue)", o->run_dir,
                t.hp.steps);
    if (rc == 0) rc = loop(&t);
    *last_step = t.st.step;
    teardown(&t);
    return rc;
}

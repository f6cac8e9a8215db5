/* The training loop: set up a fresh or resumed run, then step, log, evaluate and checkpoint.
 *
 * Test hook: the environment variable ANVIL_TEST_NAN_AT_STEP=N poisons the loss of step N with NaN,
 * so tests can check that a diverged run stops, names the step and keeps its last good checkpoint.
 *
 * Nothing is allocated per step: batches, gradients and optimizer state are sized before the loop and
 * the model's activations by its first forward; only checkpoints (every --save-every) allocate. */
#include "anvil/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    int32_t *in, *tg; /* (B, T) */
    anv_runlog_t log;
    double bytes_per_token;
    long long saved_step; /* last step with a checkpoint on disk (-1: none) */
    long long nan_at;     /* test hook, 0 = off */
} trainer_t;

static int run_path(const trainer_t *t, const char *name, char *buf, size_t size) {
    return anv_path_join(buf, size, t->o->run_dir, name);
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

static int copy_file(const char *from, const char *to) {
    char *data;
    size_t len;
    if (anv_read_file(from, &data, &len) != 0) return -1;
    int rc = anv_write_file_atomic(to, data, len);
    anv_free(data);
    return rc;
}

static int setup_fresh(trainer_t *t) {
    char path[4200], src[4200];
    if (run_path(t, "state.json", path, sizeof path) != 0) return -1;
    if (anv_path_exists(path))
        return anv_error("%s: already holds a run; pass --resume to continue it or choose another --out",
                         t->o->run_dir);
    memset(&t->st, 0, sizeof t->st);
    if (load_data_tokenizer(t, t->o->data_dir) != 0 || requested_config(t, &t->cfg) != 0) return -1;
    if (anv_mkdir_p(t->o->run_dir) != 0 || run_path(t, "config.json", path, sizeof path) != 0 ||
        anv_config_save(&t->cfg, path) != 0)
        return -1;
    if (anv_path_join(src, sizeof src, t->data_dir, "tokenizer.json") != 0 ||
        run_path(t, "tokenizer.json", path, sizeof path) != 0 || copy_file(src, path) != 0)
        return -1;
    if (anv_model_create(&t->cfg, &t->m) != 0 || anv_adamw_init(&t->opt, anv_model_n_params(t->m)) != 0)
        return -1;
    anv_model_init_gpt2(t->m, t->hp.seed);
    t->saved_step = -1;
    return 0;
}

static int same_config(const anv_config_t *a, const anv_config_t *b) {
    return a->n_layer == b->n_layer && a->n_head == b->n_head && a->n_embd == b->n_embd &&
           a->vocab_size == b->vocab_size && a->block_size == b->block_size;
}

static int setup_resume(trainer_t *t) {
    char path[4200];
    const char *run = t->o->run_dir;
    if (!anv_is_dir(run)) return anv_error("%s: run directory does not exist (nothing to resume)", run);
    if (anv_checkpoint_recover(run) != 0 || run_path(t, "state.json", path, sizeof path) != 0) return -1;
    if (!anv_path_exists(path)) return anv_error("%s: no checkpoint to resume (state.json is missing)", run);
    if (anv_state_load(path, &t->st) != 0) return -1;
    char dir[sizeof t->st.data_dir];
    strcpy(dir, t->o->data_dir ? t->o->data_dir : t->st.data_dir);
    if (load_data_tokenizer(t, dir) != 0) return -1;
    if (anv_tokenizer_hash(t->tok) != t->st.tokenizer_hash)
        return anv_error("%s/tokenizer.json: not the tokenizer this run was trained with (see %s)", t->data_dir,
                         path);
    if (run_path(t, "config.json", path, sizeof path) != 0 || anv_config_load(path, &t->cfg) != 0 ||
        anv_config_validate(&t->cfg, path) != 0)
        return -1;
    if (t->o->preset || t->o->config_path) {
        anv_config_t want;
        if (requested_config(t, &want) != 0) return -1;
        if (!same_config(&want, &t->cfg))
            return anv_error("%s: the run was trained with n_layer %d, n_head %d, n_embd %d, vocab_size %d, "
                             "block_size %d, but %s %s asks for %d, %d, %d, %d, %d",
                             path, t->cfg.n_layer, t->cfg.n_head, t->cfg.n_embd, t->cfg.vocab_size,
                             t->cfg.block_size, t->o->preset ? "--preset" : "--config",
                             t->o->preset ? t->o->preset : t->o->config_path, want.n_layer, want.n_head, want.n_embd,
                             want.vocab_size, want.block_size);
    }
    if (anv_model_create(&t->cfg, &t->m) != 0 || anv_adamw_init(&t->opt, anv_model_n_params(t->m)) != 0)
        return -1;
    long long ms, os;
    if (run_path(t, "model.safetensors", path, sizeof path) != 0 ||
        anv_checkpoint_load_model(path, t->m, &ms) != 0)
        return -1;
    if (ms != t->st.step)
        return anv_error("%s: holds step %lld but state.json is at step %lld", path, ms, t->st.step);
    if (run_path(t, "optim.safetensors", path, sizeof path) != 0 ||
        anv_checkpoint_load_optim(path, t->m, &t->opt, &os) != 0)
        return -1;
    if (os != t->st.step)
        return anv_error("%s: holds step %lld but state.json is at step %lld", path, os, t->st.step);
    t->opt.t = t->st.step;
    t->saved_step = t->st.step;
    if (t->hp.threads != t->st.hp.threads)
        anv_log(ANV_LOG_WARN,
                "resuming with %d threads, the run used %d: training continues correctly but not bitwise "
                "identically to an uninterrupted run",
                t->hp.threads, t->st.hp.threads);
    return 0;
}

/* Times the forward/backward passes of one step (the second of two runs, the first warms up) and
 * leaves the model's gradients and the loader as they were. Optimizer time is small beside them. */
static int time_one_step(trainer_t *t, double *seconds) {
    const anv_hparams_t *h = &t->hp;
    long long accum = h->total_batch_tokens / ((long long)h->B * h->T);
    anv_loader_pos_t pos = anv_loader_position(t->train);
    for (int run = 0; run < 2; run++) {
        double t0 = anv_now();
        for (long long k = 0; k < accum; k++) {
            float l;
            anv_loader_next(t->train, t->in, t->tg);
            if (anv_model_forward(t->m, t->in, t->tg, h->B, h->T, &l) != 0 || anv_model_backward(t->m, 1.0f) != 0)
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
        long long epoch = anv_loader_batches_per_epoch(t->train) * h->B * h->T / h->total_batch_tokens;
        h->steps = epoch > 0 ? epoch : 1;
    }
    if (h->sched.warmup < 0) h->sched.warmup = h->steps / 10 < 2000 ? h->steps / 10 : 2000;
    if (h->sched.min_lr < 0) h->sched.min_lr = h->sched.max_lr / 10;
    if (h->sched.decay_steps < 0) h->sched.decay_steps = h->steps / 5;
    h->sched.total = h->steps;
    return 0;
}

static int open_loaders(trainer_t *t) {
    anv_hparams_t *h = &t->hp;
    if (h->T == 0) h->T = t->cfg.block_size;
    if (h->total_batch_tokens == 0) h->total_batch_tokens = (long long)h->B * h->T;
    if (h->T > t->cfg.block_size)
        return anv_error("--seq %d exceeds the model's block_size %d", h->T, t->cfg.block_size);
    if (h->total_batch_tokens % ((long long)h->B * h->T) != 0)
        return anv_error("--total-batch-tokens %lld is not a multiple of --batch %d x --seq %d = %lld",
                         h->total_batch_tokens, h->B, h->T, (long long)h->B * h->T);
    anv_loader_config_t tc = {t->data_dir, "train", h->B, h->T, 0, 1, h->shuffle, h->seed ^ 0x5DEECE66Dull,
                              (size_t)t->cfg.vocab_size};
    anv_loader_config_t vc = {t->data_dir, "val", h->B, h->T, 0, 1, 0, 0, (size_t)t->cfg.vocab_size};
    if (anv_loader_open(&tc, &t->train) != 0 || anv_loader_open(&vc, &t->val) != 0) return -1;
    if (t->o->resume && anv_loader_seek(t->train, &t->st.loader) != 0) return -1;
    if (anv_val_bytes_per_token(t->data_dir, t->tok, t->val, &t->bytes_per_token) != 0) return -1;
    size_t n = (size_t)h->B * (size_t)h->T * sizeof(int32_t);
    t->in = anv_alloc(n, "batch inputs");
    t->tg = anv_alloc(n, "batch targets");
    if (!t->in || !t->tg) return -1;
    return resolve_steps(t);
}

static int save(trainer_t *t) {
    t->st.hp = t->hp;
    t->st.loader = anv_loader_position(t->train);
    t->st.tokenizer_hash = anv_tokenizer_hash(t->tok);
    if (anv_checkpoint_save(t->o->run_dir, t->m, &t->opt, &t->st) != 0) return -1;
    t->saved_step = t->st.step;
    char svg[4200];
    if (run_path(t, "loss.svg", svg, sizeof svg) == 0 && anv_loss_svg_write(t->log.path, svg) != 0)
        anv_log(ANV_LOG_WARN, "%s", anv_last_error());
    return 0;
}

static int evaluate(trainer_t *t) {
    anv_eval_report_t r = {t->st.step, t->st.tokens, 0, 0};
    if (anv_evaluate(t->m, t->val, t->hp.eval_batches, t->hp.B, t->hp.T, t->in, t->tg, &r.val_loss) != 0) return -1;
    r.val_bpb = r.val_loss / log(2.0) / t->bytes_per_token;
    if (anv_runlog_eval(&t->log, &r) != 0) return -1;
    if (t->o->on_eval) t->o->on_eval(&r, t->o->ctx);
    return 0;
}

static int diverged(const trainer_t *t, long long step, const char *what, double v) {
    if (t->saved_step >= 0)
        return anv_error("step %lld: %s is %g; stopping without saving (the checkpoint of step %lld in %s is kept)",
                         step, what, v, t->saved_step, t->o->run_dir);
    return anv_error("step %lld: %s is %g; stopping (no checkpoint was saved yet)", step, what, v);
}

/* One optimizer step over `accum` micro-batches. */
static int train_step(trainer_t *t, anv_step_report_t *r) {
    const anv_hparams_t *h = &t->hp;
    long long accum = h->total_batch_tokens / ((long long)h->B * h->T);
    long long step = t->st.step + 1;
    double t0 = anv_now(), sum = 0;
    anv_model_zero_grad(t->m);
    for (long long k = 0; k < accum; k++) {
        float l;
        anv_loader_next(t->train, t->in, t->tg);
        if (anv_model_forward(t->m, t->in, t->tg, h->B, h->T, &l) != 0 ||
            anv_model_backward(t->m, 1.0f / (float)accum) != 0)
            return -1;
        sum += l;
    }
    float loss = (float)(sum / (double)accum);
    if (step == t->nan_at) loss = NAN;
    if (!isfinite(loss)) return diverged(t, step, "the loss", loss);
    float norm = anv_clip_grad_norm(anv_model_grads(t->m), anv_model_n_params(t->m), h->clip);
    if (!isfinite(norm)) return diverged(t, step, "the gradient norm", norm);
    float lr = anv_schedule_lr(&h->sched, t->st.step);
    anv_adamw_step(&t->opt, t->m, &h->adamw, lr);
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
    r->mfu = anv_model_flops_per_token(&t->cfg, h->T) * r->tokens_per_s /
             (ANV_PEAK_FLOPS_PER_THREAD * anv_threads_count());
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
        if (anv_runlog_step(&t->log, &r) != 0) return -1;
        if (t->o->on_step) t->o->on_step(&r, t->o->ctx);
        int last = r.step == h->steps, stop = t->o->stop && *t->o->stop;
        if ((h->eval_every > 0 && r.step % h->eval_every == 0) || last)
            if (evaluate(t) != 0) return -1;
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
    anv_free(t->tg);
}

int anv_train(const anv_train_opts_t *o, long long *last_step) {
    trainer_t t;
    memset(&t, 0, sizeof t);
    t.o = o;
    t.hp = o->hp;
    const char *nan_at = getenv("ANVIL_TEST_NAN_AT_STEP");
    t.nan_at = nan_at ? atoll(nan_at) : 0;
    int rc = o->resume ? setup_resume(&t) : setup_fresh(&t);
    if (rc == 0) rc = open_loaders(&t);
    if (rc == 0) rc = anv_runlog_open(&t.log, o->run_dir, o->resume ? t.st.step : 0);
    if (rc == 0 && o->resume && t.hp.steps != t.st.hp.steps && t.st.step < t.hp.steps)
        anv_log(ANV_LOG_INFO, "the run now ends at step %lld (was %lld): the learning-rate schedule stretches to it",
                t.hp.steps, t.st.hp.steps);
    if (rc == 0 && o->resume && t.st.step >= t.hp.steps)
        anv_log(ANV_LOG_INFO, "%s: the run already finished its %lld steps (raise --steps to continue)", o->run_dir,
                t.hp.steps);
    if (rc == 0) rc = loop(&t);
    *last_step = t.st.step;
    teardown(&t);
    return rc;
}

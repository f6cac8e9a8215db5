/* Checkpoints: model/optim safetensors, state.json, and the commit protocol described in checkpoint.h. */
#include "anvil/checkpoint.h"
#include "anvil/kernels.h"

#include "anvil/json.h"
#include "anvil/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *schedule_name(anv_schedule_kind_t k) {
    return k == ANV_SCHEDULE_COSINE ? "cosine" : k == ANV_SCHEDULE_CONSTANT ? "constant" : "wsd";
}

/* Floats are printed with 9 significant digits, which read back to the same float. */
int anv_state_save(const char *path, const anv_train_state_t *s) {
    const anv_hparams_t *h = &s->hp;
    anv_buf_t b = {0};
    int rc = anv_buf_printf(&b, "{\n  \"step\": %lld,\n  \"tokens\": %lld,\n", s->step, s->tokens);
    rc |= anv_buf_printf(&b, "  \"loader\": {\"epoch\": %lld, \"index\": %lld, \"rng\": [", (long long)s->loader.epoch,
                         (long long)s->loader.index);
    for (int i = 0; i < 4; i++) rc |= anv_buf_printf(&b, "%s\"%016" PRIx64 "\"", i ? ", " : "", s->loader.rng.s[i]);
    rc |= anv_buf_puts(&b, "]},\n  \"data_dir\": ");
    rc |= anv_buf_json_string(&b, s->data_dir, strlen(s->data_dir));
    rc |= anv_buf_printf(&b, ",\n  \"tokenizer_hash\": \"%016" PRIx64 "\",\n", s->tokenizer_hash);
    rc |= anv_buf_printf(
        &b,
        "  \"hparams\": {\"batch\": %d, \"seq\": %d, \"total_batch_tokens\": %lld, \"steps\": %lld,\n"
        "    \"schedule\": \"%s\", \"lr\": %.9g, \"min_lr\": %.9g, \"warmup\": %lld, "
        "\"decay_steps\": %lld,\n"
        "    \"beta1\": %.9g, \"beta2\": %.9g, \"eps\": %.9g, \"weight_decay\": %.9g, \"clip\": %.9g,\n"
        "    \"eval_every\": %d, \"eval_batches\": %d, \"save_every\": %d, \"shuffle\": %d, \"pack\": %d, "
        "\"seed\": \"%" PRIu64 "\", \"threads\": %d, \"precision\": \"%s\", \"keep_best\": %d}\n}\n",
        h->B, h->T, h->total_batch_tokens, h->steps, schedule_name(h->sched.kind), (double)h->sched.max_lr,
        (double)h->sched.min_lr, h->sched.warmup, h->sched.decay_steps, (double)h->adamw.beta1, (double)h->adamw.beta2,
        (double)h->adamw.eps, (double)h->adamw.weight_decay, (double)h->clip, h->eval_every, h->eval_batches,
        h->save_every, h->shuffle, h->pack, h->seed, h->threads, anv_precision_name((anv_precision_t)h->precision),
        h->keep_best);
    if (rc == 0) rc = anv_write_file_atomic(path, b.data, b.len);
    anv_buf_free(&b);
    return rc;
}

static int get_u64_string(const anv_json_t *obj, const char *key, const char *src, int base, uint64_t *out) {
    const char *s;
    if (anv_json_get_string(obj, key, src, &s) != 0) return -1;
    char *end;
    errno = 0;
    *out = strtoull(s, &end, base);
    if (!*s || *end || errno) return anv_error("%s: \"%s\" is not a valid number: '%s'", src, key, s);
    return 0;
}

static int get_float(const anv_json_t *obj, const char *key, const char *src, float *out) {
    double d;
    if (anv_json_get_double(obj, key, src, &d) != 0) return -1;
    *out = (float)d;
    return 0;
}

static int get_i32(const anv_json_t *obj, const char *key, const char *src, int *out) {
    long long v;
    if (anv_json_get_int(obj, key, src, &v) != 0) return -1;
    if (v < 0 || v > 2147483647) return anv_error("%s: \"%s\" is out of range: %lld", src, key, v);
    *out = (int)v;
    return 0;
}

static int parse_state(const anv_json_t *root, const char *src, anv_train_state_t *s) {
    memset(s, 0, sizeof *s);
    const anv_json_t *ld = anv_json_get(root, "loader"), *hp = anv_json_get(root, "hparams");
    if (!ld || !hp) return anv_error("%s: missing \"loader\" or \"hparams\"", src);
    long long v;
    const char *str;
    if (anv_json_get_int(root, "step", src, &s->step) || anv_json_get_int(root, "tokens", src, &s->tokens) ||
        anv_json_get_int(ld, "epoch", src, &v))
        return -1;
    s->loader.epoch = v;
    if (anv_json_get_int(ld, "index", src, &v)) return -1;
    s->loader.index = v;
    const anv_json_t *rng = anv_json_get(ld, "rng");
    if (!rng || rng->type != ANV_JSON_ARRAY || rng->len != 4) return anv_error("%s: \"rng\" must hold 4 words", src);
    for (int i = 0; i < 4; i++) {
        char *end;
        if (rng->items[i].type != ANV_JSON_STRING) return anv_error("%s: \"rng\" words must be hex strings", src);
        s->loader.rng.s[i] = strtoull(rng->items[i].str, &end, 16);
        if (*end || !*rng->items[i].str) return anv_error("%s: bad rng word '%s'", src, rng->items[i].str);
    }
    if (anv_json_get_string(root, "data_dir", src, &str)) return -1;
    if (strlen(str) >= sizeof s->data_dir) return anv_error("%s: data_dir is too long", src);
    strcpy(s->data_dir, str);
    if (get_u64_string(root, "tokenizer_hash", src, 16, &s->tokenizer_hash)) return -1;
    anv_hparams_t *h = &s->hp;
    if (get_i32(hp, "batch", src, &h->B) || get_i32(hp, "seq", src, &h->T) ||
        anv_json_get_int(hp, "total_batch_tokens", src, &h->total_batch_tokens) ||
        anv_json_get_int(hp, "steps", src, &h->steps) || anv_json_get_string(hp, "schedule", src, &str) ||
        anv_schedule_parse(str, &h->sched.kind) || get_float(hp, "lr", src, &h->sched.max_lr) ||
        get_float(hp, "min_lr", src, &h->sched.min_lr) || anv_json_get_int(hp, "warmup", src, &h->sched.warmup) ||
        anv_json_get_int(hp, "decay_steps", src, &h->sched.decay_steps) ||
        get_float(hp, "beta1", src, &h->adamw.beta1) || get_float(hp, "beta2", src, &h->adamw.beta2) ||
        get_float(hp, "eps", src, &h->adamw.eps) || get_float(hp, "weight_decay", src, &h->adamw.weight_decay) ||
        get_float(hp, "clip", src, &h->clip) || get_i32(hp, "eval_every", src, &h->eval_every) ||
        get_i32(hp, "eval_batches", src, &h->eval_batches) || get_i32(hp, "save_every", src, &h->save_every) ||
        get_i32(hp, "shuffle", src, &h->shuffle) || get_u64_string(hp, "seed", src, 10, &h->seed) ||
        get_i32(hp, "threads", src, &h->threads))
        return -1;
    /* Runs from before mixed precision have no "precision": they trained in fp32. */
    anv_precision_t prec = ANV_PRECISION_FP32;
    const anv_json_t *pv = anv_json_get(hp, "precision");
    if (pv && (pv->type != ANV_JSON_STRING || anv_precision_parse(pv->str, &prec) != 0))
        return anv_error("%s: \"precision\" must be \"fp32\" or \"bf16\"", src);
    h->precision = (int)prec;
    /* Runs from before packing have no "pack": one example per row. */
    h->pack = 0;
    if (anv_json_get(hp, "pack") && get_i32(hp, "pack", src, &h->pack)) return -1;
    /* Runs from before --keep-best have no "keep_best". */
    h->keep_best = 0;
    if (anv_json_get(hp, "keep_best") && get_i32(hp, "keep_best", src, &h->keep_best)) return -1;
    h->sched.total = h->steps;
    if (h->B <= 0 || h->T <= 0 || s->step < 0 || s->step > h->steps || s->tokens < 0)
        return anv_error("%s: inconsistent values (batch %d, seq %d, step %lld of %lld)", src, h->B, h->T, s->step,
                         h->steps);
    return 0;
}

int anv_state_load(const char *path, anv_train_state_t *s) {
    anv_json_doc_t *doc;
    if (anv_json_parse_file(path, &doc) != 0) return -1;
    int rc = parse_state(anv_json_root(doc), path, s);
    anv_json_free(doc);
    return rc;
}

/* ---- safetensors files ---- */

static int write_tensors(const char *path, const anv_trainable_t *tr, const float *const *blocks,
                         const char *const *prefix, int n_blocks, long long step) {
    int n = tr->n_tensors, total = n * n_blocks;
    anv_st_write_t *t = anv_calloc((size_t)total * sizeof *t, "tensor list");
    char(*names)[128] = anv_alloc((size_t)total * sizeof *names, "tensor names");
    int rc = t && names ? 0 : -1;
    for (int b = 0; rc == 0 && b < n_blocks; b++)
        for (int i = 0; i < n; i++) {
            const anv_param_t *p = &tr->tensors[i];
            anv_st_write_t *w = &t[b * n + i];
            snprintf(names[b * n + i], sizeof names[0], "%s%s", prefix[b], p->name);
            w->name = names[b * n + i];
            w->ndim = p->ndim;
            for (int d = 0; d < p->ndim; d++) w->shape[d] = p->shape[d];
            w->data = blocks[b] + p->offset;
        }
    char step_str[32];
    snprintf(step_str, sizeof step_str, "%lld", step);
    const char *meta[] = {"format", "pt", "step", step_str};
    if (rc == 0) rc = anv_safetensors_write_f32(path, t, total, meta, 2);
    anv_free(t);
    anv_free(names);
    return rc;
}

static long long file_step(const anv_safetensors_t *st) {
    const char *s = anv_safetensors_metadata(st, "step");
    char *end;
    long long v = s ? strtoll(s, &end, 10) : -1;
    return s && *s && !*end ? v : -1;
}

/* Fills blocks from an open file; each tensor must be finite, so a diverged or damaged checkpoint is
 * refused by name instead of producing NaN losses and garbage text. */
static int read_tensors_from(anv_safetensors_t *st, const char *path, const anv_trainable_t *tr, float *const *blocks,
                             const char *const *prefix, int n_blocks) {
    int n = tr->n_tensors, rc = 0;
    if (anv_safetensors_count(st) != n * n_blocks)
        return anv_error("%s: holds %d tensors, this model has %d (another model configuration?)", path,
                         anv_safetensors_count(st), n * n_blocks);
    for (int b = 0; rc == 0 && b < n_blocks; b++) {
        memset(blocks[b], 0, tr->n_params * sizeof(float)); /* padding rows stay zero */
        for (int i = 0; rc == 0 && i < n; i++) {
            const anv_param_t *p = &tr->tensors[i];
            char name[128];
            int64_t shape[2] = {p->shape[0], p->shape[1]};
            snprintf(name, sizeof name, "%s%s", prefix[b], p->name);
            rc = anv_safetensors_read_f32(st, name, p->ndim, shape, blocks[b] + p->offset);
            const float *x = blocks[b] + p->offset;
            for (size_t k = 0; rc == 0 && k < p->numel; k++)
                if (!isfinite(x[k]))
                    rc = anv_error("%s: tensor %s holds %s at element %zu (a diverged or damaged checkpoint)", path,
                                   name, isnan(x[k]) ? "NaN" : "Inf", k);
        }
    }
    return rc;
}

static int read_tensors(const char *path, const anv_trainable_t *tr, float *const *blocks, const char *const *prefix,
                        int n_blocks, long long *step) {
    anv_safetensors_t *st;
    if (anv_safetensors_open(path, &st) != 0) return -1;
    int rc = read_tensors_from(st, path, tr, blocks, prefix, n_blocks);
    if (step) *step = file_step(st);
    anv_safetensors_close(st);
    return rc;
}

int anv_checkpoint_load_model(const char *path, anv_model_t *m, long long *step) {
    const anv_trainable_t *tr = anv_model_trainable(m);
    float *blocks[1] = {tr->params};
    const char *prefix[1] = {""};
    return read_tensors(path, tr, blocks, prefix, 1, step);
}

int anv_checkpoint_load_optim(const char *path, anv_model_t *m, anv_adamw_t *opt, long long *step) {
    const anv_trainable_t *tr = anv_model_trainable(m);
    if (opt->n != tr->n_params) return anv_error("%s: optimizer state does not match the model", path);
    float *blocks[2] = {opt->m, opt->v};
    const char *prefix[2] = {"exp_avg.", "exp_avg_sq."};
    return read_tensors(path, tr, blocks, prefix, 2, step);
}

/* ---- the commit protocol ---- */

static void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* A full run's trained file is model.safetensors, a LoRA run's adapter_model.safetensors. */
static const char *const ckpt_files[3] = {"model.safetensors", "adapter_model.safetensors", "optim.safetensors"};

static int next_path(char *out, size_t size, const char *run_dir, const char *file) {
    char name[64];
    snprintf(name, sizeof name, "%s.next", file);
    return anv_path_join(out, size, run_dir, name);
}

int anv_checkpoint_save_trained(const char *path, anv_model_t *m, long long step) {
    const anv_trainable_t *tr = anv_model_trainable(m);
    const float *params[1] = {tr->params};
    const char *no_prefix[1] = {""};
    return write_tensors(path, tr, params, no_prefix, 1, step);
}

int anv_checkpoint_save(const char *run_dir, anv_model_t *m, const anv_adamw_t *opt, const anv_train_state_t *s) {
    const anv_trainable_t *tr = anv_model_trainable(m);
    const char *files[2] = {tr->file, "optim.safetensors"};
    char path[2][4200], next[2][4200], state[4200];
    for (int i = 0; i < 2; i++) {
        if (anv_path_join(path[i], sizeof path[i], run_dir, files[i]) != 0 ||
            next_path(next[i], sizeof next[i], run_dir, files[i]) != 0)
            return -1;
    }
    if (anv_path_join(state, sizeof state, run_dir, "state.json") != 0) return -1;
    const float *moments[2] = {opt->m, opt->v};
    const char *opt_prefix[2] = {"exp_avg.", "exp_avg_sq."};
    int had_checkpoint = anv_path_exists(state);
    int rc = anv_checkpoint_save_trained(next[0], m, s->step);
    if (rc == 0) rc = write_tensors(next[1], tr, moments, opt_prefix, 2, s->step);
    if (rc == 0) rc = anv_state_save(state, s); /* commit point */
    if (rc != 0) {
        unlink(next[0]);
        unlink(next[1]);
        return anv_error_prefix("checkpoint at step %lld not saved (%s)", s->step,
                                had_checkpoint ? "the previous one is intact" : "the run has no earlier checkpoint");
    }
    for (int i = 0; i < 2; i++)
        if (rename(next[i], path[i]) != 0) return anv_error("%s: rename failed: %s", path[i], strerror(errno));
    fsync_dir(run_dir);
    return 0;
}

int anv_checkpoint_recover(const char *run_dir) {
    char state_path[4200], path[4200], next[4200];
    if (anv_path_join(state_path, sizeof state_path, run_dir, "state.json") != 0) return -1;
    anv_train_state_t s;
    int have_state = anv_path_exists(state_path) && anv_state_load(state_path, &s) == 0;
    for (int i = 0; i < 3; i++) {
        if (anv_path_join(path, sizeof path, run_dir, ckpt_files[i]) != 0 ||
            next_path(next, sizeof next, run_dir, ckpt_files[i]) != 0)
            return -1;
        if (!anv_path_exists(next)) continue;
        anv_safetensors_t *st;
        long long step = -1;
        if (anv_safetensors_open(next, &st) == 0) {
            step = file_step(st);
            anv_safetensors_close(st);
        }
        if (have_state && step == s.step) {
            if (rename(next, path) != 0) return anv_error("%s: rename failed: %s", path, strerror(errno));
            anv_log(ANV_LOG_INFO, "%s: completed the interrupted save of step %lld", path, step);
        } else {
            unlink(next);
        }
    }
    fsync_dir(run_dir);
    return 0;
}

/* A file opened here stays readable when the trainer renames over it (it is mapped), so a file whose
 * step matches state.json is a consistent checkpoint however the save goes on. Which file holds the
 * committed step depends on where the save is: before the commit model.safetensors, after it the
 * .next file until it is renamed. A few retries cover a save that moved on between the reads. */
int anv_checkpoint_load_committed(const char *run_dir, anv_model_t *m, long long *step) {
    const anv_trainable_t *tr = anv_model_trainable(m);
    char state_path[4200], path[2][4200];
    if (anv_path_join(state_path, sizeof state_path, run_dir, "state.json") != 0 ||
        next_path(path[0], sizeof path[0], run_dir, tr->file) != 0 ||
        anv_path_join(path[1], sizeof path[1], run_dir, tr->file) != 0)
        return -1;
    float *blocks[1] = {tr->params};
    const char *prefix[1] = {""};
    long long committed = -1;
    int unreadable = 0; /* a file there could not be opened: its error is the one to report */
    for (int attempt = 0; attempt < 100; attempt++) {
        if (attempt) usleep(20000);
        anv_train_state_t s;
        if (!anv_path_exists(state_path)) /* an imported model: no training state, one file */
            return anv_checkpoint_load_model(path[1], m, step);
        if (anv_state_load(state_path, &s) != 0) return -1;
        committed = s.step;
        unreadable = 0;
        for (int i = 0; i < 2; i++) {
            anv_safetensors_t *st;
            if (!anv_path_exists(path[i])) continue;
            if (anv_safetensors_open(path[i], &st) != 0) {
                unreadable = 1;
                continue;
            }
            int rc = 1;
            if (file_step(st) == committed) rc = read_tensors_from(st, path[i], tr, blocks, prefix, 1);
            anv_safetensors_close(st);
            if (rc <= 0) {
                if (rc == 0 && step) *step = committed;
                return rc;
            }
        }
    }
    if (unreadable) return -1;
    return anv_error("%s: no model file holds step %lld of state.json (a damaged run; `anvil train --resume` "
                     "repairs an interrupted save)",
                     run_dir, committed);
}

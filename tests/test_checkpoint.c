/* Checkpoints: bitwise round trip of weights, moments and state; the commit protocol under disk full
 * and after a crash; wrong-config and truncated files; the run log's truncation; the loss plot; the
 * bytes-per-token denominator of bits per byte. */
#include "anvil/checkpoint.h"
#include "anvil/kernels.h"
#include "anvil/run_dir.h"
#include "anvil/safetensors.h"
#include "anvil/shard.h"
#include "anvil/trainer.h"
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

static char *slurp(const char *name, size_t *len) {
    char path[512], *data = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (anv_read_file(path, &data, len) != 0) *len = 0;
    return data;
}

static int file_equals(const char *name, const char *data, size_t len) {
    size_t n;
    char *now = slurp(name, &n);
    int same = now && n == len && !memcmp(now, data, len);
    anv_free(now);
    return same;
}

static void fill_state(anv_train_state_t *s, long long step) {
    memset(s, 0, sizeof *s);
    s->hp = (anv_hparams_t){8,
                            64,
                            1024,
                            100,
                            {ANV_SCHEDULE_WSD, 6e-4f, 6e-5f, 10, 100, 20},
                            {0.9f, 0.95f, 1e-8f, 0.1f},
                            1.0f,
                            25,
                            4,
                            50,
                            1,
                            1,
                            9223372036854775813ull,
                            2,
                            ANV_PRECISION_BF16,
                            1};
    s->step = step;
    s->tokens = step * 1024;
    s->loader.epoch = 3;
    s->loader.index = 48;
    anv_rng_seed(&s->loader.rng, 77);
    strcpy(s->data_dir, "/data/with \"quotes\"");
    s->tokenizer_hash = 0xfedcba9876543210ull;
}

/* Field by field: the structs have padding. */
static int same_hparams(const anv_hparams_t *a, const anv_hparams_t *b) {
    return a->B == b->B && a->T == b->T && a->total_batch_tokens == b->total_batch_tokens && a->steps == b->steps &&
           a->sched.kind == b->sched.kind && a->sched.max_lr == b->sched.max_lr && a->sched.min_lr == b->sched.min_lr &&
           a->sched.warmup == b->sched.warmup && a->sched.total == b->sched.total &&
           a->sched.decay_steps == b->sched.decay_steps && a->adamw.beta1 == b->adamw.beta1 &&
           a->adamw.beta2 == b->adamw.beta2 && a->adamw.eps == b->adamw.eps &&
           a->adamw.weight_decay == b->adamw.weight_decay && a->clip == b->clip && a->eval_every == b->eval_every &&
           a->eval_batches == b->eval_batches && a->save_every == b->save_every && a->shuffle == b->shuffle &&
           a->pack == b->pack && a->seed == b->seed && a->threads == b->threads && a->precision == b->precision &&
           a->keep_best == b->keep_best;
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/anvil_test_ckpt_%d", (int)getpid());
    anv_mkdir_p(dir);
    anv_config_t cfg = anv_config_gpt2(2, 2, 32, 70, 16);
    anv_model_t *m, *m2;
    anv_adamw_t opt, opt2;
    CHECK(anv_model_create(&cfg, &m) == 0 && anv_model_create(&cfg, &m2) == 0, "create: %s", anv_last_error());
    anv_adamw_init(&opt, anv_model_n_params(m));
    anv_adamw_init(&opt2, anv_model_n_params(m2));
    anv_model_init(m, 3);
    for (size_t i = 0; i < opt.n; i++) {
        opt.m[i] = anv_model_params(m)[i] * 0.5f;
        opt.v[i] = anv_model_params(m)[i] * anv_model_params(m)[i];
    }
    anv_train_state_t st, got;
    fill_state(&st, 7);
    CHECK(anv_checkpoint_save(dir, m, &opt, &st) == 0, "save: %s", anv_last_error());

    /* Round trip. */
    long long ms = 0, os = 0;
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(anv_checkpoint_load_model(path, m2, &ms) == 0, "load model: %s", anv_last_error());
    snprintf(path, sizeof path, "%s/optim.safetensors", dir);
    CHECK(anv_checkpoint_load_optim(path, m2, &opt2, &os) == 0, "load optim: %s", anv_last_error());
    size_t bytes = anv_model_n_params(m) * sizeof(float);
    CHECK(!memcmp(anv_model_params(m), anv_model_params(m2), bytes), "weights bitwise equal");
    CHECK(!memcmp(opt.m, opt2.m, bytes) && !memcmp(opt.v, opt2.v, bytes), "moments bitwise equal");
    CHECK(ms == 7 && os == 7, "files record step 7: %lld %lld", ms, os);
    snprintf(path, sizeof path, "%s/state.json", dir);
    CHECK(anv_state_load(path, &got) == 0, "state: %s", anv_last_error());
    CHECK(same_hparams(&got.hp, &st.hp) && got.step == 7 && got.tokens == st.tokens &&
              got.loader.epoch == st.loader.epoch && got.loader.index == st.loader.index &&
              !memcmp(got.loader.rng.s, st.loader.rng.s, sizeof st.loader.rng.s) &&
              !strcmp(got.data_dir, st.data_dir) && got.tokenizer_hash == st.tokenizer_hash,
          "state.json round trip is exact (floats, 64-bit seed, rng words)");
    printf("checkpoint: weights, AdamW moments and state round trip bitwise (%zu floats)\n", anv_model_n_params(m));

    /* Hugging Face names and shapes. */
    anv_safetensors_t *sf;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(anv_safetensors_open(path, &sf) == 0, "open model file");
    const anv_st_tensor_t *wte = anv_safetensors_find(sf, "transformer.wte.weight");
    CHECK(wte && wte->shape[0] == 70 && wte->shape[1] == 32, "wte (vocab, C) without padding rows");
    CHECK(anv_safetensors_find(sf, "transformer.h.1.attn.c_attn.weight") != NULL, "HF GPT-2 names");
    anv_safetensors_close(sf);

    /* Disk full during the next save: the old checkpoint survives byte for byte. */
    size_t lm, lo, ls;
    char *old_model = slurp("model.safetensors", &lm), *old_optim = slurp("optim.safetensors", &lo),
         *old_state = slurp("state.json", &ls);
    anv_model_params(m)[0] += 1;
    fill_state(&st, 8);
    setenv("ANVIL_WRITE_LIMIT", "20000", 1); /* smaller than the optimizer file */
    CHECK(anv_checkpoint_save(dir, m, &opt, &st) != 0 && strstr(anv_last_error(), "intact"), "disk-full save fails: %s",
          anv_last_error());
    unsetenv("ANVIL_WRITE_LIMIT");
    CHECK(file_equals("model.safetensors", old_model, lm) && file_equals("optim.safetensors", old_optim, lo) &&
              file_equals("state.json", old_state, ls),
          "old model, optim and state byte-equal after the failed save");
    snprintf(path, sizeof path, "%s/model.safetensors.next", dir);
    CHECK(!anv_path_exists(path), "no leftover .next file");

    /* A crash after the commit point: state.json says 8, model.safetensors.next holds 8. */
    CHECK(anv_checkpoint_save(dir, m, &opt, &st) == 0, "save 8: %s", anv_last_error());
    size_t l8;
    char *model8 = slurp("model.safetensors", &l8), p2[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(p2, sizeof p2, "%s/model.safetensors.next", dir);
    CHECK(rename(path, p2) == 0 && anv_write_file_atomic(path, old_model, lm) == 0, "simulate crash");
    CHECK(anv_checkpoint_recover(dir) == 0 && file_equals("model.safetensors", model8, l8) && !anv_path_exists(p2),
          "recover completes the committed save");
    /* A reader never changes the run and finds the committed step wherever the save is: in
     * model.safetensors.next after the commit (not yet renamed), in model.safetensors before it. */
    anv_model_t *reader;
    anv_model_create(&cfg, &reader);
    long long committed_step = -1;
    CHECK(rename(path, p2) == 0 && anv_write_file_atomic(path, old_model, lm) == 0, "simulate crash again");
    CHECK(anv_checkpoint_load_committed(dir, reader, &committed_step) == 0 && committed_step == 8,
          "reader after the commit: %s", anv_last_error());
    CHECK(!memcmp(anv_model_params(reader), anv_model_params(m), anv_model_n_params(m) * sizeof(float)),
          "the reader got the committed weights");
    CHECK(anv_path_exists(p2) && file_equals("model.safetensors", old_model, lm), "the reader changed nothing");
    CHECK(anv_checkpoint_recover(dir) == 0, "recover");
    anv_write_file_atomic(p2, old_model, lm); /* an uncommitted save in progress (step 7 != 8) */
    memset(anv_model_params(reader), 0, anv_model_n_params(m) * sizeof(float));
    CHECK(anv_checkpoint_load_committed(dir, reader, &committed_step) == 0 && committed_step == 8 &&
              !memcmp(anv_model_params(reader), anv_model_params(m), anv_model_n_params(m) * sizeof(float)),
          "reader before the commit: %s", anv_last_error());
    CHECK(anv_path_exists(p2), "the reader left the save in progress alone");
    /* Non-finite weights are refused by tensor name. */
    float saved = anv_model_params(m)[3];
    anv_model_params(m)[3] = INFINITY;
    fill_state(&st, 9);
    CHECK(anv_checkpoint_save(dir, m, &opt, &st) == 0, "save 9");
    CHECK(anv_checkpoint_load_committed(dir, reader, NULL) != 0 && strstr(anv_last_error(), "holds Inf at element 3"),
          "Inf weight: %s", anv_last_error());
    anv_model_params(m)[3] = saved;
    fill_state(&st, 8);
    CHECK(anv_checkpoint_save(dir, m, &opt, &st) == 0, "save 8 again");
    anv_model_free(reader);

    /* The run lock: one holder; a second is refused; the lock marks the directory as a run. */
    anv_run_lock_t lock, second;
    CHECK(anv_run_lock(dir, 0, &lock) == 0, "lock: %s", anv_last_error());
    CHECK(anv_run_lock(dir, 0, &second) != 0 && strstr(anv_last_error(), "another trainer (pid"),
          "second lock refused: %s", anv_last_error());
    anv_run_unlock(&lock);
    CHECK(anv_run_lock(dir, 0, &second) == 0, "lock after unlock: %s", anv_last_error());
    anv_run_unlock(&second);

    /* An uncommitted .next (step 7 != state 8) is discarded. */
    anv_write_file_atomic(p2, old_model, lm);
    CHECK(anv_checkpoint_recover(dir) == 0 && !anv_path_exists(p2) && file_equals("model.safetensors", model8, l8),
          "recover drops an uncommitted .next");

    /* Another configuration and a truncated file are errors naming the file. */
    anv_config_t other = anv_config_gpt2(3, 2, 32, 70, 16);
    anv_model_t *m3;
    anv_model_create(&other, &m3);
    CHECK(anv_checkpoint_load_model(path, m3, NULL) != 0 && strstr(anv_last_error(), "model.safetensors"),
          "other config: %s", anv_last_error());
    anv_model_free(m3);
    CHECK(truncate(path, (off_t)(l8 / 2)) == 0, "truncate");
    CHECK(anv_checkpoint_load_model(path, m2, NULL) != 0 && strstr(anv_last_error(), "model.safetensors"),
          "truncated: %s", anv_last_error());

    /* log.jsonl: reopening at step 3 keeps steps <= 3 and drops a torn line. */
    anv_runlog_t log;
    CHECK(anv_runlog_open(&log, dir, 0) == 0, "log: %s", anv_last_error());
    for (int s = 1; s <= 5; s++) {
        anv_step_report_t r = {s, 5, 4.0f / s, 1e-3f, 0.5f, s * 100, 0.1, 1000, 0.1, 1, 1, 0};
        anv_runlog_step(&log, &r);
        if (s % 2 == 0) {
            anv_eval_report_t e = {s, s * 100, 5.0 / s, 7.0 / s};
            anv_runlog_eval(&log, &e);
        }
    }
    fputs("{\"step\":6,\"lo", log.f);
    anv_runlog_close(&log);
    CHECK(anv_runlog_open(&log, dir, 3) == 0, "reopen: %s", anv_last_error());
    anv_runlog_close(&log);
    size_t ll;
    char *text = slurp("log.jsonl", &ll);
    int lines = 0;
    for (size_t i = 0; i < ll; i++) lines += text[i] == '\n';
    CHECK(lines == 4 && strstr(text, "\"step\":3,") && !strstr(text, "\"step\":4,") && !strstr(text, "\"step\":6"),
          "log keeps 3 steps + 1 eval, got %d lines", lines);
    anv_free(text);

    /* The evaluations read back: the last, and the lowest (the first of equals), and the last step's loss. */
    CHECK(anv_runlog_open(&log, dir, 0) == 0, "log: %s", anv_last_error());
    const double losses[5] = {5.0, 3.0, 4.0, 3.0, 3.5};
    for (int s = 1; s <= 5; s++) {
        anv_step_report_t r = {s, 5, 4.0f / s, 1e-3f, 0.5f, s * 100, 0.1, 1000, 0.1, 1, 1, 0};
        anv_eval_report_t e = {s, s * 100, losses[s - 1], losses[s - 1] / 2};
        anv_runlog_step(&log, &r);
        anv_runlog_eval(&log, &e);
    }
    anv_runlog_close(&log);
    anv_eval_report_t last, best;
    double train_loss = 0;
    CHECK(anv_runlog_evals(dir, &last, &best, &train_loss) == 1, "evals: %s", anv_last_error());
    CHECK(last.step == 5 && last.val_loss == 3.5 && best.step == 2 && best.tokens == 200 && best.val_loss == 3.0 &&
              best.val_bpb == 1.5 && fabs(train_loss - 0.8) < 1e-6,
          "evals: last step %lld (%g), best step %lld (%g), train loss %g", last.step, last.val_loss, best.step,
          best.val_loss, train_loss);

    /* loss.svg from the log. */
    char log_path[512], svg_path[512];
    snprintf(log_path, sizeof log_path, "%s/log.jsonl", dir);
    snprintf(svg_path, sizeof svg_path, "%s/loss.svg", dir);
    CHECK(anv_loss_svg_write(log_path, svg_path) == 0, "svg: %s", anv_last_error());
    size_t sl;
    char *svg = slurp("loss.svg", &sl);
    CHECK(svg && strstr(svg, "<svg") && strstr(svg, "<polyline") && strstr(svg, "<circle") && strstr(svg, ">tokens<") &&
              strstr(svg, "loss (nats per token)") && strstr(svg, "</svg>"),
          "svg has a line, val points, axis titles");
    anv_free(svg);

    /* Bytes per validation token without meta.json: decoded text, end-of-text tokens excluded.
     * Byte-level tokenizer: 3 documents "héllo" (6 bytes, 6 tokens) each after an EOT (id 256). */
    anv_tokenizer_t *tok;
    CHECK(anv_tokenizer_create_bytes(&tok) == 0, "byte tokenizer: %s", anv_last_error());
    uint32_t doc[7] = {256, 'h', 0xC3, 0xA9, 'l', 'l', 'o'};
    anv_shard_writer_t w;
    snprintf(path, sizeof path, "%s/val_000000.bin", dir);
    anv_shard_writer_open(&w, path, 257);
    for (int i = 0; i < 3; i++) anv_shard_writer_append(&w, doc, 7);
    CHECK(anv_shard_writer_close(&w) == 0, "shard: %s", anv_last_error());
    anv_loader_config_t vc = {dir, "val", 1, 4, 0, 1, 0, 0, 257, 0};
    anv_loader_t *val;
    double bpt = 0;
    CHECK(anv_loader_open(&vc, &val) == 0 && anv_val_bytes_per_token(dir, tok, val, &bpt) == 0, "bytes per token: %s",
          anv_last_error());
    printf("checkpoint: decoded bytes per validation token %.6f (expected 18/21 = %.6f)\n", bpt, 18.0 / 21);
    CHECK(fabs(bpt - 18.0 / 21) < 1e-12, "bytes per token %g", bpt);
    /* meta.json, when present, is the source. */
    snprintf(path, sizeof path, "%s/meta.json", dir);
    const char *meta = "{\"val\": {\"documents\": 3, \"bytes\": 1000, \"tokens\": 400}}";
    anv_write_file_atomic(path, meta, strlen(meta));
    CHECK(anv_val_bytes_per_token(dir, tok, val, &bpt) == 0 && bpt == 2.5, "meta.json bytes/tokens: %g", bpt);
    anv_loader_close(val);
    anv_tokenizer_free(tok);

    anv_free(old_model);
    anv_free(old_optim);
    anv_free(old_state);
    anv_free(model8);
    anv_adamw_free(&opt);
    anv_adamw_free(&opt2);
    anv_model_free(m);
    anv_model_free(m2);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    return check_done("test_checkpoint");
}

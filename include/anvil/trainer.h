/* The training loop of `anvil train`, evaluation, the run log and the loss plot.
 *
 * A run directory is self-contained: config.json, tokenizer.json (a copy of the data's), model and
 * optimizer safetensors, state.json (checkpoint.h), log.jsonl (one JSON object per step and per
 * evaluation) and loss.svg.
 *
 * Determinism: the same data, config, hyperparameters, seed and THREAD COUNT give bitwise the same
 * loss curve and weights, and a resumed run continues bitwise as if never interrupted. Another thread
 * count changes floating-point reduction orders, so it gives a slightly different (equally valid)
 * curve; resume warns when the thread count differs from the run's. */
#ifndef ANVIL_TRAINER_H
#define ANVIL_TRAINER_H

#include "anvil/checkpoint.h"
#include "anvil/comm.h"
#include "anvil/tokenizer.h"

#include <signal.h>

typedef struct {
    long long step, steps; /* completed step (1-based), total */
    float loss, lr, grad_norm;
    long long tokens; /* training tokens consumed after this step */
    double step_s, tokens_per_s, eta_s;
    double mfu;      /* model FLOP/s over the measured peak of the products the run's precision executes, on
                        its threads (0: unknown, GPU); never above 1 */
    double mfu_best; /* the same over the machine's best peak of any precision */
    double comm_s;   /* of step_s: seconds this rank spent in collectives (0 for one process) */
} anv_step_report_t;

typedef struct {
    long long step, tokens;
    double val_loss, val_bpb;
} anv_eval_report_t;

typedef struct {
    const char *run_dir;
    const char *data_dir;    /* NULL on resume: the run's own data directory */
    const char *preset;      /* model: a preset, or */
    const char *config_path; /* a config file (its vocab_size must hold the tokenizer's vocabulary) */
    /* or (fresh runs) the model of another run directory, trained or imported: its config.json and
     * model.safetensors as the starting weights, a fresh optimizer state. Its tokenizer.json must be
     * the data's (same hash); without one, its vocab_size must hold the data's vocabulary. */
    const char *init_from;
    /* Fresh runs from init_from: train LoRA adapters on its frozen weights instead of every weight; the run
     * is a LoRA run (lora_run.h), and resumes as one. NULL: full training. */
    const anv_lora_config_t *lora;
    /* On resume: the run's, as merged by the caller. Fresh runs resolve zero/negative values: T 0 =
     * block_size, total_batch_tokens 0 = B*T, steps 0 = one epoch (or target_tokens), warmup < 0 =
     * steps/10 (at most 2000), min_lr < 0 = max_lr/10, decay_steps < 0 = steps/5. */
    anv_hparams_t hp;
    long long target_tokens; /* > 0: steps = ceil(target_tokens / total_batch_tokens) */
    int epochs;              /* > 0 (fresh run, no steps or tokens): steps for that many passes over the data */
    double minutes;          /* > 0 (fresh run, no steps or tokens): steps that fit this wall-clock budget,
                              * from timing two forward/backward passes before training */
    int resume;
    /* Data parallelism (NULL or one rank: a single process). hp.B is rows per rank; total_batch_tokens
     * is global (default B*T*ranks). Rank 0 alone owns the run directory (reads, logs, checkpoints,
     * callbacks); the other ranks get config, state and weights from it and need only the data
     * directory, at the same path. Checkpoints do not depend on the number of ranks. */
    anv_comm_t *comm;
    int zero;                    /* 1: ZeRO-1, the AdamW state is sharded over the ranks */
    volatile sig_atomic_t *stop; /* set asynchronously: finish the step, save, return 1 (any rank's
                                  * flag stops every rank at the same step) */
    /* Samples: with a prompt, sample_tokens tokens (temperature 0.8, top-k 40, the same seed each time)
     * every sample_every steps (0: at each evaluation) and at the end, into log.jsonl as
     * {"step", "tokens", "prompt", "sample"} and to on_sample; they do not change the training. */
    const char *sample_prompt;
    int sample_every, sample_tokens;
    void (*on_step)(const anv_step_report_t *r, void *ctx);
    void (*on_eval)(const anv_eval_report_t *r, void *ctx);
    void (*on_sample)(long long step, const char *text, void *ctx);
    void *ctx;
} anv_train_opts_t;

/* Trains until hp.steps. Returns 0 when finished, 1 when stopped through *stop (checkpoint saved),
 * -1 on error (the last good checkpoint is kept). *last_step is the last completed step. */
int anv_train(const anv_train_opts_t *o, long long *last_step);

/* Mean loss over the first `batches` validation batches (fewer if the split is smaller), with the
 * model's training forward: over their batches, or for fine-tuning rows over their trained tokens.
 * *weight (may be NULL) gets what the mean is over (batches or trained tokens), to combine ranks' losses.
 * inputs/targets: (B, T) scratch of the loader's shape. */
int anv_evaluate(anv_model_t *m, anv_loader_t *val, int batches, int B, int T, int32_t *inputs, int32_t *targets,
                 double *loss, double *weight);
/* Bytes of text per validation token: from <data_dir>/meta.json ("val": {"bytes", "tokens"}) or, when
 * absent, by decoding the validation shards. bits per byte = loss / ln 2 / bytes_per_token. */
int anv_val_bytes_per_token(const char *data_dir, const anv_tokenizer_t *tok, const anv_loader_t *val,
                            double *bytes_per_token);

/* Loads a run for inference: its model (anv_run_load_model: a LoRA run with its adapters) and tokenizer.json. */
int anv_run_load(const char *run_dir, anv_model_t **model, anv_tokenizer_t **tok);

/* ---- log.jsonl ---- */
typedef struct {
    FILE *f;
    char path[4200];
} anv_runlog_t;
/* Opens RUN/log.jsonl for appending after keeping only the lines of steps <= keep_step (rewritten
 * atomically), so a resumed run's log matches an uninterrupted one. keep_step 0 starts it empty. */
int anv_runlog_open(anv_runlog_t *log, const char *run_dir, long long keep_step);
int anv_runlog_step(anv_runlog_t *log, const anv_step_report_t *r);
int anv_runlog_eval(anv_runlog_t *log, const anv_eval_report_t *r);
int anv_runlog_sample(anv_runlog_t *log, long long step, long long tokens, const char *prompt, const char *text,
                      size_t len);
void anv_runlog_close(anv_runlog_t *log);
/* The evaluations in RUN/log.jsonl: 1 when there are any (*last filled, and *best, the one of the lowest
 * validation loss, the first of equals, unless best is NULL), 0 when the log has none, -1 when it cannot be
 * read. train_loss (may be NULL) gets the last training step's loss, if any. */
int anv_runlog_evals(const char *run_dir, anv_eval_report_t *last, anv_eval_report_t *best, double *train_loss);

/* Plots train loss (line) and validation loss (points) of a log.jsonl against tokens, atomically. */
int anv_loss_svg_write(const char *log_path, const char *svg_path);

#endif

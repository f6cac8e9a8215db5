/* Training checkpoints in a run directory:
 *   model.safetensors  parameters under Hugging Face names (embedding and head without padding rows)
 *   adapter_model.safetensors  instead of model.safetensors in a LoRA run: the adapters only (PEFT
 *                      names; the frozen base is the run named in adapter_config.json, train/lora_run.h)
 *   optim.safetensors  AdamW moments: "exp_avg.<name>" (m) and "exp_avg_sq.<name>" (v) per trained tensor
 *   state.json         progress, loader position, hyperparameters, data dir, tokenizer hash
 * Saving: model and optim are first written completely (tmp + fsync + rename) as *.next; then state.json
 * is replaced atomically: that is the commit point; then the *.next files are renamed over the old
 * ones. Each safetensors file records its step in __metadata__. A failure before the commit (disk
 * full) leaves the previous checkpoint byte-for-byte intact; a crash after it is completed by
 * anv_checkpoint_recover(), which only the trainer calls (it holds the run's lock, run_dir.h). Readers
 * never change a run: anv_checkpoint_load_committed() reads the last committed model while a trainer
 * may be saving the next one. */
#ifndef ANVIL_CHECKPOINT_H
#define ANVIL_CHECKPOINT_H

#include "anvil/loader.h"
#include "anvil/model.h"
#include "anvil/optim.h"

/* Everything that shapes the stream of updates; fixed for the life of a run. */
typedef struct {
    int B, T;                     /* micro-batch rows and tokens per row */
    long long total_batch_tokens; /* tokens per optimizer step: B * T * accumulation steps */
    long long steps;              /* optimizer steps of the whole run */
    anv_schedule_t sched;         /* lr schedule (its total equals steps) */
    anv_adamw_config_t adamw;
    float clip; /* max global grad norm; 0 = no clipping */
    int eval_every, eval_batches, save_every;
    int shuffle;
    int pack;      /* fine-tuning: several examples per row (anv_loader_config_t.pack) */
    uint64_t seed; /* model init and shuffling */
    int threads;   /* bitwise reproducibility needs the same thread count */
    int precision; /* anv_precision_t of the matrix products (kernels.h): fp32 or bf16 */
    int keep_best; /* 1: RUN/best holds the model of the lowest validation loss so far (trainer.h) */
} anv_hparams_t;

typedef struct {
    anv_hparams_t hp;
    long long step;          /* optimizer steps completed (AdamW's t equals it) */
    long long tokens;        /* training tokens consumed */
    anv_loader_pos_t loader; /* position of the next training batch */
    char data_dir[4096];
    uint64_t tokenizer_hash;
} anv_train_state_t;

int anv_state_save(const char *path, const anv_train_state_t *s);
int anv_state_load(const char *path, anv_train_state_t *s);

/* Writes a checkpoint of step s->step into run_dir (see above). */
int anv_checkpoint_save(const char *run_dir, anv_model_t *m, const anv_adamw_t *opt, const anv_train_state_t *s);
/* Writes the trained tensors of m (anv_model_trainable), recording step, to path atomically. */
int anv_checkpoint_save_trained(const char *path, anv_model_t *m, long long step);
/* Finishes a save that crashed after its commit point (renames *.next whose step matches state.json)
 * and removes *.next files of saves that never committed. No-op for a clean run directory. */
int anv_checkpoint_recover(const char *run_dir);
/* Reads the trained tensors of m (anv_model_trainable: every parameter, or the adapters of a LoRA model)
 * from a file written for this model's config (names and shapes checked; errors name the file); *step is
 * the step recorded in the file (-1 if none). */
int anv_checkpoint_load_model(const char *path, anv_model_t *m, long long *step);
/* Reads the trained tensors of the last committed checkpoint of run_dir (see above) without changing
 * anything there; a run without state.json (imported) is read from model.safetensors as it is. */
int anv_checkpoint_load_committed(const char *run_dir, anv_model_t *m, long long *step);
/* Reads AdamW moments from optim.safetensors into opt (sized for m). */
int anv_checkpoint_load_optim(const char *path, anv_model_t *m, anv_adamw_t *opt, long long *step);

#endif

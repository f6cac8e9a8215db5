/* anvil train: options, resume policy, signals and the progress display around anv_train(). */
#include "cli.h"

#include "anvil/kernels.h"
#include "anvil/run_dir.h"
#include "anvil/sft.h"
#include "anvil/trainer.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "anvil train --data DIR --out RUN [--preset NAME | --config FILE | --init-from RUN0] [options]\n"
    "       anvil train --out RUN --resume [--steps S | --tokens N]\n"
    "       anvil train --init-from RUN0 --sft FILE.jsonl [--sft-val FILE.jsonl] --out RUN [options]\n"
    "       anvil train --init-from RUN0 (--data DIR | --sft FILE.jsonl) --lora-rank R --out RUN [options]\n"
    "Trains a GPT-2 family model on the token shards of DIR (from `anvil data prepare`) into RUN.\n"
    "Bitwise reproducible for the same seed, options and --threads; resume continues bitwise only with\n"
    "the same --threads.\n"
    "Distributed: mpirun -np N anvil train ... (--batch is rows per rank; see docs/distributed.md).\n"
    "SIGINT, SIGTERM or SIGUSR1 (to mpirun too) save a checkpoint at the end of the step and stop.";

static volatile sig_atomic_t stop_flag, stop_signal;

static void on_signal(int sig) {
    stop_flag = 1;
    stop_signal = sig;
}

typedef struct {
    int tty, open_line; /* open_line: a live line is on the terminal */
    long long print_every;
    int distributed; /* show the time in collectives */
} display_t;

static void format_duration(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0)
        snprintf(buf, n, "?");
    else if (s < 60)
        snprintf(buf, n, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else
        snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)s % 3600 / 60);
}

static void on_step(const anv_step_report_t *r, void *ctx) {
    display_t *d = ctx;
    char eta[32], comm[48] = "", best[32] = "";
    format_duration(eta, sizeof eta, r->eta_s);
    if (r->mfu_best < r->mfu) snprintf(best, sizeof best, " (%.1f%% of the best)", 100 * r->mfu_best);
    if (d->distributed) snprintf(comm, sizeof comm, " comm %.1f ms", 1e3 * r->comm_s);
    if (d->tty) {
        fprintf(stderr,
                "\rstep %lld/%lld | loss %.4f | lr %.2e | norm %.3f | %.0f tok/s%s%s | MFU %.1f%%%s | ETA %s\033[K",
                r->step, r->steps, (double)r->loss, (double)r->lr, (double)r->grad_norm, r->tokens_per_s,
                *comm ? " |" : "", comm, 100 * r->mfu, best, eta);
        d->open_line = 1;
    } else if (r->step == 1 || r->step % d->print_every == 0 || r->step == r->steps) {
        fprintf(stderr, "step %lld/%lld loss %.4f lr %.2e norm %.3f %.0f tok/s%s MFU %.1f%%%s ETA %s\n", r->step,
                r->steps, (double)r->loss, (double)r->lr, (double)r->grad_norm, r->tokens_per_s, comm, 100 * r->mfu,
                best, eta);
    }
}

static void on_eval(const anv_eval_report_t *r, void *ctx) {
    display_t *d = ctx;
    fprintf(stderr, "%sstep %lld: val loss %.4f | val bpb %.4f | %lld tokens\n", d->open_line ? "\r\033[K" : "",
            r->step, r->val_loss, r->val_bpb, r->tokens);
    d->open_line = 0;
}

static void on_sample(long long step, const char *text, void *ctx) {
    display_t *d = ctx;
    fprintf(stderr, "%sstep %lld: sample: %s\n", d->open_line ? "\r\033[K" : "", step, text);
    d->open_line = 0;
}

enum {
    O_DATA,
    O_OUT,
    O_PRESET,
    O_CONFIG,
    O_INIT,
    O_BATCH,
    O_SEQ,
    O_TOTAL,
    O_STEPS,
    O_TOKENS,
    O_LR,
    O_WARMUP,
    O_MINLR,
    O_WD,
    O_CLIP,
    O_SCHED,
    O_DECAY,
    O_EVERY,
    O_EVALB,
    O_SAVE,
    O_KEEP_BEST,
    O_RESUME,
    O_THREADS,
    O_SEED,
    O_SEQUENTIAL,
    O_MINUTES,
    O_ZERO,
    O_PRECISION,
    O_DEVICE,
    O_SAMPLE_PROMPT,
    O_SAMPLE_EVERY,
    O_SAMPLE_TOKENS,
    O_SFT,
    O_SFT_VAL,
    O_CHAT,
    O_TRAIN_PROMPT,
    O_SFT_PACK,
    O_EPOCHS,
    O_LORA_RANK,
    O_LORA_ALPHA,
    O_LORA_TARGETS,
    O_LORA_DROPOUT,
    O_N
};

/* --sft: rank 0 renders the examples into RUN/sft, a data directory with the tokenizer of RUN0 (so
 * that a resumed run reads them from there); the row length defaults to the longest example's. */
typedef struct {
    const char *path, *val_path, *chat;
    int train_on_prompt;
} sft_args_t;

static int prepare_sft(const sft_args_t *a, const char *out, const char *init_from, uint64_t seed, char *dir,
                       size_t size, int *longest) {
    char path[4200], tok_path[4200];
    if (!init_from) return anv_error("--sft fine-tunes a model: give --init-from RUN0");
    if (anv_path_join(path, sizeof path, out, "state.json") != 0) return -1;
    if (anv_path_exists(path))
        return anv_error("%s: already holds a run; pass --resume to continue it or choose another --out", out);
    anv_config_t cfg;
    anv_tokenizer_t *tok = NULL;
    anv_run_lock_t lock; /* claims RUN (a folder of other files is refused) while RUN/sft is written */
    const anv_chat_template_t *chat = NULL;
    if (anv_path_join(path, sizeof path, init_from, "config.json") != 0 || anv_config_load(path, &cfg) != 0 ||
        anv_path_join(tok_path, sizeof tok_path, init_from, "tokenizer.json") != 0 ||
        anv_tokenizer_load(tok_path, &tok) != 0)
        return -1;
    int rc = anv_chat_template_open(a->chat, tok, &chat);
    if (rc == 0) rc = anv_run_lock(out, 1, &lock);
    if (rc == 0) anv_run_unlock(&lock); /* the trainer takes it again */
    if (rc == 0) rc = anv_path_join(dir, size, out, "sft");
    anv_sft_opts_t so = {tok, chat, (size_t)cfg.block_size + 1, a->train_on_prompt};
    anv_sft_stats_t tr, va;
    if (rc == 0) rc = anv_sft_prepare(&so, a->path, a->val_path, 0.05, seed, dir, &tr, &va);
    if (rc == 0) rc = anv_path_join(path, sizeof path, dir, "tokenizer.json");
    if (rc == 0) rc = anv_copy_file_atomic(tok_path, path);
    char chat_name[4200];
    snprintf(chat_name, sizeof chat_name, "%s", chat ? anv_chat_template_name(chat) : "");
    anv_chat_template_free(chat);
    anv_tokenizer_free(tok);
    if (rc != 0) return -1;
    *longest = (int)(tr.longest > va.longest ? tr.longest : va.longest);
    fprintf(stderr,
            "fine-tuning data (%s template, loss on %s): train %llu examples, %llu tokens, %llu trained; val %llu "
            "examples, %llu trained tokens; %llu cut to the block size (from the left), %llu dropped with nothing "
            "left to learn -> %s\n",
            chat_name, a->train_on_prompt ? "every token" : "the replies", (unsigned long long)tr.examples,
            (unsigned long long)tr.tokens, (unsigned long long)tr.trained_tokens, (unsigned long long)va.examples,
            (unsigned long long)va.trained_tokens, (unsigned long long)(tr.truncated + va.truncated),
            (unsigned long long)(tr.dropped + va.dropped), dir);
    return 0;
}

/* --lora-*: checked against the model of --init-from before anything is written. */
static int check_lora(const anv_lora_config_t *lc, const char *init_from) {
    char path[4200];
    anv_config_t cfg;
    if (anv_path_join(path, sizeof path, init_from, "config.json") != 0 || anv_config_load(path, &cfg) != 0) return -1;
    return anv_lora_config_validate(lc, &cfg, "LoRA");
}

/* On resume the run's hyperparameters replace hp; given options that would change the update stream
 * are errors, the others (steps, eval, save, threads) apply. Without --threads the run's count is used. */
static int merge_resume(const char *run, const int *seen, anv_hparams_t *hp) {
    const anv_hparams_t given_copy = *hp, *given = &given_copy;
    char path[4200];
    anv_train_state_t st;
    if (anv_path_join(path, sizeof path, run, "state.json") != 0) return -1;
    if (!anv_path_exists(path)) return anv_error("%s: no checkpoint to resume (state.json is missing)", run);
    if (anv_state_load(path, &st) != 0) return -1;
    const anv_hparams_t *h = &st.hp;
    struct {
        int opt;
        const char *name;
        int differs;
    } fixed[] = {
        {O_BATCH, "--batch", given->B != h->B},
        {O_SEQ, "--seq", given->T != h->T},
        {O_TOTAL, "--total-batch-tokens", given->total_batch_tokens != h->total_batch_tokens},
        {O_LR, "--lr", given->sched.max_lr != h->sched.max_lr},
        {O_WARMUP, "--warmup", given->sched.warmup != h->sched.warmup},
        {O_MINLR, "--min-lr", given->sched.min_lr != h->sched.min_lr},
        {O_WD, "--weight-decay", given->adamw.weight_decay != h->adamw.weight_decay},
        {O_CLIP, "--clip", given->clip != h->clip},
        {O_SCHED, "--schedule", given->sched.kind != h->sched.kind},
        {O_DECAY, "--decay-steps", given->sched.decay_steps != h->sched.decay_steps},
        {O_SEED, "--seed", given->seed != h->seed},
        {O_SEQUENTIAL, "--sequential", given->shuffle != h->shuffle},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (seen[fixed[i].opt] && fixed[i].differs)
            return anv_error("%s: the run was trained with other %s; resuming with a new value would not continue "
                             "it (start a new --out instead)",
                             path, fixed[i].name);
    *hp = *h;
    if (seen[O_STEPS]) hp->steps = given->steps;
    if (seen[O_TOKENS]) hp->steps = 0; /* recomputed from --tokens */
    if (seen[O_EVERY]) hp->eval_every = given->eval_every;
    if (seen[O_EVALB]) hp->eval_batches = given->eval_batches;
    if (seen[O_SAVE]) hp->save_every = given->save_every;
    if (seen[O_KEEP_BEST]) hp->keep_best = 1;
    /* auto keeps what the run measured when it started */
    if (seen[O_PRECISION] && given->precision != ANV_PRECISION_AUTO) hp->precision = given->precision;
    if (!seen[O_THREADS]) anv_threads_set(h->threads); /* the run's count keeps the continuation bitwise */
    hp->threads = anv_threads_count();
    if (hp->steps != 0 && hp->steps < st.step)
        return anv_error("--steps %lld is below the run's step %lld (%s)", hp->steps, st.step, path);
    return 0;
}

/* An error on this rank: with several ranks, names the rank and ends the whole job (the others would
 * wait for it at their next collective). */
static int fail_ranks(anv_comm_t *comm) {
    if (anv_comm_size(comm) > 1) {
        fprintf(stderr, "anvil: rank %d of %d: %s\n", anv_comm_rank(comm), anv_comm_size(comm), anv_last_error());
        fflush(stderr);
        anv_comm_abort(comm, 1);
    }
    anv_comm_free(comm);
    return cli_fail();
}

int cmd_train(int argc, char **argv) {
    const char *data = NULL, *out = NULL, *preset = NULL, *config = NULL, *init_from = NULL, *schedule = "cosine";
    int batch = 4, seq = 0, eval_every = 250, eval_batches = 20, save_every = 500, resume = 0, threads = 0;
    int sample_every = 0, sample_tokens = 64;
    const char *sample_prompt = NULL;
    int sequential = 0, zero = 0, epochs = 0, sft_pack = 0, keep_best = 0;
    sft_args_t sft = {.chat = "chatml"};
    int lora_rank = 0;
    double lora_alpha = 0, lora_dropout = 0;
    const char *lora_targets = "";
    char sft_dir[4200];
    long long total = 0, steps = 0, tokens = 0, warmup = -1, decay = -1, seed = 1337;
    double lr = 6e-4, min_lr = -1, wd = 0.1, clip = 1.0, minutes = 0;
    const char *precision = "auto", *device = NULL;
    opt_t opts[O_N] = {
        [O_DATA] = {"--data", OPT_STRING, &data, "data directory from `anvil data prepare`"},
        [O_OUT] = {"--out", OPT_STRING, &out, "run directory (created)"},
        [O_PRESET] =
            {"--preset", OPT_STRING, &preset,
             "tiny (default), small, gpt2-124m, gpt2-350m, llama-tiny, llama-small, smollm2-135m, llama3.2-1b"},
        [O_CONFIG] = {"--config", OPT_STRING, &config, "model config JSON instead of a preset"},
        [O_INIT] = {"--init-from", OPT_STRING, &init_from,
                    "fine-tune: start from the model of run RUN0 (trained or imported)"},
        [O_BATCH] = {"--batch", OPT_INT, &batch, "rows per micro-batch (default 4)"},
        [O_SEQ] = {"--seq", OPT_INT, &seq, "tokens per row (default: the model's block_size)"},
        [O_TOTAL] = {"--total-batch-tokens", OPT_LONG, &total, "tokens per step; a multiple of batch*seq"},
        [O_STEPS] = {"--steps", OPT_LONG, &steps, "optimizer steps (default: one epoch)"},
        [O_TOKENS] = {"--tokens", OPT_LONG, &tokens, "train on this many tokens instead of --steps"},
        [O_LR] = {"--lr", OPT_DOUBLE, &lr, "peak learning rate (default 6e-4)"},
        [O_WARMUP] = {"--warmup", OPT_LONG, &warmup, "warmup steps (default steps/10, at most 2000)"},
        [O_MINLR] = {"--min-lr", OPT_DOUBLE, &min_lr, "final learning rate (default lr/10)"},
        [O_WD] = {"--weight-decay", OPT_DOUBLE, &wd, "AdamW weight decay on 2-D weights (default 0.1)"},
        [O_CLIP] = {"--clip", OPT_DOUBLE, &clip, "max gradient norm, 0 = off (default 1)"},
        [O_SCHED] = {"--schedule", OPT_STRING, &schedule, "cosine (default), constant or wsd"},
        [O_DECAY] = {"--decay-steps", OPT_LONG, &decay, "wsd: final decay steps (default steps/5)"},
        [O_EVERY] = {"--eval-every", OPT_INT, &eval_every, "validate every N steps and at the end (default 250)"},
        [O_EVALB] = {"--eval-batches", OPT_INT, &eval_batches, "validation batches (default 20)"},
        [O_SAVE] = {"--save-every", OPT_INT, &save_every, "checkpoint every N steps and at the end (default 500)"},
        [O_KEEP_BEST] = {"--keep-best", OPT_FLAG, &keep_best,
                         "keep the model of the lowest validation loss in RUN/best, a run directory for sample, "
                         "serve, eval and export (a run that reads its data many times can overfit before its end)"},
        [O_RESUME] = {"--resume", OPT_FLAG, &resume, "continue RUN from its checkpoint"},
        [O_THREADS] = {"--threads", OPT_INT, &threads, "threads (default: all cores)"},
        [O_SEED] = {"--seed", OPT_LONG, &seed, "seed for init and shuffling (default 1337)"},
        [O_SEQUENTIAL] = {"--sequential", OPT_FLAG, &sequential, "read the data in order instead of shuffled"},
        [O_MINUTES] = {"--minutes", OPT_DOUBLE, &minutes, "instead of --steps: as many steps as fit (timed at start)"},
        [O_ZERO] = {"--zero", OPT_INT, &zero,
                    "under mpirun: 1 shards the AdamW state over the ranks (ZeRO-1); 0 (default)"},
        [O_PRECISION] = {"--precision", OPT_STRING, &precision,
                         "matrix products in auto (default: fp32 or bf16, whichever a measurement at the start "
                         "finds faster for this model here; the run keeps it), fp32 or bf16 (mixed precision)"},
        [O_DEVICE] = {"--device", OPT_STRING, &device, "cpu (default) or cuda"},
        [O_SAMPLE_PROMPT] = {"--sample-prompt", OPT_STRING, &sample_prompt,
                             "sample the model from TEXT as it trains (log.jsonl, the dashboard)"},
        [O_SAMPLE_EVERY] = {"--sample-every", OPT_INT, &sample_every,
                            "with --sample-prompt: every N steps and at the end (default: at each evaluation)"},
        [O_SAMPLE_TOKENS] = {"--sample-tokens", OPT_INT, &sample_tokens, "tokens per sample (default 64)"},
        [O_SFT] = {"--sft", OPT_STRING, &sft.path,
                   "with --init-from: fine-tune on these JSONL examples ({\"prompt\", \"completion\"} or "
                   "{\"messages\": [{\"role\", \"content\"}, ...]}), the loss on the replies only"},
        [O_SFT_VAL] = {"--sft-val", OPT_STRING, &sft.val_path,
                       "with --sft: validate on these examples (default: 5% of --sft held out)"},
        [O_CHAT] =
            {"--chat-template", OPT_STRING, &sft.chat,
             "with --sft: chatml (default), llama3, plain, or a Jinja template file (Hugging Face's chat_template)"},
        [O_TRAIN_PROMPT] = {"--train-on-prompt", OPT_FLAG, &sft.train_on_prompt,
                            "with --sft: the loss on every token, the prompts too"},
        [O_SFT_PACK] = {"--sft-pack", OPT_FLAG, &sft_pack,
                        "with --sft: pack several examples into each row (attention stays within each), "
                        "instead of one padded example per row; rows default to the model's block_size"},
        [O_EPOCHS] = {"--epochs", OPT_INT, &epochs, "passes over the data (default 1) instead of --steps"},
        [O_LORA_RANK] = {"--lora-rank", OPT_INT, &lora_rank,
                         "with --init-from: train LoRA adapters of rank R on the frozen model instead of every weight"},
        [O_LORA_ALPHA] = {"--lora-alpha", OPT_DOUBLE, &lora_alpha,
                          "with --lora-rank: the adapters' scale is alpha / R (default alpha 2 R)"},
        [O_LORA_TARGETS] = {"--lora-targets", OPT_STRING, &lora_targets,
                            "with --lora-rank: the layers to adapt (default all: q,k,v,o,gate,up,down for Llama, "
                            "c_attn,c_proj,c_fc for GPT-2)"},
        [O_LORA_DROPOUT] = {"--lora-dropout", OPT_DOUBLE, &lora_dropout,
                            "with --lora-rank: zero each adapter input with probability P while training (default 0)"},
    };
    const opt_range_t ranges[] = {
        {"--batch", 1, 1 << 20},
        {"--seq", 1, 1 << 24},
        {"--total-batch-tokens", 1, 1e15},
        {"--steps", 1, 1e15},
        {"--tokens", 1, 1e18},
        {"--lr", 1e-30, 100},
        {"--warmup", 0, 1e15},
        {"--min-lr", 0, 100},
        {"--weight-decay", 0, 100},
        {"--clip", 0, 1e30},
        {"--decay-steps", 0, 1e15},
        {"--eval-every", 0, 2147483647},
        {"--eval-batches", 0, 2147483647},
        {"--save-every", 0, 2147483647},
        {"--threads", 0, cli_max_threads()},
        {"--seed", 0, 9007199254740992.0},
        {"--minutes", 1e-3, 1e9},
        {"--zero", 0, 1},
        {"--sample-every", 0, 2147483647},
        {"--sample-tokens", 1, 1 << 20},
        {"--epochs", 1, 1 << 20},
        {"--lora-rank", 1, 1 << 20},
        {"--lora-alpha", 1e-30, 1e30},
        {"--lora-dropout", 0, 0.999},
    };
    int seen[O_N];
    int rc = cli_parse_bounded(argc, argv, opts, O_N, ranges, (int)(sizeof ranges / sizeof ranges[0]), usage, seen);
    if (rc != 0) return rc > 0 ? 0 : cli_fail();
    if (!out) return anv_error("--out RUN is required"), cli_fail();
    if (!resume && !data && !sft.path) return anv_error("--data DIR is required"), cli_fail();
    if (sft.path && (data || resume))
        return anv_error("--sft reads its examples instead of --data, for a new run"), cli_fail();
    if (!sft.path && (seen[O_SFT_VAL] || seen[O_CHAT] || seen[O_TRAIN_PROMPT] || seen[O_SFT_PACK]))
        return anv_error("--sft-val, --chat-template, --train-on-prompt and --sft-pack go with --sft"), cli_fail();
    if (seen[O_EPOCHS] + seen[O_STEPS] + seen[O_TOKENS] + seen[O_MINUTES] > 1 || (resume && seen[O_EPOCHS]))
        return anv_error("give one of --epochs, --steps, --tokens or --minutes (resume with --steps)"), cli_fail();
    if (!!preset + !!config + !!init_from > 1)
        return anv_error("give one of --preset, --config or --init-from"), cli_fail();
    if (resume && init_from) return anv_error("--init-from starts a new run; --resume continues one"), cli_fail();
    if (seen[O_STEPS] + seen[O_TOKENS] + seen[O_MINUTES] > 1)
        return anv_error("give one of --steps, --tokens or --minutes"), cli_fail();
    if (resume && seen[O_MINUTES])
        return anv_error("--minutes sets the length of a new run; resume with --steps"), cli_fail();
    if (!seen[O_LORA_RANK] && (seen[O_LORA_ALPHA] || seen[O_LORA_TARGETS] || seen[O_LORA_DROPOUT]))
        return anv_error("--lora-alpha, --lora-targets and --lora-dropout go with --lora-rank"), cli_fail();
    if (seen[O_LORA_RANK] && resume)
        return anv_error("a LoRA run keeps its adapters' settings (RUN/adapter_config.json): resume without --lora-*"),
               cli_fail();
    if (seen[O_LORA_RANK] && !init_from)
        return anv_error("--lora-rank trains adapters on a trained model: name it with --init-from RUN0"), cli_fail();
    anv_lora_config_t lora = {.rank = lora_rank,
                              .alpha = (float)(seen[O_LORA_ALPHA] ? lora_alpha : 2.0 * lora_rank),
                              .dropout = (float)lora_dropout};
    if (strlen(lora_targets) >= sizeof lora.targets) return anv_error("--lora-targets: too long a list"), cli_fail();
    strcpy(lora.targets, lora_targets);
    if (seen[O_LORA_RANK] && check_lora(&lora, init_from) != 0) return cli_fail();
    if (seen[O_MINLR] && min_lr > lr) return anv_error("--min-lr %g is above the peak --lr %g", min_lr, lr), cli_fail();
    int prec;
    if (anv_precision_option(precision, &prec) != 0) return cli_fail();
    anv_comm_t *comm;
    /* The communicator first: with several ranks on GPUs it picks this rank's GPU, which the device
     * then initialises. */
    if (anv_comm_init_device(&comm, device) != 0) return cli_fail();
    if (device && anv_device_set(device) != 0) return fail_ranks(comm);
    int rank = anv_comm_rank(comm), world = anv_comm_size(comm);
    anv_threads_set(threads);
    if (sft.path) { /* every rank learns rank 0's result and the longest example */
        int msg[2] = {0, 0};
        if (rank == 0) msg[0] = prepare_sft(&sft, out, init_from, (uint64_t)seed, sft_dir, sizeof sft_dir, &msg[1]);
        if (anv_comm_broadcast(comm, msg, sizeof msg, 0) != 0) return fail_ranks(comm);
        if (msg[0] != 0)
            return rank == 0 ? fail_ranks(comm) : (anv_error("rank 0 could not prepare --sft"), fail_ranks(comm));
        if (rank != 0 && anv_path_join(sft_dir, sizeof sft_dir, out, "sft") != 0) return fail_ranks(comm);
        data = sft_dir;
        if (!seen[O_SEQ] && !sft_pack) seq = msg[1] - 1 > 0 ? msg[1] - 1 : 1; /* packing: 0, the block_size */
    }
    anv_hparams_t hp = {.B = batch,
                        .T = seq,
                        .total_batch_tokens = total,
                        .steps = steps,
                        .sched = {.max_lr = (float)lr, .min_lr = (float)min_lr, .warmup = warmup, .decay_steps = decay},
                        .adamw = {0.9f, 0.95f, 1e-8f, (float)wd},
                        .clip = (float)clip,
                        .eval_every = eval_every,
                        .eval_batches = eval_batches,
                        .save_every = save_every,
                        .shuffle = !sequential,
                        .pack = sft_pack,
                        .seed = (uint64_t)seed,
                        .threads = anv_threads_count(),
                        .precision = prec,
                        .keep_best = keep_best};
    if (anv_schedule_parse(schedule, &hp.sched.kind) != 0) return fail_ranks(comm);
    /* rank 0 owns the run directory; the trainer gives the other ranks its merged hyperparameters */
    if (resume && rank == 0 && merge_resume(out, seen, &hp) != 0) return fail_ranks(comm);
    if (zero && world == 1) anv_log(ANV_LOG_INFO, "--zero 1 in a single process: nothing to shard");

    display_t d = {isatty(2), 0, 1, world > 1};
    long long planned = resume ? hp.steps : steps;
    if (planned > 0)
        d.print_every = planned / 20 > 100 ? 100 : planned / 20 > 0 ? planned / 20 : 1;
    else
        d.print_every = 10;
    cli_catch_stop_signals(on_signal, 1); /* mpirun forwards SIGUSR1 to every rank */
    anv_train_opts_t o = {.run_dir = out,
                          .data_dir = data,
                          .preset = preset,
                          .config_path = config,
                          .init_from = init_from,
                          .lora = seen[O_LORA_RANK] ? &lora : NULL,
                          .hp = hp,
                          .target_tokens = tokens,
                          .epochs = epochs,
                          .minutes = minutes,
                          .resume = resume,
                          .comm = comm,
                          .zero = zero,
                          .stop = &stop_flag,
                          .on_step = on_step,
                          .on_eval = on_eval,
                          .sample_prompt = sample_prompt,
                          .sample_every = sample_every,
                          .sample_tokens = sample_tokens,
                          .on_sample = on_sample,
                          .ctx = &d};
    long long last = 0;
    rc = anv_train(&o, &last);
    if (d.open_line) fputs("\n", stderr);
    if (rc < 0) return fail_ranks(comm);
    if (rc == 1) {
        if (rank == 0) fprintf(stderr, "interrupted: checkpoint saved at step %lld\n", last);
        /* mpirun ends the whole job as soon as one rank exits with an error status, and may drop
         * output still on its way: no rank leaves before rank 0 has saved and said so, and only rank 0
         * reports the interruption in its exit status (128 + the signal, as a shell does) */
        anv_comm_barrier(comm);
        anv_comm_free(comm);
        return rank == 0 ? 128 + (int)stop_signal : 0;
    }
    anv_comm_free(comm);
    if (rank == 0) fprintf(stderr, "done: step %lld, run in %s\n", last, out);
    anv_eval_report_t final, best;
    if (rank == 0 && hp.keep_best && anv_runlog_evals(out, &final, &best, NULL) == 1)
        fprintf(stderr, "best: val loss %.4f at step %lld (%.4f at the end), its model in %s/best\n", best.val_loss,
                best.step, final.val_loss, out);
    return 0;
}

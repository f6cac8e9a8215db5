/* anvil eval: validation loss, perplexity and bits per byte of a run on a data directory. */
#include "cli.h"

#include "anvil/kernels.h"
#include "anvil/trainer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "anvil eval --run RUN [--data DIR] [--batches N] [--precision fp32|bf16] [--device cpu|cuda]\n"
    "anvil eval --run RUN --task hellaswag|mc|lambada|text --data FILE [--limit N] [--out FILE.jsonl] [--stride S]\n"
    "Evaluates RUN on DIR's validation shards (default: the data the run was trained on), or on a task's\n"
    "file: multiple choice accuracy (acc, acc_norm, acc_token_mean), LAMBADA's last word, or the loss,\n"
    "perplexity and bits per byte of any text. Task results are also saved as RUN/eval/TASK.json.";

int cmd_eval(int argc, char **argv) {
    const char *run = NULL, *data = NULL, *precision = NULL, *device = NULL, *task = NULL, *out = NULL, *weights = NULL;
    int batches = 0, batch = 0, seq = 0, threads = 0, stride = 0, skip_bad = 0;
    long long limit = 0;
    opt_t opts[] = {
        {"--run", OPT_STRING, &run, "run directory"},
        {"--data", OPT_STRING, &data, "data directory (default: the run's), or the --task's file"},
        {"--task", OPT_STRING, &task, "hellaswag, mc, lambada or text: score the examples of --data FILE"},
        {"--limit", OPT_LONG, &limit, "--task: the first N examples or documents (default: all)"},
        {"--out", OPT_STRING, &out, "--task: one JSON object per example or document to FILE"},
        {"--stride", OPT_INT, &stride, "--task text: positions between windows (default: block_size / 2)"},
        {"--skip-bad", OPT_FLAG, &skip_bad, "--task: count and skip malformed examples instead of failing"},
        {"--batches", OPT_INT, &batches, "validation batches, 0 = the whole split (default 0)"},
        {"--batch", OPT_INT, &batch, "rows per batch (default: the run's, else 4)"},
        {"--seq", OPT_INT, &seq, "tokens per row (default: the run's, else block_size)"},
        {"--threads", OPT_INT, &threads, "threads (default: all cores)"},
        {"--precision", OPT_STRING, &precision, "matrix products in fp32 or bf16 (default: the run's)"},
        {"--device", OPT_STRING, &device, "cpu (default) or cuda"},
        {"--weights", OPT_STRING, &weights,
         "f32 (default) or q8: the model's matrices in int8, as sample --weights q8"},
    };
    const opt_range_t ranges[] = {
        {"--batches", 0, 2147483647},        {"--batch", 0, 1 << 20},  {"--seq", 0, 1 << 24},
        {"--threads", 0, cli_max_threads()}, {"--stride", 0, 1 << 24},
    };
    int rc = cli_parse_bounded(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), ranges,
                               (int)(sizeof ranges / sizeof ranges[0]), usage, NULL);
    if (rc != 0) return rc > 0 ? 0 : cli_fail();
    if (!run) return anv_error("--run RUN is required"), cli_fail();
    if (batches < 0 || batch < 0 || seq < 0) return anv_error("--batches, --batch and --seq must be >= 0"), cli_fail();
    anv_precision_t prec = ANV_PRECISION_FP32;
    if ((precision && anv_precision_parse(precision, &prec) != 0) || (device && anv_device_set(device) != 0))
        return cli_fail();
    anv_threads_set(threads);
    anv_model_t *m;
    anv_tokenizer_t *tok, *data_tok = NULL;
    if (anv_run_load(run, &m, &tok) != 0) return cli_fail();
    if (cli_weights(m, weights) != 0) { /* before the run's precision: the probe compares with fp32 */
        anv_model_free(m);
        anv_tokenizer_free(tok);
        return cli_fail();
    }
    char path[4200];
    anv_train_state_t st;
    int have_state = anv_path_join(path, sizeof path, run, "state.json") == 0 && anv_path_exists(path) &&
                     anv_state_load(path, &st) == 0;
    const anv_config_t *cfg = anv_model_config(m);
    const char *task_file = data;
    if (!data && have_state) data = st.data_dir;
    if (!batch) batch = have_state ? st.hp.B : 4;
    if (!seq) seq = have_state ? st.hp.T : cfg->block_size;
    if (!precision && have_state) prec = (anv_precision_t)st.hp.precision;
    anv_matmul_precision_set(prec);
    if (task) {
        rc = cli_eval_task(run, m, tok, task, task_file, limit, stride, skip_bad, out);
        anv_tokenizer_free(tok);
        anv_model_free(m);
        return rc == 0 ? 0 : cli_fail();
    }
    anv_loader_t *val = NULL;
    int32_t *in = NULL, *tg = NULL;
    double loss, bpt;
    rc = -1;
    if (!data) {
        anv_error("%s: no state.json names the run's data; pass --data DIR", run);
    } else if (seq > cfg->block_size) {
        anv_error("--seq %d exceeds the model's block_size %d", seq, cfg->block_size);
    } else if (anv_path_join(path, sizeof path, data, "tokenizer.json") == 0 &&
               anv_tokenizer_load(path, &data_tok) == 0) {
        if (anv_tokenizer_hash(data_tok) != anv_tokenizer_hash(tok)) {
            anv_error("%s: not the tokenizer of run %s; its token ids mean other text", path, run);
        } else {
            anv_loader_config_t vc = {data, "val", batch, seq, 0, 1, 0, 0, (size_t)cfg->vocab_size, 0};
            size_t n = (size_t)batch * (size_t)seq * sizeof(int32_t);
            if (anv_loader_open(&vc, &val) == 0 && (in = anv_alloc(n, "batch")) && (tg = anv_alloc(n, "batch")) &&
                anv_evaluate(m, val, batches, batch, seq, in, tg, &loss, NULL) == 0 &&
                anv_val_bytes_per_token(data, tok, val, &bpt) == 0)
                rc = 0;
        }
    }
    if (rc == 0) {
        int64_t used =
            batches > 0 && batches < anv_loader_batches_per_epoch(val) ? batches : anv_loader_batches_per_epoch(val);
        printf("val loss %.4f | perplexity %.3f | bits per byte %.4f | %lld tokens in %lld batches of %dx%d\n", loss,
               exp(loss), loss / log(2.0) / bpt, (long long)used * batch * seq, (long long)used, batch, seq);
    }
    anv_free(in);
    anv_free(tg);
    anv_loader_close(val);
    anv_tokenizer_free(data_tok);
    anv_tokenizer_free(tok);
    anv_model_free(m);
    return rc == 0 ? 0 : cli_fail();
}

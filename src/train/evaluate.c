/* Validation loss, bytes per token for bits per byte, and loading a run for inference. */
#include "anvil/json.h"
#include "anvil/lora_run.h"
#include "anvil/shard.h"
#include "anvil/trainer.h"

int anv_evaluate(anv_model_t *m, anv_loader_t *val, int batches, int B, int T, int32_t *inputs, int32_t *targets,
                 double *loss, double *weight) {
    int64_t n = anv_loader_batches_per_epoch(val);
    if (batches < 1 || batches > n) batches = (int)(n < 2147483647 ? n : 2147483647);
    anv_loader_rewind(val);
    double sum = 0, total = 0;
    for (int i = 0; i < batches; i++) {
        float l;
        anv_loader_next(val, inputs, targets, NULL); /* validation loaders keep one sequence per row */
        if (anv_model_loss(m, inputs, targets, NULL, B, T, &l) != 0) return -1;
        double w = 1;
        if (anv_loader_masked(val))
            for (size_t k = w = 0; k < (size_t)B * T; k++) w += targets[k] >= 0;
        sum += l * w;
        total += w;
    }
    *loss = total > 0 ? sum / total : 0;
    if (weight) *weight = total;
    return 0;
}

static int meta_bytes_per_token(const char *path, double *bpt) {
    anv_json_doc_t *doc;
    if (anv_json_parse_file(path, &doc) != 0) return -1;
    const anv_json_t *v = anv_json_get(anv_json_root(doc), "val");
    double bytes = 0, tokens = 0;
    int rc = v && anv_json_get(v, "bytes") && anv_json_get_double(v, "bytes", path, &bytes) == 0 &&
                     anv_json_get_double(v, "tokens", path, &tokens) == 0 && bytes > 0 && tokens > 0
                 ? 0
                 : 1; /* 1: no usable byte count, decode instead */
    anv_json_free(doc);
    if (rc == 0) *bpt = bytes / tokens;
    return rc;
}

int anv_val_bytes_per_token(const char *data_dir, const anv_tokenizer_t *tok, const anv_loader_t *val,
                            double *bytes_per_token) {
    char path[4200];
    if (anv_path_join(path, sizeof path, data_dir, "meta.json") != 0) return -1;
    if (anv_path_exists(path)) {
        int rc = meta_bytes_per_token(path, bytes_per_token);
        if (rc <= 0) return rc;
    }
    /* Decode the validation shards in chunks and count the bytes of the text, end-of-text tokens
     * excluded (they separate documents and stand for no text, as in meta.json's byte counts). */
    double bytes = 0, tokens = 0;
    int64_t eot = anv_tokenizer_eot(tok);
    uint32_t ids[4096];
    anv_buf_t text = {0};
    int rc = 0;
    for (int s = 0; rc == 0 && s < anv_loader_num_shards(val); s++) {
        anv_shard_t sh;
        if ((rc = anv_shard_open(anv_loader_shard_path(val, s), &sh)) != 0) break;
        for (size_t i = 0; rc == 0 && i < sh.count; i += 4096) {
            size_t n = sh.count - i < 4096 ? sh.count - i : 4096, k = 0;
            for (size_t j = 0; j < n; j++) {
                uint32_t id = anv_shard_token(&sh, i + j);
                if ((int64_t)id != eot) ids[k++] = id;
            }
            text.len = 0;
            rc = anv_tokenizer_decode(tok, ids, k, &text);
            bytes += (double)text.len;
        }
        tokens += (double)sh.count;
        anv_shard_close(&sh);
    }
    anv_buf_free(&text);
    if (rc != 0) return -1;
    if (bytes <= 0) return anv_error("%s: validation shards decode to no text", data_dir);
    *bytes_per_token = bytes / tokens;
    return 0;
}

int anv_run_load(const char *run_dir, anv_model_t **model, anv_tokenizer_t **tok) {
    *model = NULL;
    *tok = NULL;
    char path[4200];
    if (!anv_is_dir(run_dir)) return anv_error("%s: run directory does not exist", run_dir);
    if (anv_path_join(path, sizeof path, run_dir, "tokenizer.json") != 0 || anv_tokenizer_load(path, tok) != 0)
        return -1;
    if (anv_run_load_model(run_dir, model) == 0) {
        int vocab = anv_model_config(*model)->vocab_size;
        if (anv_tokenizer_vocab_size(*tok) <= (size_t)vocab) return 0;
        anv_error("%s: the tokenizer has %zu tokens but the model's vocab_size is %d", path,
                  anv_tokenizer_vocab_size(*tok), vocab);
        anv_model_free(*model);
        *model = NULL;
    }
    anv_tokenizer_free(*tok);
    *tok = NULL;
    return -1;
}

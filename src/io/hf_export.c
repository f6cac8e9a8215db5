/* Hugging Face directories (GPT2LMHeadModel, LlamaForCausalLM): export from and import into anvil runs. */
#include "anvil/hf_export.h"

#include "anvil/json.h"
#include "anvil/safetensors.h"

#include <string.h>

int anv_hf_write_weights(anv_model_t *m, const char *path) {
    int n = anv_model_n_tensors(m);
    anv_st_write_t *t = anv_calloc((size_t)n * sizeof *t, "safetensors tensor list");
    if (!t) return -1;
    const float *params = anv_model_params(m);
    for (int i = 0; i < n; i++) {
        const anv_param_t *p = anv_model_tensor(m, i);
        t[i].name = p->name;
        t[i].ndim = p->ndim;
        for (int d = 0; d < p->ndim; d++) t[i].shape[d] = p->shape[d];
        t[i].data = params + p->offset;
    }
    static const char *const meta[2] = {"format", "pt"};
    int rc = anv_safetensors_write_f32(path, t, n, meta, 1);
    anv_free(t);
    return rc;
}

static int write_text(const char *dir, const char *name, const anv_buf_t *b) {
    char path[4200];
    if (anv_path_join(path, sizeof path, dir, name) != 0) return -1;
    return anv_write_file_atomic(path, b->data, b->len);
}

int anv_hf_export(anv_model_t *m, const anv_tokenizer_t *tok, const char *dir) {
    const anv_config_t *c = anv_model_config(m);
    if ((size_t)c->vocab_size < anv_tokenizer_vocab_size(tok))
        return anv_error("%s: the tokenizer has %zu tokens but the model only %d", dir, anv_tokenizer_vocab_size(tok),
                         c->vocab_size);
    if (anv_mkdir_p(dir) != 0) return -1;
    int64_t eot = anv_tokenizer_eot(tok);
    char ids[96] = "", extra[160];
    if (eot >= 0)
        snprintf(ids, sizeof ids, "  \"bos_token_id\": %lld,\n  \"eos_token_id\": %lld,\n", (long long)eot,
                 (long long)eot);
    snprintf(extra, sizeof extra, "%s  \"torch_dtype\": \"float32\",\n", ids);
    anv_buf_t cfg = {0}, gen = {0};
    int rc = anv_config_json(c, extra, &cfg);
    rc |= anv_buf_printf(&gen, "{\n%s  \"_from_model_config\": true\n}\n", ids);
    char path[4200];
    if (rc == 0) rc = write_text(dir, "config.json", &cfg);
    if (rc == 0) rc = write_text(dir, "generation_config.json", &gen);
    if (rc == 0) rc = anv_path_join(path, sizeof path, dir, "model.safetensors");
    if (rc == 0) rc = anv_hf_write_weights(m, path);
    if (rc == 0) rc = anv_path_join(path, sizeof path, dir, "tokenizer.json");
    if (rc == 0) rc = anv_tokenizer_save(tok, path);
    anv_buf_free(&cfg);
    anv_buf_free(&gen);
    return rc;
}

/* ---- import ---- */

/* The LM head's name in GPT2LMHeadModel and LlamaForCausalLM checkpoints. */
static const char head_name[] = "lm_head.weight";
/* GPT-2 checkpoints saved from GPT2Model name their tensors without it. */
static const char gpt2_prefix[] = "transformer.";

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcmp(s + n - k, suffix);
}

/* Tensors of older Hugging Face checkpoints that hold no parameters: GPT-2's attention masks, Llama's
 * RoPE inverse frequencies (recomputed from the config, as transformers does). */
static int is_buffer(const char *name) {
    return ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias") ||
           ends_with(name, ".rotary_emb.inv_freq");
}

/* The name under which st holds the parameter named `own`: its own, or without GPT-2's prefix; NULL
 * when neither is there. */
static const char *name_in_file(const anv_safetensors_t *st, const char *own) {
    size_t n = strlen(gpt2_prefix);
    if (anv_safetensors_find(st, own)) return own;
    if (!strncmp(own, gpt2_prefix, n) && anv_safetensors_find(st, own + n)) return own + n;
    return NULL;
}

/* A tied head stored anyway must be the token embedding (llama.cpp's token_embd.weight). */
static int check_tied_head(anv_safetensors_t *st, anv_model_t *m) {
    const char *src = anv_safetensors_source(st);
    const anv_param_t *emb = NULL;
    for (int i = 0; i < anv_model_n_tensors(m) && !emb; i++)
        if (!strcmp(anv_model_tensor(m, i)->gguf, "token_embd.weight")) emb = anv_model_tensor(m, i);
    if (!emb) return anv_error("%s: the model has no token embedding", src);
    float *head = anv_alloc(emb->numel * sizeof *head, head_name);
    if (!head) return -1;
    int64_t shape[2] = {emb->shape[0], emb->shape[1]};
    int rc = anv_safetensors_read_f32(st, head_name, 2, shape, head);
    if (rc == 0 && memcmp(head, anv_model_params(m) + emb->offset, emb->numel * sizeof *head) != 0)
        rc = anv_error("%s: %s differs from %s, but the config ties them (tie_word_embeddings true)", src, head_name,
                       emb->name);
    anv_free(head);
    return rc;
}

/* Reads every parameter of m from st (each under the name name_in_file finds, of its shape) and checks
 * that the file holds nothing else but buffers and, for a tied head, lm_head.weight equal to the
 * embedding. */
static int read_weights(anv_safetensors_t *st, anv_model_t *m) {
    const char *src = anv_safetensors_source(st);
    float *params = anv_model_params(m);
    for (int i = 0; i < anv_model_n_tensors(m); i++) {
        const anv_param_t *p = anv_model_tensor(m, i);
        const char *name = name_in_file(st, p->name);
        if (!name)
            return anv_error("%s: missing tensor '%s'%s", src, p->name,
                             strcmp(p->name, head_name) ? ""
                                                        : " (the config's head is untied: tie_word_embeddings false)");
        int64_t shape[2] = {p->shape[0], p->shape[1]};
        if (anv_safetensors_read_f32(st, name, p->ndim, shape, params + p->offset) != 0) return -1;
    }
    int tied = anv_model_config(m)->tie_embeddings;
    for (int i = 0; i < anv_safetensors_count(st); i++) {
        const char *name = anv_safetensors_tensor(st, i)->name;
        int known = is_buffer(name) || (tied && !strcmp(name, head_name));
        for (int k = 0; k < anv_model_n_tensors(m) && !known; k++) {
            const char *used = name_in_file(st, anv_model_tensor(m, k)->name);
            known = used && !strcmp(used, name);
        }
        if (!known)
            return anv_error("%s: unexpected tensor '%s' (not part of the %s model its config describes)", src, name,
                             anv_arch_name(anv_model_config(m)->arch));
    }
    return tied && anv_safetensors_find(st, head_name) ? check_tied_head(st, m) : 0;
}

static int load_tokenizer(const char *hf_dir, anv_tokenizer_t **tok) {
    char a[4200], b[4200];
    if (anv_path_join(a, sizeof a, hf_dir, "tokenizer.json") != 0) return -1;
    if (anv_path_exists(a)) return anv_tokenizer_load(a, tok);
    if (anv_path_join(a, sizeof a, hf_dir, "vocab.json") != 0 || anv_path_join(b, sizeof b, hf_dir, "merges.txt") != 0)
        return -1;
    if (anv_path_exists(a) && anv_path_exists(b)) return anv_tokenizer_load_gpt2(a, b, tok);
    return anv_error("%s: no tokenizer.json (nor vocab.json + merges.txt)", hf_dir);
}

int anv_hf_import(const char *hf_dir, const char *run_dir) {
    char path[4200];
    anv_json_doc_t *doc = NULL;
    anv_config_t cfg;
    anv_model_t *m = NULL;
    anv_safetensors_t *st = NULL;
    anv_tokenizer_t *tok = NULL;
    int rc = -1;
    if (!anv_is_dir(hf_dir)) return anv_error("%s: not a directory", hf_dir);
    /* Never overwrite what is there: a run's optimizer state and log would no longer match its weights,
     * and other files are not ours. */
    int occupied = anv_dir_has_entries(run_dir);
    if (occupied != 0)
        return occupied < 0 ? -1 : anv_error("%s: is not empty; import into a new or empty directory", run_dir);
    if (anv_path_join(path, sizeof path, hf_dir, "config.json") != 0 || anv_json_parse_file(path, &doc) != 0) goto done;
    if (anv_config_from_json(anv_json_root(doc), path, &cfg) != 0) goto done;
    if (anv_path_join(path, sizeof path, hf_dir, "model.safetensors") != 0 || anv_safetensors_open(path, &st) != 0)
        goto done;
    if (load_tokenizer(hf_dir, &tok) != 0) goto done;
    if (anv_tokenizer_vocab_size(tok) > (size_t)cfg.vocab_size) {
        anv_error("%s: the tokenizer has %zu tokens but vocab_size is %d", hf_dir, anv_tokenizer_vocab_size(tok),
                  cfg.vocab_size);
        goto done;
    }
    if (anv_model_create(&cfg, &m) != 0 || read_weights(st, m) != 0) goto done;
    if (anv_mkdir_p(run_dir) != 0 || anv_path_join(path, sizeof path, run_dir, "model.safetensors") != 0 ||
        anv_hf_write_weights(m, path) != 0)
        goto done;
    if (anv_path_join(path, sizeof path, run_dir, "tokenizer.json") != 0 || anv_tokenizer_save(tok, path) != 0)
        goto done;
    /* config.json last: a run directory is complete once it exists. */
    if (anv_path_join(path, sizeof path, run_dir, "config.json") != 0 || anv_config_save(&cfg, path) != 0) goto done;
    rc = 0;
done:
    anv_json_free(doc);
    anv_safetensors_close(st);
    anv_tokenizer_free(tok);
    anv_model_free(m);
    return rc;
}

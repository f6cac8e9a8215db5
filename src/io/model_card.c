/* README.md of an exported Hugging Face directory: the model card, from what the run directory knows. */
#include "anvil/checkpoint.h"
#include "anvil/hf_export.h"
#include "anvil/json.h"
#include "anvil/trainer.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The numbers of a data directory's meta.json and the --input arguments of its command. */
static int card_data(anv_buf_t *b, const char *data_dir) {
    char path[4200];
    anv_json_doc_t *doc;
    if (anv_path_join(path, sizeof path, data_dir, "meta.json") != 0 || !anv_path_exists(path) ||
        anv_json_parse_file(path, &doc) != 0) {
        anv_error_clear();
        return anv_buf_puts(b, "The run's data directory was not found, so its sources are not listed here.\n");
    }
    const anv_json_t *root = anv_json_root(doc), *cmd = anv_json_get(root, "command");
    int rc = anv_buf_puts(b, "Sources (`anvil data prepare --input`):");
    for (size_t i = 0; cmd && cmd->type == ANV_JSON_ARRAY && i + 1 < cmd->len; i++)
        if (cmd->items[i].type == ANV_JSON_STRING && strcmp(cmd->items[i].str, "--input") == 0 &&
            cmd->items[i + 1].type == ANV_JSON_STRING)
            rc |= anv_buf_printf(b, " `%s`", cmd->items[i + 1].str);
    rc |= anv_buf_puts(b, "\n\n| split | documents | bytes | tokens |\n| --- | ---: | ---: | ---: |\n");
    const char *splits[] = {"train", "val"};
    for (int s = 0; s < 2; s++) {
        const anv_json_t *v = anv_json_get(root, splits[s]);
        double docs = 0, bytes = 0, tokens = 0;
        if (v && anv_json_get_double(v, "documents", path, &docs) == 0 &&
            anv_json_get_double(v, "bytes", path, &bytes) == 0 && anv_json_get_double(v, "tokens", path, &tokens) == 0)
            rc |= anv_buf_printf(b, "| %s | %.0f | %.0f | %.0f |\n", splits[s], docs, bytes, tokens);
        anv_error_clear();
    }
    anv_json_free(doc);
    return rc;
}

/* The JSON files of RUN/eval in name order: (task, data, metrics) for the table and the model-index. */
typedef struct {
    anv_json_doc_t **docs;
    int n;
} evals_t;

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void evals_read(const char *run_dir, evals_t *e) {
    char dir[4200], path[4500];
    memset(e, 0, sizeof *e);
    DIR *d = anv_path_join(dir, sizeof dir, run_dir, "eval") == 0 ? opendir(dir) : NULL;
    if (!d) return;
    char *names[256];
    int n = 0;
    for (struct dirent *de; n < 256 && (de = readdir(d));) {
        size_t len = strlen(de->d_name);
        if (len <= 5 || de->d_name[0] == '.' || strcmp(de->d_name + len - 5, ".json") != 0) continue;
        if (!(names[n] = anv_strdup(de->d_name))) break;
        n++;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_name);
    e->docs = anv_calloc((size_t)(n ? n : 1) * sizeof *e->docs, "eval results");
    for (int i = 0; i < n; i++) {
        anv_json_doc_t *doc;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        const anv_json_t *r;
        if (e->docs && anv_json_parse_file(path, &doc) == 0) {
            r = anv_json_root(doc);
            const anv_json_t *task = anv_json_get(r, "task"), *m = anv_json_get(r, "metrics");
            if (task && task->type == ANV_JSON_STRING && m && m->type == ANV_JSON_OBJECT)
                e->docs[e->n++] = doc;
            else
                anv_json_free(doc);
        }
        anv_free(names[i]);
    }
    anv_error_clear(); /* an unreadable result is left out of the card, not a failed export */
}

static void evals_free(evals_t *e) {
    for (int i = 0; i < e->n; i++) anv_json_free(e->docs[i]);
    anv_free(e->docs);
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int card_model_index(anv_buf_t *b, const char *name, const evals_t *e) {
    if (e->n == 0) return 0;
    int rc = anv_buf_puts(b, "model-index:\n- name: ") | anv_buf_json_string(b, name, strlen(name)) |
             anv_buf_puts(b, "\n  results:\n");
    for (int i = 0; i < e->n; i++) {
        const anv_json_t *r = anv_json_root(e->docs[i]), *m = anv_json_get(r, "metrics");
        const char *task = anv_json_get(r, "task")->str, *data = "";
        anv_json_get_string(r, "data", "eval", &data);
        int choice = !strcmp(task, "hellaswag") || !strcmp(task, "mc");
        rc |= anv_buf_printf(
            b, "  - task:\n      type: %s\n    dataset:\n      name: ", choice ? "multiple-choice" : "text-generation");
        rc |= anv_buf_json_string(b, base_name(data), strlen(base_name(data)));
        rc |= anv_buf_printf(b, "\n      type: %s\n    metrics:\n", task);
        for (size_t k = 0; k < m->len; k++) {
            size_t kl = m->key_lens[k];
            if (m->items[k].type != ANV_JSON_NUMBER || (kl > 7 && !strcmp(m->keys[k] + kl - 7, "_stderr"))) continue;
            rc |= anv_buf_printf(b, "    - type: %s\n      value: %.6g\n", m->keys[k], m->items[k].number);
        }
    }
    anv_error_clear();
    return rc;
}

static int card_eval_table(anv_buf_t *b, const evals_t *e) {
    if (e->n == 0) return anv_buf_puts(b, "No `anvil eval --task` results were saved in the run.\n");
    int rc = anv_buf_puts(b, "| task | data | metric | value | standard error |\n| --- | --- | --- | ---: | ---: |\n");
    for (int i = 0; i < e->n; i++) {
        const anv_json_t *r = anv_json_root(e->docs[i]), *m = anv_json_get(r, "metrics");
        const char *data = "";
        anv_json_get_string(r, "data", "eval", &data);
        for (size_t k = 0; k < m->len; k++) {
            size_t kl = m->key_lens[k];
            if (m->items[k].type != ANV_JSON_NUMBER || (kl > 7 && !strcmp(m->keys[k] + kl - 7, "_stderr"))) continue;
            char se_key[128];
            snprintf(se_key, sizeof se_key, "%s_stderr", m->keys[k]);
            const anv_json_t *se = anv_json_get(m, se_key);
            rc |= anv_buf_printf(b, "| %s | `%s` | %s | %.4f |", anv_json_get(r, "task")->str, base_name(data),
                                 m->keys[k], m->items[k].number);
            rc |= se && se->type == ANV_JSON_NUMBER ? anv_buf_printf(b, " %.4f |\n", se->number)
                                                    : anv_buf_puts(b, " |\n");
        }
    }
    anv_error_clear();
    return rc;
}

int anv_model_card_write(const char *run_dir, const anv_model_t *m, const anv_tokenizer_t *tok, const char *path) {
    const anv_config_t *c = anv_model_config(m);
    int llama = c->arch == ANV_ARCH_LLAMA;
    const char *name = base_name(run_dir);
    char state_path[4200];
    anv_train_state_t st;
    int trained = anv_path_join(state_path, sizeof state_path, run_dir, "state.json") == 0 &&
                  anv_path_exists(state_path) && anv_state_load(state_path, &st) == 0;
    anv_error_clear();
    anv_eval_report_t val;
    double train_loss = NAN;
    int have_val = trained && anv_runlog_evals(run_dir, &val, NULL, &train_loss) == 1;
    anv_error_clear();
    evals_t ev;
    evals_read(run_dir, &ev);

    anv_buf_t b = {0};
    int rc = anv_buf_puts(&b, "---\n# license: fill in the license you release this model under "
                              "(https://huggingface.co/docs/hub/repositories-licenses)\nlicense: null\n"
                              "library_name: transformers\npipeline_tag: text-generation\ntags:\n- anvil\n");
    rc |= anv_buf_printf(&b, "- %s\n", anv_arch_name(c->arch));
    rc |= card_model_index(&b, name, &ev);
    rc |= anv_buf_printf(&b,
                         "---\n\n# %s\n\nA %s language model trained from scratch with anvil."
                         "\n\n",
                         name, llama ? "Llama-family" : "GPT-2");
    rc |= anv_buf_printf(&b, "| | |\n| --- | --- |\n| architecture | %s |\n| parameters | %zu |\n",
                         llama ? "LlamaForCausalLM (RMSNorm, RoPE, SwiGLU, grouped-query attention)"
                               : "GPT2LMHeadModel (LayerNorm, learned positions, GELU)",
                         anv_config_num_params(c));
    rc |= anv_buf_printf(&b, "| layers x width | %d x %d |\n| attention heads (key/value) | %d (%d) |\n", c->n_layer,
                         c->n_embd, c->n_head, c->n_kv_head);
    rc |= anv_buf_printf(&b, "| feed-forward width | %d |\n| context | %d tokens |\n", c->n_ff, c->block_size);
    rc |= anv_buf_printf(&b, "| tokenizer | byte-level BPE, %zu tokens, hash %016llx |\n\n",
                         anv_tokenizer_vocab_size(tok), (unsigned long long)anv_tokenizer_hash(tok));
    rc |= anv_buf_puts(&b, "## Training data\n\n");
    rc |=
        trained ? card_data(&b, st.data_dir) : anv_buf_puts(&b, "The run has no state.json (imported, not trained).\n");
    rc |= anv_buf_puts(&b, "\n## Training\n\n");
    if (trained) {
        rc |= anv_buf_printf(&b,
                             "%lld of %lld optimizer steps, %lld tokens, %lld tokens per step (micro-batch %d x %d), "
                             "%s precision, seed %llu.\n",
                             st.step, st.hp.steps, st.tokens, st.hp.total_batch_tokens, st.hp.B, st.hp.T,
                             st.hp.precision ? "bf16 mixed" : "fp32", (unsigned long long)st.hp.seed);
        if (!isnan(train_loss)) rc |= anv_buf_printf(&b, "Final training loss %.4f.", train_loss);
        if (have_val)
            rc |= anv_buf_printf(&b, " Validation loss %.4f, %.4f bits per byte (step %lld).", val.val_loss,
                                 val.val_bpb, val.step);
        rc |= anv_buf_puts(&b, "\n");
    } else {
        rc |= anv_buf_puts(&b, "Not trained by anvil.\n");
    }
    rc |= anv_buf_puts(&b, "\n## Evaluation\n\n") | card_eval_table(&b, &ev);
    rc |= anv_buf_puts(&b, "\n## Use\n\n```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
                           "model = AutoModelForCausalLM.from_pretrained(\"path/to/this/directory\")\n"
                           "tokenizer = AutoTokenizer.from_pretrained(\"path/to/this/directory\")\n```\n\n"
                           "Training documents start after the end-of-text token: begin prompts with it.\n");
    evals_free(&ev);
    if (rc == 0) rc = anv_write_file_atomic(path, b.data, b.len);
    anv_buf_free(&b);
    return rc ? -1 : 0;
}

/* LoRA run directories (adapter_config.json) and loading a run's weights, LoRA or not (lora_run.h). */
#include "anvil/lora_run.h"

#include "anvil/checkpoint.h"
#include "anvil/json.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Base runs may themselves be LoRA runs; a chain this deep is a loop. */
#define MAX_BASE_DEPTH 16

int anv_lora_run_is(const char *run_dir) {
    char path[4200];
    return anv_path_join(path, sizeof path, run_dir, "adapter_config.json") == 0 && anv_path_exists(path);
}

/* PEFT's target_modules: the module of each adapter ("...attn.c_attn.lora_A.weight" -> "c_attn"), once. */
static int write_target_modules(anv_buf_t *b, const anv_trainable_t *tr) {
    char seen[16][32];
    int n = 0, rc = anv_buf_puts(b, "[");
    for (int i = 0; i < tr->n_tensors; i += 2) { /* A, B, A, B, ... */
        const char *name = tr->tensors[i].name, *end = strstr(name, ".lora_A."), *start = end;
        while (start > name && start[-1] != '.') start--;
        int len = (int)(end - start), dup = len >= (int)sizeof seen[0] || n == 16;
        for (int j = 0; j < n && !dup; j++)
            dup = strlen(seen[j]) == (size_t)len && !memcmp(seen[j], start, (size_t)len);
        if (dup) continue;
        snprintf(seen[n], sizeof seen[n], "%.*s", len, start);
        rc |= anv_buf_puts(b, n++ ? ", " : "");
        rc |= anv_buf_json_string(b, start, (size_t)len);
    }
    return rc | anv_buf_puts(b, "]");
}

int anv_lora_run_write(const char *run_dir, const anv_lora_run_t *r, const anv_model_t *m) {
    anv_model_t *mm = (anv_model_t *)m; /* anv_model_trainable syncs the device, it changes nothing */
    char path[4200];
    if (anv_path_join(path, sizeof path, run_dir, "adapter_config.json") != 0) return -1;
    anv_buf_t b = {0};
    int rc = anv_buf_printf(&b,
                            "{\n  \"peft_type\": \"LORA\",\n  \"task_type\": \"CAUSAL_LM\",\n  \"r\": %d,\n"
                            "  \"lora_alpha\": %.9g,\n  \"lora_dropout\": %.9g,\n  \"target_modules\": ",
                            r->lora.rank, (double)r->lora.alpha, (double)r->lora.dropout);
    rc |= write_target_modules(&b, anv_model_trainable(mm));
    rc |= anv_buf_printf(&b,
                         ",\n  \"fan_in_fan_out\": %s,\n  \"bias\": \"none\",\n  \"init_lora_weights\": \"gaussian\",\n"
                         "  \"base_model_name_or_path\": ",
                         anv_model_config(m)->arch == ANV_ARCH_GPT2 ? "true" : "false");
    rc |= anv_buf_json_string(&b, r->base, strlen(r->base));
    rc |= anv_buf_puts(&b, ",\n  \"anvil_targets\": ");
    rc |= anv_buf_json_string(&b, r->lora.targets, strlen(r->lora.targets));
    rc |= anv_buf_printf(&b, ",\n  \"anvil_base_weights_hash\": \"%016" PRIx64 "\"\n}\n", r->base_hash);
    if (rc == 0) rc = anv_write_file_atomic(path, b.data, b.len);
    anv_buf_free(&b);
    return rc;
}

static int parse_lora_run(const anv_json_t *root, const char *src, anv_lora_run_t *r) {
    long long rank;
    double alpha, dropout;
    const char *base, *targets, *hash;
    if (anv_json_get_int(root, "r", src, &rank) || anv_json_get_double(root, "lora_alpha", src, &alpha) ||
        anv_json_get_double(root, "lora_dropout", src, &dropout) ||
        anv_json_get_string(root, "base_model_name_or_path", src, &base) ||
        anv_json_get_string(root, "anvil_targets", src, &targets) ||
        anv_json_get_string(root, "anvil_base_weights_hash", src, &hash))
        return -1;
    if (rank < 1 || rank > 1 << 20) return anv_error("%s: \"r\" is out of range: %lld", src, rank);
    if (strlen(base) >= sizeof r->base || strlen(targets) >= sizeof r->lora.targets)
        return anv_error("%s: base_model_name_or_path or anvil_targets is too long", src);
    char *end;
    r->base_hash = strtoull(hash, &end, 16);
    if (strlen(hash) != 16 || *end) return anv_error("%s: anvil_base_weights_hash is not 16 hex digits", src);
    r->lora.rank = (int)rank;
    r->lora.alpha = (float)alpha;
    r->lora.dropout = (float)dropout;
    strcpy(r->lora.targets, targets);
    strcpy(r->base, base);
    return 0;
}

int anv_lora_run_read(const char *run_dir, anv_lora_run_t *r) {
    char path[4200];
    anv_json_doc_t *doc;
    memset(r, 0, sizeof *r);
    if (anv_path_join(path, sizeof path, run_dir, "adapter_config.json") != 0 || anv_json_parse_file(path, &doc) != 0)
        return -1;
    int rc = parse_lora_run(anv_json_root(doc), path, r);
    anv_json_free(doc);
    return rc;
}

static int load_model(const char *run_dir, anv_model_t **m, int depth);

static int load_weights(const char *run_dir, anv_model_t *m, int depth) {
    if (!anv_lora_run_is(run_dir)) return anv_checkpoint_load_committed(run_dir, m, NULL);
    anv_model_t *lora;
    if (load_model(run_dir, &lora, depth + 1) != 0) return -1;
    char why[128];
    int rc = 0;
    if (!anv_config_equal(anv_model_config(lora), anv_model_config(m), why, sizeof why))
        rc = anv_error("%s/config.json: not the model being loaded (%s)", run_dir, why);
    anv_model_merge_lora(lora);
    if (rc == 0) memcpy(anv_model_params(m), anv_model_params(lora), anv_model_n_params(m) * sizeof(float));
    anv_model_free(lora);
    return rc;
}

int anv_run_load_weights(const char *run_dir, anv_model_t *m) { return load_weights(run_dir, m, 0); }

static int lora_base(const char *run_dir, const anv_lora_run_t *r, anv_model_t *m, uint64_t seed, int depth) {
    if (depth > MAX_BASE_DEPTH)
        return anv_error("%s/adapter_config.json: the chain of base runs is more than %d deep (a loop?)", run_dir,
                         MAX_BASE_DEPTH);
    char path[4200];
    anv_config_t cfg;
    if (!anv_is_dir(r->base))
        return anv_error("%s/adapter_config.json: the base run %s is missing (the adapters need the weights they "
                         "were trained on)",
                         run_dir, r->base);
    if (anv_path_join(path, sizeof path, r->base, "config.json") != 0 || anv_config_load(path, &cfg) != 0) return -1;
    char why[128];
    if (!anv_config_equal(&cfg, anv_model_config(m), why, sizeof why))
        return anv_error("%s/adapter_config.json: the base run %s has another model now (%s)", run_dir, r->base, why);
    if (load_weights(r->base, m, depth) != 0) return -1;
    uint64_t hash = anv_model_weights_hash(m);
    if (hash != r->base_hash)
        return anv_error("%s/adapter_config.json: the weights of the base run %s changed since the adapters were "
                         "trained on them (hash %016" PRIx64 ", recorded %016" PRIx64 ")",
                         run_dir, r->base, hash, r->base_hash);
    char source[4300];
    snprintf(source, sizeof source, "%s/adapter_config.json", run_dir);
    if (anv_lora_config_validate(&r->lora, anv_model_config(m), source) != 0) return -1;
    return anv_model_add_lora(m, &r->lora, seed);
}

int anv_lora_run_base(const char *run_dir, const anv_lora_run_t *r, anv_model_t *m, uint64_t seed) {
    return lora_base(run_dir, r, m, seed, 0);
}

static int load_model(const char *run_dir, anv_model_t **m, int depth) {
    char path[4200];
    anv_config_t cfg;
    *m = NULL;
    if (!anv_is_dir(run_dir)) return anv_error("%s: run directory does not exist", run_dir);
    if (anv_path_join(path, sizeof path, run_dir, "config.json") != 0 || anv_config_load(path, &cfg) != 0 ||
        anv_config_validate(&cfg, path) != 0 || anv_model_create(&cfg, m) != 0)
        return -1;
    int rc;
    if (anv_lora_run_is(run_dir)) {
        anv_lora_run_t r;
        rc = anv_lora_run_read(run_dir, &r);
        if (rc == 0) rc = lora_base(run_dir, &r, *m, 0, depth);
        if (rc == 0) rc = anv_checkpoint_load_committed(run_dir, *m, NULL);
    } else {
        rc = anv_checkpoint_load_committed(run_dir, *m, NULL);
    }
    if (rc != 0) {
        anv_model_free(*m);
        *m = NULL;
    }
    return rc;
}

int anv_run_load_model(const char *run_dir, anv_model_t **m) { return load_model(run_dir, m, 0); }

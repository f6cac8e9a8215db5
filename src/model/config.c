/* Model configuration: presets, validation, JSON (anvil and Hugging Face GPT-2 keys), sizes. */
#include "anvil/model.h"

#include "anvil/json.h"

#include <math.h>
#include <string.h>

anv_config_t anv_config_gpt2(int n_layer, int n_head, int n_embd, int vocab_size, int block_size) {
    return (anv_config_t){.arch = ANV_ARCH_GPT2,
                          .n_layer = n_layer,
                          .n_head = n_head,
                          .n_kv_head = n_head,
                          .n_embd = n_embd,
                          .n_ff = 4 * n_embd,
                          .vocab_size = vocab_size,
                          .block_size = block_size,
                          .norm_eps = 1e-5f,
                          .tie_embeddings = 1};
}

static const struct {
    const char *name;
    int n_layer, n_head, n_embd, vocab_size, block_size;
} presets[] = {
    {"tiny", 4, 4, 128, 50257, 256},
    {"small", 6, 6, 384, 50257, 512},
    {"gpt2-124m", 12, 12, 768, 50257, 1024},
    {"gpt2-350m", 24, 16, 1024, 50257, 1024},
};

int anv_config_preset(const char *name, anv_config_t *cfg) {
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        if (!strcmp(name, presets[i].name)) {
            *cfg = anv_config_gpt2(presets[i].n_layer, presets[i].n_head, presets[i].n_embd, presets[i].vocab_size,
                                   presets[i].block_size);
            return 0;
        }
    }
    return anv_error("unknown model preset '%s' (expected tiny, small, gpt2-124m or gpt2-350m)", name);
}

/* Limits that keep every size and index in range; far beyond anything trainable on a CPU. */
enum { MAX_LAYER = 1024, MAX_HEAD = 1024, MAX_EMBD = 65536, MAX_VOCAB = 1 << 24, MAX_BLOCK = 1 << 20 };

static int check_range(const char *source, const char *key, int v, int max) {
    if (v < 1 || v > max) return anv_error("%s: %s %d is out of range (1 to %d)", source, key, v, max);
    return 0;
}

int anv_config_validate(const anv_config_t *cfg, const char *source) {
    if (check_range(source, "n_layer", cfg->n_layer, MAX_LAYER) ||
        check_range(source, "n_head", cfg->n_head, MAX_HEAD) || check_range(source, "n_embd", cfg->n_embd, MAX_EMBD) ||
        check_range(source, "vocab_size", cfg->vocab_size, MAX_VOCAB) ||
        check_range(source, "block_size", cfg->block_size, MAX_BLOCK))
        return -1;
    if (cfg->n_embd % cfg->n_head)
        return anv_error("%s: n_embd %d is not divisible by n_head %d", source, cfg->n_embd, cfg->n_head);
    /* What GPT-2 fixes (anvil's GPT-2 kernels implement these values only). */
    if (cfg->arch != ANV_ARCH_GPT2) return anv_error("%s: unknown architecture %d", source, (int)cfg->arch);
    if (cfg->n_kv_head != cfg->n_head)
        return anv_error("%s: GPT-2 has as many key/value heads as heads (%d, not %d)", source, cfg->n_head,
                         cfg->n_kv_head);
    if (cfg->n_ff != 4 * cfg->n_embd)
        return anv_error("%s: n_inner must be null or 4 * n_embd = %d, got %d", source, 4 * cfg->n_embd, cfg->n_ff);
    if (cfg->norm_eps != 1e-5f)
        return anv_error("%s: layer_norm_epsilon must be 1e-05, got %g", source, (double)cfg->norm_eps);
    if (!cfg->tie_embeddings)
        return anv_error("%s: tie_word_embeddings must be true (GPT-2's head is its token embedding)", source);
    return 0;
}

int anv_config_equal(const anv_config_t *a, const anv_config_t *b, char *why, size_t why_size) {
    const struct {
        const char *key;
        double a, b;
    } fields[] = {
        {"architecture", a->arch, b->arch},
        {"n_layer", a->n_layer, b->n_layer},
        {"n_head", a->n_head, b->n_head},
        {"n_kv_head", a->n_kv_head, b->n_kv_head},
        {"n_embd", a->n_embd, b->n_embd},
        {"n_ff", a->n_ff, b->n_ff},
        {"vocab_size", a->vocab_size, b->vocab_size},
        {"block_size", a->block_size, b->block_size},
        {"norm_eps", a->norm_eps, b->norm_eps},
        {"tie_embeddings", a->tie_embeddings, b->tie_embeddings},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (fields[i].a != fields[i].b) {
            snprintf(why, why_size, "%s: %g against %g", fields[i].key, fields[i].a, fields[i].b);
            return 0;
        }
    return 1;
}

int anv_config_padded_vocab(const anv_config_t *cfg) { return (cfg->vocab_size + 63) / 64 * 64; }

size_t anv_config_num_params(const anv_config_t *cfg) {
    size_t C = cfg->n_embd, F = cfg->n_ff;
    size_t per_layer = 4 * C * C + 2 * C * F + 9 * C + F; /* ln_1, c_attn, attn.c_proj, ln_2, c_fc, mlp.c_proj */
    return (size_t)cfg->vocab_size * C + (size_t)cfg->block_size * C + cfg->n_layer * per_layer + 2 * C;
}

/* Reads an integer member into *out; absent is fine when `optional`. */
static int get_int(const anv_json_t *obj, const char *key, const char *source, int optional, int *out) {
    const anv_json_t *v = anv_json_get(obj, key);
    if (!v) return optional ? 0 : anv_error("%s: missing \"%s\"", source, key);
    if (v->type != ANV_JSON_NUMBER) return anv_error("%s: \"%s\" must be a number", source, key);
    if (!anv_json_is_integer(v, -2147483648.0, 2147483647.0))
        return anv_error("%s: \"%s\" must be an integer in range, got %g", source, key, v->number);
    *out = (int)v->number;
    return 0;
}

/* The GPT-2 keys with a default: each must be absent or hold a value anvil implements (validate). */
static int read_gpt2_keys(const anv_json_t *obj, const char *source, anv_config_t *c) {
    const anv_json_t *v;
    if ((v = anv_json_get(obj, "model_type")) && (v->type != ANV_JSON_STRING || strcmp(v->str, "gpt2") != 0))
        return anv_error("%s: model_type must be \"gpt2\"", source);
    if ((v = anv_json_get(obj, "activation_function")) &&
        (v->type != ANV_JSON_STRING || (strcmp(v->str, "gelu_new") != 0 && strcmp(v->str, "gelu_pytorch_tanh") != 0)))
        return anv_error("%s: activation_function \"%s\" is not supported (anvil's GPT-2 uses gelu_new)", source,
                         v->type == ANV_JSON_STRING ? v->str : "?");
    if ((v = anv_json_get(obj, "n_inner")) && v->type != ANV_JSON_NULL && get_int(obj, "n_inner", source, 0, &c->n_ff))
        return -1;
    if ((v = anv_json_get(obj, "layer_norm_epsilon"))) {
        if (v->type != ANV_JSON_NUMBER) return anv_error("%s: \"layer_norm_epsilon\" must be a number", source);
        c->norm_eps = (float)v->number;
    }
    if ((v = anv_json_get(obj, "tie_word_embeddings"))) {
        if (v->type != ANV_JSON_BOOL) return anv_error("%s: \"tie_word_embeddings\" must be true or false", source);
        c->tie_embeddings = v->boolean;
    }
    return 0;
}

int anv_config_from_json(const anv_json_t *obj, const char *source, anv_config_t *cfg) {
    if (!obj || obj->type != ANV_JSON_OBJECT) return anv_error("%s: expected a JSON object", source);
    int L = 0, H = 0, C = 0, V = 0, T = 0;
    /* anvil writes block_size; Hugging Face GPT-2 configs carry n_positions (and n_ctx). */
    int has_block = anv_json_get(obj, "block_size") != NULL;
    if (get_int(obj, "n_layer", source, 0, &L) || get_int(obj, "n_head", source, 0, &H) ||
        get_int(obj, "n_embd", source, 0, &C) || get_int(obj, "vocab_size", source, 0, &V) ||
        get_int(obj, has_block ? "block_size" : "n_positions", source, 0, &T))
        return -1;
    anv_config_t c = anv_config_gpt2(L, H, C, V, T);
    if (read_gpt2_keys(obj, source, &c) || anv_config_validate(&c, source)) return -1;
    *cfg = c;
    return 0;
}

int anv_config_load(const char *path, anv_config_t *cfg) {
    anv_json_doc_t *doc;
    if (anv_json_parse_file(path, &doc)) return -1;
    int rc = anv_config_from_json(anv_json_root(doc), path, cfg);
    anv_json_free(doc);
    return rc;
}

int anv_config_json(const anv_config_t *cfg, const char *extra, anv_buf_t *out) {
    return anv_buf_printf(out,
                          "{\n"
                          "  \"architectures\": [\"GPT2LMHeadModel\"],\n"
                          "  \"model_type\": \"gpt2\",\n"
                          "  \"n_layer\": %d,\n"
                          "  \"n_head\": %d,\n"
                          "  \"n_embd\": %d,\n"
                          "  \"n_inner\": %d,\n"
                          "  \"vocab_size\": %d,\n"
                          "  \"block_size\": %d,\n"
                          "  \"n_positions\": %d,\n"
                          "  \"n_ctx\": %d,\n"
                          "  \"activation_function\": \"gelu_new\",\n"
                          "  \"layer_norm_epsilon\": %g,\n"
                          "  \"tie_word_embeddings\": %s,\n"
                          "%s"
                          "  \"resid_pdrop\": 0.0,\n"
                          "  \"embd_pdrop\": 0.0,\n"
                          "  \"attn_pdrop\": 0.0\n"
                          "}\n",
                          cfg->n_layer, cfg->n_head, cfg->n_embd, cfg->n_ff, cfg->vocab_size, cfg->block_size,
                          cfg->block_size, cfg->block_size, (double)cfg->norm_eps,
                          cfg->tie_embeddings ? "true" : "false", extra ? extra : "");
}

int anv_config_save(const anv_config_t *cfg, const char *path) {
    if (anv_config_validate(cfg, path)) return -1;
    anv_buf_t b = {0};
    int rc = anv_config_json(cfg, NULL, &b);
    if (rc == 0) rc = anv_write_file_atomic(path, b.data, b.len);
    anv_buf_free(&b);
    return rc;
}

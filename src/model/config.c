/* Model configuration: presets, validation, JSON (anvil and Hugging Face GPT-2 keys), sizes. */
#include "anvil/model.h"

#include "anvil/json.h"

#include <math.h>
#include <string.h>

typedef struct {
    const char *name;
    anv_config_t cfg; /* n_layer, n_head, n_embd, vocab_size, block_size */
} preset_t;

static const preset_t presets[] = {
    {"tiny", {4, 4, 128, 50257, 256}},
    {"small", {6, 6, 384, 50257, 512}},
    {"gpt2-124m", {12, 12, 768, 50257, 1024}},
    {"gpt2-350m", {24, 16, 1024, 50257, 1024}},
};

int anv_config_preset(const char *name, anv_config_t *cfg) {
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        if (!strcmp(name, presets[i].name)) {
            *cfg = presets[i].cfg;
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
    return 0;
}

int anv_config_padded_vocab(const anv_config_t *cfg) { return (cfg->vocab_size + 63) / 64 * 64; }

size_t anv_config_num_params(const anv_config_t *cfg) {
    size_t C = cfg->n_embd;
    size_t per_layer = 12 * C * C + 13 * C; /* ln_1, c_attn, attn.c_proj, ln_2, c_fc, mlp.c_proj */
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

/* Keys of a GPT-2 config.json that anvil's model does not read must hold the values it implements:
 * anything else would be silently trained or evaluated as a different model. */
static int check_honoured(const anv_json_t *root, const char *source, const anv_config_t *c) {
    const anv_json_t *v;
    if ((v = anv_json_get(root, "model_type")) && (v->type != ANV_JSON_STRING || strcmp(v->str, "gpt2") != 0))
        return anv_error("%s: model_type must be \"gpt2\"", source);
    if ((v = anv_json_get(root, "activation_function")) &&
        (v->type != ANV_JSON_STRING || (strcmp(v->str, "gelu_new") != 0 && strcmp(v->str, "gelu_pytorch_tanh") != 0)))
        return anv_error("%s: activation_function \"%s\" is not supported (anvil's GPT-2 uses gelu_new)", source,
                         v->type == ANV_JSON_STRING ? v->str : "?");
    if ((v = anv_json_get(root, "n_inner")) && v->type != ANV_JSON_NULL &&
        (v->type != ANV_JSON_NUMBER || v->number != 4.0 * c->n_embd))
        return anv_error("%s: n_inner must be null or 4 * n_embd", source);
    if ((v = anv_json_get(root, "layer_norm_epsilon")) && (v->type != ANV_JSON_NUMBER || fabs(v->number - 1e-5) > 1e-9))
        return anv_error("%s: layer_norm_epsilon must be 1e-05", source);
    if ((v = anv_json_get(root, "tie_word_embeddings")) && (v->type != ANV_JSON_BOOL || !v->boolean))
        return anv_error("%s: tie_word_embeddings must be true (GPT-2's head is its token embedding)", source);
    return 0;
}

int anv_config_from_json(const anv_json_t *obj, const char *source, anv_config_t *cfg) {
    if (!obj || obj->type != ANV_JSON_OBJECT) return anv_error("%s: expected a JSON object", source);
    anv_config_t c = {0};
    /* anvil writes block_size; Hugging Face GPT-2 configs carry n_positions (and n_ctx). */
    int has_block = anv_json_get(obj, "block_size") != NULL;
    if (get_int(obj, "n_layer", source, 0, &c.n_layer) || get_int(obj, "n_head", source, 0, &c.n_head) ||
        get_int(obj, "n_embd", source, 0, &c.n_embd) || get_int(obj, "vocab_size", source, 0, &c.vocab_size) ||
        get_int(obj, has_block ? "block_size" : "n_positions", source, 0, &c.block_size))
        return -1;
    if (anv_config_validate(&c, source) || check_honoured(obj, source, &c)) return -1;
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

int anv_config_save(const anv_config_t *cfg, const char *path) {
    if (anv_config_validate(cfg, path)) return -1;
    anv_buf_t b = {0};
    int rc = anv_buf_printf(&b,
                            "{\n"
                            "  \"model_type\": \"gpt2\",\n"
                            "  \"architectures\": [\"GPT2LMHeadModel\"],\n"
                            "  \"n_layer\": %d,\n"
                            "  \"n_head\": %d,\n"
                            "  \"n_embd\": %d,\n"
                            "  \"vocab_size\": %d,\n"
                            "  \"block_size\": %d,\n"
                            "  \"n_positions\": %d,\n"
                            "  \"n_ctx\": %d,\n"
                            "  \"n_inner\": null,\n"
                            "  \"activation_function\": \"gelu_new\",\n"
                            "  \"layer_norm_epsilon\": 1e-05,\n"
                            "  \"tie_word_embeddings\": true,\n"
                            "  \"resid_pdrop\": 0.0,\n"
                            "  \"embd_pdrop\": 0.0,\n"
                            "  \"attn_pdrop\": 0.0\n"
                            "}\n",
                            cfg->n_layer, cfg->n_head, cfg->n_embd, cfg->vocab_size, cfg->block_size, cfg->block_size,
                            cfg->block_size);
    if (rc == 0) rc = anv_write_file_atomic(path, b.data, b.len);
    anv_buf_free(&b);
    return rc;
}

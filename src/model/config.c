/* Model configuration: presets, validation, JSON (anvil's run config and Hugging Face's config.json of
 * GPT2LMHeadModel and LlamaForCausalLM), RoPE frequencies. */
#include "anvil/model.h"

#include "anvil/json.h"

#include <math.h>
#include <stdlib.h>
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

anv_config_t anv_config_llama(int n_layer, int n_head, int n_kv_head, int n_embd, int n_ff, int vocab_size,
                              int block_size) {
    return (anv_config_t){.arch = ANV_ARCH_LLAMA,
                          .n_layer = n_layer,
                          .n_head = n_head,
                          .n_kv_head = n_kv_head,
                          .n_embd = n_embd,
                          .n_ff = n_ff,
                          .vocab_size = vocab_size,
                          .block_size = block_size,
                          .norm_eps = 1e-5f,
                          .rope_theta = 10000.0f,
                          .tie_embeddings = 1};
}

const char *const anv_config_preset_names =
    "tiny, small, gpt2-124m, gpt2-350m, llama-tiny, llama-small, smollm2-135m, llama3.2-1b";

int anv_config_preset(const char *name, anv_config_t *cfg) {
    static const struct {
        const char *name;
        anv_arch_t arch;
        int n_layer, n_head, n_kv_head, n_embd, n_ff, vocab_size, block_size;
        float rope_theta;
    } presets[] = {
        {"tiny", ANV_ARCH_GPT2, 4, 4, 4, 128, 512, 50257, 256, 0},
        {"small", ANV_ARCH_GPT2, 6, 6, 6, 384, 1536, 50257, 512, 0},
        {"gpt2-124m", ANV_ARCH_GPT2, 12, 12, 12, 768, 3072, 50257, 1024, 0},
        {"gpt2-350m", ANV_ARCH_GPT2, 24, 16, 16, 1024, 4096, 50257, 1024, 0},
        {"llama-tiny", ANV_ARCH_LLAMA, 4, 4, 2, 128, 384, 50257, 256, 10000},
        {"llama-small", ANV_ARCH_LLAMA, 6, 6, 2, 384, 1024, 50257, 512, 10000},
        {"smollm2-135m", ANV_ARCH_LLAMA, 30, 9, 3, 576, 1536, 49152, 2048, 100000},
        {"llama3.2-1b", ANV_ARCH_LLAMA, 16, 32, 8, 2048, 8192, 128256, 8192, 500000},
    };
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        if (strcmp(name, presets[i].name) != 0) continue;
        if (presets[i].arch == ANV_ARCH_GPT2) {
            *cfg = anv_config_gpt2(presets[i].n_layer, presets[i].n_head, presets[i].n_embd, presets[i].vocab_size,
                                   presets[i].block_size);
            return 0;
        }
        *cfg = anv_config_llama(presets[i].n_layer, presets[i].n_head, presets[i].n_kv_head, presets[i].n_embd,
                                presets[i].n_ff, presets[i].vocab_size, presets[i].block_size);
        cfg->rope_theta = presets[i].rope_theta;
        if (!strcmp(name, "llama3.2-1b")) cfg->rope_scaling = (anv_rope_scaling_t){1, 32.0f, 1.0f, 4.0f, 8192};
        return 0;
    }
    return anv_error("unknown model preset '%s' (expected %s)", name, anv_config_preset_names);
}

const char *anv_arch_name(anv_arch_t arch) { return arch == ANV_ARCH_LLAMA ? "llama" : "gpt2"; }

/* Limits that keep every size and index in range; far beyond anything trainable on a CPU. */
enum {
    MAX_LAYER = 1024,
    MAX_HEAD = 1024,
    MAX_EMBD = 65536,
    MAX_FF = 1 << 20,
    MAX_VOCAB = 1 << 24,
    MAX_BLOCK = 1 << 20
};

static int check_range(const char *source, const char *key, int v, int max) {
    if (v < 1 || v > max) return anv_error("%s: %s %d is out of range (1 to %d)", source, key, v, max);
    return 0;
}

/* What GPT-2 fixes (anvil's GPT-2 kernels implement these values only). */
static int validate_gpt2(const anv_config_t *cfg, const char *source) {
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

static int validate_llama(const anv_config_t *cfg, const char *source) {
    if (check_range(source, "num_key_value_heads", cfg->n_kv_head, MAX_HEAD) ||
        check_range(source, "intermediate_size", cfg->n_ff, MAX_FF))
        return -1;
    if (cfg->n_head % cfg->n_kv_head)
        return anv_error("%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", source, cfg->n_head,
                         cfg->n_kv_head);
    if (anv_config_head_size(cfg) % 2)
        return anv_error("%s: the head size %d must be even for rotary positions", source, anv_config_head_size(cfg));
    if (!(cfg->norm_eps > 0.0f && cfg->norm_eps < 1.0f))
        return anv_error("%s: rms_norm_eps %g is out of range (0 to 1)", source, (double)cfg->norm_eps);
    if (!(cfg->rope_theta > 1.0f && isfinite(cfg->rope_theta)))
        return anv_error("%s: rope_theta %g must be a number above 1", source, (double)cfg->rope_theta);
    const anv_rope_scaling_t *r = &cfg->rope_scaling;
    if (r->llama3 && !(r->factor >= 1.0f && isfinite(r->factor) && r->low_freq_factor > 0.0f &&
                       r->high_freq_factor > r->low_freq_factor && isfinite(r->high_freq_factor) &&
                       r->original_max_position_embeddings >= 1))
        return anv_error("%s: rope_scaling: factor %g (>= 1), low_freq_factor %g, high_freq_factor %g (0 < low < "
                         "high), original_max_position_embeddings %d (>= 1) are out of range",
                         source, (double)r->factor, (double)r->low_freq_factor, (double)r->high_freq_factor,
                         r->original_max_position_embeddings);
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
    switch (cfg->arch) {
    case ANV_ARCH_GPT2:
        return validate_gpt2(cfg, source);
    case ANV_ARCH_LLAMA:
        return validate_llama(cfg, source);
    }
    return anv_error("%s: unknown architecture %d", source, (int)cfg->arch);
}

int anv_config_equal(const anv_config_t *a, const anv_config_t *b, char *why, size_t why_size) {
    if (a->arch != b->arch) {
        snprintf(why, why_size, "architecture: %s against %s", anv_arch_name(a->arch), anv_arch_name(b->arch));
        return 0;
    }
    const anv_rope_scaling_t *ra = &a->rope_scaling, *rb = &b->rope_scaling;
    const struct {
        const char *key;
        double a, b;
    } fields[] = {
        {"n_layer", a->n_layer, b->n_layer},
        {"n_head", a->n_head, b->n_head},
        {"n_kv_head", a->n_kv_head, b->n_kv_head},
        {"n_embd", a->n_embd, b->n_embd},
        {"n_ff", a->n_ff, b->n_ff},
        {"vocab_size", a->vocab_size, b->vocab_size},
        {"block_size", a->block_size, b->block_size},
        {"norm_eps", a->norm_eps, b->norm_eps},
        {"rope_theta", a->rope_theta, b->rope_theta},
        {"rope_scaling", ra->llama3, rb->llama3},
        {"rope_scaling.factor", ra->factor, rb->factor},
        {"rope_scaling.low_freq_factor", ra->low_freq_factor, rb->low_freq_factor},
        {"rope_scaling.high_freq_factor", ra->high_freq_factor, rb->high_freq_factor},
        {"rope_scaling.original_max_position_embeddings", ra->original_max_position_embeddings,
         rb->original_max_position_embeddings},
        {"tie_embeddings", a->tie_embeddings, b->tie_embeddings},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (fields[i].a != fields[i].b) {
            snprintf(why, why_size, "%s: %g against %g", fields[i].key, fields[i].a, fields[i].b);
            return 0;
        }
    return 1;
}

int anv_config_head_size(const anv_config_t *cfg) { return cfg->n_embd / cfg->n_head; }
int anv_config_padded_vocab(const anv_config_t *cfg) { return (cfg->vocab_size + 63) / 64 * 64; }

/* inv_freq[i] = 1 / theta^(2i / hs), then Llama 3's scaling: frequencies whose wavelength exceeds
 * original_max / low_freq_factor are divided by factor, those below original_max / high_freq_factor
 * kept, and those between interpolated. In float, in Hugging Face's order of operations. */
void anv_config_rope_inv_freq(const anv_config_t *cfg, float *inv_freq) {
    int hs = anv_config_head_size(cfg);
    const anv_rope_scaling_t *r = &cfg->rope_scaling;
    for (int i = 0; i < hs / 2; i++) {
        float f = 1.0f / powf(cfg->rope_theta, (float)(2 * i) / (float)hs);
        if (r->llama3) {
            float orig = (float)r->original_max_position_embeddings;
            float wavelen = 2.0f * (float)M_PI / f;
            if (wavelen > orig / r->low_freq_factor) {
                f = f / r->factor;
            } else if (wavelen >= orig / r->high_freq_factor) {
                float smooth = (orig / wavelen - r->low_freq_factor) / (r->high_freq_factor - r->low_freq_factor);
                f = (1.0f - smooth) * f / r->factor + smooth * f;
            }
        }
        inv_freq[i] = f;
    }
}

/* ---- JSON ---- */

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

/* Optional float and bool members: *out keeps its value when absent. */
static int get_float(const anv_json_t *obj, const char *key, const char *source, float *out) {
    const anv_json_t *v = anv_json_get(obj, key);
    if (!v) return 0;
    if (v->type != ANV_JSON_NUMBER) return anv_error("%s: \"%s\" must be a number", source, key);
    *out = (float)v->number;
    return 0;
}

static int get_bool(const anv_json_t *obj, const char *key, const char *source, int *out) {
    const anv_json_t *v = anv_json_get(obj, key);
    if (!v) return 0;
    if (v->type != ANV_JSON_BOOL) return anv_error("%s: \"%s\" must be true or false", source, key);
    *out = v->boolean;
    return 0;
}

/* A member that must be absent, null, or the given string. */
static int expect_string(const anv_json_t *obj, const char *key, const char *want, const char *source,
                         const char *why) {
    const anv_json_t *v = anv_json_get(obj, key);
    if (!v || v->type == ANV_JSON_NULL || (v->type == ANV_JSON_STRING && !strcmp(v->str, want))) return 0;
    return anv_error("%s: %s \"%s\" is not supported (%s)", source, key, v->type == ANV_JSON_STRING ? v->str : "?",
                     why);
}

/* The GPT-2 keys with a default: each must be absent or hold a value anvil implements (validate). */
static int read_gpt2(const anv_json_t *obj, const char *source, anv_config_t *cfg) {
    int L = 0, H = 0, C = 0, V = 0, T = 0;
    /* anvil writes block_size; Hugging Face GPT-2 configs carry n_positions (and n_ctx). */
    int has_block = anv_json_get(obj, "block_size") != NULL;
    if (get_int(obj, "n_layer", source, 0, &L) || get_int(obj, "n_head", source, 0, &H) ||
        get_int(obj, "n_embd", source, 0, &C) || get_int(obj, "vocab_size", source, 0, &V) ||
        get_int(obj, has_block ? "block_size" : "n_positions", source, 0, &T))
        return -1;
    anv_config_t c = anv_config_gpt2(L, H, C, V, T);
    const anv_json_t *v;
    if ((v = anv_json_get(obj, "activation_function")) &&
        (v->type != ANV_JSON_STRING || (strcmp(v->str, "gelu_new") != 0 && strcmp(v->str, "gelu_pytorch_tanh") != 0)))
        return anv_error("%s: activation_function \"%s\" is not supported (anvil's GPT-2 uses gelu_new)", source,
                         v->type == ANV_JSON_STRING ? v->str : "?");
    if ((v = anv_json_get(obj, "n_inner")) && v->type != ANV_JSON_NULL && get_int(obj, "n_inner", source, 0, &c.n_ff))
        return -1;
    if (get_float(obj, "layer_norm_epsilon", source, &c.norm_eps) ||
        get_bool(obj, "tie_word_embeddings", source, &c.tie_embeddings))
        return -1;
    *cfg = c;
    return 0;
}

static int read_rope_scaling(const anv_json_t *obj, const char *source, anv_rope_scaling_t *r) {
    const anv_json_t *s = anv_json_get(obj, "rope_scaling");
    if (!s || s->type == ANV_JSON_NULL) return 0;
    if (s->type != ANV_JSON_OBJECT) return anv_error("%s: \"rope_scaling\" must be an object or null", source);
    const anv_json_t *type = anv_json_get(s, "rope_type");
    if (!type) type = anv_json_get(s, "type");
    if (!type || type->type != ANV_JSON_STRING || strcmp(type->str, "llama3") != 0)
        return anv_error("%s: rope_scaling type \"%s\" is not supported (llama3 only)", source,
                         type && type->type == ANV_JSON_STRING ? type->str : "?");
    *r = (anv_rope_scaling_t){.llama3 = 1};
    const char *keys[] = {"factor", "low_freq_factor", "high_freq_factor"};
    float *dst[] = {&r->factor, &r->low_freq_factor, &r->high_freq_factor};
    for (int i = 0; i < 3; i++) {
        const anv_json_t *v = anv_json_get(s, keys[i]);
        if (!v || v->type != ANV_JSON_NUMBER)
            return anv_error("%s: rope_scaling needs a number \"%s\"", source, keys[i]);
        *dst[i] = (float)v->number;
    }
    return get_int(s, "original_max_position_embeddings", source, 0, &r->original_max_position_embeddings);
}

/* LlamaForCausalLM's keys; those naming what anvil does not implement are refused by name. */
static int read_llama(const anv_json_t *obj, const char *source, anv_config_t *cfg) {
    int L = 0, H = 0, C = 0, F = 0, V = 0, T = 0;
    int has_block = anv_json_get(obj, "block_size") != NULL;
    if (get_int(obj, "num_hidden_layers", source, 0, &L) || get_int(obj, "num_attention_heads", source, 0, &H) ||
        get_int(obj, "hidden_size", source, 0, &C) || get_int(obj, "intermediate_size", source, 0, &F) ||
        get_int(obj, "vocab_size", source, 0, &V) ||
        get_int(obj, has_block ? "block_size" : "max_position_embeddings", source, 0, &T))
        return -1;
    anv_config_t c = anv_config_llama(L, H, H, C, F, V, T);
    c.norm_eps = 1e-6f; /* LlamaConfig's defaults where the file is silent */
    c.tie_embeddings = 0;
    if (get_int(obj, "num_key_value_heads", source, 1, &c.n_kv_head) ||
        get_float(obj, "rms_norm_eps", source, &c.norm_eps) || get_float(obj, "rope_theta", source, &c.rope_theta) ||
        get_bool(obj, "tie_word_embeddings", source, &c.tie_embeddings) ||
        read_rope_scaling(obj, source, &c.rope_scaling))
        return -1;
    static const char *const no_bias[] = {"attention_bias", "mlp_bias"};
    for (int i = 0; i < 2; i++) {
        int bias = 0;
        if (get_bool(obj, no_bias[i], source, &bias)) return -1;
        if (bias) return anv_error("%s: %s true is not supported (anvil's Llama has no biases)", source, no_bias[i]);
    }
    if (expect_string(obj, "hidden_act", "silu", source, "anvil's Llama MLP is SwiGLU with silu")) return -1;
    const anv_json_t *v = anv_json_get(obj, "sliding_window");
    if (v && v->type != ANV_JSON_NULL)
        return anv_error("%s: sliding_window is not supported (anvil's attention sees the whole block)", source);
    if ((v = anv_json_get(obj, "head_dim")) && v->type != ANV_JSON_NULL) {
        int hd = 0;
        if (get_int(obj, "head_dim", source, 0, &hd)) return -1;
        if (H > 0 && hd * H != C)
            return anv_error("%s: head_dim %d is not hidden_size / num_attention_heads = %d / %d", source, hd, C, H);
    }
    *cfg = c;
    return 0;
}

int anv_config_from_json(const anv_json_t *obj, const char *source, anv_config_t *cfg) {
    if (!obj || obj->type != ANV_JSON_OBJECT) return anv_error("%s: expected a JSON object", source);
    const anv_json_t *type = anv_json_get(obj, "model_type");
    anv_arch_t arch = anv_json_get(obj, "num_hidden_layers") ? ANV_ARCH_LLAMA : ANV_ARCH_GPT2;
    if (type) {
        if (type->type != ANV_JSON_STRING) return anv_error("%s: \"model_type\" must be a string", source);
        if (!strcmp(type->str, "gpt2"))
            arch = ANV_ARCH_GPT2;
        else if (!strcmp(type->str, "llama"))
            arch = ANV_ARCH_LLAMA;
        else
            return anv_error("%s: model_type \"%s\" is not supported (gpt2, llama)", source, type->str);
    }
    anv_config_t c;
    if ((arch == ANV_ARCH_GPT2 ? read_gpt2(obj, source, &c) : read_llama(obj, source, &c)) != 0 ||
        anv_config_validate(&c, source) != 0)
        return -1;
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

static int gpt2_json(const anv_config_t *cfg, const char *extra, anv_buf_t *out) {
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

/* The shortest decimal that reads back as the same float ("1e-05", not "9.99999975e-06"). */
typedef struct {
    char s[24];
} float_text_t;
static float_text_t float_text(float v) {
    float_text_t t;
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(t.s, sizeof t.s, "%.*g", digits, (double)v);
        if ((float)strtod(t.s, NULL) == v) break;
    }
    return t;
}

static int llama_json(const anv_config_t *cfg, const char *extra, anv_buf_t *out) {
    char scaling[256] = "null";
    const anv_rope_scaling_t *r = &cfg->rope_scaling;
    if (r->llama3)
        snprintf(scaling, sizeof scaling,
                 "{\"rope_type\": \"llama3\", \"factor\": %s, \"low_freq_factor\": %s, \"high_freq_factor\": %s, "
                 "\"original_max_position_embeddings\": %d}",
                 float_text(r->factor).s, float_text(r->low_freq_factor).s, float_text(r->high_freq_factor).s,
                 r->original_max_position_embeddings);
    return anv_buf_printf(out,
                          "{\n"
                          "  \"architectures\": [\"LlamaForCausalLM\"],\n"
                          "  \"model_type\": \"llama\",\n"
                          "  \"num_hidden_layers\": %d,\n"
                          "  \"num_attention_heads\": %d,\n"
                          "  \"num_key_value_heads\": %d,\n"
                          "  \"hidden_size\": %d,\n"
                          "  \"head_dim\": %d,\n"
                          "  \"intermediate_size\": %d,\n"
                          "  \"vocab_size\": %d,\n"
                          "  \"block_size\": %d,\n"
                          "  \"max_position_embeddings\": %d,\n"
                          "  \"rms_norm_eps\": %s,\n"
                          "  \"rope_theta\": %s,\n"
                          "  \"rope_scaling\": %s,\n"
                          "  \"tie_word_embeddings\": %s,\n"
                          "%s"
                          "  \"hidden_act\": \"silu\",\n"
                          "  \"attention_bias\": false,\n"
                          "  \"mlp_bias\": false,\n"
                          "  \"attention_dropout\": 0.0,\n"
                          "  \"initializer_range\": 0.02,\n"
                          "  \"pretraining_tp\": 1\n"
                          "}\n",
                          cfg->n_layer, cfg->n_head, cfg->n_kv_head, cfg->n_embd, anv_config_head_size(cfg), cfg->n_ff,
                          cfg->vocab_size, cfg->block_size, cfg->block_size, float_text(cfg->norm_eps).s,
                          float_text(cfg->rope_theta).s, scaling, cfg->tie_embeddings ? "true" : "false",
                          extra ? extra : "");
}

int anv_config_json(const anv_config_t *cfg, const char *extra, anv_buf_t *out) {
    return cfg->arch == ANV_ARCH_LLAMA ? llama_json(cfg, extra, out) : gpt2_json(cfg, extra, out);
}

int anv_config_save(const anv_config_t *cfg, const char *path) {
    if (anv_config_validate(cfg, path)) return -1;
    anv_buf_t b = {0};
    int rc = anv_config_json(cfg, NULL, &b);
    if (rc == 0) rc = anv_write_file_atomic(path, b.data, b.len);
    anv_buf_free(&b);
    return rc;
}

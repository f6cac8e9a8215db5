/* A GPT-2 model and its tokenizer as a GGUF file for llama.cpp's "gpt2" architecture. */
#include "anvil/gguf.h"
#include "anvil/tokenizer.h"

#include "tok/tok_internal.h" /* the merge pairs and the byte-level form, which tokenizer.h does not expose */

#include <stdio.h>
#include <string.h>

/* llama.cpp's token types and file types (llama_token_type, llama_ftype). */
enum { TOKEN_NORMAL = 1, TOKEN_CONTROL = 3, TOKEN_UNUSED = 5 };
enum { FTYPE_ALL_F32 = 0, FTYPE_MOSTLY_F16 = 1, FTYPE_MOSTLY_Q8_0 = 7 };

/* Hugging Face GPT-2 name suffix (after "transformer.h.N.") -> llama.cpp name suffix (after "blk.N.").
 * Conv1D weights are stored (in, out) and must become (out, in) row-major, i.e. ne = [in, out]. */
static const struct {
    const char *hf, *gguf;
    int conv1d;
} layer_map[] = {
    {"ln_1.weight", "attn_norm.weight", 0},          {"ln_1.bias", "attn_norm.bias", 0},
    {"attn.c_attn.weight", "attn_qkv.weight", 1},    {"attn.c_attn.bias", "attn_qkv.bias", 0},
    {"attn.c_proj.weight", "attn_output.weight", 1}, {"attn.c_proj.bias", "attn_output.bias", 0},
    {"ln_2.weight", "ffn_norm.weight", 0},           {"ln_2.bias", "ffn_norm.bias", 0},
    {"mlp.c_fc.weight", "ffn_up.weight", 1},         {"mlp.c_fc.bias", "ffn_up.bias", 0},
    {"mlp.c_proj.weight", "ffn_down.weight", 1},     {"mlp.c_proj.bias", "ffn_down.bias", 0},
};

/* The llama.cpp name of an anvil tensor and whether it is a Conv1D weight; -1 for an unknown name. */
static int gguf_name(const char *hf, char *out, size_t size, int *conv1d) {
    int layer, used = 0;
    *conv1d = 0;
    if (!strcmp(hf, "transformer.wte.weight")) return snprintf(out, size, "token_embd.weight") < 0;
    if (!strcmp(hf, "transformer.wpe.weight")) return snprintf(out, size, "position_embd.weight") < 0;
    if (!strcmp(hf, "transformer.ln_f.weight")) return snprintf(out, size, "output_norm.weight") < 0;
    if (!strcmp(hf, "transformer.ln_f.bias")) return snprintf(out, size, "output_norm.bias") < 0;
    if (sscanf(hf, "transformer.h.%d.%n", &layer, &used) == 1 && used > 0)
        for (size_t i = 0; i < sizeof layer_map / sizeof layer_map[0]; i++)
            if (!strcmp(hf + used, layer_map[i].hf)) {
                *conv1d = layer_map[i].conv1d;
                return snprintf(out, size, "blk.%d.%s", layer, layer_map[i].gguf) < 0;
            }
    return -1;
}

/* dst (rows, cols) = transpose of src (cols, rows), in tiles that stay in cache. */
static void transpose(const float *src, float *dst, size_t rows, size_t cols) {
    enum { TILE = 32 };
    for (size_t r0 = 0; r0 < rows; r0 += TILE)
        for (size_t c0 = 0; c0 < cols; c0 += TILE)
            for (size_t r = r0; r < r0 + TILE && r < rows; r++)
                for (size_t c = c0; c < c0 + TILE && c < cols; c++) dst[r * cols + c] = src[c * rows + r];
}

/* Encodes n floats into a new buffer of type t (F16 or Q8_0). */
static void *encode(const float *x, size_t n, anv_ggml_type_t t, const char *name) {
    void *out = anv_alloc(anv_ggml_nbytes(t, n), name);
    if (!out) return NULL;
    if (t == ANV_GGML_F16)
        for (size_t i = 0; i < n; i++) ((uint16_t *)out)[i] = anv_f32_to_f16(x[i]);
    else
        anv_q8_0_quantize(x, n, out);
    return out;
}

static int add_tensors(anv_gguf_writer_t *w, anv_model_t *m, anv_ggml_type_t dtype) {
    const float *params = anv_model_params(m);
    int fallback = 0;
    for (int i = 0; i < anv_model_n_tensors(m); i++) {
        const anv_param_t *p = anv_model_tensor(m, i);
        char name[64];
        int conv1d;
        if (gguf_name(p->name, name, sizeof name, &conv1d) != 0)
            return anv_error("GGUF export: no llama.cpp name for tensor '%s'", p->name);
        /* (rows, cols) after the transpose of Conv1D weights; wte's numel excludes padding rows. */
        size_t rows = p->ndim == 2 ? (size_t)p->shape[conv1d] : 1;
        size_t cols = p->ndim == 2 ? (size_t)p->shape[!conv1d] : (size_t)p->shape[0];
        anv_ggml_type_t t = p->ndim == 2 ? dtype : ANV_GGML_F32;
        if (t == ANV_GGML_Q8_0 && cols % ANV_Q8_0_BLOCK != 0) {
            t = ANV_GGML_F16;
            fallback++;
        }
        /* F32 rows (transposed or copied) go to the writer as they are; other types are encoded. */
        float *f = anv_alloc(p->numel * sizeof *f, name);
        if (!f) return -1;
        if (conv1d)
            transpose(params + p->offset, f, rows, cols);
        else
            memcpy(f, params + p->offset, p->numel * sizeof *f);
        void *data = f;
        if (t != ANV_GGML_F32) {
            data = encode(f, p->numel, t, name);
            anv_free(f);
        }
        uint64_t ne[2] = {cols, rows};
        if (!data || anv_gguf_add_tensor(w, name, t, p->ndim, ne, data) != 0) return -1;
    }
    if (fallback)
        anv_log(ANV_LOG_INFO,
                "GGUF export: %d weights stored as F16: their rows are not a multiple of 32 values (Q8_0)", fallback);
    return 0;
}

/* Token strings as GGUF stores them: ordinary tokens in GPT-2's byte-to-unicode form, special tokens
 * verbatim, ids without a token as "[UNUSEDn]"; ids past the tokenizer (model vocab_size larger)
 * are unused too. */
static int add_vocab(anv_gguf_writer_t *w, const anv_tokenizer_t *t, int vocab_size, const char *source) {
    size_t n_tok = anv_tokenizer_vocab_size(t), n = (size_t)vocab_size, n_merges = anv_tokenizer_n_merges(t);
    if (n < n_tok)
        return anv_error("%s: the tokenizer has %zu tokens but the model only %d", source, n_tok, vocab_size);
    int rc = -1;
    anv_buf_t text = {0};
    size_t *off = anv_alloc((n + n_merges + 1) * sizeof *off, "GGUF vocabulary");
    size_t *lens = anv_alloc((n + n_merges + 1) * sizeof *lens, "GGUF vocabulary");
    const char **strs = anv_alloc((n + n_merges + 1) * sizeof *strs, "GGUF vocabulary");
    int32_t *types = anv_calloc(n * sizeof *types + 1, "GGUF token types");
    if (!off || !lens || !strs || !types) goto done;
    for (size_t i = 0; i < anv_tokenizer_n_specials(t); i++) types[anv_tokenizer_special(t, i)] = TOKEN_CONTROL;
    /* Everything goes into one buffer first (it moves while growing), then the pointers are set. */
    for (size_t id = 0; id < n; id++) {
        off[id] = text.len;
        size_t len = 0;
        const char *bytes = id < n_tok ? anv_tokenizer_token_bytes(t, (uint32_t)id, &len) : NULL;
        if (!bytes) {
            types[id] = TOKEN_UNUSED;
            if (anv_buf_printf(&text, "[UNUSED%zu]", id) != 0) goto done;
        } else if (types[id] == TOKEN_CONTROL) {
            if (anv_buf_append(&text, bytes, len) != 0) goto done;
        } else {
            types[id] = TOKEN_NORMAL;
            if (tok_bytelevel_encode(&text, bytes, len) != 0) goto done;
        }
        lens[id] = text.len - off[id];
    }
    for (size_t r = 0; r < n_merges; r++) {
        off[n + r] = text.len;
        for (int side = 0; side < 2; side++) {
            size_t len;
            const char *bytes = anv_tokenizer_token_bytes(t, t->merges[r][side], &len);
            if ((side && anv_buf_append(&text, " ", 1) != 0) || tok_bytelevel_encode(&text, bytes, len) != 0) goto done;
        }
        lens[n + r] = text.len - off[n + r];
    }
    for (size_t i = 0; i < n + n_merges; i++) strs[i] = text.data + off[i];
    int gpt2 = anv_tokenizer_pattern(t) == ANV_PRETOK_GPT2;
    int64_t eot = anv_tokenizer_eot(t);
    if (anv_gguf_add_string(w, "tokenizer.ggml.model", "gpt2", 4) != 0 ||
        /* llama.cpp's "gpt-2" is GPT-2's split pattern; its "dbrx" is cl100k's without llama3's extras. */
        anv_gguf_add_string(w, "tokenizer.ggml.pre", gpt2 ? "gpt-2" : "dbrx", gpt2 ? 5 : 4) != 0 ||
        anv_gguf_add_strings(w, "tokenizer.ggml.tokens", strs, lens, n) != 0 ||
        anv_gguf_add_i32s(w, "tokenizer.ggml.token_type", types, n) != 0 ||
        anv_gguf_add_strings(w, "tokenizer.ggml.merges", strs + n, lens + n, n_merges) != 0 ||
        anv_gguf_add_bool(w, "tokenizer.ggml.add_bos_token", 0) != 0 ||
        anv_gguf_add_bool(w, "tokenizer.ggml.add_eos_token", 0) != 0)
        goto done;
    if (eot >= 0 && (anv_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)eot) != 0 ||
                     anv_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eot) != 0))
        goto done;
    rc = 0;
done:
    anv_buf_free(&text);
    anv_free(off);
    anv_free(lens);
    anv_free(strs);
    anv_free(types);
    return rc;
}

int anv_gguf_export_gpt2(anv_model_t *m, const anv_tokenizer_t *tok, const char *name, anv_ggml_type_t dtype,
                         const char *path) {
    const anv_config_t *cfg = anv_model_config(m);
    uint32_t ftype = dtype == ANV_GGML_F32   ? FTYPE_ALL_F32
                     : dtype == ANV_GGML_F16 ? FTYPE_MOSTLY_F16
                                             : FTYPE_MOSTLY_Q8_0;
    anv_gguf_writer_t *w = NULL;
    int rc = -1;
    if (anv_gguf_writer_create(&w) != 0) return -1;
    if (anv_gguf_add_string(w, "general.architecture", "gpt2", 4) != 0 ||
        anv_gguf_add_string(w, "general.name", name, strlen(name)) != 0 ||
        anv_gguf_add_u32(w, "general.file_type", ftype) != 0 ||
        anv_gguf_add_u32(w, "general.quantization_version", 2) != 0 ||
        anv_gguf_add_u32(w, "gpt2.context_length", (uint32_t)cfg->block_size) != 0 ||
        anv_gguf_add_u32(w, "gpt2.embedding_length", (uint32_t)cfg->n_embd) != 0 ||
        anv_gguf_add_u32(w, "gpt2.feed_forward_length", (uint32_t)cfg->n_ff) != 0 ||
        anv_gguf_add_u32(w, "gpt2.block_count", (uint32_t)cfg->n_layer) != 0 ||
        anv_gguf_add_u32(w, "gpt2.attention.head_count", (uint32_t)cfg->n_head) != 0 ||
        anv_gguf_add_f32(w, "gpt2.attention.layer_norm_epsilon", 1e-5f) != 0 ||
        add_vocab(w, tok, cfg->vocab_size, path) != 0 || add_tensors(w, m, dtype) != 0)
        goto done;
    rc = anv_gguf_write(w, path);
done:
    anv_gguf_writer_free(w);
    return rc;
}

/* A model and its tokenizer as a GGUF file for llama.cpp: its "gpt2" or "llama" architecture, the
 * tensors from the model's own list (llama.cpp names and layouts), the vocabulary as GPT-2's; or its
 * LoRA adapters alone as llama.cpp's adapter file. */
#include "anvil/gguf.h"
#include "anvil/tokenizer.h"

#include "tok/tok_internal.h" /* the merge pairs and the byte-level form, which tokenizer.h does not expose */

#include <stdio.h>
#include <string.h>

/* llama.cpp's token types and file types (llama_token_type, llama_ftype). */
enum { TOKEN_NORMAL = 1, TOKEN_CONTROL = 3, TOKEN_UNUSED = 5 };
enum { FTYPE_ALL_F32 = 0, FTYPE_MOSTLY_F16 = 1, FTYPE_MOSTLY_Q8_0 = 7 };

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

/* llama.cpp's RoPE rotates adjacent pairs (x[2i], x[2i+1]) of a head where Hugging Face's rotates
 * halves (x[i], x[i + hs/2]); so the rows of each of the n_heads heads of q_proj and k_proj are
 * interleaved: dst row 2i + j of a head is src row j hs/2 + i of it. src, dst (rows, cols). */
static void permute_rope_rows(const float *src, float *dst, size_t n_heads, size_t rows, size_t cols) {
    size_t hs = rows / n_heads, half = hs / 2;
    for (size_t h = 0; h < n_heads; h++)
        for (size_t i = 0; i < half; i++)
            for (size_t j = 0; j < 2; j++)
                memcpy(dst + (h * hs + 2 * i + j) * cols, src + (h * hs + j * half + i) * cols, cols * sizeof *dst);
}

/* One parameter as llama.cpp stores it: a 2-D weight (out, in) row-major, i.e. ne = [in, out], in
 * dtype (F16 when Q8_0 does not divide its rows: *fallback counts those), vectors in F32. */
static int add_param(anv_gguf_writer_t *w, const anv_param_t *p, const float *x, anv_ggml_type_t dtype, int *fallback) {
    /* (rows, cols) = (out, in): a Conv1D weight's shape read backwards; a vector is one row. */
    size_t rows = p->ndim == 2 ? (size_t)p->shape[p->in_out] : 1;
    size_t cols = p->ndim == 2 ? (size_t)p->shape[!p->in_out] : (size_t)p->shape[0];
    anv_ggml_type_t t = p->ndim == 2 ? dtype : ANV_GGML_F32;
    if (t == ANV_GGML_Q8_0 && cols % ANV_Q8_0_BLOCK != 0) {
        t = ANV_GGML_F16;
        (*fallback)++;
    }
    /* f: the (rows, cols) values; F32 goes to the writer as it is, other types are encoded. */
    float *f = anv_alloc(p->numel * sizeof *f, p->gguf);
    if (!f) return -1;
    if (p->in_out)
        anv_transpose(f, x, rows, cols);
    else
        memcpy(f, x, p->numel * sizeof *f);
    if (p->rope_heads) {
        float *g = anv_alloc(p->numel * sizeof *g, p->gguf);
        if (g) permute_rope_rows(f, g, (size_t)p->rope_heads, rows, cols);
        anv_free(f);
        if (!(f = g)) return -1;
    }
    void *data = f;
    if (t != ANV_GGML_F32) {
        data = encode(f, p->numel, t, p->gguf);
        anv_free(f);
    }
    uint64_t ne[2] = {cols, rows};
    return data ? anv_gguf_add_tensor(w, p->gguf, t, p->ndim, ne, data) : -1;
}

/* Llama 3's RoPE scaling as llama.cpp reads it: rope_freqs.weight (hs / 2) F32, the factor each
 * inverse frequency is divided by (unscaled / scaled). */
static int add_rope_freqs(anv_gguf_writer_t *w, const anv_config_t *cfg) {
    size_t n = (size_t)anv_config_head_size(cfg) / 2;
    anv_config_t unscaled = *cfg;
    unscaled.rope_scaling.llama3 = 0;
    float *factors = anv_alloc(n * sizeof *factors, "rope_freqs.weight");
    float *plain = factors ? anv_alloc(n * sizeof *plain, "rope_freqs.weight") : NULL;
    if (!plain) {
        anv_free(factors);
        return -1;
    }
    anv_config_rope_inv_freq(cfg, factors);
    anv_config_rope_inv_freq(&unscaled, plain);
    for (size_t i = 0; i < n; i++) factors[i] = plain[i] / factors[i];
    anv_free(plain);
    uint64_t ne[1] = {n};
    return anv_gguf_add_tensor(w, "rope_freqs.weight", ANV_GGML_F32, 1, ne, factors);
}

static int add_tensors(anv_gguf_writer_t *w, anv_model_t *m, anv_ggml_type_t dtype) {
    const anv_config_t *cfg = anv_model_config(m);
    const float *params = anv_model_params(m);
    int fallback = 0;
    if (cfg->rope_scaling.llama3 && add_rope_freqs(w, cfg) != 0) return -1;
    for (int i = 0; i < anv_model_n_tensors(m); i++) {
        const anv_param_t *p = anv_model_tensor(m, i);
        if (add_param(w, p, params + p->offset, dtype, &fallback) != 0) return -1;
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

/* "<arch>.<key>" hyperparameters. */
static int add_arch_u32(anv_gguf_writer_t *w, const char *arch, const char *key, int v) {
    char k[96];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return anv_gguf_add_u32(w, k, (uint32_t)v);
}

static int add_arch_f32(anv_gguf_writer_t *w, const char *arch, const char *key, float v) {
    char k[96];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return anv_gguf_add_f32(w, k, v);
}

/* The hyperparameters llama.cpp reads for the architecture: GPT-2's LayerNorm epsilon; Llama's
 * key/value heads, RMSNorm epsilon and RoPE (dimensions rotated = the head size, base theta). */
static int add_hparams(anv_gguf_writer_t *w, const anv_config_t *c) {
    const char *a = anv_arch_name(c->arch);
    if (add_arch_u32(w, a, "context_length", c->block_size) || add_arch_u32(w, a, "embedding_length", c->n_embd) ||
        add_arch_u32(w, a, "feed_forward_length", c->n_ff) || add_arch_u32(w, a, "block_count", c->n_layer) ||
        add_arch_u32(w, a, "attention.head_count", c->n_head))
        return -1;
    switch (c->arch) {
    case ANV_ARCH_GPT2:
        return add_arch_f32(w, a, "attention.layer_norm_epsilon", c->norm_eps);
    case ANV_ARCH_LLAMA:
        return add_arch_u32(w, a, "attention.head_count_kv", c->n_kv_head) ||
                       add_arch_f32(w, a, "attention.layer_norm_rms_epsilon", c->norm_eps) ||
                       add_arch_u32(w, a, "rope.dimension_count", anv_config_head_size(c)) ||
                       add_arch_f32(w, a, "rope.freq_base", c->rope_theta)
                   ? -1
                   : 0;
    }
    return anv_error("GGUF export: unknown architecture %d", (int)c->arch);
}

/* The chat template, and the token that ends a reply when its marker is one token. */
static int add_chat(anv_gguf_writer_t *w, const anv_tokenizer_t *tok, const anv_chat_template_t *chat) {
    size_t stop_len;
    const char *jinja = anv_chat_template_jinja(chat), *stop = anv_chat_template_stop(chat, tok, &stop_len);
    anv_tokens_t ids = {0};
    int rc = anv_gguf_add_string(w, "tokenizer.chat_template", jinja, strlen(jinja));
    if (rc == 0) rc = anv_tokenizer_encode_special(tok, stop, stop_len, &ids);
    if (rc == 0 && ids.len == 1) rc = anv_gguf_add_u32(w, "tokenizer.ggml.eot_token_id", ids.ids[0]);
    anv_tokens_free(&ids);
    return rc;
}

int anv_gguf_export(anv_model_t *m, const anv_tokenizer_t *tok, const char *name, anv_ggml_type_t dtype,
                    const char *path, const anv_chat_template_t *chat) {
    const anv_config_t *cfg = anv_model_config(m);
    const char *arch = anv_arch_name(cfg->arch);
    uint32_t ftype = dtype == ANV_GGML_F32   ? FTYPE_ALL_F32
                     : dtype == ANV_GGML_F16 ? FTYPE_MOSTLY_F16
                                             : FTYPE_MOSTLY_Q8_0;
    anv_gguf_writer_t *w = NULL;
    int rc = -1;
    if (anv_gguf_writer_create(&w) != 0) return -1;
    if (anv_gguf_add_string(w, "general.architecture", arch, strlen(arch)) != 0 ||
        anv_gguf_add_string(w, "general.name", name, strlen(name)) != 0 ||
        anv_gguf_add_u32(w, "general.file_type", ftype) != 0 ||
        anv_gguf_add_u32(w, "general.quantization_version", 2) != 0 || add_hparams(w, cfg) != 0 ||
        add_vocab(w, tok, cfg->vocab_size, path) != 0 || (chat && add_chat(w, tok, chat) != 0) ||
        add_tensors(w, m, dtype) != 0)
        goto done;
    rc = anv_gguf_write(w, path);
done:
    anv_gguf_writer_free(w);
    return rc;
}

int anv_gguf_export_lora(anv_model_t *m, const char *name, anv_ggml_type_t dtype, const char *path) {
    const anv_lora_config_t *lc = anv_model_lora(m);
    if (!lc) return anv_error("%s: the model has no LoRA adapters to export", path);
    const char *arch = anv_arch_name(anv_model_config(m)->arch);
    const anv_trainable_t *tr = anv_model_trainable(m);
    anv_gguf_writer_t *w = NULL;
    int rc = -1, fallback = 0;
    if (anv_gguf_writer_create(&w) != 0) return -1;
    if (anv_gguf_add_string(w, "general.architecture", arch, strlen(arch)) != 0 ||
        anv_gguf_add_string(w, "general.type", "adapter", 7) != 0 ||
        anv_gguf_add_string(w, "general.name", name, strlen(name)) != 0 ||
        anv_gguf_add_string(w, "adapter.type", "lora", 4) != 0 ||
        anv_gguf_add_f32(w, "adapter.lora.alpha", lc->alpha) != 0)
        goto done;
    for (int i = 0; i < tr->n_tensors; i++)
        if (add_param(w, &tr->tensors[i], tr->params + tr->tensors[i].offset, dtype, &fallback) != 0) goto done;
    rc = anv_gguf_write(w, path);
done:
    anv_gguf_writer_free(w);
    return rc;
}

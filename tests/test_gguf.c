/* GGUF writer/reader, F16 and Q8_0 encodings, the GPT-2 export's names, shapes, layout and vocabulary,
 * and the Hugging Face export/import round trip. (llama.cpp itself loads our files in e2e_export.sh.) */
#include "anvil/gguf.h"
#include "anvil/hf_export.h"
#include "anvil/safetensors.h"
#include "anvil/trainer.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/anvil_test_gguf_XXXXXX";

static const char *tmp_path(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* ---- encodings ---- */

static void test_f16(void) {
    /* Every half converts to a float and back unchanged (NaNs stay NaN). */
    int roundtrip_bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = anv_f16_to_f32((uint16_t)h);
        uint16_t back = anv_f32_to_f16(f);
        int nan = (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu);
        if (nan ? !(f != f) || (back & 0x7c00u) != 0x7c00u || !(back & 0x3ffu) : back != h) roundtrip_bad++;
    }
    CHECK(roundtrip_bad == 0, "%d halves do not survive f16 -> f32 -> f16", roundtrip_bad);

    struct {
        float x;
        uint16_t h;
    } known[] = {
        {1.0f, 0x3c00},
        {-2.0f, 0xc000},
        {65504.0f, 0x7bff},
        {65519.99f, 0x7bff},
        {65520.0f, 0x7c00},
        {5.9604645e-8f, 0x0001} /* 2^-24 */,
        {2.9802322e-8f, 0x0000} /* 2^-25: tie to even 0 */,
        {4.4703484e-8f, 0x0001} /* 1.5 * 2^-25 */,
        {6.1035156e-5f, 0x0400} /* 2^-14 */,
        {1.0009765625f, 0x3c01},
        {1.00048828125f, 0x3c00} /* tie -> even */,
        {1.00146484375f, 0x3c02} /* tie -> even */,
        {-0.0f, 0x8000},
        {1e-10f, 0x0000},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (anv_f32_to_f16(known[i].x) != known[i].h) {
            bad++;
            fprintf(stderr, "  f16(%g) = 0x%04x, expected 0x%04x\n", known[i].x, anv_f32_to_f16(known[i].x),
                    known[i].h);
        }
    CHECK(bad == 0, "%d known conversions wrong", bad);

    /* Random floats over the half range: the result is the nearest half (ties to the even one). */
    anv_rng_t r;
    anv_rng_seed(&r, 7);
    int not_nearest = 0;
    double max_rel = 0;
    for (int i = 0; i < 200000; i++) {
        float x = (float)(ldexp(anv_rng_uniform(&r) * 2 - 1, (int)(anv_rng_u64(&r) % 40) - 24));
        uint16_t h = anv_f32_to_f16(x);
        double err = fabs((double)anv_f16_to_f32(h) - x);
        for (int d = -1; d <= 1; d += 2) {
            uint16_t n = (uint16_t)(h + d);
            if ((n & 0x7c00u) == 0x7c00u || ((n ^ h) & 0x8000u)) continue; /* left the finite range */
            double e2 = fabs((double)anv_f16_to_f32(n) - x);
            if (e2 < err || (e2 == err && (h & 1))) not_nearest++;
        }
        if (fabs(x) >= 6.1035156e-5f) max_rel = fmax(max_rel, err / fabs(x));
    }
    printf(
        "f16: 65536 halves round-trip, %zu known values, 200000 random floats: max rel err %.3g (bound 2^-11 = %.3g)\n",
        sizeof known / sizeof known[0], max_rel, ldexp(1, -11));
    CHECK(not_nearest == 0, "%d conversions are not the nearest half", not_nearest);
    CHECK(max_rel <= ldexp(1, -11), "relative error %g", max_rel);
}

static void test_q8_0(void) {
    enum { N = 32 * 64 };
    float x[N], y[N];
    uint8_t q[N / 32 * 34];
    anv_rng_t r;
    anv_rng_seed(&r, 3);
    for (int i = 0; i < N; i++) x[i] = (float)(anv_rng_normal(&r) * (1 + i / 32));
    for (int i = 64; i < 96; i++) x[i] = 0; /* an all-zero block: d = 0, q = 0 */
    anv_q8_0_quantize(x, N, q);
    anv_q8_0_dequantize(q, N, y);
    /* Per block: |x - d q| <= d/2 from rounding, plus the fp16 rounding of d times |q| <= 127. */
    double worst = 0;
    for (int b = 0; b < N / 32; b++) {
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[b * 32 + i]));
        double d = amax / 127.0, bound = d / 2 + 127 * d * ldexp(1, -11) + 1e-12;
        for (int i = 0; i < 32; i++) worst = fmax(worst, fabs(y[b * 32 + i] - x[b * 32 + i]) / bound);
    }
    int zero_ok = 1;
    for (int i = 64; i < 96; i++) zero_ok &= y[i] == 0;
    /* Layout: fp16 scale then 32 int8; the largest magnitude maps to +-127. */
    float blk[32] = {0};
    blk[0] = 2.54f;
    blk[1] = -1.27f;
    blk[2] = 0.004f; /* 0.2 steps: rounds to 0 */
    uint8_t qb[34];
    anv_q8_0_quantize(blk, 32, qb);
    uint16_t dh;
    memcpy(&dh, qb, 2);
    printf("q8_0: %d blocks, worst error / bound = %.3f; d(2.54) = %.6f, q = %d %d %d\n", N / 32, worst,
           anv_f16_to_f32(dh), (int8_t)qb[2], (int8_t)qb[3], (int8_t)qb[4]);
    CHECK(worst <= 1.0, "Q8_0 error %.3f x bound", worst);
    CHECK(zero_ok, "zero block");
    CHECK(dh == anv_f32_to_f16(0.02f) && (int8_t)qb[2] == 127 && (int8_t)qb[3] == -64 && (int8_t)qb[4] == 0,
          "block layout d=0x%04x q=%d %d %d", dh, (int8_t)qb[2], (int8_t)qb[3], (int8_t)qb[4]);
    CHECK(anv_ggml_nbytes(ANV_GGML_Q8_0, 64) == 68 && anv_ggml_nbytes(ANV_GGML_F16, 3) == 6, "sizes");
}

/* ---- container ---- */

static void *copy_of(const void *p, size_t n) {
    void *q = anv_alloc(n, "test tensor");
    memcpy(q, p, n);
    return q;
}

/* A file with every kind of metadata and three tensors, one per type. */
static int write_sample(const char *path) {
    anv_gguf_writer_t *w;
    if (anv_gguf_writer_create(&w) != 0) return -1;
    const char *strs[3] = {"a", "", "h\xc3\xa9llo"};
    size_t lens[3] = {1, 0, 6};
    int32_t ints[4] = {1, -2, 3, 2147483647};
    float a[3 * 5], b[64 * 2];
    for (int i = 0; i < 15; i++) a[i] = (float)i - 7.5f;
    for (int i = 0; i < 128; i++) b[i] = sinf((float)i);
    uint16_t h[7];
    for (int i = 0; i < 7; i++) h[i] = anv_f32_to_f16((float)i / 4);
    uint8_t q[2 * 2 * 34];
    anv_q8_0_quantize(b, 128, q);
    int rc = anv_gguf_add_string(w, "general.architecture", "test", 4) | anv_gguf_add_u32(w, "t.u32", 4000000000u) |
             anv_gguf_add_i32(w, "t.i32", -5) | anv_gguf_add_f32(w, "t.f32", 1e-5f) |
             anv_gguf_add_bool(w, "t.bool", 1) | anv_gguf_add_strings(w, "t.strs", strs, lens, 3) |
             anv_gguf_add_i32s(w, "t.ints", ints, 4);
    CHECK(anv_gguf_add_u32(w, "t.u32", 1) != 0 && strstr(anv_last_error(), "duplicate"), "duplicate key: %s",
          anv_last_error());
    uint64_t ne_a[2] = {5, 3}, ne_h[1] = {7}, ne_q[2] = {64, 2};
    rc |= anv_gguf_add_tensor(w, "a", ANV_GGML_F32, 2, ne_a, copy_of(a, sizeof a));
    rc |= anv_gguf_add_tensor(w, "h", ANV_GGML_F16, 1, ne_h, copy_of(h, sizeof h));
    rc |= anv_gguf_add_tensor(w, "q", ANV_GGML_Q8_0, 2, ne_q, copy_of(q, sizeof q));
    uint64_t ne_bad[1] = {33};
    CHECK(anv_gguf_add_tensor(w, "bad", ANV_GGML_Q8_0, 1, ne_bad, copy_of(q, 34)) != 0, "Q8_0 with 33 values refused");
    CHECK(anv_gguf_add_tensor(w, "a", ANV_GGML_F32, 2, ne_a, copy_of(a, sizeof a)) != 0, "duplicate tensor refused");
    if (rc == 0) rc = anv_gguf_write(w, path);
    anv_gguf_writer_free(w);
    return rc;
}

static void test_container(void) {
    const char *path = tmp_path("sample.gguf");
    CHECK(write_sample(path) == 0, "write: %s", anv_last_error());
    anv_gguf_t *g;
    if (anv_gguf_open(path, &g) != 0) {
        CHECK(0, "open: %s", anv_last_error());
        return;
    }
    uint32_t u;
    float f;
    const char *s;
    size_t len;
    CHECK(anv_gguf_version(g) == 3 && anv_gguf_alignment(g) == 32 && anv_gguf_n_kv(g) == 7 &&
              anv_gguf_n_tensors(g) == 3,
          "header: version %u, %d kv, %d tensors", anv_gguf_version(g), anv_gguf_n_kv(g), anv_gguf_n_tensors(g));
    CHECK(anv_gguf_get_u32(g, "t.u32", &u) == 0 && u == 4000000000u, "u32");
    CHECK(anv_gguf_get_u32(g, "t.i32", &u) != 0, "negative i32 is not a u32");
    CHECK(anv_gguf_get_f32(g, "t.f32", &f) == 0 && f == 1e-5f, "f32");
    CHECK(anv_gguf_get_string(g, "general.architecture", &s, &len) == 0 && len == 4 && !memcmp(s, "test", 4), "string");
    CHECK(anv_gguf_get_string(g, "t.u32", &s, &len) != 0 && strstr(anv_last_error(), "t.u32"), "type mismatch: %s",
          anv_last_error());
    CHECK(anv_gguf_get_u32(g, "nope", &u) != 0 && strstr(anv_last_error(), "sample.gguf"), "missing key: %s",
          anv_last_error());
    const anv_gguf_kv_t *kv = anv_gguf_find_kv(g, "t.strs");
    const char *ss[3];
    size_t ls[3];
    if (kv && kv->type == ANV_GGUF_ARRAY && kv->arr_type == ANV_GGUF_STRING && kv->n == 3) {
        anv_gguf_array_strings(kv, ss, ls);
        CHECK(ls[0] == 1 && ls[1] == 0 && ls[2] == 6 && !memcmp(ss[2], "h\xc3\xa9llo", 6), "string array");
    } else {
        CHECK(0, "string array missing");
    }
    kv = anv_gguf_find_kv(g, "t.ints");
    CHECK(kv && kv->n == 4 && anv_gguf_array_number(kv, 1) == -2 && anv_gguf_array_number(kv, 3) == 2147483647,
          "i32 array");
    kv = anv_gguf_find_kv(g, "t.bool");
    CHECK(kv && kv->type == ANV_GGUF_BOOL && kv->value[0] == 1, "bool");

    const anv_gguf_tensor_t *a = anv_gguf_find_tensor(g, "a"), *h = anv_gguf_find_tensor(g, "h"),
                            *q = anv_gguf_find_tensor(g, "q");
    CHECK(a && a->n_dims == 2 && a->ne[0] == 5 && a->ne[1] == 3 && a->type == ANV_GGML_F32, "tensor a info");
    CHECK(h && h->numel == 7 && h->type == ANV_GGML_F16 && q && q->type == ANV_GGML_Q8_0 && q->nbytes == 136,
          "tensor h/q info");
    if (a && h && q) {
        float buf[128];
        anv_gguf_tensor_to_f32(a, buf);
        CHECK(buf[0] == -7.5f && buf[14] == 6.5f, "f32 data");
        anv_gguf_tensor_to_f32(h, buf);
        CHECK(buf[6] == 1.5f, "f16 data %g", buf[6]);
        anv_gguf_tensor_to_f32(q, buf);
        double err = 0;
        for (int i = 0; i < 128; i++) err = fmax(err, fabs(buf[i] - sinf((float)i)));
        CHECK(err < 1.0 / 127, "q8_0 data err %g", err);
        const uint8_t *base = (const uint8_t *)a->data;
        CHECK(((const uint8_t *)h->data - base) % 32 == 0 && ((const uint8_t *)q->data - base) % 32 == 0,
              "tensor data 32-byte aligned");
    }
    anv_gguf_close(g);
}

/* Hostile images: every truncation, and single corruptions, fail with the file named; none crash. */
static void test_bad_files(void) {
    char *img;
    size_t n;
    if (anv_read_file(tmp_path("sample.gguf"), &img, &n) != 0) {
        CHECK(0, "read sample: %s", anv_last_error());
        return;
    }
    anv_gguf_t *g;
    int accepted = 0, unnamed = 0;
    /* The last tensor's trailing alignment padding is not needed, so stop before its data ends. */
    for (size_t len = 0; len < n - 32; len++) {
        if (anv_gguf_parse(img, len, "cut.gguf", &g) == 0) {
            accepted++;
            anv_gguf_close(g);
        } else if (!strstr(anv_last_error(), "cut.gguf")) {
            unnamed++;
        }
    }
    printf("truncation: %zu prefixes tried, %d accepted, %d errors without the file name; last: %s\n", n - 32, accepted,
           unnamed, anv_last_error());
    CHECK(accepted == 0 && unnamed == 0, "truncated files");

    struct {
        size_t at;
        uint8_t byte;
        const char *expect;
    } bad[] = {
        {0, 'X', "bad magic"},
        {4, 9, "version"},
        {8, 0xff, "cannot fit"},           /* tensor count */
        {24 + 8, 'x', "bad metadata key"}, /* first key byte 'g' -> 'x' is fine; length is at 24 */
    };
    bad[3].at = 24;
    bad[3].byte = 0; /* key length 20 -> 0 */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *c = copy_of(img, n);
        c[bad[i].at] = (char)bad[i].byte;
        int rc = anv_gguf_parse(c, n, "bad.gguf", &g);
        CHECK(rc != 0 && strstr(anv_last_error(), bad[i].expect) && strstr(anv_last_error(), "bad.gguf"),
              "corruption %zu: %s", i, rc ? anv_last_error() : "accepted");
        if (rc == 0) anv_gguf_close(g);
        anv_free(c);
    }

    /* A tensor offset that is not aligned, one past the end, and a duplicated tensor name: written by
     * hand to reach exactly the checks. */
    for (int variant = 0; variant < 3; variant++) {
        anv_buf_t b = {0};
        uint32_t v32;
        uint64_t v64;
        anv_buf_append(&b, "GGUF", 4);
        v32 = 3, anv_buf_append(&b, &v32, 4);
        v64 = 2, anv_buf_append(&b, &v64, 8);
        v64 = 0, anv_buf_append(&b, &v64, 8);
        for (int t = 0; t < 2; t++) {
            const char *name = variant == 2 ? "w" : t ? "v" : "w";
            v64 = 1, anv_buf_append(&b, &v64, 8);
            anv_buf_append(&b, name, 1);
            v32 = 1, anv_buf_append(&b, &v32, 4);
            v64 = 4, anv_buf_append(&b, &v64, 8);
            v32 = ANV_GGML_F32, anv_buf_append(&b, &v32, 4);
            v64 = t == 0 ? 0 : variant == 0 ? 16 : variant == 1 ? 64 : 32;
            anv_buf_append(&b, &v64, 8);
        }
        while (b.len % 32) anv_buf_append(&b, "", 1);
        for (int i = 0; i < 48; i++) anv_buf_append(&b, "\0", 1);
        const char *expect[3] = {"alignment", "truncated", "duplicate tensor"};
        int rc = anv_gguf_parse(b.data, b.len, "hand.gguf", &g);
        CHECK(rc != 0 && strstr(anv_last_error(), expect[variant]), "variant %d: %s", variant,
              rc ? anv_last_error() : "accepted");
        if (rc == 0) anv_gguf_close(g);
        anv_buf_free(&b);
    }
    anv_free(img);
}

/* ---- the GPT-2 export ---- */

/* A tokenizer with 2 merges ("t"+"h", "th"+"e") and two specials. */
static int make_tokenizer(anv_tokenizer_t **tok) {
    const uint32_t merges[2][2] = {{'t', 'h'}, {256, 'e'}};
    const char *specials[2] = {"<|endoftext|>", "<|pad|>"};
    return anv_tokenizer_create(ANV_PRETOK_GPT2, merges, 2, specials, 2, tok);
}

/* A model of cfg, initialised, with non-trivial norms and biases, so that a mix-up of tensors shows. */
static int make_from(const anv_config_t *cfg, anv_model_t **m) {
    if (anv_model_create(cfg, m) != 0) return -1;
    anv_model_init(*m, 11);
    float *p = anv_model_params(*m);
    for (int i = 0; i < anv_model_n_tensors(*m); i++) {
        const anv_param_t *t = anv_model_tensor(*m, i);
        if (t->ndim == 1)
            for (size_t k = 0; k < t->numel; k++) p[t->offset + k] = 0.5f + 0.001f * (float)(k % 97) + (float)i;
    }
    return 0;
}

/* A GPT-2 over the tokenizer's vocabulary. */
static int make_model(int n_embd, anv_model_t **m, anv_tokenizer_t **tok) {
    if (make_tokenizer(tok) != 0) return -1;
    anv_config_t cfg = anv_config_gpt2(2, 2, n_embd, (int)anv_tokenizer_vocab_size(*tok), 16);
    return make_from(&cfg, m);
}

/* A Llama over the tokenizer's vocabulary with grouped-query attention (4 query heads, 2 key/value
 * heads, head size 16), a tied or untied head, with or without Llama 3 RoPE scaling. */
static int make_llama(int tied, int scaled, anv_model_t **m, anv_tokenizer_t **tok) {
    if (make_tokenizer(tok) != 0) return -1;
    anv_config_t cfg = anv_config_llama(2, 4, 2, 64, 160, (int)anv_tokenizer_vocab_size(*tok), 32);
    cfg.tie_embeddings = tied;
    if (scaled) cfg.rope_scaling = (anv_rope_scaling_t){1, 4.0f, 1.0f, 4.0f, 16};
    return make_from(&cfg, m);
}

static const anv_param_t *param(anv_model_t *m, const char *name) {
    for (int i = 0; i < anv_model_n_tensors(m); i++)
        if (!strcmp(anv_model_tensor(m, i)->name, name)) return anv_model_tensor(m, i);
    return NULL;
}

/* Checks every tensor of the file against the model: name, ne, type, and values (transposed for
 * Conv1D weights) within the given relative error; returns the worst relative error. */
static double compare_tensors(const anv_gguf_t *g, anv_model_t *m, anv_ggml_type_t dtype, int *checked) {
    static const char *const layer_names[][3] = {
        {"ln_1.weight", "attn_norm.weight", "0"},          {"ln_1.bias", "attn_norm.bias", "0"},
        {"attn.c_attn.weight", "attn_qkv.weight", "1"},    {"attn.c_attn.bias", "attn_qkv.bias", "0"},
        {"attn.c_proj.weight", "attn_output.weight", "1"}, {"attn.c_proj.bias", "attn_output.bias", "0"},
        {"ln_2.weight", "ffn_norm.weight", "0"},           {"ln_2.bias", "ffn_norm.bias", "0"},
        {"mlp.c_fc.weight", "ffn_up.weight", "1"},         {"mlp.c_fc.bias", "ffn_up.bias", "0"},
        {"mlp.c_proj.weight", "ffn_down.weight", "1"},     {"mlp.c_proj.bias", "ffn_down.bias", "0"},
    };
    const anv_config_t *c = anv_model_config(m);
    double worst = 0;
    *checked = 0;
    for (int i = 0; i < c->n_layer * 12 + 4; i++) {
        char hf[96], gg[96];
        int conv = 0;
        if (i < c->n_layer * 12) {
            snprintf(hf, sizeof hf, "transformer.h.%d.%s", i / 12, layer_names[i % 12][0]);
            snprintf(gg, sizeof gg, "blk.%d.%s", i / 12, layer_names[i % 12][1]);
            conv = layer_names[i % 12][2][0] == '1';
        } else {
            const char *pairs[4][2] = {{"transformer.wte.weight", "token_embd.weight"},
                                       {"transformer.wpe.weight", "position_embd.weight"},
                                       {"transformer.ln_f.weight", "output_norm.weight"},
                                       {"transformer.ln_f.bias", "output_norm.bias"}};
            snprintf(hf, sizeof hf, "%s", pairs[i - c->n_layer * 12][0]);
            snprintf(gg, sizeof gg, "%s", pairs[i - c->n_layer * 12][1]);
        }
        const anv_param_t *p = param(m, hf);
        const anv_gguf_tensor_t *t = anv_gguf_find_tensor(g, gg);
        if (!p || !t) {
            CHECK(0, "tensor %s / %s missing", hf, gg);
            continue;
        }
        /* ggml order: ne[0] is the row length: (out, in) for Conv1D, (rows, C) for embeddings. */
        uint64_t rows = p->ndim == 2 ? (uint64_t)p->shape[conv] : 1,
                 cols = p->ndim == 2 ? (uint64_t)p->shape[!conv] : p->numel;
        anv_ggml_type_t want = p->ndim == 1 ? ANV_GGML_F32 : dtype == ANV_GGML_Q8_0 && cols % 32 ? ANV_GGML_F16 : dtype;
        CHECK(t->n_dims == p->ndim && t->ne[0] == cols && (p->ndim == 1 || t->ne[1] == rows) && t->type == want,
              "%s: dims %d ne [%llu, %llu] type %s", gg, t->n_dims, (unsigned long long)t->ne[0],
              (unsigned long long)t->ne[1], anv_ggml_type_name(t->type));
        if (t->numel != p->numel) continue;
        float *y = anv_alloc(t->numel * sizeof *y, "test"), *x = anv_model_params(m) + p->offset;
        anv_gguf_tensor_to_f32(t, y);
        double num = 0, den = 0;
        for (uint64_t r = 0; r < rows; r++)
            for (uint64_t k = 0; k < cols; k++) {
                float ref = conv ? x[k * rows + r] : x[r * cols + k];
                num = fmax(num, fabs(y[r * cols + k] - ref));
                den = fmax(den, fabs(ref));
            }
        worst = fmax(worst, num / den);
        (*checked)++;
        anv_free(y);
    }
    CHECK(anv_gguf_find_tensor(g, "output.weight") == NULL, "head stays tied (no output.weight)");
    return worst;
}

static void test_export(void) {
    anv_model_t *m = NULL;
    anv_tokenizer_t *tok = NULL;
    if (make_model(64, &m, &tok) != 0) {
        CHECK(0, "model: %s", anv_last_error());
        return;
    }
    const anv_config_t *c = anv_model_config(m);
    const char *path = tmp_path("gpt2.gguf");
    CHECK(anv_gguf_export(m, tok, "tiny", ANV_GGML_F32, path, NULL) == 0, "export: %s", anv_last_error());
    anv_gguf_t *g;
    if (anv_gguf_open(path, &g) != 0) {
        CHECK(0, "reopen: %s", anv_last_error());
        goto out;
    }
    const char *s;
    size_t len;
    uint32_t u;
    float eps;
    CHECK(anv_gguf_get_string(g, "general.architecture", &s, &len) == 0 && len == 4 && !memcmp(s, "gpt2", 4), "arch");
    CHECK(anv_gguf_get_string(g, "general.name", &s, &len) == 0 && len == 4 && !memcmp(s, "tiny", 4), "name");
    CHECK(anv_gguf_get_u32(g, "gpt2.context_length", &u) == 0 && u == 16, "context_length");
    CHECK(anv_gguf_get_u32(g, "gpt2.embedding_length", &u) == 0 && u == 64, "embedding_length");
    CHECK(anv_gguf_get_u32(g, "gpt2.feed_forward_length", &u) == 0 && u == 256, "feed_forward_length");
    CHECK(anv_gguf_get_u32(g, "gpt2.block_count", &u) == 0 && u == 2, "block_count");
    CHECK(anv_gguf_get_u32(g, "gpt2.attention.head_count", &u) == 0 && u == 2, "head_count");
    CHECK(anv_gguf_get_f32(g, "gpt2.attention.layer_norm_epsilon", &eps) == 0 && eps == 1e-5f, "eps");
    CHECK(anv_gguf_get_u32(g, "general.file_type", &u) == 0 && u == 0, "file_type");
    CHECK(anv_gguf_get_string(g, "tokenizer.ggml.model", &s, &len) == 0 && len == 4 && !memcmp(s, "gpt2", 4),
          "tok model");
    CHECK(anv_gguf_get_string(g, "tokenizer.ggml.pre", &s, &len) == 0 && len == 5 && !memcmp(s, "gpt-2", 5), "pre");
    CHECK(anv_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u) == 0 && u == 258 &&
              anv_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u) == 0 && u == 258,
          "bos/eos = end-of-text (258)");

    /* Vocabulary: 256 bytes in byte-to-unicode form, merges, specials verbatim as control tokens. */
    const anv_gguf_kv_t *tk = anv_gguf_find_kv(g, "tokenizer.ggml.tokens"),
                        *ty = anv_gguf_find_kv(g, "tokenizer.ggml.token_type"),
                        *mg = anv_gguf_find_kv(g, "tokenizer.ggml.merges");
    if (tk && ty && mg && tk->n == 260 && ty->n == 260 && mg->n == 2) {
        const char *strs[260];
        size_t lens[260];
        anv_gguf_array_strings(tk, strs, lens);
        CHECK(lens[' '] == 2 && !memcmp(strs[' '], "\xc4\xa0", 2), "space is U+0120 'Ġ'");
        CHECK(lens['\n'] == 2 && !memcmp(strs['\n'], "\xc4\x8a", 2), "newline is U+010A 'Ċ'");
        CHECK(lens['a'] == 1 && strs['a'][0] == 'a', "printable ASCII unchanged");
        CHECK(lens[0xff] == 2 && !memcmp(strs[0xff], "\xc3\xbf", 2), "byte 0xff is U+00FF");
        CHECK(lens[257] == 3 && !memcmp(strs[257], "the", 3), "merged token");
        CHECK(lens[258] == 13 && !memcmp(strs[258], "<|endoftext|>", 13), "special verbatim");
        CHECK(anv_gguf_array_number(ty, 'a') == 1 && anv_gguf_array_number(ty, 257) == 1 &&
                  anv_gguf_array_number(ty, 258) == 3 && anv_gguf_array_number(ty, 259) == 3,
              "token types normal/control");
        anv_gguf_array_strings(mg, strs, lens);
        CHECK(lens[0] == 3 && !memcmp(strs[0], "t h", 3) && lens[1] == 4 && !memcmp(strs[1], "th e", 4), "merges");
    } else {
        CHECK(0, "vocabulary arrays: %llu tokens, %llu merges", tk ? (unsigned long long)tk->n : 0ull,
              mg ? (unsigned long long)mg->n : 0ull);
    }
    int checked;
    double err = compare_tensors(g, m, ANV_GGML_F32, &checked);
    printf("gguf export f32: %d tensors (vocab %d of padded %d rows, C=%d) compared, max rel err %.3g\n", checked,
           c->vocab_size, anv_config_padded_vocab(c), c->n_embd, err);
    CHECK(checked == 2 * 12 + 4 && err == 0, "f32 export is exact");
    anv_gguf_close(g);

    /* f16 and q8_0: the same layout, errors within the encodings' bounds. */
    anv_ggml_type_t types[2] = {ANV_GGML_F16, ANV_GGML_Q8_0};
    double bounds[2] = {ldexp(1, -11), 0.5 / 127 + 1e-3};
    for (int k = 0; k < 2; k++) {
        CHECK(anv_gguf_export(m, tok, "tiny", types[k], path, NULL) == 0, "export: %s", anv_last_error());
        if (anv_gguf_open(path, &g) != 0) {
            CHECK(0, "reopen: %s", anv_last_error());
            continue;
        }
        err = compare_tensors(g, m, types[k], &checked);
        CHECK(anv_gguf_get_u32(g, "general.file_type", &u) == 0 && u == (k ? 7u : 1u), "file_type %u", u);
        printf("gguf export %s: %d tensors, max rel err %.3g (bound %.3g)\n", anv_ggml_type_name(types[k]), checked,
               err, bounds[k]);
        CHECK(err <= bounds[k] && err > 0, "%s error %g", anv_ggml_type_name(types[k]), err);
        anv_gguf_close(g);
    }
out:
    anv_model_free(m);
    anv_tokenizer_free(tok);

    /* n_embd = 48: rows of 48 values cannot be Q8_0; those weights fall back to F16. */
    if (make_model(48, &m, &tok) == 0 && anv_gguf_export(m, tok, "odd", ANV_GGML_Q8_0, path, NULL) == 0 &&
        anv_gguf_open(path, &g) == 0) {
        const anv_gguf_tensor_t *qkv = anv_gguf_find_tensor(g, "blk.0.attn_qkv.weight"),
                                *down = anv_gguf_find_tensor(g, "blk.0.ffn_down.weight");
        CHECK(qkv && qkv->type == ANV_GGML_F16 && down && down->type == ANV_GGML_Q8_0,
              "Q8_0 fallback to F16 for ne[0]=48");
        double e = compare_tensors(g, m, ANV_GGML_Q8_0, &checked);
        CHECK(e <= bounds[1], "fallback error %g", e);
        anv_gguf_close(g);
    } else {
        CHECK(0, "odd model export: %s", anv_last_error());
    }
    /* A model vocabulary larger than the tokenizer's: the extra ids become unused tokens. */
    anv_config_t wide = *anv_model_config(m);
    wide.vocab_size = 270;
    anv_model_t *m3 = NULL;
    if (anv_model_create(&wide, &m3) == 0 && anv_gguf_export(m3, tok, "wide", ANV_GGML_F32, path, NULL) == 0 &&
        anv_gguf_open(path, &g) == 0) {
        const anv_gguf_kv_t *tk = anv_gguf_find_kv(g, "tokenizer.ggml.tokens"),
                            *ty = anv_gguf_find_kv(g, "tokenizer.ggml.token_type");
        const anv_gguf_tensor_t *e = anv_gguf_find_tensor(g, "token_embd.weight");
        const char *strs[270];
        size_t lens[270];
        int ok = tk && ty && e && tk->n == 270 && ty->n == 270 && e->ne[1] == 270;
        if (ok) anv_gguf_array_strings(tk, strs, lens);
        CHECK(ok && lens[265] == 11 && !memcmp(strs[265], "[UNUSED265]", 11) && anv_gguf_array_number(ty, 265) == 5 &&
                  anv_gguf_array_number(ty, 259) == 3,
              "ids past the tokenizer exported as unused tokens");
        anv_gguf_close(g);
    } else {
        CHECK(0, "wide export: %s", anv_last_error());
    }
    anv_model_free(m3);
    /* cl100k's pattern maps to llama.cpp's "dbrx" pre-tokenizer (the same split regex). */
    anv_tokenizer_t *cl = NULL;
    const char *eot[1] = {"<|endoftext|>"};
    if (anv_tokenizer_create(ANV_PRETOK_CL100K, NULL, 0, eot, 1, &cl) == 0 &&
        anv_gguf_export(m, cl, "cl", ANV_GGML_F32, path, NULL) == 0 && anv_gguf_open(path, &g) == 0) {
        CHECK(anv_gguf_get_string(g, "tokenizer.ggml.pre", &s, &len) == 0 && len == 4 && !memcmp(s, "dbrx", 4),
              "cl100k -> dbrx");
        anv_gguf_close(g);
    } else {
        CHECK(0, "cl100k export: %s", anv_last_error());
    }
    anv_tokenizer_free(cl);
    /* A chat template: its Jinja form, and the token that ends a reply when the tokenizer has it as one
     * (chatml's <|im_end|>); plain ends with the end-of-text token. */
    const char *chat_specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    anv_tokenizer_t *ct = NULL;
    if (anv_tokenizer_create(ANV_PRETOK_GPT2, NULL, 0, chat_specials, 3, &ct) == 0 &&
        anv_gguf_export(m, ct, "chat", ANV_GGML_F32, path, anv_chat_template_builtin("chatml")) == 0 &&
        anv_gguf_open(path, &g) == 0) {
        uint32_t id = 0;
        CHECK(anv_gguf_get_string(g, "tokenizer.chat_template", &s, &len) == 0 &&
                  len == strlen(anv_chat_template_jinja(anv_chat_template_builtin("chatml"))) &&
                  !memcmp(s, anv_chat_template_jinja(anv_chat_template_builtin("chatml")), len),
              "tokenizer.chat_template");
        CHECK(anv_gguf_get_u32(g, "tokenizer.ggml.eot_token_id", &id) == 0 && id == anv_tokenizer_special(ct, 2),
              "eot_token_id is <|im_end|>: %u", id);
        printf("gguf chat template: %zu bytes of Jinja, eot_token_id %u (<|im_end|>)\n", len, id);
        anv_gguf_close(g);
    } else {
        CHECK(0, "chat export: %s", anv_last_error());
    }
    anv_tokenizer_free(ct);
    /* A tokenizer larger than the model's vocabulary cannot be exported. */
    anv_config_t small = *anv_model_config(m);
    small.vocab_size = 100;
    anv_model_t *m2;
    if (anv_model_create(&small, &m2) == 0) {
        CHECK(anv_gguf_export(m2, tok, "x", ANV_GGML_F32, path, NULL) != 0 && strstr(anv_last_error(), "tokenizer has"),
              "vocab mismatch: %s", anv_last_error());
        anv_model_free(m2);
    }
    CHECK(anv_gguf_export(m, tok, "x", ANV_GGML_F32, "/nonexistent-dir/x.gguf", NULL) != 0 &&
              strstr(anv_last_error(), "/nonexistent-dir/x.gguf"),
          "unwritable output: %s", anv_last_error());
    anv_model_free(m);
    anv_tokenizer_free(tok);
}

/* ---- the Llama export ---- */

/* A Llama layer's tensors: Hugging Face name, llama.cpp name, and the heads whose rows llama.cpp's
 * RoPE order permutes ('q': the query heads, 'k': the key/value heads). */
static const struct {
    const char *hf, *gguf;
    char rope;
} llama_layer[] = {
    {"input_layernorm.weight", "attn_norm.weight", 0},    {"self_attn.q_proj.weight", "attn_q.weight", 'q'},
    {"self_attn.k_proj.weight", "attn_k.weight", 'k'},    {"self_attn.v_proj.weight", "attn_v.weight", 0},
    {"self_attn.o_proj.weight", "attn_output.weight", 0}, {"post_attention_layernorm.weight", "ffn_norm.weight", 0},
    {"mlp.gate_proj.weight", "ffn_gate.weight", 0},       {"mlp.up_proj.weight", "ffn_up.weight", 0},
    {"mlp.down_proj.weight", "ffn_down.weight", 0},
};
enum { LLAMA_LAYER = sizeof llama_layer / sizeof llama_layer[0] };

/* Checks every tensor of a Llama export against the model: name, ne = [in, out], type, and the values
 * read back with anvil's reader, the rows of q and k un-permuted (llama.cpp's row 2i + j of a head is
 * Hugging Face's row j hs/2 + i); output.weight exactly when the head is untied, rope_freqs.weight
 * exactly with scaling, nothing else. Returns the worst relative error. */
static double compare_llama(const anv_gguf_t *g, anv_model_t *m, anv_ggml_type_t dtype, int *checked) {
    const anv_config_t *c = anv_model_config(m);
    static const char *const globals[3][2] = {{"model.embed_tokens.weight", "token_embd.weight"},
                                              {"model.norm.weight", "output_norm.weight"},
                                              {"lm_head.weight", "output.weight"}};
    double worst = 0;
    *checked = 0;
    for (int i = 0; i < c->n_layer * LLAMA_LAYER + 3; i++) {
        char hf[96], gg[96];
        int heads = 0;
        if (i < c->n_layer * LLAMA_LAYER) {
            int l = i / LLAMA_LAYER, k = i % LLAMA_LAYER;
            snprintf(hf, sizeof hf, "model.layers.%d.%s", l, llama_layer[k].hf);
            snprintf(gg, sizeof gg, "blk.%d.%s", l, llama_layer[k].gguf);
            heads = llama_layer[k].rope == 'q' ? c->n_head : llama_layer[k].rope == 'k' ? c->n_kv_head : 0;
        } else {
            snprintf(hf, sizeof hf, "%s", globals[i - c->n_layer * LLAMA_LAYER][0]);
            snprintf(gg, sizeof gg, "%s", globals[i - c->n_layer * LLAMA_LAYER][1]);
        }
        const anv_param_t *p = param(m, hf);
        const anv_gguf_tensor_t *t = anv_gguf_find_tensor(g, gg);
        if (!strcmp(gg, "output.weight") && c->tie_embeddings) {
            CHECK(!p && !t, "tied head: no %s in the model, no %s in the file", hf, gg);
            continue;
        }
        if (!p || !t) {
            CHECK(0, "tensor %s / %s missing", hf, gg);
            continue;
        }
        /* nn.Linear (out, in) is llama.cpp's layout already: ne = [in, out]. */
        uint64_t rows = p->ndim == 2 ? (uint64_t)p->shape[0] : 1,
                 cols = p->ndim == 2 ? (uint64_t)p->shape[1] : p->numel;
        anv_ggml_type_t want = p->ndim == 1 ? ANV_GGML_F32 : dtype;
        CHECK(t->n_dims == p->ndim && t->ne[0] == cols && (p->ndim == 1 || t->ne[1] == rows) && t->type == want,
              "%s: dims %d ne [%llu, %llu] type %s", gg, t->n_dims, (unsigned long long)t->ne[0],
              (unsigned long long)t->ne[1], anv_ggml_type_name(t->type));
        if (t->numel != p->numel) continue;
        float *y = anv_alloc(t->numel * sizeof *y, "test"), *back = anv_alloc(t->numel * sizeof *back, "test");
        anv_gguf_tensor_to_f32(t, y);
        uint64_t hs = heads ? rows / (uint64_t)heads : 0;
        for (uint64_t r = 0; r < rows; r++) {
            uint64_t hf_row = heads ? r / hs * hs + r % 2 * (hs / 2) + r % hs / 2 : r;
            memcpy(back + hf_row * cols, y + r * cols, cols * sizeof *y);
        }
        worst = fmax(worst, check_rel_err(back, anv_model_params(m) + p->offset, p->numel));
        (*checked)++;
        anv_free(y);
        anv_free(back);
    }
    int expected = c->n_layer * LLAMA_LAYER + 2 + !c->tie_embeddings + c->rope_scaling.llama3;
    CHECK(anv_gguf_n_tensors(g) == expected, "%d tensors in the file, expected %d", anv_gguf_n_tensors(g), expected);
    CHECK(!anv_gguf_find_tensor(g, "rope_freqs.weight") == !c->rope_scaling.llama3,
          "rope_freqs.weight exactly with RoPE scaling");
    return worst;
}

static void test_export_llama(void) {
    anv_model_t *m = NULL;
    anv_tokenizer_t *tok = NULL;
    anv_gguf_t *g;
    const char *path = tmp_path("llama.gguf");
    /* Untied, no scaling: the hyperparameters, then every tensor in f32 (exact), f16 and q8_0. */
    if (make_llama(0, 0, &m, &tok) != 0) {
        CHECK(0, "llama model: %s", anv_last_error());
        return;
    }
    anv_ggml_type_t types[3] = {ANV_GGML_F32, ANV_GGML_F16, ANV_GGML_Q8_0};
    double bounds[3] = {0, ldexp(1, -11), 0.5 / 127 + 1e-3};
    for (int k = 0; k < 3; k++) {
        if (anv_gguf_export(m, tok, "llama-test", types[k], path, NULL) != 0 || anv_gguf_open(path, &g) != 0) {
            CHECK(0, "llama export %s: %s", anv_ggml_type_name(types[k]), anv_last_error());
            continue;
        }
        if (k == 0) {
            const char *s;
            size_t len;
            static const struct {
                const char *key;
                uint32_t v;
            } u32s[] = {{"llama.context_length", 32},         {"llama.embedding_length", 64},
                        {"llama.feed_forward_length", 160},   {"llama.block_count", 2},
                        {"llama.attention.head_count", 4},    {"llama.attention.head_count_kv", 2},
                        {"llama.rope.dimension_count", 16},   {"tokenizer.ggml.bos_token_id", 258},
                        {"tokenizer.ggml.eos_token_id", 258}, {"general.file_type", 0}};
            for (size_t i = 0; i < sizeof u32s / sizeof u32s[0]; i++) {
                uint32_t u = 0;
                CHECK(anv_gguf_get_u32(g, u32s[i].key, &u) == 0 && u == u32s[i].v, "%s = %u, expected %u", u32s[i].key,
                      u, u32s[i].v);
            }
            float eps = 0, base = 0;
            CHECK(anv_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps) == 0 && eps == 1e-5f,
                  "rms epsilon %g", eps);
            CHECK(anv_gguf_get_f32(g, "llama.rope.freq_base", &base) == 0 && base == 10000.0f, "freq_base %g", base);
            CHECK(anv_gguf_get_string(g, "general.architecture", &s, &len) == 0 && len == 5 && !memcmp(s, "llama", 5),
                  "architecture llama");
            CHECK(anv_gguf_get_string(g, "tokenizer.ggml.model", &s, &len) == 0 && len == 4 && !memcmp(s, "gpt2", 4),
                  "tokenizer model gpt2");
            CHECK(!anv_gguf_find_kv(g, "llama.attention.layer_norm_epsilon") &&
                      !anv_gguf_find_kv(g, "gpt2.context_length"),
                  "no GPT-2 keys");
        }
        int checked;
        double err = compare_llama(g, m, types[k], &checked);
        printf("gguf llama export %s (untied): %d tensors compared after un-permuting q/k, max rel err %.3g (bound "
               "%.3g)\n",
               anv_ggml_type_name(types[k]), checked, err, bounds[k]);
        CHECK(checked == 2 * LLAMA_LAYER + 3 && err <= bounds[k] && (k == 0 || err > 0), "%s: %d tensors, error %g",
              anv_ggml_type_name(types[k]), checked, err);
        anv_gguf_close(g);
    }
    anv_model_free(m);
    anv_tokenizer_free(tok);

    /* Tied with Llama 3 scaling: no output.weight; rope_freqs.weight holds convert_hf_to_gguf.py's
     * factors (1 for wavelengths below original_max / high_freq_factor, factor above original_max /
     * low_freq_factor, 1 / ((1 - s) / factor + s) between), here computed in double. */
    if (make_llama(1, 1, &m, &tok) != 0 || anv_gguf_export(m, tok, "llama-tied", ANV_GGML_F32, path, NULL) != 0 ||
        anv_gguf_open(path, &g) != 0) {
        CHECK(0, "tied llama export: %s", anv_last_error());
    } else {
        int checked;
        double err = compare_llama(g, m, ANV_GGML_F32, &checked);
        CHECK(checked == 2 * LLAMA_LAYER + 2 && err == 0, "tied: %d tensors, error %g", checked, err);
        const anv_gguf_tensor_t *f = anv_gguf_find_tensor(g, "rope_freqs.weight");
        double ferr = 1;
        if (f && f->type == ANV_GGML_F32 && f->n_dims == 1 && f->ne[0] == 8) {
            float got[8];
            anv_gguf_tensor_to_f32(f, got);
            ferr = 0;
            for (int i = 0; i < 8; i++) {
                double freq = pow(10000.0, -2.0 * i / 16), wavelen = 2 * M_PI / freq, want;
                if (wavelen < 16 / 4.0)
                    want = 1;
                else if (wavelen > 16 / 1.0)
                    want = 4;
                else {
                    double smooth = (16 / wavelen - 1) / (4 - 1);
                    want = 1 / ((1 - smooth) / 4 + smooth);
                }
                ferr = fmax(ferr, fabs(got[i] - want) / want);
            }
            printf("gguf llama export (tied, llama3 scaling): %d tensors exact, no output.weight; rope_freqs %g %g ... "
                   "%g, max rel err %.3g against the formula\n",
                   checked, got[0], got[1], got[7], ferr);
        }
        CHECK(ferr < 1e-6, "rope_freqs.weight: F32 of 8 factors, error %g", ferr);
        anv_gguf_close(g);
    }
    anv_model_free(m);
    anv_tokenizer_free(tok);
}

/* ---- Hugging Face layout ---- */

static int params_equal(anv_model_t *a, anv_model_t *b) {
    for (int i = 0; i < anv_model_n_tensors(a); i++) {
        const anv_param_t *p = anv_model_tensor(a, i), *q = param(b, p->name);
        if (!q || q->numel != p->numel ||
            memcmp(anv_model_params(a) + p->offset, anv_model_params(b) + q->offset, p->numel * 4) != 0)
            return 0;
    }
    return 1;
}

/* Writes model.safetensors of m under unprefixed names plus lm_head.weight (= wte, or perturbed)
 * and the attention-mask buffers older GPT-2 checkpoints carry. */
static int write_unprefixed(anv_model_t *m, const char *path, int perturb_head) {
    int n = anv_model_n_tensors(m);
    anv_st_write_t *t = anv_calloc((size_t)(n + 2) * sizeof *t, "test");
    float *head = NULL, mask[4] = {1, 0, 1, 1};
    for (int i = 0; i < n; i++) {
        const anv_param_t *p = anv_model_tensor(m, i);
        t[i].name = p->name + strlen("transformer.");
        t[i].ndim = p->ndim;
        for (int d = 0; d < p->ndim; d++) t[i].shape[d] = p->shape[d];
        t[i].data = anv_model_params(m) + p->offset;
        if (!strcmp(p->name, "transformer.wte.weight")) {
            head = anv_alloc(p->numel * 4, "test");
            memcpy(head, t[i].data, p->numel * 4);
            head[3] += (float)perturb_head;
            t[n] = t[i];
            t[n].name = "lm_head.weight";
            t[n].data = head;
        }
    }
    t[n + 1] = (anv_st_write_t){"h.0.attn.bias", 4, {1, 1, 2, 2}, mask};
    static const char *const meta[2] = {"format", "pt"};
    int rc = anv_safetensors_write_f32(path, t, n + 2, meta, 1);
    anv_free(head);
    anv_free(t);
    return rc;
}

static void test_hf(void) {
    anv_model_t *m = NULL, *back = NULL;
    anv_tokenizer_t *tok = NULL, *tok2 = NULL;
    if (make_model(64, &m, &tok) != 0) {
        CHECK(0, "model: %s", anv_last_error());
        return;
    }
    char hf[300], run[300], path[400];
    snprintf(hf, sizeof hf, "%s", tmp_path("hf"));
    CHECK(anv_hf_export(m, tok, hf) == 0, "hf export: %s", anv_last_error());
    snprintf(path, sizeof path, "%s/config.json", hf);
    anv_json_doc_t *doc;
    if (anv_json_parse_file(path, &doc) == 0) {
        const anv_json_t *r = anv_json_root(doc), *v;
        long long x;
        CHECK(anv_json_get_int(r, "n_positions", path, &x) == 0 && x == 16, "n_positions");
        CHECK(anv_json_get_int(r, "n_ctx", path, &x) == 0 && x == 16, "n_ctx");
        CHECK(anv_json_get_int(r, "eos_token_id", path, &x) == 0 && x == 258, "eos_token_id");
        CHECK((v = anv_json_get(r, "architectures")) && v->type == ANV_JSON_ARRAY && v->len == 1 &&
                  !strcmp(v->items[0].str, "GPT2LMHeadModel"),
              "architectures");
        CHECK((v = anv_json_get(r, "tie_word_embeddings")) && v->type == ANV_JSON_BOOL && v->boolean, "tied");
        anv_json_free(doc);
    } else {
        CHECK(0, "config.json: %s", anv_last_error());
    }
    snprintf(path, sizeof path, "%s/model.safetensors", hf);
    anv_safetensors_t *st;
    if (anv_safetensors_open(path, &st) == 0) {
        const anv_st_tensor_t *w = anv_safetensors_find(st, "transformer.h.1.attn.c_attn.weight"),
                              *e = anv_safetensors_find(st, "transformer.wte.weight");
        const char *fmt = anv_safetensors_metadata(st, "format");
        CHECK(w && w->shape[0] == 64 && w->shape[1] == 192 && e && e->shape[0] == 260 && fmt && !strcmp(fmt, "pt"),
              "HF layout: c_attn (in, out), wte without padding rows, format pt");
        CHECK(anv_safetensors_count(st) == 2 * 12 + 4, "%d tensors (no lm_head, no buffers)",
              anv_safetensors_count(st));
        anv_safetensors_close(st);
    } else {
        CHECK(0, "model.safetensors: %s", anv_last_error());
    }

    /* Import back, with the prefixed names as exported, then unprefixed names + lm_head + buffers. */
    for (int variant = 0; variant < 2; variant++) {
        if (variant == 1) CHECK(write_unprefixed(m, path, 0) == 0, "write unprefixed: %s", anv_last_error());
        snprintf(run, sizeof run, "%s", tmp_path(variant ? "run1" : "run0"));
        CHECK(anv_hf_import(hf, run) == 0, "import %d: %s", variant, anv_last_error());
        if (anv_run_load(run, &back, &tok2) == 0) {
            CHECK(params_equal(m, back), "import %d: parameters bit-identical", variant);
            CHECK(anv_tokenizer_hash(tok2) == anv_tokenizer_hash(tok), "import %d: same tokenizer", variant);
            printf("hf round trip %d (%s names): parameters bit-identical = %d\n", variant,
                   variant ? "unprefixed + lm_head + attn.bias" : "transformer.", params_equal(m, back));
        } else {
            CHECK(0, "run load: %s", anv_last_error());
        }
        anv_model_free(back);
        anv_tokenizer_free(tok2);
        back = NULL;
        tok2 = NULL;
    }

    CHECK(anv_hf_import(hf, run) != 0 && strstr(anv_last_error(), "is not empty"), "existing run: %s",
          anv_last_error());
    snprintf(run, sizeof run, "%s", tmp_path("run_bad"));

    /* Bad inputs: an untied head, a truncated file, an unsupported activation, a missing directory. */
    CHECK(write_unprefixed(m, path, 1) == 0 && anv_hf_import(hf, run) != 0 && strstr(anv_last_error(), "lm_head"),
          "untied head: %s", anv_last_error());
    char *img;
    size_t n;
    if (anv_hf_export(m, tok, hf) == 0 && anv_read_file(path, &img, &n) == 0) {
        anv_write_file_atomic(path, img, n - 100);
        CHECK(anv_hf_import(hf, run) != 0 && strstr(anv_last_error(), "model.safetensors"), "truncated: %s",
              anv_last_error());
        anv_free(img);
    }
    anv_hf_export(m, tok, hf);
    snprintf(path, sizeof path, "%s/config.json", hf);
    if (anv_read_file(path, &img, &n) == 0) {
        char *at = strstr(img, "gelu_new");
        if (at) memcpy(at, "gelu_abc", 8); /* an activation anvil does not have */
        anv_write_file_atomic(path, img, n);
        CHECK(anv_hf_import(hf, run) != 0 && strstr(anv_last_error(), "activation_function"),
              "unsupported activation: %s", anv_last_error());
        anv_free(img);
    }
    CHECK(anv_hf_import(tmp_path("nothing"), run) != 0 && strstr(anv_last_error(), "nothing"), "missing dir: %s",
          anv_last_error());
    anv_model_free(m);
    anv_tokenizer_free(tok);
}

/* model.safetensors of m under its own names, without the tensor `drop`, with `swap`'s two dimensions
 * exchanged (either NULL for none), and n_extra further tensors. */
static int write_llama_variant(anv_model_t *m, const char *path, const char *drop, const char *swap,
                               const anv_st_write_t *extra, int n_extra) {
    int n = anv_model_n_tensors(m), k = 0;
    anv_st_write_t *t = anv_calloc((size_t)(n + n_extra) * sizeof *t, "test");
    if (!t) return -1;
    for (int i = 0; i < n; i++) {
        const anv_param_t *p = anv_model_tensor(m, i);
        if (drop && !strcmp(p->name, drop)) continue;
        t[k] = (anv_st_write_t){p->name, p->ndim, {p->shape[0], p->shape[1]}, anv_model_params(m) + p->offset};
        if (swap && !strcmp(p->name, swap)) t[k].shape[0] = p->shape[1], t[k].shape[1] = p->shape[0];
        k++;
    }
    for (int i = 0; i < n_extra; i++) t[k++] = extra[i];
    static const char *const meta[2] = {"format", "pt"};
    int rc = anv_safetensors_write_f32(path, t, k, meta, 1);
    anv_free(t);
    return rc;
}

/* Replaces the first `from` in the file by `to`. */
static int edit_file(const char *path, const char *from, const char *to) {
    char *img;
    size_t n;
    if (anv_read_file(path, &img, &n) != 0) return -1;
    char *at = strstr(img, from);
    anv_buf_t b = {0};
    int rc = at ? 0 : -1;
    if (at)
        rc = anv_buf_append(&b, img, (size_t)(at - img)) || anv_buf_puts(&b, to) ||
             anv_buf_puts(&b, at + strlen(from)) || anv_write_file_atomic(path, b.data, b.len);
    anv_buf_free(&b);
    anv_free(img);
    return rc;
}

static int same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    int same = anv_read_file(a, &x, &nx) == 0 && anv_read_file(b, &y, &ny) == 0 && nx == ny && !memcmp(x, y, nx);
    anv_free(x);
    anv_free(y);
    return same;
}

/* Imports hf into run; 1 when that fails with a message holding `want` and leaves run absent. */
static int import_fails(const char *hf, const char *run, const char *want) {
    int failed = anv_hf_import(hf, run) != 0, named = strstr(anv_last_error(), want) != NULL;
    printf("  bad input: %s\n", failed ? anv_last_error() : "accepted");
    return failed && named && !anv_path_exists(run);
}

static void test_hf_llama(void) {
    anv_model_t *m = NULL, *back = NULL;
    anv_tokenizer_t *tok = NULL, *tok2 = NULL;
    char hf[300], run[300], st_path[400], cfg_path[400], run_st[400];
    snprintf(hf, sizeof hf, "%s", tmp_path("hf_llama"));
    snprintf(st_path, sizeof st_path, "%s/model.safetensors", hf);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", hf);
    /* Untied: the export's config and tensors, then import bitwise. */
    if (make_llama(0, 0, &m, &tok) != 0 || anv_hf_export(m, tok, hf) != 0) {
        CHECK(0, "llama hf export: %s", anv_last_error());
        goto out;
    }
    anv_json_doc_t *doc;
    if (anv_json_parse_file(cfg_path, &doc) == 0) {
        const anv_json_t *r = anv_json_root(doc), *v;
        long long x;
        CHECK((v = anv_json_get(r, "architectures")) && v->type == ANV_JSON_ARRAY && v->len == 1 &&
                  !strcmp(v->items[0].str, "LlamaForCausalLM"),
              "architectures LlamaForCausalLM");
        CHECK(anv_json_get_int(r, "num_key_value_heads", cfg_path, &x) == 0 && x == 2, "num_key_value_heads");
        CHECK(anv_json_get_int(r, "eos_token_id", cfg_path, &x) == 0 && x == 258, "eos_token_id");
        CHECK((v = anv_json_get(r, "tie_word_embeddings")) && v->type == ANV_JSON_BOOL && !v->boolean, "untied");
        anv_json_free(doc);
    } else {
        CHECK(0, "config.json: %s", anv_last_error());
    }
    anv_safetensors_t *st;
    if (anv_safetensors_open(st_path, &st) == 0) {
        const anv_st_tensor_t *k = anv_safetensors_find(st, "model.layers.1.self_attn.k_proj.weight"),
                              *h = anv_safetensors_find(st, "lm_head.weight");
        CHECK(k && k->shape[0] == 32 && k->shape[1] == 64 && h && h->shape[0] == 260 && h->shape[1] == 64 &&
                  anv_safetensors_count(st) == 2 * LLAMA_LAYER + 3,
              "HF Llama layout: k_proj (out, in), lm_head without padding rows, %d tensors", anv_safetensors_count(st));
        anv_safetensors_close(st);
    } else {
        CHECK(0, "model.safetensors: %s", anv_last_error());
    }
    snprintf(run, sizeof run, "%s", tmp_path("llama_run0"));
    snprintf(run_st, sizeof run_st, "%s/model.safetensors", run);
    CHECK(anv_hf_import(hf, run) == 0, "llama import: %s", anv_last_error());
    if (anv_run_load(run, &back, &tok2) == 0) {
        int same = params_equal(m, back) && same_file(st_path, run_st);
        printf("hf llama round trip (untied, GQA): parameters and model.safetensors bit-identical = %d\n", same);
        CHECK(same, "llama import bitwise");
        char why[128];
        CHECK(anv_config_equal(anv_model_config(m), anv_model_config(back), why, sizeof why), "config: %s", why);
    } else {
        CHECK(0, "run load: %s", anv_last_error());
    }
    anv_model_free(back);
    anv_tokenizer_free(tok2);
    back = NULL;
    tok2 = NULL;

    /* Bad directories: one message naming the file and the problem, nothing written. An older
     * checkpoint's rotary buffer is accepted. */
    snprintf(run, sizeof run, "%s", tmp_path("llama_bad"));
    float bias[64] = {0}, inv_freq[8] = {0};
    anv_st_write_t qbias = {"model.layers.0.self_attn.q_proj.bias", 1, {64}, bias},
                   rotary = {"model.layers.0.self_attn.rotary_emb.inv_freq", 1, {8}, inv_freq};
    CHECK(write_llama_variant(m, st_path, "lm_head.weight", NULL, NULL, 0) == 0 &&
              import_fails(hf, run, "model.safetensors: missing tensor 'lm_head.weight' (the config's head is untied"),
          "untied without lm_head.weight: %s", anv_last_error());
    CHECK(write_llama_variant(m, st_path, NULL, "model.layers.1.self_attn.k_proj.weight", NULL, 0) == 0 &&
              import_fails(hf, run,
                           "tensor 'model.layers.1.self_attn.k_proj.weight' has shape [64, 32], expected [32, 64]"),
          "wrong shape: %s", anv_last_error());
    CHECK(write_llama_variant(m, st_path, NULL, NULL, &qbias, 1) == 0 &&
              import_fails(hf, run, "unexpected tensor 'model.layers.0.self_attn.q_proj.bias'"),
          "a bias: %s", anv_last_error());
    CHECK(write_llama_variant(m, st_path, NULL, NULL, &rotary, 1) == 0 &&
              anv_hf_import(hf, tmp_path("llama_run1")) == 0,
          "rotary inv_freq buffer: %s", anv_last_error());
    static const char *const configs[][3] = {
        {"\"model_type\": \"llama\"", "\"model_type\": \"mistral\"", "config.json: model_type \"mistral\""},
        {"\"model_type\": \"llama\"", "\"model_type\": \"qwen2\"", "config.json: model_type \"qwen2\""},
        {"\"attention_bias\": false", "\"attention_bias\": true", "config.json: attention_bias true"},
    };
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        CHECK(anv_hf_export(m, tok, hf) == 0 && edit_file(cfg_path, configs[i][0], configs[i][1]) == 0 &&
                  import_fails(hf, run, configs[i][2]),
              "%s: %s", configs[i][1], anv_last_error());
    }
    anv_model_free(m);
    anv_tokenizer_free(tok);
    m = NULL;
    tok = NULL;

    /* Tied: the export has no lm_head.weight; a file may carry one equal to embed_tokens, not another. */
    if (make_llama(1, 1, &m, &tok) != 0 || anv_hf_export(m, tok, hf) != 0) {
        CHECK(0, "tied llama hf export: %s", anv_last_error());
        goto out;
    }
    snprintf(run, sizeof run, "%s", tmp_path("llama_run2"));
    snprintf(run_st, sizeof run_st, "%s/model.safetensors", run);
    CHECK(anv_hf_import(hf, run) == 0 && same_file(st_path, run_st), "tied import bitwise: %s", anv_last_error());
    const anv_param_t *emb = param(m, "model.embed_tokens.weight");
    float *head = emb ? anv_alloc(emb->numel * sizeof *head, "test") : NULL;
    if (head) {
        memcpy(head, anv_model_params(m) + emb->offset, emb->numel * sizeof *head);
        anv_st_write_t lm = {"lm_head.weight", 2, {emb->shape[0], emb->shape[1]}, head};
        CHECK(write_llama_variant(m, st_path, NULL, NULL, &lm, 1) == 0 &&
                  anv_hf_import(hf, tmp_path("llama_run3")) == 0,
              "tied with lm_head.weight = embed_tokens: %s", anv_last_error());
        head[5] += 1;
        snprintf(run, sizeof run, "%s", tmp_path("llama_bad"));
        CHECK(write_llama_variant(m, st_path, NULL, NULL, &lm, 1) == 0 &&
                  import_fails(hf, run, "lm_head.weight differs from model.embed_tokens.weight"),
              "tied with another lm_head.weight: %s", anv_last_error());
    }
    anv_free(head);
out:
    anv_model_free(m);
    anv_tokenizer_free(tok);
}

int main(void) {
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_f16();
    test_q8_0();
    test_container();
    test_bad_files();
    test_export();
    test_export_llama();
    test_hf();
    test_hf_llama();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_done("test_gguf");
}

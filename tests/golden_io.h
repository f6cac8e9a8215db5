/* Golden files for the numerics tests: safetensors files written by tools/torch_reference.py under
 * tests/golden/, read through anvil's safetensors reader. Any failure to find or read a golden tensor
 * ends the test (the files are part of the repository). */
#ifndef ANVIL_TEST_GOLDEN_IO_H
#define ANVIL_TEST_GOLDEN_IO_H

#include "anvil/model.h"
#include "anvil/optim.h"
#include "anvil/safetensors.h"

#include <stdlib.h>
#include <string.h>

static inline anv_safetensors_t *golden_open(const char *file) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/golden/%s", ANVIL_SOURCE_DIR, file);
    anv_safetensors_t *st;
    if (anv_safetensors_open(path, &st)) {
        fprintf(stderr, "golden: %s\n", anv_last_error());
        exit(1);
    }
    return st;
}

static inline const anv_st_tensor_t *golden_find(anv_safetensors_t *st, const char *name, anv_st_dtype_t dtype) {
    const anv_st_tensor_t *t = anv_safetensors_find(st, name);
    if (!t || t->dtype != dtype) {
        fprintf(stderr, "golden %s: no tensor '%s' of the expected dtype\n", anv_safetensors_source(st), name);
        exit(1);
    }
    return t;
}

/* A malloc'd float copy of tensor `name`; *n (optional) receives its element count. */
static inline float *golden_f32(anv_safetensors_t *st, const char *name, size_t *n) {
    const anv_st_tensor_t *t = golden_find(st, name, ANV_ST_F32);
    float *p = malloc(t->nbytes + 4);
    memcpy(p, t->data, t->nbytes);
    if (n) *n = t->numel;
    return p;
}

static inline int32_t *golden_i32(anv_safetensors_t *st, const char *name, size_t *n) {
    const anv_st_tensor_t *t = golden_find(st, name, ANV_ST_I32);
    int32_t *p = malloc(t->nbytes + 4);
    memcpy(p, t->data, t->nbytes);
    if (n) *n = t->numel;
    return p;
}

/* An integer from the file's metadata. */
static inline int golden_meta_int(anv_safetensors_t *st, const char *key) {
    const char *v = anv_safetensors_metadata(st, key);
    if (!v) {
        fprintf(stderr, "golden %s: no metadata '%s'\n", anv_safetensors_source(st), key);
        exit(1);
    }
    return atoi(v);
}

static inline double golden_meta_double(anv_safetensors_t *st, const char *key) {
    const char *v = anv_safetensors_metadata(st, key);
    if (!v) {
        fprintf(stderr, "golden %s: no metadata '%s'\n", anv_safetensors_source(st), key);
        exit(1);
    }
    return atof(v);
}

/* Compares n floats against golden tensor `name`, prints the relative error and checks it. */
static inline double golden_compare(anv_safetensors_t *st, const char *what, const char *name, const float *got,
                                    size_t n, double tol) {
    size_t gn;
    float *ref = golden_f32(st, name, &gn);
    double err = gn == n ? check_rel_err(got, ref, n) : INFINITY;
    printf("  %-44s rel err %.2e (tol %.0e)\n", what, err, tol);
    CHECK(gn == n && err <= tol, "%s: %zu vs %zu values, rel err %.3e > %.0e", what, n, gn, err, tol);
    free(ref);
    return err;
}

/* The model config of a model golden (its "__metadata__": GPT-2, or Llama with its RoPE scaling). */
static inline anv_config_t golden_config(anv_safetensors_t *st) {
    const char *arch = anv_safetensors_metadata(st, "arch");
    if (!arch || strcmp(arch, "llama") != 0)
        return anv_config_gpt2(golden_meta_int(st, "n_layer"), golden_meta_int(st, "n_head"),
                               golden_meta_int(st, "n_embd"), golden_meta_int(st, "vocab_size"),
                               golden_meta_int(st, "block_size"));
    anv_config_t c =
        anv_config_llama(golden_meta_int(st, "n_layer"), golden_meta_int(st, "n_head"),
                         golden_meta_int(st, "n_kv_head"), golden_meta_int(st, "n_embd"), golden_meta_int(st, "n_ff"),
                         golden_meta_int(st, "vocab_size"), golden_meta_int(st, "block_size"));
    c.norm_eps = (float)golden_meta_double(st, "norm_eps");
    c.rope_theta = (float)golden_meta_double(st, "rope_theta");
    c.tie_embeddings = golden_meta_int(st, "tie_embeddings");
    if (!strcmp(anv_safetensors_metadata(st, "rope_scaling"), "llama3"))
        c.rope_scaling = (anv_rope_scaling_t){1, (float)golden_meta_double(st, "rope_factor"),
                                              (float)golden_meta_double(st, "rope_low_freq_factor"),
                                              (float)golden_meta_double(st, "rope_high_freq_factor"),
                                              golden_meta_int(st, "rope_original_max_position_embeddings")};
    return c;
}

/* The AdamW settings and the warmup + cosine schedule of a golden's training steps (its "__metadata__"). */
static inline anv_adamw_config_t golden_adamw_config(anv_safetensors_t *st) {
    return (anv_adamw_config_t){(float)golden_meta_double(st, "beta1"), (float)golden_meta_double(st, "beta2"),
                                (float)golden_meta_double(st, "eps"), (float)golden_meta_double(st, "weight_decay")};
}

static inline anv_schedule_t golden_schedule(anv_safetensors_t *st) {
    return (anv_schedule_t){ANV_SCHEDULE_COSINE,
                            (float)golden_meta_double(st, "max_lr"),
                            (float)golden_meta_double(st, "min_lr"),
                            golden_meta_int(st, "warmup"),
                            golden_meta_int(st, "steps"),
                            0};
}

#endif

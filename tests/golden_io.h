/* Golden files for the numerics tests: safetensors files written by tools/torch_reference.py under
 * tests/golden/, read through anvil's safetensors reader. Any failure to find or read a golden tensor
 * ends the test (the files are part of the repository). */
#ifndef ANVIL_TEST_GOLDEN_IO_H
#define ANVIL_TEST_GOLDEN_IO_H

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

#endif

/* safetensors: an 8-byte little-endian header length N, N bytes of JSON header
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {..}}
 * (offsets relative to the data section), then the data section, tensors packed without holes.
 *
 * Reading validates everything a hostile file could get wrong (header length against the file size,
 * JSON, dtype, shape product against the byte length, offsets in bounds, no overlaps, no holes,
 * duplicate names) and names the file in every error. Writing is atomic (tmp + fsync + rename). */
#ifndef ANVIL_SAFETENSORS_H
#define ANVIL_SAFETENSORS_H

#include "anvil/base.h"

#define ANV_ST_MAX_DIMS 8

typedef enum {
    ANV_ST_F64,
    ANV_ST_F32,
    ANV_ST_F16,
    ANV_ST_BF16,
    ANV_ST_I64,
    ANV_ST_I32,
    ANV_ST_I16,
    ANV_ST_I8,
    ANV_ST_U8,
    ANV_ST_BOOL
} anv_st_dtype_t;

typedef struct {
    const char *name;
    anv_st_dtype_t dtype;
    int ndim;
    int64_t shape[ANV_ST_MAX_DIMS];
    size_t numel, nbytes;
    const void *data; /* into the mapped file; not aligned in general */
} anv_st_tensor_t;

typedef struct anv_safetensors anv_safetensors_t;

/* Memory-maps and validates path. */
int anv_safetensors_open(const char *path, anv_safetensors_t **out);
/* Validates an in-memory file image (kept by reference: data must outlive the result); `source`
 * names it in errors. */
int anv_safetensors_parse(const void *data, size_t size, const char *source, anv_safetensors_t **out);
void anv_safetensors_close(anv_safetensors_t *st);

int anv_safetensors_count(const anv_safetensors_t *st);
const anv_st_tensor_t *anv_safetensors_tensor(const anv_safetensors_t *st, int i); /* in file order */
const anv_st_tensor_t *anv_safetensors_find(const anv_safetensors_t *st, const char *name);
const char *anv_safetensors_metadata(const anv_safetensors_t *st, const char *key); /* NULL if absent */
const char *anv_safetensors_source(const anv_safetensors_t *st);

/* Copies a tensor into dst (numel floats), converting F32/F16/BF16. Fails (naming the file and the
 * tensor) for other dtypes or when the shape differs from shape[0..ndim). */
int anv_safetensors_read_f32(const anv_safetensors_t *st, const char *name, int ndim, const int64_t *shape, float *dst);

/* One F32 tensor to write. */
typedef struct {
    const char *name;
    int ndim;
    int64_t shape[ANV_ST_MAX_DIMS];
    const float *data;
} anv_st_write_t;

/* Writes tensors (in the given order) and string metadata pairs meta[2i] -> meta[2i+1], atomically. */
int anv_safetensors_write_f32(const char *path, const anv_st_write_t *tensors, int n, const char *const *meta,
                              int n_meta);

#endif

/* GGUF v3 (the file format of llama.cpp / ggml): a writer, a validating reader, the tensor encodings
 * anvil exports (F32, F16, Q8_0), and the export of a model with its tokenizer.
 *
 * File layout (all little-endian):
 *   "GGUF" u32 version=3, u64 n_tensors, u64 n_kv
 *   n_kv x { string key, u32 value_type, value }      string = u64 byte length + bytes (no NUL)
 *                                                      array  = u32 item type, u64 count, items
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
 *   zero padding to general.alignment (default 32), then the tensor data; every offset (relative to
 *   the start of the data section) is a multiple of the alignment.
 * ne[0] is the fastest-varying dimension: a row-major (rows, cols) matrix has ne = [cols, rows]. */
#ifndef ANVIL_GGUF_H
#define ANVIL_GGUF_H

#include "anvil/base.h"
#include "anvil/model.h"
#include "anvil/sft.h"
#include "anvil/tokenizer.h"

#define ANV_GGUF_VERSION 3
#define ANV_GGUF_DEFAULT_ALIGNMENT 32
#define ANV_GGUF_MAX_DIMS 4
#define ANV_GGUF_MAX_NAME 63 /* ggml's GGML_MAX_NAME (64) includes the NUL */

typedef enum {
    ANV_GGUF_U8 = 0,
    ANV_GGUF_I8 = 1,
    ANV_GGUF_U16 = 2,
    ANV_GGUF_I16 = 3,
    ANV_GGUF_U32 = 4,
    ANV_GGUF_I32 = 5,
    ANV_GGUF_F32 = 6,
    ANV_GGUF_BOOL = 7,
    ANV_GGUF_STRING = 8,
    ANV_GGUF_ARRAY = 9,
    ANV_GGUF_U64 = 10,
    ANV_GGUF_I64 = 11,
    ANV_GGUF_F64 = 12
} anv_gguf_type_t;

/* ggml tensor types anvil reads and writes (ggml's numbering). Q8_0: blocks of 32 values, each an
 * fp16 scale d = max|x| / 127 followed by 32 int8 q = round(x / d); x ~ d * q. */
typedef enum { ANV_GGML_F32 = 0, ANV_GGML_F16 = 1, ANV_GGML_Q8_0 = 8 } anv_ggml_type_t;
#define ANV_Q8_0_BLOCK 32
#define ANV_Q8_0_BYTES 34

/* ---- encodings ---- */
uint16_t anv_f32_to_f16(float x); /* round to nearest even; overflow -> inf, NaN stays NaN */
float anv_f16_to_f32(uint16_t h);
/* n must be a multiple of ANV_Q8_0_BLOCK; dst holds n / 32 * 34 bytes. */
void anv_q8_0_quantize(const float *x, size_t n, uint8_t *dst);
void anv_q8_0_dequantize(const uint8_t *src, size_t n, float *x);
/* Bytes of a tensor of n elements in type t (n a multiple of the block size); 0 for an unknown type. */
size_t anv_ggml_nbytes(anv_ggml_type_t t, uint64_t n);
const char *anv_ggml_type_name(anv_ggml_type_t t);

/* ---- writer ---- */
typedef struct anv_gguf_writer anv_gguf_writer_t;

int anv_gguf_writer_create(anv_gguf_writer_t **out);
void anv_gguf_writer_free(anv_gguf_writer_t *w);
/* Metadata, written in the order added; keys must be unique. */
int anv_gguf_add_u32(anv_gguf_writer_t *w, const char *key, uint32_t v);
int anv_gguf_add_i32(anv_gguf_writer_t *w, const char *key, int32_t v);
int anv_gguf_add_f32(anv_gguf_writer_t *w, const char *key, float v);
int anv_gguf_add_bool(anv_gguf_writer_t *w, const char *key, int v);
int anv_gguf_add_string(anv_gguf_writer_t *w, const char *key, const char *s, size_t len);
int anv_gguf_add_strings(anv_gguf_writer_t *w, const char *key, const char *const *s, const size_t *lens, size_t n);
int anv_gguf_add_i32s(anv_gguf_writer_t *w, const char *key, const int32_t *v, size_t n);
/* A tensor of shape ne[0..n_dims) (ne[0] fastest) in type t. `data` (anv_alloc'd, anv_ggml_nbytes
 * bytes) belongs to the writer from this call on, also when the call fails. */
int anv_gguf_add_tensor(anv_gguf_writer_t *w, const char *name, anv_ggml_type_t t, int n_dims, const uint64_t *ne,
                        void *data);
/* Writes the file atomically (tmp + fsync + rename). */
int anv_gguf_write(const anv_gguf_writer_t *w, const char *path);

/* ---- reader ---- */
typedef struct {
    const char *key; /* NUL-terminated copy */
    anv_gguf_type_t type;
    anv_gguf_type_t arr_type; /* ARRAY: item type */
    uint64_t n;               /* ARRAY: item count; STRING: byte length */
    const uint8_t *value;     /* into the file: the scalar, the string bytes, or the first array item */
} anv_gguf_kv_t;

typedef struct {
    const char *name; /* NUL-terminated copy */
    int n_dims;
    uint64_t ne[ANV_GGUF_MAX_DIMS];
    anv_ggml_type_t type;
    uint64_t numel;
    size_t nbytes;
    const void *data; /* into the file */
} anv_gguf_tensor_t;

typedef struct anv_gguf anv_gguf_t;

/* Memory-maps and validates path (header, every key/value, tensor infos, alignment, offsets and sizes
 * against the file, duplicate names). Errors name the file, the byte offset and the problem. */
int anv_gguf_open(const char *path, anv_gguf_t **out);
/* Validates an in-memory image (kept by reference); `source` names it in errors. */
int anv_gguf_parse(const void *data, size_t size, const char *source, anv_gguf_t **out);
void anv_gguf_close(anv_gguf_t *g);

uint32_t anv_gguf_version(const anv_gguf_t *g);
uint32_t anv_gguf_alignment(const anv_gguf_t *g);
int anv_gguf_n_kv(const anv_gguf_t *g);
const anv_gguf_kv_t *anv_gguf_kv(const anv_gguf_t *g, int i);
const anv_gguf_kv_t *anv_gguf_find_kv(const anv_gguf_t *g, const char *key);
/* Typed getters: fail (naming the file and key) when missing or of another type. Integer getters
 * accept any integer type whose value fits. */
int anv_gguf_get_u32(const anv_gguf_t *g, const char *key, uint32_t *out);
int anv_gguf_get_f32(const anv_gguf_t *g, const char *key, float *out);
int anv_gguf_get_string(const anv_gguf_t *g, const char *key, const char **s, size_t *len); /* not NUL-terminated */
/* The kv->n items of an ARRAY of STRING (s[i] points into the file, lens[i] bytes, no NUL). */
void anv_gguf_array_strings(const anv_gguf_kv_t *kv, const char **s, size_t *lens);
/* Item i of an ARRAY of a numeric type (or BOOL), as a double. */
double anv_gguf_array_number(const anv_gguf_kv_t *kv, uint64_t i);

int anv_gguf_n_tensors(const anv_gguf_t *g);
const anv_gguf_tensor_t *anv_gguf_tensor(const anv_gguf_t *g, int i);
const anv_gguf_tensor_t *anv_gguf_find_tensor(const anv_gguf_t *g, const char *name);
/* Decodes a F32/F16/Q8_0 tensor into numel floats. */
void anv_gguf_tensor_to_f32(const anv_gguf_tensor_t *t, float *dst);

/* ---- export for llama.cpp ---- */
/* Writes model m as llama.cpp's architecture of the same name ("gpt2" or "llama"): its
 * hyperparameters (<arch>.context_length = block_size, embedding_length, feed_forward_length,
 * block_count, attention.head_count; GPT-2: attention.layer_norm_epsilon; Llama:
 * attention.head_count_kv, attention.layer_norm_rms_epsilon, rope.dimension_count = the head size,
 * rope.freq_base), every tensor of the model under its llama.cpp name (anv_param_t.gguf) as llama.cpp
 * stores it: 2-D weights (out, in), Conv1D ones transposed, the rows of q_proj and k_proj permuted
 * into llama.cpp's RoPE layout (each head's two halves interleaved), padding rows of the vocabulary
 * dropped, output.weight only for an untied head (llama.cpp ties an absent one to token_embd); with
 * Llama 3 RoPE scaling, rope_freqs.weight (hs / 2 F32 factors). Then the tokenizer: tokens in GPT-2's
 * byte-to-unicode form, specials verbatim as control tokens, merges "a b", end-of-text as bos/eos, no
 * automatic bos, pre-tokenizer "gpt-2", or "dbrx" for the cl100k pattern. `dtype` (F32, F16 or Q8_0)
 * applies to 2-D weights; norms, biases and rope_freqs stay F32; a weight whose rows are not a
 * multiple of 32 values falls back from Q8_0 to F16. With a chat template (the run's, anvil/sft.h):
 * tokenizer.chat_template in Hugging Face's Jinja form, and when the marker that ends a reply is one
 * token, tokenizer.ggml.eot_token_id (where llama.cpp's chat stops). */
int anv_gguf_export(anv_model_t *m, const anv_tokenizer_t *tok, const char *name, anv_ggml_type_t dtype,
                    const char *path, const anv_chat_template_t *chat);
/* The LoRA adapters of m as llama.cpp's adapter GGUF (general.type "adapter", adapter.type "lora",
 * adapter.lora.alpha; "<weight>.lora_a" (r, in) and "<weight>.lora_b" (out, r) beside each adapted weight,
 * B's q/k rows in llama.cpp's RoPE order), to be loaded with the base's export. dtype as above. */
int anv_gguf_export_lora(anv_model_t *m, const char *name, anv_ggml_type_t dtype, const char *path);

#endif

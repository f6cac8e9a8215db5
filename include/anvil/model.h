/* GPT-2 family model: configuration, parameters, forward/backward for training, and KV-cached
 * inference.
 *
 * Memory: one contiguous block for parameters, one for gradients, one for activations; named views
 * into them. Weight layout follows Hugging Face GPT-2 (Conv1D weights stored (in, out)), so the
 * safetensors checkpoint is a direct dump of the parameter block with HF names. */
#ifndef ANVIL_MODEL_H
#define ANVIL_MODEL_H

#include "anvil/base.h"
#include "anvil/json.h"
#include "anvil/kernels.h"

typedef enum { ANV_ARCH_GPT2 } anv_arch_t;

/* What a model is. Read from and written to the Hugging Face config.json keys of its architecture
 * (GPT2LMHeadModel: n_layer, n_head, n_embd, n_inner, vocab_size, n_positions, layer_norm_epsilon,
 * tie_word_embeddings) plus anvil's block_size. */
typedef struct {
    anv_arch_t arch;
    int n_layer, n_head, n_kv_head, n_embd;
    int n_ff; /* the MLP's hidden width */
    int vocab_size, block_size;
    float norm_eps;
    int tie_embeddings; /* the LM head is the token embedding */
} anv_config_t;

/* A GPT-2 config of the given shape: n_kv_head = n_head, n_ff = 4 n_embd, eps 1e-5, tied head. */
anv_config_t anv_config_gpt2(int n_layer, int n_head, int n_embd, int vocab_size, int block_size);
/* Presets: "tiny" (~1M params), "small" (~10M), "gpt2-124m", "gpt2-350m". */
int anv_config_preset(const char *name, anv_config_t *cfg);
int anv_config_from_json(const anv_json_t *obj, const char *source, anv_config_t *cfg);
int anv_config_load(const char *path, anv_config_t *cfg);
/* The config.json of a run and of a Hugging Face export, one writer for both; `extra` (may be NULL)
 * is inserted as further members ("  \"key\": value,\n" lines). */
int anv_config_json(const anv_config_t *cfg, const char *extra, anv_buf_t *out);
int anv_config_save(const anv_config_t *cfg, const char *path); /* atomic */
int anv_config_validate(const anv_config_t *cfg, const char *source);
/* 1 when a and b are the same model; else 0 with the first difference in why ("n_layer: 4 against 6",
 * a's value first). */
int anv_config_equal(const anv_config_t *a, const anv_config_t *b, char *why, size_t why_size);
int anv_config_padded_vocab(const anv_config_t *cfg);  /* vocab_size rounded up to a multiple of 64 */
size_t anv_config_num_params(const anv_config_t *cfg); /* as Hugging Face counts them (tied head once) */

/* One named parameter tensor: a view into the parameter (and gradient) block. */
typedef struct {
    char name[64]; /* Hugging Face GPT-2 name, e.g. "transformer.h.0.attn.c_attn.weight" */
    int ndim;
    int shape[2];
    size_t offset; /* in floats, into params/grads */
    size_t numel;  /* shape product: the stored tensor (wte without padding rows) */
    int decay;     /* 1 for 2-D weights that get weight decay */
} anv_param_t;

typedef struct anv_model anv_model_t;

int anv_model_create(const anv_config_t *cfg, anv_model_t **out);
void anv_model_free(anv_model_t *m);
const anv_config_t *anv_model_config(const anv_model_t *m);

/* Parameter block and its tensors. n_params counts every float in the block (including padding). */
float *anv_model_params(anv_model_t *m);
float *anv_model_grads(anv_model_t *m);
size_t anv_model_n_params(const anv_model_t *m);
int anv_model_n_tensors(const anv_model_t *m);
const anv_param_t *anv_model_tensor(const anv_model_t *m, int i);
/* The tensors as AdamW's segments (anv_adamw_update): adjacent tensors with the same decay merged,
 * padding between tensors left out; device memory made with the model. */
const anv_adamw_segments_t *anv_model_segments(const anv_model_t *m);

/* GPT-2 init: N(0, 0.02) weights, residual projections (attn.c_proj, mlp.c_proj) N(0, 0.02/sqrt(2 L)),
 * zero biases, LayerNorm weight 1 / bias 0, padding rows 0. Deterministic for a seed. */
void anv_model_init_gpt2(anv_model_t *m, uint64_t seed);

/* Training forward over tokens (B, T). targets (B, T) may hold -1 (ignored). Stores activations for
 * backward and returns the mean cross-entropy over non-ignored targets (0 when all are ignored). The
 * LM head runs in blocks of token rows and its gradients are formed here, block by block, so the
 * (B, T, vocab) logits are never stored; backward only scales them in. */
int anv_model_forward(anv_model_t *m, const int32_t *inputs, const int32_t *targets, int B, int T, float *loss);
/* The same loss without preparing a backward (evaluation): skips the LM head's gradients. */
int anv_model_loss(anv_model_t *m, const int32_t *inputs, const int32_t *targets, int B, int T, float *loss);
/* Adds loss_scale * d(mean loss)/d(params) into the gradient block (call after forward). */
int anv_model_backward(anv_model_t *m, float loss_scale);
void anv_model_zero_grad(anv_model_t *m);
/* Inference forward writing full logits (B, T, vocab_size) (unpadded). For eval, tests, sampling. */
int anv_model_logits(anv_model_t *m, const int32_t *inputs, int B, int T, float *logits);

/* Memory a training step needs, in bytes: parameters, gradients, AdamW state (m, v) and the
 * activations of a (B, T) forward/backward (those the model allocates; the LM head's logits exist one
 * vocabulary chunk at a time). */
typedef struct {
    size_t params, grads, optimizer, activations, total;
    double activations_per_token; /* activations / (B T) */
} anv_memory_budget_t;
void anv_model_memory_budget(const anv_config_t *cfg, int B, int T, anv_memory_budget_t *out);

/* Model FLOPs per token for forward + backward: 6 N + 12 L C T (for MFU). */
double anv_model_flops_per_token(const anv_config_t *cfg, int T);

/* KV-cached generation for one sequence. */
typedef struct anv_kv_cache anv_kv_cache_t;
int anv_kv_cache_create(const anv_model_t *m, int max_len, anv_kv_cache_t **out);
void anv_kv_cache_free(anv_kv_cache_t *c);
size_t anv_kv_cache_bytes(const anv_model_t *m, int max_len); /* what create allocates */
void anv_kv_cache_reset(anv_kv_cache_t *c);
int anv_kv_cache_len(const anv_kv_cache_t *c);
/* Appends n tokens at the cache's position and writes the logits (vocab_size) of the last one. */
int anv_model_decode(anv_model_t *m, anv_kv_cache_t *c, const int32_t *tokens, int n, float *logits);

#endif

/* A decoder-only transformer of one of the supported architectures: configuration, parameters,
 * forward/backward for training, and KV-cached inference. What each architecture is (its tensors and
 * where its block differs) is one table in src/model/arch.c.
 *
 * Memory: one contiguous block for parameters, one for gradients, one for activations; named views
 * into them. Every tensor is stored as Hugging Face stores it (GPT-2's Conv1D weights (in, out),
 * Llama's nn.Linear weights (out, in)) under its Hugging Face name, so the safetensors checkpoint is a
 * direct dump of the parameter block. */
#ifndef ANVIL_MODEL_H
#define ANVIL_MODEL_H

#include "anvil/base.h"
#include "anvil/json.h"
#include "anvil/kernels.h"

typedef enum {
    ANV_ARCH_GPT2, /* GPT2LMHeadModel: LayerNorm, learned positions, GELU MLP, biases, tied head */
    ANV_ARCH_LLAMA /* LlamaForCausalLM: RMSNorm, rotary positions, SwiGLU MLP, grouped-query attention */
} anv_arch_t;

/* Llama 3's rope_scaling (rope_type "llama3"): per-frequency factors for long contexts. */
typedef struct {
    int llama3; /* 0: no scaling */
    float factor, low_freq_factor, high_freq_factor;
    int original_max_position_embeddings;
} anv_rope_scaling_t;

/* What a model is. Read from and written to the Hugging Face config.json keys of its architecture
 * (GPT2LMHeadModel: n_layer, n_head, n_embd, n_inner, vocab_size, n_positions, layer_norm_epsilon,
 * tie_word_embeddings; LlamaForCausalLM: num_hidden_layers, num_attention_heads, num_key_value_heads,
 * hidden_size, intermediate_size, vocab_size, max_position_embeddings, rms_norm_eps, rope_theta,
 * rope_scaling, tie_word_embeddings) plus anvil's block_size, the longest sequence it trains on. */
typedef struct {
    anv_arch_t arch;
    int n_layer, n_head, n_kv_head, n_embd;
    int n_ff; /* the MLP's hidden width */
    int vocab_size, block_size;
    float norm_eps;
    float rope_theta; /* rotary models only */
    anv_rope_scaling_t rope_scaling;
    int tie_embeddings; /* the LM head is the token embedding */
} anv_config_t;

/* A GPT-2 config of the given shape: n_kv_head = n_head, n_ff = 4 n_embd, eps 1e-5, tied head. */
anv_config_t anv_config_gpt2(int n_layer, int n_head, int n_embd, int vocab_size, int block_size);
/* A Llama config: eps 1e-5, rope_theta 10000, no RoPE scaling, tied head (change the fields after). */
anv_config_t anv_config_llama(int n_layer, int n_head, int n_kv_head, int n_embd, int n_ff, int vocab_size,
                              int block_size);
/* Presets: GPT-2 "tiny" (~1M params besides embeddings), "small" (~10M), "gpt2-124m", "gpt2-350m"; Llama
 * "llama-tiny" (~1M), "llama-small" (~10M), "smollm2-135m", "llama3.2-1b". */
int anv_config_preset(const char *name, anv_config_t *cfg);
extern const char *const anv_config_preset_names; /* "tiny, small, ..." for messages */
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
const char *anv_arch_name(anv_arch_t arch);            /* "gpt2", "llama" */
int anv_config_head_size(const anv_config_t *cfg);     /* n_embd / n_head */
int anv_config_padded_vocab(const anv_config_t *cfg);  /* vocab_size rounded up to a multiple of 64 */
size_t anv_config_num_params(const anv_config_t *cfg); /* as Hugging Face counts them (tied head once) */
/* RoPE's inverse frequencies (head_size / 2 of them) from rope_theta and the scaling, in float as
 * Hugging Face computes them. */
void anv_config_rope_inv_freq(const anv_config_t *cfg, float *inv_freq);

/* One named parameter tensor: a view into the parameter (and gradient) block. */
typedef struct {
    char name[96]; /* Hugging Face name, e.g. "transformer.h.0.attn.c_attn.weight" */
    char gguf[64]; /* llama.cpp's name, e.g. "blk.0.attn_qkv.weight" */
    int ndim;
    int shape[2];
    size_t offset;  /* in floats, into params/grads */
    size_t numel;   /* shape product: the stored tensor (the embedding without its padding rows) */
    int decay;      /* 1 for 2-D weights that get weight decay */
    int in_out;     /* a 2-D weight stored (in, out) (Conv1D); GGUF and nn.Linear want (out, in) */
    int rope_heads; /* q_proj / k_proj of a rotary model: heads whose rows llama.cpp's RoPE layout permutes */
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

/* The parameters that training updates, as the optimizer and the checkpoint see them: the whole model,
 * or only its LoRA adapters once they are added (the base is then frozen). */
typedef struct {
    float *params, *grads;
    size_t n_params; /* floats in each block */
    const anv_param_t *tensors;
    int n_tensors;
    const anv_adamw_segments_t *segments;
    const char *file; /* its checkpoint in a run: "model.safetensors" | "adapter_model.safetensors" */
} anv_trainable_t;
const anv_trainable_t *anv_model_trainable(anv_model_t *m);

/* ---- LoRA: "LoRA: Low-Rank Adaptation of Large Language Models" (Hu et al. 2021) ----
 * An adapter beside a linear layer adds (alpha / r) B A x to its output W x: A (r, in) starts N(0, 1/r),
 * B (out, r) zero, so training starts from the base model's outputs. Adding adapters freezes the base:
 * its gradients are freed and anv_model_trainable() becomes the adapters, which carry PEFT's names
 * ("base_model.model.<module>.lora_A.weight", "...lora_B.weight") so that a run's
 * adapter_model.safetensors is a PEFT adapter. */
typedef struct {
    int rank;          /* r */
    float alpha;       /* the scale is alpha / r */
    char targets[128]; /* comma-separated linear layers of the architecture; "" for all of them */
    float dropout;     /* in training, each adapter's input elements are zeroed with this probability (and the
                        * kept ones scaled by 1 / (1 - dropout)), a fresh mask for every adapter and forward */
} anv_lora_config_t;

/* The architecture's LoRA targets, as --lora-targets names them: "c_attn, c_proj, c_fc" (GPT-2; c_proj
 * is both the attention's and the MLP's output projection, as in PEFT), "q, k, v, o, gate, up, down". */
const char *anv_lora_target_names(anv_arch_t arch);
/* Checks rank (1..min width), alpha (> 0, finite), dropout (in [0, 1)) and every target against the architecture;
 * errors start with `source`. */
int anv_lora_config_validate(const anv_lora_config_t *lc, const anv_config_t *cfg, const char *source);
/* Adds adapters to every layer's targets, A drawn from seed, and freezes the base (see above). */
int anv_model_add_lora(anv_model_t *m, const anv_lora_config_t *lc, uint64_t seed);
const anv_lora_config_t *anv_model_lora(const anv_model_t *m); /* NULL without adapters */
/* The dropout masks of the next training forward (and its backward) derive from seed: the trainer gives
 * every micro-batch its own, so that a resumed run draws the same masks. */
void anv_model_lora_dropout_seed(anv_model_t *m, uint64_t seed);
/* Folds the adapters into the base weights, W += (alpha / r) B A (in W's stored layout), and removes
 * them: what is left is a plain model of the base's architecture (its gradients stay freed). */
void anv_model_merge_lora(anv_model_t *m);
/* Identity of the base weights (a hash of every parameter float), which a LoRA run records. */
uint64_t anv_model_weights_hash(anv_model_t *m);

/* The architecture's init rule of every tensor: N(0, 0.02) weights, residual projections (GPT-2's
 * c_proj, Llama's o_proj and down_proj) N(0, 0.02/sqrt(2 L)), zero biases, norm weights 1, padding
 * rows 0. Deterministic for a seed. */
void anv_model_init(anv_model_t *m, uint64_t seed);

/* Training forward over tokens (B, T). targets (B, T) may hold -1 (ignored). starts (B, T) packs several
 * sequences into a row: the token at (b, t) belongs to the sequence that begins at column starts[b, t] of
 * row b, sits at position t - starts[b, t] and attends within its sequence only (kernel_list.h), so a
 * packed row computes what its sequences would one per row; NULL (or all 0): each row is one sequence.
 * Stores activations for backward and returns the mean cross-entropy over non-ignored targets (0 when
 * all are ignored). The LM head runs in blocks of token rows and its gradients are formed here, block by
 * block, so the (B, T, vocab) logits are never stored; backward only scales them in. */
int anv_model_forward(anv_model_t *m, const int32_t *inputs, const int32_t *targets, const int32_t *starts, int B,
                      int T, float *loss);
/* The same loss without preparing a backward (evaluation): skips the LM head's gradients. */
int anv_model_loss(anv_model_t *m, const int32_t *inputs, const int32_t *targets, const int32_t *starts, int B, int T,
                   float *loss);
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

/* Inference with int8 weights (--weights q8 of sample, serve, eval): every linear layer's weight and the
 * LM head are quantized in llama.cpp's q8_0 blocks (kernel_list.h: 32 int8 and a scale along the input
 * dimension), and the forward passes and decoding multiply with them (activations quantized the same
 * way), reading about a quarter of the bytes; training forwards are refused. The fp32 parameters stay
 * (embeddings, norms). Needs n_embd and the MLP width to be multiples of 32 and no unmerged LoRA
 * adapters. *bytes (may be NULL) gets the int8 weights' size. */
int anv_model_quantize_q8(anv_model_t *m, size_t *bytes);

/* --precision auto: a run measures which precision multiplies its matrices faster on this machine
 * (never decided by a CPU flag alone: AVX512_BF16 is slower than fp32 on some CPUs) and records the
 * result. anv_precision_option reads "auto" (ANV_PRECISION_AUTO), "fp32" or "bf16". */
enum { ANV_PRECISION_AUTO = -1 };
int anv_precision_option(const char *name, int *out);
typedef struct {
    double seconds[2];      /* one training step's matrix products, indexed by anv_precision_t */
    anv_precision_t faster; /* bf16 where it takes at most ANV_BF16_MIN_SHARE of fp32's seconds, else fp32 */
    int injected;           /* the seconds came from ANVIL_TEST_MATMUL_SECONDS="FP32,BF16" (tests) */
} anv_precision_timing_t;
/* bf16 must save at least 5% of the products' time to be taken: it rounds their inputs, so where the two
 * are about as fast (bf16 on the FMAs of Intel cores without AMX) fp32 is the better choice. */
#define ANV_BF16_MIN_SHARE 0.95
/* Times the products of one training step of B rows of T tokens (every layer shape, forward and
 * backward, and the LM head, on the current device) in fp32 and bf16 by turns, on at most 512 rows and
 * 8192 head rows, scaled to the step; a fraction of a second for small models, a few seconds for 1B. */
int anv_precision_measure(const anv_config_t *cfg, int B, int T, anv_precision_timing_t *out);

/* Model FLOPs per token for forward + backward: 6 N + 12 L C T (for MFU; grouped-query attention has
 * as many query heads of the same size, so the attention term is the same). */
double anv_model_flops_per_token(const anv_config_t *cfg, int T);

/* KV-cached generation for one sequence. */
typedef struct anv_kv_cache anv_kv_cache_t;
int anv_kv_cache_create(const anv_model_t *m, int max_len, anv_kv_cache_t **out);
void anv_kv_cache_free(anv_kv_cache_t *c);
size_t anv_kv_cache_bytes(const anv_model_t *m, int max_len); /* what create allocates */
void anv_kv_cache_reset(anv_kv_cache_t *c);
int anv_kv_cache_len(const anv_kv_cache_t *c);
/* Forgets the positions from len on (no effect when len >= the cached length): decoding resumes
 * after a shared prefix, as when several continuations of one context are scored. */
void anv_kv_cache_truncate(anv_kv_cache_t *c, int len);
/* Appends n tokens at the cache's position and writes the logits (vocab_size) of the last one. */
int anv_model_decode(anv_model_t *m, anv_kv_cache_t *c, const int32_t *tokens, int n, float *logits);
/* The same, writing the logits (n, vocab_size) of every new token (scoring text). */
int anv_model_decode_all(anv_model_t *m, anv_kv_cache_t *c, const int32_t *tokens, int n, float *logits);

#endif

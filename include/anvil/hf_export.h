/* The Hugging Face GPT-2 layout (what GPT2LMHeadModel.from_pretrained reads), both ways:
 *   config.json             GPT2LMHeadModel, model_type gpt2, n_layer/n_head/n_embd, n_positions = n_ctx,
 *                           vocab_size, layer_norm_epsilon 1e-5, gelu_new, tied embeddings, bos/eos ids
 *   model.safetensors       F32, names "transformer.wte.weight", "transformer.h.0.attn.c_attn.weight", ...
 *                           Conv1D weights (in, out), wte without padding rows, no lm_head (tied),
 *                           metadata {"format": "pt"}
 *   tokenizer.json          the run's tokenizer
 *   generation_config.json  bos/eos token ids */
#ifndef ANVIL_HF_EXPORT_H
#define ANVIL_HF_EXPORT_H

#include "anvil/model.h"
#include "anvil/tokenizer.h"

/* Writes the files above into dir (created if missing); each file atomically. */
int anv_hf_export(anv_model_t *m, const anv_tokenizer_t *tok, const char *dir);

/* Reads a Hugging Face GPT-2 directory (config.json, model.safetensors with or without the
 * "transformer." prefix, F32/F16/BF16, an optional lm_head.weight that must equal wte; tokenizer.json
 * or vocab.json + merges.txt) and writes an anvil run directory: config.json, model.safetensors and
 * tokenizer.json, which `anvil sample`, `eval` and `export` read; a run_dir that already holds a run
 * (config.json, model.safetensors or state.json) is refused. Configs anvil cannot run (another
 * activation, n_inner != 4 n_embd, an untied head, another LayerNorm epsilon) fail with the reason. */
int anv_hf_import(const char *hf_dir, const char *run_dir);

/* model.safetensors of m in the layout above (shared by export and import). */
int anv_hf_write_weights(anv_model_t *m, const char *path);

#endif

/* The Hugging Face layout (what GPT2LMHeadModel and LlamaForCausalLM .from_pretrained read), both ways:
 *   config.json             the architecture's keys (anv_config_json): GPT-2's n_layer, n_head, n_embd,
 *                           n_positions = n_ctx, gelu_new, tied embeddings; Llama's num_hidden_layers,
 *                           num_attention_heads, num_key_value_heads, hidden_size, intermediate_size,
 *                           max_position_embeddings, rms_norm_eps, rope_theta, rope_scaling,
 *                           tie_word_embeddings; both with vocab_size, bos/eos ids, torch_dtype float32
 *   model.safetensors       F32, every tensor under its Hugging Face name as the model stores it:
 *                           GPT-2's "transformer.wte.weight", Conv1D weights (in, out); Llama's
 *                           "model.embed_tokens.weight", nn.Linear weights (out, in), lm_head.weight
 *                           only when untied; embeddings without padding rows; metadata {"format": "pt"}
 *   tokenizer.json          the run's tokenizer
 *   generation_config.json  bos/eos token ids */
#ifndef ANVIL_HF_EXPORT_H
#define ANVIL_HF_EXPORT_H

#include "anvil/model.h"
#include "anvil/tokenizer.h"

/* Writes the files above into dir (created if missing); each file atomically. */
int anv_hf_export(anv_model_t *m, const anv_tokenizer_t *tok, const char *dir);

/* Reads a Hugging Face GPT-2 or Llama directory (config.json; model.safetensors in F32/F16/BF16 with
 * every tensor of the config's model at its shape, GPT-2's with or without the "transformer." prefix,
 * besides which only buffers of older checkpoints (attention masks, rotary inv_freq) and, for a tied
 * head, an lm_head.weight equal to the token embedding may be there; tokenizer.json or vocab.json +
 * merges.txt) and writes an anvil run directory: config.json, model.safetensors and tokenizer.json,
 * which `anvil sample`, `eval` and `export` read. A run_dir that holds anything is refused, and
 * nothing is written until the whole directory has been read and checked. Configs anvil cannot run
 * (another model_type, activation or epsilon, biases, sliding windows) and tensors that are missing,
 * unexpected or of another shape fail with one message naming the file and the key or tensor. */
int anv_hf_import(const char *hf_dir, const char *run_dir);

/* README.md for a Hugging Face directory exported from run_dir: the model card (YAML metadata with a
 * model-index of the run's saved evaluations, the license left to fill in) and what the run knows:
 * architecture and size, tokenizer, training data (the data directory's meta.json), steps, tokens and
 * final losses (state.json, log.jsonl), the results of `anvil eval --task` (the JSON files in RUN/eval). Parts the
 * run lacks (an imported model) are said to be missing. Atomic. */
int anv_model_card_write(const char *run_dir, const anv_model_t *m, const anv_tokenizer_t *tok, const char *path);

/* model.safetensors of m in the layout above (shared by export and import). */
int anv_hf_write_weights(anv_model_t *m, const char *path);

#endif

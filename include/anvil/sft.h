/* Supervised fine-tuning data: conversations and prompt/completion pairs rendered with a chat template
 * into token rows whose loss covers only what the model should learn to write.
 *
 * Input: JSON lines, each {"prompt": P, "completion": C} (a user turn P, an assistant turn C) or
 * {"messages": [{"role": "system" | "user" | "assistant", "content": "..."}, ...]} with at least one
 * assistant turn.
 *
 * Templates (built in; each is the text around every turn; chatml and plain start with the end-of-text
 * token, as every prompt anvil feeds a model does, so that a fine-tuned model sees at inference what it
 * was trained on; their Jinja form writes it as bos_token, which anvil's exports set to it):
 *   chatml  <|im_start|>ROLE\nCONTENT<|im_end|>\n              (the generation prompt <|im_start|>assistant\n)
 *   llama3  <|begin_of_text|> once, then
 *           <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|>
 *   plain   the contents back to back, each assistant turn followed by the end-of-text token: a base
 *           model's prompt + completion
 * Each piece is encoded on its own: the template's text with its marker strings as special tokens when
 * the tokenizer has them (else as text), the contents always as ordinary text (a marker string inside a
 * message is text). The trained tokens are each assistant turn's content and the marker that closes it
 * (so the model learns to stop); with train_on_prompt, every token.
 *
 * An example longer than max_tokens keeps its last max_tokens tokens (counted); one left without a
 * trained token is dropped (counted).
 *
 * Rows file (<dir>/<split>.sft, little-endian): "ANVSFT01", uint64 examples N, uint64 tokens M, then
 * N + 1 uint64 token offsets (0 first, M last), M uint32 token ids, M bytes (1: the token is a trained
 * target). */
#ifndef ANVIL_SFT_H
#define ANVIL_SFT_H

#include "anvil/base.h"
#include "anvil/tokenizer.h"

typedef struct anv_chat_template anv_chat_template_t;
/* "chatml", "llama3" or "plain"; NULL for another name (with an error listing the names). */
const anv_chat_template_t *anv_chat_template_builtin(const char *name);
/* A built-in template by name, or a template file in Hugging Face's Jinja (jinja.h) by path: rendered with
 * bos_token and eos_token the end-of-text token's text (as anvil's exports declare it), its replies found
 * as the text between a conversation's generation prompt and its rendering through the reply, and what
 * ends a reply as the text after one up to its first whitespace. Errors name the file and line. */
int anv_chat_template_open(const char *name, const anv_tokenizer_t *tok, const anv_chat_template_t **out);
/* Frees what anv_chat_template_open loaded from a file (nothing for the built-in ones). */
void anv_chat_template_free(const anv_chat_template_t *t);
const char *anv_chat_template_name(const anv_chat_template_t *t);
/* The text that ends a reply ("<|im_end|>"; for plain the end-of-text token's text), *len bytes. */
const char *anv_chat_template_stop(const anv_chat_template_t *t, const anv_tokenizer_t *tok, size_t *len);
/* The template in the Jinja form of Hugging Face's tokenizer_config.json and GGUF's
 * tokenizer.chat_template (messages, add_generation_prompt, eos_token). */
const char *anv_chat_template_jinja(const anv_chat_template_t *t);
/* The template a run was fine-tuned with (RUN/sft/meta.json, a file's copy in RUN/sft/chat_template.jinja),
 * or *out NULL when it has none; free it with anv_chat_template_free. */
int anv_chat_template_of_run(const char *run_dir, const anv_tokenizer_t *tok, const anv_chat_template_t **out);
/* The prompt of a reply: n turns (roles "system", "user", "assistant"; contents as ordinary text) as
 * the template renders them, then what opens the assistant's reply. Errors name the unknown role. */
int anv_chat_render_prompt(const anv_chat_template_t *t, const anv_tokenizer_t *tok, const char *const *roles,
                           const char *const *texts, const size_t *lens, size_t n, anv_tokens_t *out);

typedef struct {
    uint32_t *ids;
    uint8_t *trained; /* per token: 1 when the model learns to predict it */
    size_t len, cap;
} anv_sft_example_t;

typedef struct {
    uint64_t examples, tokens, trained_tokens, trained_bytes;
    uint64_t longest;   /* tokens of the longest example */
    uint64_t truncated; /* longer than max_tokens: their beginning was cut */
    uint64_t dropped;   /* nothing left to learn within max_tokens */
} anv_sft_stats_t;

typedef struct {
    const anv_tokenizer_t *tok;
    const anv_chat_template_t *chat;
    size_t max_tokens; /* the model's block_size + 1 */
    int train_on_prompt;
} anv_sft_opts_t;

/* One example from one JSON line; `where` ("FILE:LINE") starts its errors. */
int anv_sft_render(const anv_sft_opts_t *o, const char *json, size_t len, const char *where, anv_sft_example_t *out);
void anv_sft_example_free(anv_sft_example_t *e);

/* A data directory for `anvil train`: DIR/train.sft and DIR/val.sft from the JSONL files train_path
 * and val_path, or, without val_path, with every example whose hash of (seed, line) falls below
 * val_fraction held out (at least one, and one left to train on), and DIR/meta.json (the counts; "val"
 * bytes and tokens are the trained ones). The caller puts the tokenizer there. Errors name the file
 * and line: bad JSON, a missing or empty field, an unknown role, a conversation without an assistant
 * turn, an empty completion. */
int anv_sft_prepare(const anv_sft_opts_t *o, const char *train_path, const char *val_path, double val_fraction,
                    uint64_t seed, const char *dir, anv_sft_stats_t *train, anv_sft_stats_t *val);

/* A rows file, memory-mapped and checked (sizes, ids < vocab_size). */
typedef struct {
    anv_mmap_t map;
    char *path;
    uint64_t n, tokens;
    const uint64_t *offsets;
    const uint32_t *ids;
    const uint8_t *trained;
} anv_sft_rows_t;
int anv_sft_rows_open(const char *path, size_t vocab_size, anv_sft_rows_t *r);
void anv_sft_rows_close(anv_sft_rows_t *r);

#endif

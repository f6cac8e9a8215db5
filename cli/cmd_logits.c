/* anvil logits: the next-token logits of a prompt, as JSON, for checking other runtimes (llama.cpp,
 * PyTorch) against anvil: {"tokens": [ids fed to the model], "logits": [vocab_size floats]}. As in
 * `anvil sample`, the prompt is preceded by the end-of-text token (training documents start with it). */
#include "cli.h"

#include "anvil/trainer.h"

#include <stdio.h>
#include <string.h>

static const char usage[] = "anvil logits --run RUN --prompt TEXT [--out FILE]";

static int write_json(const anv_tokens_t *ids, const float *logits, int vocab, const char *out) {
    anv_buf_t b = {0};
    int rc = anv_buf_puts(&b, "{\"tokens\": [");
    for (size_t i = 0; i < ids->len && rc == 0; i++) rc = anv_buf_printf(&b, "%s%u", i ? ", " : "", ids->ids[i]);
    rc |= anv_buf_puts(&b, "], \"logits\": [");
    for (int i = 0; i < vocab && rc == 0; i++) rc = anv_buf_printf(&b, "%s%.9g", i ? ", " : "", logits[i]);
    rc |= anv_buf_puts(&b, "]}\n");
    if (rc == 0) {
        if (out)
            rc = anv_write_file_atomic(out, b.data, b.len);
        else if (fwrite(b.data, 1, b.len, stdout) != b.len || fflush(stdout) != 0)
            rc = anv_error("stdout: write failed");
    }
    anv_buf_free(&b);
    return rc;
}

int cmd_logits(int argc, char **argv) {
    const char *run = NULL, *prompt = NULL, *out = NULL;
    const opt_t opts[] = {
        {"--run", OPT_STRING, &run, "run directory"},
        {"--prompt", OPT_STRING, &prompt, "text whose last position's logits are printed"},
        {"--out", OPT_STRING, &out, "write the JSON to FILE instead of stdout"},
    };
    int rc = cli_parse(argc, argv, opts, 3, usage, NULL);
    if (rc != 0) return rc > 0 ? 0 : cli_fail();
    if (!run || !prompt) {
        anv_error("logits needs --run and --prompt (see --help)");
        return cli_fail();
    }
    anv_model_t *m = NULL;
    anv_tokenizer_t *tok = NULL;
    anv_tokens_t ids = {0};
    float *logits = NULL;
    rc = -1;
    if (anv_run_load(run, &m, &tok) != 0) goto done;
    if (anv_tokenizer_eot(tok) >= 0 && anv_tokens_push(&ids, (uint32_t)anv_tokenizer_eot(tok)) != 0) goto done;
    if (anv_tokenizer_encode(tok, prompt, strlen(prompt), &ids) != 0) goto done;
    const anv_config_t *c = anv_model_config(m);
    if (ids.len == 0 || ids.len > (size_t)c->block_size) {
        anv_error("--prompt: %zu tokens with the end-of-text token (1 to %d fit the model)", ids.len, c->block_size);
        goto done;
    }
    int T = (int)ids.len;
    if (!(logits = anv_alloc((size_t)T * (size_t)c->vocab_size * sizeof *logits, "logits"))) goto done;
    if (anv_model_logits(m, (const int32_t *)ids.ids, 1, T, logits) != 0) goto done;
    rc = write_json(&ids, logits + (size_t)(T - 1) * (size_t)c->vocab_size, c->vocab_size, out);
done:
    anv_free(logits);
    anv_tokens_free(&ids);
    anv_tokenizer_free(tok);
    anv_model_free(m);
    return rc != 0 ? cli_fail() : 0;
}

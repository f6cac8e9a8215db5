/* anvil import: a Hugging Face GPT-2 or Llama directory as an anvil run directory. */
#include "cli.h"

#include "anvil/hf_export.h"

#include <stdio.h>
#include <string.h>

static const char usage[] = "anvil import --from hf DIR --out RUN";

int cmd_import(int argc, char **argv) {
    string_list_t from = {0};
    const char *out = NULL;
    const opt_t opts[] = {
        {"--from", OPT_STRINGS, &from,
         "hf DIR: a Hugging Face GPT-2 or Llama directory (config.json, model.safetensors, tokenizer)"},
        {"--out", OPT_STRING, &out, "run directory to write (config.json, model.safetensors, tokenizer.json)"},
    };
    int rc = cli_parse(argc, argv, opts, 2, usage, NULL);
    if (rc != 0) {
        anv_free(from.items);
        return rc > 0 ? 0 : cli_fail();
    }
    if (from.count != 2 || strcmp(from.items[0], "hf") != 0 || !out) {
        anv_error(from.count >= 1 && strcmp(from.items[0], "hf") != 0
                      ? "--from: unknown source format (expected: --from hf DIR)"
                      : "import needs --from hf DIR and --out RUN (see --help)");
        anv_free(from.items);
        return cli_fail();
    }
    double t0 = anv_now();
    rc = anv_hf_import(from.items[1], out);
    if (rc == 0) fprintf(stderr, "imported %s into %s in %.2f s\n", from.items[1], out, anv_now() - t0);
    anv_free(from.items);
    return rc != 0 ? cli_fail() : 0;
}
